//! `snap forget` and `snap prune`.

use std::collections::HashMap;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use snap::backend::LockMode;
use snap::ops::policy::{KeepPolicy, Span};
use snap::ops::prune::{PruneOptions, PruneReport};

use super::context::Global;
use super::{output, progress::Bar};

#[derive(Debug, Args)]
#[command(after_long_help = "\
Examples:
  # The snapshot before the newest
  snap forget latest~1
  # Two snapshots by id, then free their space
  snap forget 1a2b3c4d 5e6f7a8b && snap prune
  # A safety snapshot, once what it saved is no longer wanted
  snap snapshots --tag safety
  snap forget 9c8d7e6f")]
pub struct ForgetArgs {
    /// Snapshots: id prefix, latest, latest~N or YYYY-MM-DD
    #[arg(required = true, value_name = "SNAPSHOT")]
    pub snapshots: Vec<String>,
}

#[derive(Debug, Args)]
#[command(after_long_help = "\
Examples:
  # What a usual policy would remove, and why each other snapshot is kept
  snap prune --keep 3 --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --dry-run
  # Apply it
  snap prune --keep 3 --keep-daily 7 --keep-weekly 4 --keep-monthly 12
  # Keep 30 days back from each group's newest snapshot, and all tagged release
  snap prune --keep-within 30d --keep-tag release
  # Only free what `snap forget` and interrupted backups left behind
  snap prune
  # The same, also rewriting packs of which only a fifth is unused
  snap prune --repack-threshold 20")]
pub struct PruneArgs {
    /// Keep the newest N snapshots
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep: u32,
    /// Keep the newest snapshot of each of the last N hours
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_hourly: u32,
    /// Keep the newest snapshot of each of the last N days
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_daily: u32,
    /// Keep the newest snapshot of each of the last N ISO weeks
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_weekly: u32,
    /// Keep the newest snapshot of each of the last N months
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_monthly: u32,
    /// Keep the newest snapshot of each of the last N years
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_yearly: u32,
    /// Keep snapshots younger than this span before the newest one (30d, 2w, 6m, 1y)
    #[arg(long, value_name = "SPAN")]
    pub keep_within: Option<String>,
    /// Keep snapshots with this tag (repeatable)
    #[arg(long, value_name = "TAG")]
    pub keep_tag: Vec<String>,
    /// Show what would be removed, and why the rest is kept; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Repack packs whose unused share is at least this percentage
    #[arg(long, value_name = "PERCENT", default_value_t = 50, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub repack_threshold: u8,
}

pub fn forget(g: &Global, a: &ForgetArgs) -> Result<ExitCode> {
    let (repo, _) = super::context::open(g, LockMode::Shared)?;
    let ids: Vec<_> = repo.resolve_all(&a.snapshots)?.into_iter().map(|(id, _)| id).collect();
    repo.forget(&ids)?;
    if g.json {
        output::json(&serde_json::json!({ "forgotten": ids }))?;
    } else {
        for id in &ids {
            output::line(&format!("forgot snapshot {}", id.short()))?;
        }
        output::line("run `snap prune` to free their space")?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn prune(g: &Global, a: &PruneArgs) -> Result<ExitCode> {
    let policy = KeepPolicy {
        last: a.keep,
        hourly: a.keep_hourly,
        daily: a.keep_daily,
        weekly: a.keep_weekly,
        monthly: a.keep_monthly,
        yearly: a.keep_yearly,
        within: a.keep_within.as_deref().map(Span::parse).transpose()?,
        tags: a.keep_tag.clone(),
    };
    let mode = if a.dry_run { LockMode::Shared } else { LockMode::Exclusive };
    let (repo, _) = super::context::open(g, mode)?;
    let opts = PruneOptions { policy, dry_run: a.dry_run, repack_percent: a.repack_threshold };
    // Listed before pruning, so removed snapshots still have their times.
    let times: HashMap<_, _> = snap::ops::snapshots::list(&repo, &Default::default())?
        .snapshots
        .into_iter()
        .map(|s| (s.id, s.time))
        .collect();
    let report = snap::ops::prune::prune(&repo, &opts, &Bar::new(g))?;
    if g.json {
        output::json(&serde_json::json!({ "bytes_freed": report.bytes_freed(), "report": report }))?;
    } else {
        print(&report, &times)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print(r: &PruneReport, times: &HashMap<String, String>) -> Result<()> {
    for d in &r.decisions {
        let id = d.id.to_hex();
        let time = times.get(&id).map_or("", String::as_str);
        let verdict = if d.keep { "keep  " } else { "remove" };
        output::line(&format!("{verdict} {} {time}  {}", d.id.short(), d.reasons.join(", ")))?;
    }
    let verb = if r.dry_run { "would remove" } else { "removed" };
    let redundant = if r.packs_redundant > 0 {
        format!(" ({} of them copies of others)", r.packs_redundant)
    } else {
        String::new()
    };
    output::line(&format!(
        "{verb} {} snapshot(s); {} unused pack(s) deleted{redundant}, {} repacked into {}; {} {}",
        r.snapshots_removed,
        r.packs_deleted,
        r.packs_repacked,
        r.packs_written,
        output::bytes(r.bytes_freed()),
        if r.dry_run { "would be freed" } else { "freed" }
    ))
}
