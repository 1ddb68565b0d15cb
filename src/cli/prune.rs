//! `snap forget` and `snap prune`.

use std::collections::HashMap;
use std::process::ExitCode;

use anyhow::Result;
use snap::backend::LockMode;
use snap::ops::policy::{KeepPolicy, Span};
use snap::ops::prune::{PruneOptions, PruneReport};

use super::args::{ForgetArgs, Global, PruneArgs};
use super::{output, progress::Bar};

pub fn forget(g: &Global, a: &ForgetArgs) -> Result<ExitCode> {
    let (repo, _) = super::open(g, LockMode::Shared)?;
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
    let (repo, _) = super::open(g, mode)?;
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
