//! `snap restore`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use snap::backend::LockMode;
use snap::id::SnapshotId;
use snap::ops::restore::{Overwrite, RestoreOptions, RestoreReport, SAFETY_TAGS, SafetySnapshot, restore};

use super::context::{EXIT_INCOMPLETE, Global};
use super::{output, progress::Bar};

#[derive(Debug, Args)]
#[command(after_long_help = "\
Examples:
  # The newest snapshot, whole, under /tmp/r (as /tmp/r/home/me/...)
  snap restore latest --target /tmp/r
  # One directory as it was on 20 November, read back and checked after writing
  snap restore 2026-11-20 -t /tmp/r --include /home/me/projects/app --verify
  # Put a snapshot back in place: first see what would change
  snap restore 1a2b3c4d --target / --overwrite if-changed --dry-run
  # then do it; what it replaces is saved first, as a safety snapshot
  snap restore 1a2b3c4d --target / --overwrite if-changed
  # To undo it: find the safety snapshot's id, and restore it the same way
  snap snapshots --tag safety

Exit status:
  0   restored
  1   error
  2   usage error
  3   incomplete: files named on standard error failed to restore or verify
  12  wrong or missing password")]
pub struct RestoreArgs {
    /// Snapshot: id prefix, latest, latest~N or YYYY-MM-DD
    pub snapshot: String,
    /// Directory to restore into (created if missing)
    #[arg(long, short, value_name = "DIR")]
    pub target: PathBuf,
    /// Restore only this path of the snapshot
    #[arg(long, value_name = "PATH")]
    pub include: Option<PathBuf>,
    /// Re-read every restored file and check it against the snapshot
    #[arg(long)]
    pub verify: bool,
    /// What to do with a file, symlink or other non-directory already at a restored path
    #[arg(long, value_enum, default_value = "always", value_name = "WHEN")]
    pub overwrite: OverwriteArg,
    /// Do not first back up (tagged safety, pre-restore) what the restore replaces in the target
    #[arg(long)]
    pub no_safety_snapshot: bool,
    /// List what would be created (+), replaced (M), left unchanged (=) or skipped (s); write nothing
    #[arg(long, conflicts_with = "verify")]
    pub dry_run: bool,
}

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
    let (repo, repo_path) = super::context::open(g, LockMode::Shared)?;
    let (id, snap) = repo.resolve(&a.snapshot)?;
    let safety = (!a.no_safety_snapshot).then(|| SafetySnapshot {
        restoring: id,
        hostname: super::env::hostname(),
        username: super::env::username(),
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
