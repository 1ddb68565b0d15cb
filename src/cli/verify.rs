//! `snap verify` and `snap repair snapshots`, which acts on what verify finds.

use std::process::ExitCode;

use anyhow::Result;
use snap::backend::LockMode;
use snap::ops::verify::{ReadData, VerifyReport, parse_subset, verify};

use super::args::{Global, RepairPacksArgs, RepairSnapshotsArgs, VerifyArgs};
use super::{EXIT_DAMAGED, output, progress::Bar};

pub fn run(g: &Global, a: &VerifyArgs) -> Result<ExitCode> {
    let read = match (&a.read_data_subset, a.read_data) {
        (Some(subset), _) => parse_subset(subset)?,
        (None, true) => ReadData::All,
        (None, false) => ReadData::None,
    };
    let (repo, _) = super::open(g, LockMode::Shared)?;
    let report = verify(&repo, read, &Bar::new(g))?;
    if g.json {
        output::json(&serde_json::json!({ "ok": report.ok(), "report": report }))?;
    } else {
        print(&report)?;
    }
    if report.ok() {
        return Ok(ExitCode::SUCCESS);
    }
    if report.problems.is_empty() {
        output::warn(&format!(
            "cannot tell whether the repository is whole: {} object(s) could not be read (an I/O or \
             storage error, or a newer format) and nothing about them is proved; run verify again \
             once the storage reads reliably",
            report.unverified.len()
        ));
        return Ok(ExitCode::from(super::EXIT_ERROR));
    }
    output::warn(&format!(
        "the repository is damaged ({} problem(s), {} snapshot path(s) affected). Run `snap repair index` \
         if the index disagrees with the packs; back up again to store missing data anew; \
         `snap repair snapshots` drops what is lost from the snapshots",
        report.problems.len(),
        report.affected.len()
    ));
    Ok(ExitCode::from(EXIT_DAMAGED))
}

fn print(r: &VerifyReport) -> Result<()> {
    output::line(&format!(
        "checked {} snapshot(s), {} tree(s), {} chunk(s) in {} pack(s); {} pack(s) read in full ({})",
        r.snapshots,
        r.trees,
        r.chunks,
        r.packs,
        r.packs_read,
        output::bytes(r.bytes_read)
    ))?;
    if !r.unused_packs.is_empty() {
        output::line(&format!(
            "{} pack(s) are used by no snapshot (harmless; prune removes them)",
            r.unused_packs.len()
        ))?;
    }
    for p in &r.problems {
        output::line(&format!("damaged: {}: {}", p.object, p.detail))?;
    }
    for p in &r.unverified {
        output::line(&format!("not checked: {}: {}", p.object, p.detail))?;
    }
    for a in &r.affected {
        let entries = a.entries.as_ref().map(|e| format!(" ({e})")).unwrap_or_default();
        output::line(&format!("affected: snapshot {} {}{entries}", &a.snapshot[..8], a.path))?;
    }
    if r.ok() {
        output::line("no problems found")?;
    }
    Ok(())
}

pub fn repair_snapshots(g: &Global, a: &RepairSnapshotsArgs) -> Result<ExitCode> {
    let mode = if a.dry_run { LockMode::Shared } else { LockMode::Exclusive };
    let (repo, _) = super::open(g, mode)?;
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
    let (repo, _) = super::open(g, mode)?;
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
