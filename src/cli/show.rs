//! `snap snapshots` and `snap ls`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use snap::Repository;
use snap::backend::LockMode;
use snap::format::snapshot::Snapshot;
use snap::ops::ls::{Listing, LsEntry, ls as list_entries, sha256_lines};
use snap::ops::snapshots::{SnapshotFilter, SnapshotInfo, calendar, list};

use super::context::Global;
use super::output;

#[derive(Debug, Args)]
#[command(after_long_help = "\
Examples:
  snap snapshots
  # Grouped by year, month and ISO week
  snap snapshots --tree
  # This host's snapshots of ~/projects or below it, tagged daily or weekly
  snap snapshots --host \"$(hostname)\" --path ~/projects --tag daily --tag weekly
  # The safety snapshots restore took of what it replaced
  snap snapshots --tag safety
  # Every snapshot's full id, for a script
  snap --json snapshots | jq -r '.[].id'")]
pub struct SnapshotsArgs {
    /// Group by year, month and ISO week
    #[arg(long)]
    pub tree: bool,
    /// Only snapshots with this tag (repeatable: any of them)
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Only snapshots made on this host (repeatable)
    #[arg(long = "host", value_name = "HOST")]
    pub hosts: Vec<String>,
    /// Only snapshots of this path or of paths below it (repeatable)
    #[arg(long = "path", value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Args)]
#[command(after_long_help = "\
Examples:
  # Everything in the newest snapshot
  snap ls latest
  # One directory, as it was one snapshot earlier
  snap ls latest~1 /home/me/projects/app
  # Check a restore against the checksums `snap backup --sha256` recorded
  snap ls latest --sha256 > ~/SHA256SUMS
  cd /tmp/r && sha256sum --quiet -c ~/SHA256SUMS
  # Only the paths, as JSON strings
  snap --json ls 1a2b3c4d /etc | jq '.entries[].path'

Exit status:
  0   success
  1   error
  2   usage error
  3   --sha256: some files have no recorded checksum (the others are listed)
  12  wrong or missing password")]
pub struct LsArgs {
    /// Snapshot: id prefix, latest, latest~N or YYYY-MM-DD
    pub snapshot: String,
    /// Only this path and what is below it
    pub path: Option<PathBuf>,
    /// Print `sha256sum -c` lines (paths relative, as restored under a target)
    /// for the files that have a recorded SHA-256 (`backup --sha256`)
    #[arg(long)]
    pub sha256: bool,
}

#[derive(Debug, Args)]
#[command(after_long_help = "\
Examples:
  # What the newest backup changed
  snap diff latest~1 latest
  # Only below one directory (the path goes after --)
  snap diff latest~1 latest -- /home/me/projects/app
  # A month of changes
  snap diff 2026-11-01 2026-12-01
  # Only the changed paths, from the JSON
  snap --json diff latest~1 latest | jq -r '.changes[].path'")]
pub struct DiffArgs {
    /// The older snapshot
    pub a: String,
    /// The newer snapshot
    pub b: String,
    /// Compare only this path (give it after `--`)
    #[arg(last = true, value_name = "PATH")]
    pub path: Option<PathBuf>,
}

pub fn snapshots(g: &Global, a: &SnapshotsArgs) -> Result<ExitCode> {
    let (repo, _) = super::context::open(g, LockMode::Shared)?;
    let filter = SnapshotFilter {
        tags: a.tags.clone(),
        hosts: a.hosts.clone(),
        paths: a.paths.iter().map(std::path::absolute).collect::<Result<_, _>>()?,
    };
    let listing = list(&repo, &filter)?;
    let (infos, damaged) = (&listing.snapshots, &listing.damaged);
    for d in damaged {
        output::warn(&format!("snapshot {} cannot be read: {}", d.name, d.error));
    }
    match (g.json, a.tree) {
        (true, true) => output::json(&calendar(infos))?,
        (true, false) => output::json(infos)?,
        (false, true) => print_calendar(infos)?,
        (false, false) => print_table(infos, &repo.config().encryption)?,
    }
    Ok(if damaged.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(super::context::EXIT_ERROR) })
}

fn row(s: &SnapshotInfo) -> String {
    let tags = if s.tags.is_empty() { String::new() } else { format!(" [{}]", s.tags.join(",")) };
    let git = match (s.extra.get("git.commit"), s.extra.get("git.dirty")) {
        (Some(commit), dirty) => {
            let mark = if dirty.is_some_and(|d| d == "true") { "+dirty" } else { "" };
            format!(" git {}{mark}", &commit[..commit.len().min(8)])
        }
        _ => String::new(),
    };
    format!(
        "{}  {}  {:<12}  {:>7} files  {:>10}  {}{tags}{git}",
        s.short_id,
        output::time(s.unix_time),
        s.hostname,
        s.summary.files,
        output::bytes(s.summary.bytes),
        s.paths.join(" ")
    )
}

