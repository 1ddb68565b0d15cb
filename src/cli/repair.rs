//! `snap repair index`, `snap repair snapshots` and `snap repair packs`.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use snap::Repository;
use snap::backend::LockMode;
use snap::ops::verify::{ReadData, verify};

use super::context::{EXIT_ERROR, Global, location};
use super::{output, password, progress::Bar};

#[derive(Debug, Args)]
pub struct RepairPacksArgs {
    /// Show what would be moved and lost; change nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
#[command(after_long_help = "\
Examples:
  # What would be dropped, reading all data to find damaged chunks too
  snap repair snapshots --read-data --dry-run
  # Drop it, then free the space the old snapshots held
  snap repair snapshots --read-data
  snap prune")]
pub struct RepairSnapshotsArgs {
    /// Also read all data to find damaged chunks (otherwise: missing data only)
    #[arg(long)]
    pub read_data: bool,
    /// Show what would be dropped; change nothing
    #[arg(long)]
    pub dry_run: bool,
}

pub fn repair_index(g: &Global) -> Result<ExitCode> {
    let loc = location(g)?;
    let report = Repository::rebuild_index(loc.at.backend()?, &password::current)?;
    for u in &report.unreadable {
        output::warn(&format!("pack {} is unreadable and was not indexed: {}", u.name, u.error));
    }
    for p in &report.salvaged {
        output::warn(&format!(
            "pack {}: its trailer is damaged; its {} blob(s) were indexed again where the old index placed \
             them: {} checked whole, {} proved damaged (marked so), {} unreadable now (unchecked)",
            p.pack, p.rows, p.kept, p.damaged, p.unchecked
        ));
    }
    if g.json {
        output::json(&serde_json::json!({
            "packs_indexed": report.added.len(),
            "packs_unreadable": report.unreadable,
            "packs_salvaged": report.salvaged,
            "damage_marks_kept": report.damage_marks_kept,
        }))?;
    } else {
        output::line(&format!("index rebuilt from {} pack(s)", report.added.len()))?;
        if report.damage_marks_kept > 0 {
            output::line(&format!(
                "{} copies proved damaged stay marked (`snap repair packs` replaces them)",
                report.damage_marks_kept
            ))?;
        }
    }
    Ok(if report.unreadable.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(EXIT_ERROR) })
}

pub fn repair_snapshots(g: &Global, a: &RepairSnapshotsArgs) -> Result<ExitCode> {
    let mode = if a.dry_run { LockMode::Shared } else { LockMode::Exclusive };
    let (repo, _) = super::context::open(g, mode)?;
    let read = if a.read_data { ReadData::All } else { ReadData::None };
    let found = verify(&repo, read, &Bar::new(g))?;
    let report = snap::ops::repair::repair_snapshots(&repo, &found, a.dry_run)?;
    if g.json {
        output::json(&report)?;
        return Ok(ExitCode::SUCCESS);
    }
    for r in &report.repaired {
        let what = match r.new {
            Some(new) => format!("replaced snapshot {} by {}", r.old.short(), new.short()),
            None => format!("would replace snapshot {}", r.old.short()),
        };
        output::line(&format!("{what}; lost:"))?;
        for path in &r.lost {
            output::line(&format!("  {path}"))?;
        }
    }
    for d in &report.removed_corrupt {
        let verb = if a.dry_run { "would remove" } else { "removed" };
        output::line(&format!("{verb} corrupt snapshot file {}: {}", d.name, d.error))?;
    }
    if report.repaired.is_empty() && report.removed_corrupt.is_empty() {
        output::line("no snapshot uses lost or damaged data; nothing to repair")?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn repair_packs(g: &Global, a: &RepairPacksArgs) -> Result<ExitCode> {
    let mode = if a.dry_run { LockMode::Shared } else { LockMode::Exclusive };
    let (repo, _) = super::context::open(g, mode)?;
    let report = snap::ops::repair::repair_packs(&repo, a.dry_run, &Bar::new(g))?;
    if g.json {
        output::json(&report)?;
        return Ok(ExitCode::SUCCESS);
    }
    if report.packs.is_empty() {
        output::line("no pack holds data known to be damaged; nothing to repair")?;
        return Ok(ExitCode::SUCCESS);
    }
    let verb = if a.dry_run { "would move" } else { "moved" };
    output::line(&format!(
        "{verb} {} intact blob(s) out of {} damaged pack(s), which {} deleted",
        report.blobs_moved,
        report.packs.len(),
        if a.dry_run { "would be" } else { "were" }
    ))?;
    for blob in &report.blobs_lost {
        output::line(&format!("lost (no intact copy): {blob}"))?;
    }
    if !report.blobs_lost.is_empty() {
        output::warn("run `snap repair snapshots` to drop what uses the lost data");
    }
    Ok(ExitCode::SUCCESS)
}
