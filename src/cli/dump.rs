//! `snap dump SNAPSHOT [PATH] --format tar|zip [--output FILE]`.

use std::fs::{self, File};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use snap::Repository;
use snap::backend::LockMode;
use snap::format::snapshot::Snapshot;
use snap::ops::dump::{DumpOptions, DumpReport, Format, Output, dump};

use super::context::Global;
use super::{output, progress::Bar};

#[derive(Debug, Args)]
#[command(after_long_help = "\
Examples:
  # Look inside the newest snapshot without restoring it
  snap dump latest --format tar | tar -tv
  # One project as a compressed tarball (app/... inside)
  snap dump latest /home/me/projects/app --format tar | zstd > app.tar.zst
  # A folder as it was on 20 November, as a zip file to send
  snap dump 2026-11-20 /home/me/Documents --format zip --output documents.zip
  # Unpack a directory on another machine, without a repository there
  snap dump latest /home/me/projects --format tar | ssh host tar -x -C /srv")]
pub struct DumpArgs {
    /// Snapshot: id prefix, latest, latest~N or YYYY-MM-DD
    pub snapshot: String,
    /// Only this path of the snapshot and what is below it
    pub path: Option<PathBuf>,
    /// Archive format
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: FormatArg,
    /// Write the archive to FILE instead of standard output
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Formats `dump` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// GNU tar, uncompressed (pipe it through gzip or zstd as you like)
    Tar,
    /// zip, each file deflated
    Zip,
}

pub fn run(g: &Global, a: &DumpArgs) -> Result<ExitCode> {
    let format = match a.format {
        FormatArg::Tar => Format::Tar,
        FormatArg::Zip => Format::Zip,
    };
    // Checked before the repository is opened, so no password is asked for in vain.
    if a.output.is_none() {
        check_stdout(g, format)?;
    }
    let (repo, _) = super::context::open(g, LockMode::Shared)?;
    let (id, snap) = repo.resolve(&a.snapshot)?;
    let destination = a.output.clone().unwrap_or_else(|| PathBuf::from("standard output"));
    let opts = DumpOptions { format, path: a.path.clone(), destination };
    let report = match &a.output {
        Some(path) => dump_to_file(&repo, &snap, &opts, path, g)?,
        None => dump(&repo, &snap, &opts, Output::Stream(&mut std::io::stdout().lock()), &Bar::new(g))?,
    };
    output::warnings(&report.warnings);
    if let Some(path) = &a.output {
        if g.json {
            output::json(&serde_json::json!({
                "snapshot": id.to_hex(),
                "output": path,
                "format": format,
                "report": report,
            }))?;
        } else {
            output::line(&summary(&id.short(), path, &report))?;
        }
    }
    // A damaged directory is a hole in the archive: named, and exit 3.
    let incomplete = report.warnings.iter().any(|w| w.kind == snap::ops::WarningKind::Failed);
    Ok(if incomplete { ExitCode::from(super::context::EXIT_INCOMPLETE) } else { ExitCode::SUCCESS })
}

/// Refuses what would make the archive unusable on standard output.
fn check_stdout(g: &Global, format: Format) -> Result<()> {
    if std::io::stdout().is_terminal() {
        bail!(
            "will not write a {format} archive to a terminal; give --output FILE or pipe it \
             (snap dump ... | tar -tv)"
        );
    }
    if g.json {
        bail!("--json needs --output FILE: standard output carries the archive");
    }
    Ok(())
}

/// Writes the archive to `path`. A failed dump removes the file: a partial
/// archive must not be taken for a whole one.
fn dump_to_file(
    repo: &Repository,
    snap: &Snapshot,
    opts: &DumpOptions,
    path: &Path,
    g: &Global,
) -> Result<DumpReport> {
    let mut file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    // --output may also name a pipe or a device.
    let regular = file.metadata().with_context(|| format!("cannot stat {}", path.display()))?.is_file();
    let out = if regular { Output::File(&mut file) } else { Output::Stream(&mut file) };
    let result = dump(repo, snap, opts, out, &Bar::new(g));
    if result.is_err() && regular {
        let _ = fs::remove_file(path);
    }
    Ok(result?)
}

fn summary(snapshot: &str, path: &Path, r: &DumpReport) -> String {
    format!(
        "dumped snapshot {snapshot} to {}: {} files ({}), {} dirs, {} others",
        path.display(),
        r.files,
        output::bytes(r.bytes),
        r.dirs,
        r.others
    )
}