fn print_table(infos: &[SnapshotInfo], encryption: &str) -> Result<()> {
    for s in infos {
        output::line(&row(s))?;
    }
    let protection = match encryption {
        "none" => "repository not encrypted".to_owned(),
        scheme => format!("repository encrypted ({scheme})"),
    };
    output::line(&format!("{} snapshot(s); {protection}", infos.len()))
}

fn print_calendar(infos: &[SnapshotInfo]) -> Result<()> {
    for year in calendar(infos) {
        output::line(&year.year.to_string())?;
        for month in &year.months {
            output::line(&format!("  {}", month.month))?;
            for week in &month.weeks {
                output::line(&format!("    {}", week.week))?;
                for s in &week.snapshots {
                    output::line(&format!("      {}", row(s)))?;
                }
            }
        }
    }
    Ok(())
}

pub fn ls(g: &Global, a: &LsArgs) -> Result<ExitCode> {
    let (repo, _) = super::context::open(g, LockMode::Shared)?;
    let (id, snap) = repo.resolve(&a.snapshot)?;
    if a.sha256 && !g.json {
        return checksums(&repo, &snap, a.path.as_deref());
    }
    let listing = list_entries(&repo, &snap, a.path.as_deref())?;
    let code = if listing.warnings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::context::EXIT_INCOMPLETE)
    };
    if g.json {
        let Listing { entries, warnings } = listing;
        output::json(
            &serde_json::json!({ "snapshot": id.to_hex(), "entries": entries, "warnings": warnings }),
        )?;
        return Ok(code);
    }
    for e in &listing.entries {
        output::line(&ls_line(e))?;
    }
    output::warnings(&listing.warnings);
    Ok(code)
}

/// `sha256sum -c` lines; exit code 3 when some files have no checksum.
fn checksums(repo: &Repository, snap: &Snapshot, path: Option<&Path>) -> Result<ExitCode> {
    let sums = sha256_lines(repo, snap, path)?;
    for line in &sums.lines {
        output::raw(line)?;
    }
    if sums.missing == 0 {
        return Ok(ExitCode::SUCCESS);
    }
    output::warn(&format!(
        "{} file(s) have no recorded SHA-256 (they were backed up without --sha256)",
        sums.missing
    ));
    Ok(ExitCode::from(super::context::EXIT_INCOMPLETE))
}

fn ls_line(listed: &LsEntry) -> String {
    let e = &listed.entry;
    let target = e.target.as_ref().map(|t| format!(" -> {t}")).unwrap_or_default();
    format!(
        "{} {:>5}:{:<5} {:>10} {} {}{target}",
        mode_string(e.kind, e.mode),
        e.uid,
        e.gid,
        e.size,
        output::time(e.mtime),
        listed.path
    )
}

/// `ls -l` style mode, with setuid/setgid/sticky shown as s/s/t.
fn mode_string(kind: char, mode: u32) -> String {
    let mut s = String::from(kind);
    let special = [(0o4000, 's'), (0o2000, 's'), (0o1000, 't')];
    for (i, who) in [(0o700, 6), (0o070, 3), (0o007, 0)].iter().enumerate() {
        let bits = (mode & who.0) >> who.1;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        let exec = bits & 1 != 0;
        let (flag, letter) = special[i];
        s.push(match (mode & flag != 0, exec) {
            (true, true) => letter,
            (true, false) => letter.to_ascii_uppercase(),
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    s
}

pub fn diff(g: &Global, a: &DiffArgs) -> Result<ExitCode> {
    let (repo, _) = super::context::open(g, LockMode::Shared)?;
    let (id_a, snap_a) = repo.resolve(&a.a)?;
    let (id_b, snap_b) = repo.resolve(&a.b)?;
    let report = snap::ops::diff::diff(&repo, snap_a.tree, snap_b.tree, a.path.as_deref())?;
    let code = if report.warnings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::context::EXIT_INCOMPLETE)
    };
    if g.json {
        output::json(&serde_json::json!({
            "a": id_a.to_hex(),
            "b": id_b.to_hex(),
            "changes": report.changes,
            "summary": report.summary,
            "warnings": report.warnings,
        }))?;
        return Ok(code);
    }
    for line in &report.changes {
        output::line(&format!("{}  {}", line.change.marker(), line.path))?;
    }
    let s = &report.summary;
    output::line(&format!(
        "{} added, {} removed, {} modified, {} type changed, {} metadata only; {} added, {} removed",
        s.added,
        s.removed,
        s.modified,
        s.type_changed,
        s.metadata,
        output::bytes(s.bytes_added),
        output::bytes(s.bytes_removed)
    ))?;
    output::warnings(&report.warnings);
    Ok(code)
}
