//! `snap find` and `snap log`.

use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use snap::backend::LockMode;
use snap::ops::EntryInfo;
use snap::ops::find::{FindOptions, FindReport, LogReport, UnreadableDir, find, log};
use snap::repo::Unreadable;

use super::context::{EXIT_ERROR, Global};
use super::{output, progress::Bar};

#[derive(Debug, Args)]
#[command(after_long_help = "\
Patterns:
  *.txt              any entry named *.txt, at any depth (like `find -name`)
  /home/me/*/notes*  with a `/`: the whole path inside the snapshot; `*` and
                     `?` stay within one name, `**` spans directories
  app/**/*.rs        with a `/`, but not at the start: may match at any depth
  build/             a trailing `/` matches directories only
  Names that are not UTF-8 match as shown: caf\\xe9.txt (write the `\\` as `\\\\`).

Examples:
  # Which snapshots hold a Photoshop file, anywhere
  snap find '*.psd'
  # A whole path, regardless of case, in the two newest snapshots only
  snap find -i '/home/me/*/readme*' -s latest -s latest~1
  # Rust sources below any directory named app
  snap find 'app/**/*.rs'
  # Directories named node_modules, as JSON
  snap --json find 'node_modules/'")]
pub struct FindArgs {
    /// Glob matched against each entry's name, or against its whole path when it contains a `/`
    pub pattern: String,
    /// Search only this snapshot: id prefix, latest, latest~N or YYYY-MM-DD (repeatable)
    /// [default: all]
    #[arg(long = "snapshot", short = 's', value_name = "SNAPSHOT")]
    pub snapshots: Vec<String>,
    /// Match regardless of case
    #[arg(long, short = 'i')]
    pub ignore_case: bool,
}

#[derive(Debug, Args)]
#[command(after_long_help = "\
Examples:
  # A file in the current directory
  snap log Cargo.toml
  # A file by its absolute path, in another repository
  snap --repo /mnt/usb/snap log /etc/fstab
  # Then bring back one version, as the last line of the history suggests
  snap restore 1a2b3c4d --target /tmp/r --include /etc/fstab")]
pub struct LogArgs {
    /// The path: absolute, or relative to the current directory
    pub path: PathBuf,
}

pub fn run_find(g: &Global, a: &FindArgs) -> Result<ExitCode> {
    let (repo, _) = super::context::open(g, LockMode::Shared)?;
    let opts = FindOptions {
        pattern: a.pattern.clone(),
        ignore_case: a.ignore_case,
        snapshots: a.snapshots.clone(),
    };
    let report = find(&repo, &opts, &Bar::new(g))?;
    if g.json {
        output::json(&report)?;
    } else {
        print_find(&report)?;
    }
    warn_incomplete(&report.damaged_snapshots, &report.unreadable, "searched");
    Ok(exit(report.complete()))
}

fn print_find(r: &FindReport) -> Result<()> {
    for m in &r.matches {
        output::line(&format!(
            "{}  {}  {}  {}",
            m.snapshot.short_id,
            output::time(m.snapshot.unix_time),
            entry_columns(&m.entry),
            with_target(&m.path, &m.entry)
        ))?;
    }
    let noun = if r.matches.len() == 1 { "match" } else { "matches" };
    output::line(&format!(
        "{} {noun} in {} of {} snapshot(s)",
        r.matches.len(),
        r.snapshots_matched,
        r.snapshots_searched
    ))
}

pub fn run_log(g: &Global, a: &LogArgs) -> Result<ExitCode> {
    let path = absolute(&a.path)?;
    let (repo, _) = super::context::open(g, LockMode::Shared)?;
    let report = log(&repo, &path, &Bar::new(g))?;
    if report.versions == 0 {
        warn_incomplete(&report.damaged_snapshots, &report.unreadable, "looked at");
        bail!("{} is in none of the {} snapshot(s)", report.path, report.snapshots_searched);
    }
    if g.json {
        output::json(&report)?;
    } else {
        print_log(&report)?;
    }
    warn_incomplete(&report.damaged_snapshots, &report.unreadable, "looked at");
    Ok(exit(report.complete()))
}

fn print_log(r: &LogReport) -> Result<()> {
    for e in &r.history {
        let mut line = format!(
            "{}  {}  {:<9}",
            e.snapshot.short_id,
            output::time(e.snapshot.unix_time),
            e.change.as_str()
        );
        if let Some(entry) = &e.entry {
            line.push_str("  ");
            line.push_str(&entry_columns(entry));
            if let Some(target) = &entry.target {
                line.push_str(&format!("  -> {target}"));
            }
        }
        output::line(line.trim_end())?;
    }
    if let Some(cmd) = &r.restore_command {
        output::line(&format!("restore one version: {cmd}"))?;
    }
    Ok(())
}

/// Type, mode, size and mtime.
fn entry_columns(e: &EntryInfo) -> String {
    format!("{} {:04o} {:>12}  {}", e.kind, e.mode, e.size, output::time(e.mtime))
}

fn with_target(path: &str, e: &EntryInfo) -> String {
    match &e.target {
        Some(t) => format!("{path} -> {t}"),
        None => path.to_owned(),
    }
}

fn warn_incomplete(damaged: &[Unreadable], unreadable: &[UnreadableDir], verb: &str) {
    for d in damaged {
        output::warn(&format!("snapshot {} cannot be read and was not {verb}: {}", d.name, d.error));
    }
    for u in unreadable {
        output::warn(&format!(
            "snapshot {}: {} cannot be read and was not {verb}: {}",
            u.snapshot, u.path, u.error
        ));
    }
}

fn exit(complete: bool) -> ExitCode {
    if complete { ExitCode::SUCCESS } else { ExitCode::from(EXIT_ERROR) }
}

/// A path as snapshots hold it: relative paths are taken from the current
/// directory, and `.` and `..` are resolved by name.
fn absolute(path: &Path) -> Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    let mut out = std::env::current_dir().context("cannot find the current directory")?;
    for c in path.components() {
        match c {
            Component::Normal(name) => out.push(name),
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    Ok(out)
}
