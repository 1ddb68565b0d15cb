//! `snap copy --to REPO [SNAPSHOT...]`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use snap::Repository;
use snap::backend::LockMode;
use snap::ops::copy::{CopyReport, copy};

use super::context::Global;
use super::{output, password, progress::Bar};

#[derive(Debug, Args)]
#[command(after_long_help = "\
Examples:
  # Mirror every snapshot onto a USB disk (once made with `init`)
  snap copy --to /mnt/usb/snap
  # Only the newest snapshot and the one of 1 December
  snap copy --to /mnt/usb/snap latest 2026-12-01
  # From the default repository into an encrypted one
  SNAP_TO_PASSWORD_FILE=~/.offsite-pw snap copy --to /mnt/offsite
  # And back, from the encrypted one into the USB disk's repository
  SNAP_PASSWORD_FILE=~/.offsite-pw \\
    snap --repo /mnt/offsite copy --to /mnt/usb/snap")]
pub struct CopyArgs {
    /// Destination repository directory
    #[arg(long, value_name = "REPO")]
    pub to: PathBuf,
    /// Snapshots to copy (id prefix, latest, latest~N, YYYY-MM-DD) [default: all]
    #[arg(value_name = "SNAPSHOT")]
    pub snapshots: Vec<String>,
}

pub fn run(g: &Global, a: &CopyArgs) -> Result<ExitCode> {
    let (src, _) = super::context::open(g, LockMode::Shared)?;
    let wanted: Vec<_> = src.resolve_all(&a.snapshots)?.into_iter().map(|(id, _)| id).collect();
    let to = snap::backend::Location::parse(a.to.as_os_str())?;
    let dst = Repository::open_with(to.backend()?, LockMode::Shared, &password::destination)
        .with_context(|| format!("destination {to}"))?;
    let report = copy(&src, &dst, &wanted, &Bar::new(g))?;
    if g.json {
        output::json(&report)?;
    } else {
        print(&report)?;
    }
    for n in &report.not_copied {
        output::warn(&format!("snapshot {} not copied: {}", n.source.short(), n.error));
    }
    Ok(if report.not_copied.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::context::EXIT_INCOMPLETE)
    })
}

fn print(r: &CopyReport) -> Result<()> {
    for c in &r.copied {
        output::line(&format!("copied {} as {}", c.source.short(), c.target.short()))?;
    }
    for c in &r.already_there {
        output::line(&format!("{} is already there as {}", c.source.short(), c.target.short()))?;
    }
    let how = if r.rechunked { ", files re-chunked for the destination" } else { "" };
    output::line(&format!(
        "{} snapshot(s) copied, {} already there; {} new blob(s), {} ({} stored) in {} pack(s){how}",
        r.copied.len(),
        r.already_there.len(),
        r.new_blobs,
        output::bytes(r.new_bytes),
        output::bytes(r.new_stored_bytes),
        r.packs_written
    ))
}
