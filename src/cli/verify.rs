//! `snap verify`.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use snap::backend::LockMode;
use snap::ops::verify::{ReadData, VerifyReport, parse_subset, verify};

use super::context::{EXIT_DAMAGED, Global};
use super::{output, progress::Bar};

#[derive(Debug, Args)]
#[command(after_long_help = "\
Examples:
  # Structure only: snapshots, directories and index; no file data is read
  snap verify
  # Everything: every stored byte is read and checked
  snap verify --read-data
  # A random tenth of the data, say every night
  snap verify --read-data-subset 10%
  # A seventh on each day of the week, so that every pack is read once a week
  snap verify --read-data-subset \"$(date +%u)/7\"

Exit status:
  0   no problems found
  1   error, or cannot tell: something could not be read (an I/O or storage
      error, a newer format) and no damage was proved; such objects are
      listed as not checked
  2   usage error
  4   damage found: the damaged packs, chunks and snapshots, and the paths
      they hold, are listed on standard output
  12  wrong or missing password")]
pub struct VerifyArgs {
    /// Also read every pack, decompress and re-hash every chunk
    #[arg(long, conflicts_with = "read_data_subset")]
    pub read_data: bool,
    /// Read only a share of the packs: a percentage (10%) or a part (2/5)
    #[arg(long, value_name = "SUBSET")]
    pub read_data_subset: Option<String>,
}

pub fn run(g: &Global, a: &VerifyArgs) -> Result<ExitCode> {
    let read = match (&a.read_data_subset, a.read_data) {
        (Some(subset), _) => parse_subset(subset)?,
        (None, true) => ReadData::All,
        (None, false) => ReadData::None,
    };
    let (repo, _) = super::context::open(g, LockMode::Shared)?;
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
        return Ok(ExitCode::from(super::context::EXIT_ERROR));
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
