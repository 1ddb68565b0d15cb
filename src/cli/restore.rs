//! `snap restore`.

use std::process::ExitCode;

use anyhow::Result;
use snap::backend::LockMode;
use snap::id::SnapshotId;
use snap::ops::restore::{Overwrite, RestoreOptions, RestoreReport, SAFETY_TAGS, SafetySnapshot, restore};

use super::args::{Global, RestoreArgs};
use super::{EXIT_INCOMPLETE, output, progress::Bar};

/// `--overwrite`: what happens to a non-directory already at a restored path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OverwriteArg {
    /// Replace it
    Always,
    /// Replace it unless its contents already match the snapshot (metadata is applied either way)
    IfChanged,
    /// Leave it untouched and report it skipped
    Never,
}

impl From<OverwriteArg> for Overwrite {
    fn from(a: OverwriteArg) -> Self {
        match a {
            OverwriteArg::Always => Overwrite::Always,
            OverwriteArg::IfChanged => Overwrite::IfChanged,
            OverwriteArg::Never => Overwrite::Never,
        }
    }
}

pub fn run(g: &Global, a: &RestoreArgs) -> Result<ExitCode> {
    let (repo, repo_path) = super::open(g, LockMode::Shared)?;
    let (id, snap) = repo.resolve(&a.snapshot)?;
    let safety = (!a.no_safety_snapshot).then(|| SafetySnapshot {
        restoring: id,
        hostname: super::hostname(),
        username: super::username(),
    });
    let opts = RestoreOptions {
        target: a.target.clone(),
        include: a.include.clone(),
        verify: a.verify,
        repository_dir: repo_path,
        overwrite: a.overwrite.into(),
        dry_run: a.dry_run,
        safety,
    };
    let report = restore(&repo, &snap, &opts, &Bar::new(g))?;
    output::warnings(&report.warnings);
    if g.json {
        output::json(
            &serde_json::json!({ "snapshot": id.to_hex(), "dry_run": a.dry_run, "report": report }),
        )?;
    } else if a.dry_run {
        print_dry_run(a, id, &report)?;
    } else {
        print_summary(a, id, &report)?;
    }
    Ok(if report.incomplete { ExitCode::from(EXIT_INCOMPLETE) } else { ExitCode::SUCCESS })
}

fn print_summary(a: &RestoreArgs, id: SnapshotId, r: &RestoreReport) -> Result<()> {
    if let Some(safety) = r.safety_snapshot {
        output::line(&format!(
            "safety snapshot {} saved of what this restore replaces in {} (tags: {})",
            safety.short(),
            a.target.display(),
            SAFETY_TAGS.join(", ")
        ))?;
    }
    output::line(&format!(
        "restored snapshot {} to {}: {} files ({}), {} dirs, {} others{}; {} written, {} unchanged, {} skipped",
        id.short(),
        a.target.display(),
        r.files,
        output::bytes(r.bytes),
        r.dirs,
        r.others,
        if a.verify { format!(", {} files verified", r.verified_files) } else { String::new() },
        r.written,
        r.unchanged,
        r.skipped
    ))?;
    if r.incomplete {
        output::warn("the restore is incomplete (see above)");
    }
    Ok(())
}

/// One line per path, marked as `snap diff` marks them, then the summary.
fn print_dry_run(a: &RestoreArgs, id: SnapshotId, r: &RestoreReport) -> Result<()> {
    for change in r.changes.iter().flatten() {
        output::line(&format!("{}  {}", change.action.marker(), change.path))?;
    }
    let safety = match (r.safety_snapshot_needed, a.no_safety_snapshot) {
        (true, _) => "a safety snapshot would be taken first",
        (false, true) => "no safety snapshot (--no-safety-snapshot)",
        (false, false) => "no safety snapshot needed (nothing would be replaced)",
    };
    output::line(&format!(
        "dry run: restoring snapshot {} to {} would write {} ({}), leave {} unchanged and skip {}; {safety}",
        id.short(),
        a.target.display(),
        r.written,
        output::bytes(r.bytes),
        r.unchanged,
        r.skipped
    ))
}
