//! `snap restore`.

use std::process::ExitCode;

use anyhow::Result;
use snap::backend::LockMode;
use snap::ops::restore::{RestoreOptions, restore};

use super::args::{Global, RestoreArgs};
use super::{EXIT_INCOMPLETE, output, progress::Bar};

pub fn run(g: &Global, a: &RestoreArgs) -> Result<ExitCode> {
    let (repo, repo_path) = super::open(g, LockMode::Shared)?;
    let (id, snap) = repo.resolve(&a.snapshot)?;
    let opts = RestoreOptions {
        target: a.target.clone(),
        include: a.include.clone(),
        verify: a.verify,
        repository_dir: Some(repo_path),
    };
    let report = restore(&repo, &snap, &opts, &Bar::new(g))?;
    output::warnings(&report.warnings);
    if g.json {
        output::json(&serde_json::json!({ "snapshot": id.to_hex(), "report": report }))?;
    } else {
        output::line(&format!(
            "restored snapshot {} to {}: {} files ({}), {} dirs, {} others{}",
            id.short(),
            a.target.display(),
            report.files,
            output::bytes(report.bytes),
            report.dirs,
            report.others,
            if a.verify { format!(", {} files verified", report.verified_files) } else { String::new() }
        ))?;
        if report.incomplete {
            output::warn("the restore is incomplete (see above)");
        }
    }
    Ok(if report.incomplete { ExitCode::from(EXIT_INCOMPLETE) } else { ExitCode::SUCCESS })
}
