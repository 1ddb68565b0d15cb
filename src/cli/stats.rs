//! `snap stats` and `snap status`.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use snap::backend::LockMode;
use snap::ops::policy::Span;
use snap::ops::stats::{LockState, Scope, StatsReport, StatusOptions, StatusReport, stats, status};

use super::context::{EXIT_ERROR, Global};
use super::{output, progress::Bar};

/// Exit code of `status --max-age` when a backup is overdue.
pub const EXIT_STALE: u8 = 5;

#[derive(Debug, Args)]
#[command(after_long_help = "\
Examples:
  # The whole repository
  snap stats
  # What the newest snapshot holds, and what it needs stored
  snap stats latest
  # Two snapshots together: the data they share is counted once
  snap stats latest~1 latest
  # The dedup ratio alone, for a script
  snap --json stats | jq .dedup_ratio")]
pub struct StatsArgs {
    /// Count only these snapshots (id prefix, latest, latest~N or YYYY-MM-DD) [default: all]
    #[arg(value_name = "SNAPSHOT")]
    pub snapshots: Vec<String>,
}

#[derive(Debug, Args)]
#[command(after_long_help = "\
Examples:
  # Everything at a glance
  snap status
  # A notice when some host and paths were last backed up over 25 hours ago
  snap status --max-age 25h > /dev/null || notify-send 'snap: backup overdue'
  # An encrypted repository, as JSON for a monitoring system
  SNAP_PASSWORD_FILE=~/.offsite-pw \\
    snap --repo /mnt/offsite --json status --max-age 2d

Exit status:
  0   success; with --max-age, every host and paths has a recent snapshot
  1   error
  2   usage error
  5   --max-age: no snapshot at all, or a host and paths' newest is too old
  12  wrong or missing password")]
pub struct StatusArgs {
    /// Exit with code 5 if the newest snapshot of some host and paths is older than this span
    /// (25h, 2d, 1w; m = months, y = years), or if there is no snapshot at all
    #[arg(long, value_name = "SPAN")]
    pub max_age: Option<String>,
}

pub fn run_stats(g: &Global, a: &StatsArgs) -> Result<ExitCode> {
    let (repo, _) = super::context::open(g, LockMode::Shared)?;
    let report = stats(&repo, &a.snapshots, &Bar::new(g))?;
    if g.json {
        output::json(&report)?;
    } else {
        print_stats(&report)?;
    }
    for d in &report.damaged_snapshots {
        output::warn(&format!("snapshot {} cannot be read: {}", d.name, d.error));
    }
    for t in &report.unreadable_trees {
        output::warn(&format!("{} cannot be read (what is below it is not counted): {}", t.name, t.error));
    }
    if report.missing_chunks > 0 {
        output::warn(&format!(
            "{} chunk(s) are in no present pack and are left out of the sizes; run `snap verify`",
            report.missing_chunks
        ));
    }
    Ok(if report.complete() { ExitCode::SUCCESS } else { ExitCode::from(EXIT_ERROR) })
}

fn ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}x"))
}

fn print_stats(r: &StatsReport) -> Result<()> {
    let scope = match r.scope {
        Scope::Repository => "all snapshots".to_owned(),
        Scope::Snapshots => r.snapshot_ids.iter().map(|id| id[..8].to_owned()).collect::<Vec<_>>().join(" "),
    };
    let rows = [
        ("snapshots", format!("{} ({scope})", r.snapshots)),
        ("files", format!("{} in {} directories, {} other entries", r.files, r.directories, r.other_entries)),
        ("logical size", output::bytes(r.logical_bytes)),
        ("unique data", format!("{} in {} chunks", output::bytes(r.unique_bytes), r.chunks)),
        (
            "stored size",
            format!(
                "{} ({} of chunks, {} of {} trees)",
                output::bytes(r.stored_bytes),
                output::bytes(r.chunk_stored_bytes),
                output::bytes(r.tree_stored_bytes),
                r.trees
            ),
        ),
        ("dedup ratio", ratio(r.dedup_ratio)),
        ("compression ratio", ratio(r.compression_ratio)),
        ("packs used", format!("{} ({})", r.packs_used, output::bytes(r.packs_used_bytes))),
        (
            "repository",
            format!(
                "{} packs, {} on disk; index: {} chunks, {} trees",
                r.repository.packs,
                output::bytes(r.repository.pack_bytes),
                r.repository.index.chunks,
                r.repository.index.trees
            ),
        ),
    ];
    for (label, value) in rows {
        output::line(&format!("{label:<18} {value}"))?;
    }
    Ok(())
}

