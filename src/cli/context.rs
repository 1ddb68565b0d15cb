//! What every command shares, importing no command: the options every
//! command takes, the repository they name (where it is, opening it, what
//! reconciling its index found) and the exit codes.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use snap::Repository;
use snap::backend::LockMode;

use super::{output, password};

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// Repository: a directory or s3://BUCKET/PREFIX [default: $XDG_DATA_HOME/snap or
    /// ~/.local/share/snap]
    #[arg(long, global = true, env = "SNAP_REPO", value_name = "PATH|URL")]
    pub repo: Option<PathBuf>,
    /// Print one JSON document on stdout instead of text
    #[arg(long, global = true)]
    pub json: bool,
    /// Never draw a progress bar
    #[arg(long, global = true)]
    pub no_progress: bool,
}

/// Exit code of any error.
pub const EXIT_ERROR: u8 = 1;
/// Exit code when a backup or restore finished but left something out.
pub const EXIT_INCOMPLETE: u8 = 3;
/// Exit code when `verify` found damage.
pub const EXIT_DAMAGED: u8 = 4;

/// Exit code of a wrong or missing password (restic's number for the same).
pub const EXIT_PASSWORD: u8 = 12;

/// The exit code for an error that ended a command.
pub fn exit_code_of(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<snap::Error>() {
        Some(snap::Error::WrongPassword | snap::Error::PasswordRequired(_)) => EXIT_PASSWORD,
        _ => EXIT_ERROR,
    }
}

/// Whether an error is only a closed stdout (`snap ls | head`).
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .is_some_and(|j| j.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe))
    })
}

/// Where the repository is, and whether it is the implicit default.
pub struct Location {
    pub at: snap::backend::Location,
    pub is_default: bool,
}

pub fn location(g: &Global) -> Result<Location> {
    if let Some(repo) = &g.repo {
        return Ok(Location { at: snap::backend::Location::parse(repo.as_os_str())?, is_default: false });
    }
    let data = dirs::data_dir()
        .context("cannot find a data directory for the default repository; use --repo or SNAP_REPO")?;
    Ok(Location { at: snap::backend::Location::Local(data.join("snap")), is_default: true })
}

impl Location {
    /// The directory of a local repository, which backups and restores
    /// must keep out of.
    pub fn dir(&self) -> Option<PathBuf> {
        self.at.local_path().map(Path::to_path_buf)
    }
}

/// Opens the repository and reports what reconciling its index found;
/// returns its directory too when it is local.
pub fn open(g: &Global, mode: LockMode) -> Result<(Repository, Option<PathBuf>)> {
    let loc = location(g)?;
    let repo = Repository::open_with(loc.at.backend()?, mode, &password::current)?;
    report_sync(&repo);
    Ok((repo, loc.dir()))
}

pub fn report_sync(repo: &Repository) {
    let sync = repo.sync_report();
    for pack in &sync.missing {
        output::warn(&format!(
            "pack {pack} is missing or truncated; its data will be stored again by the next backup \
             (`snap verify` shows what it affects)"
        ));
    }
    for u in &sync.unreadable {
        output::warn(&format!("pack {} is unreadable: {}", u.name, u.error));
    }
}