pub fn run_status(g: &Global, a: &StatusArgs) -> Result<ExitCode> {
    let max_age = a.max_age.as_ref().map(|s| Span::parse(s).map(|span| (span, s.clone()))).transpose()?;
    let loc = super::context::location(g)?;
    let report = status(
        loc.at.backend()?,
        &super::password::current,
        &StatusOptions { max_age },
        chrono::Local::now(),
    )?;
    if g.json {
        output::json(&report)?;
    } else {
        print_status(&report)?;
    }
    if !report.stale {
        return Ok(ExitCode::SUCCESS);
    }
    let limit = report.max_age.as_deref().unwrap_or_default();
    if report.groups.is_empty() {
        output::warn(&format!("there is no snapshot at all (--max-age {limit})"));
    }
    for group in report.groups.iter().filter(|g| g.stale == Some(true)) {
        output::warn(&format!(
            "the newest snapshot of {} {} is {}, older than --max-age {limit}",
            group.hostname,
            group.paths.join(" "),
            ago(group.age_seconds)
        ));
    }
    Ok(ExitCode::from(EXIT_STALE))
}

/// An age for people: `45s ago`, `12min ago`, `3h ago`, `2d ago`.
fn ago(secs: i64) -> String {
    match secs {
        s if s < 0 => "in the future".to_owned(),
        s if s < 60 => format!("{s}s ago"),
        s if s < 3600 => format!("{}min ago", s / 60),
        s if s < 86400 => format!("{}h ago", s / 3600),
        s => format!("{}d ago", s / 86400),
    }
}

fn print_status(r: &StatusReport) -> Result<()> {
    output::line(&format!(
        "repository  {} (id {}, format {}, encryption {})",
        r.repository,
        &r.id[..r.id.len().min(8)],
        r.format_version,
        r.encryption
    ))?;
    let lock = match r.lock {
        LockState::Free => "free: no other snap process is using the repository",
        LockState::Shared => "in use by another snap process (a backup, restore or other reader)",
        LockState::Exclusive => "in use by another snap process, exclusively (prune or repair)",
        LockState::NotExclusive => "not held exclusively (whether others share it cannot be seen here)",
    };
    output::line(&format!("lock        {lock}"))?;
    let index = match &r.index {
        None => "not checked while another process holds the lock exclusively".to_owned(),
        Some(i) => {
            let counts = format!(
                "{} packs, {} chunks ({}), {} trees",
                i.counts.packs,
                i.counts.chunks,
                output::bytes(i.counts.chunk_raw),
                i.counts.trees
            );
            let added = if i.packs_added.is_empty() {
                String::new()
            } else {
                format!("; {} new pack(s) indexed", i.packs_added.len())
            };
            if i.ok() {
                format!("ok: {counts}{added}")
            } else {
                format!(
                    "{} pack(s) missing, {} unreadable (run `snap verify`): {counts}{added}",
                    i.packs_missing.len(),
                    i.packs_unreadable.len()
                )
            }
        }
    };
    output::line(&format!("index       {index}"))?;
    output::line(&format!("snapshots   {} in {} group(s)", r.snapshots, r.groups.len()))?;
    if !r.damaged_snapshots.is_empty() {
        output::line(&format!(
            "damaged     {} snapshot file(s) cannot be read (run `snap verify`)",
            r.damaged_snapshots.len()
        ))?;
    }
    for g in &r.groups {
        let stale = if g.stale == Some(true) { "  OVERDUE" } else { "" };
        output::line(&format!(
            "  {}  {}  latest {}  {}  {}  ({} snapshot(s)){stale}",
            g.hostname,
            g.paths.join(" "),
            g.latest.short_id,
            g.latest.time,
            ago(g.age_seconds),
            g.snapshots
        ))?;
    }
    if r.groups.is_empty() {
        output::line("  no snapshots yet")?;
    }
    Ok(())
}
