//! The binary's side: where the repository is, how results are shown, and
//! the exit code. Only this module prints, reads the environment or exits.

pub mod args;
mod backup;
mod copy;
mod dump;
mod find;
mod key;
pub mod output;
mod password;
mod progress;
mod prune;
mod restore;
mod show;
mod stats;
mod verify;
mod watch;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use snap::Repository;
use snap::backend::LockMode;
use snap::repo::Protection;

use args::{Cli, Command, RepairCommand};

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

/// Runs the command; `Ok` carries the exit code.
pub fn run(cli: &Cli) -> Result<ExitCode> {
    let g = &cli.global;
    match &cli.command {
        Command::Init(a) => init(g, a),
        Command::Completions { shell } => completions(*shell),
        Command::Backup(a) => backup::run(g, a),
        Command::Snapshots(a) => show::snapshots(g, a),
        Command::Ls(a) => show::ls(g, a),
        Command::Diff(a) => show::diff(g, a),
        Command::Find(a) => find::run_find(g, a),
        Command::Log(a) => find::run_log(g, a),
        Command::Restore(a) => restore::run(g, a),
        Command::Dump(a) => dump::run(g, a),
        Command::Copy(a) => copy::run(g, a),
        Command::Watch(a) => watch::run(g, a),
        Command::Verify(a) => verify::run(g, a),
        Command::Forget(a) => prune::forget(g, a),
        Command::Prune(a) => prune::prune(g, a),
        Command::Stats(a) => stats::run_stats(g, a),
        Command::Status(a) => stats::run_status(g, a),
        Command::Repair(RepairCommand::Index) => repair_index(g),
        Command::Repair(RepairCommand::Snapshots(a)) => verify::repair_snapshots(g, a),
        Command::Repair(RepairCommand::Packs(a)) => verify::repair_packs(g, a),
        Command::Key(k) => key::run(g, k),
        Command::Unlock(a) => unlock(g, a),
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

/// Variables that hold passwords themselves: never passed on.
const SECRET_VARS: &[&str] = &["SNAP_PASSWORD", "SNAP_TO_PASSWORD"];

/// A program snap starts (git, a password command): everything of snap's
/// environment but the passwords, which it has no business seeing.
fn child_command(program: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new(program);
    for var in SECRET_VARS {
        cmd.env_remove(var);
    }
    cmd
}

/// This machine's name, as recorded in snapshots and key files.
fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// The user's name, as recorded in snapshots and key files.
fn username() -> String {
    std::env::var("USER").unwrap_or_default()
}

/// Where the repository is, and whether it is the implicit default.
struct Location {
    at: snap::backend::Location,
    is_default: bool,
}

fn location(g: &args::Global) -> Result<Location> {
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
    fn dir(&self) -> Option<PathBuf> {
        self.at.local_path().map(Path::to_path_buf)
    }
}

/// Opens the repository and reports what reconciling its index found;
/// returns its directory too when it is local.
fn open(g: &args::Global, mode: LockMode) -> Result<(Repository, Option<PathBuf>)> {
    let loc = location(g)?;
    let repo = Repository::open_with(loc.at.backend()?, mode, &password::current)?;
    report_sync(&repo);
    Ok((repo, loc.dir()))
}

fn report_sync(repo: &Repository) {
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

fn init(g: &args::Global, a: &args::InitArgs) -> Result<ExitCode> {
    let loc = location(g)?;
    let backend = loc.at.backend()?;
    // Checked before asking for a password that would then be thrown away.
    if backend.exists()? {
        return Err(snap::Error::RepoExists(loc.at.to_string()).into());
    }
    let repo = match a.encryption {
        args::EncryptionArg::None => Repository::init(backend, Protection::None)?,
        args::EncryptionArg::XChaCha20Poly1305 => {
            let password = password::for_init()?;
            Repository::init(backend, Protection::Password(&password, &password::owner()))?
        }
    };
    let shown = loc.at.to_string();
    let encryption = &repo.config().encryption;
    if g.json {
        output::json(
            &serde_json::json!({ "repository": shown, "id": repo.config().id, "encryption": encryption }),
        )?;
    } else {
        output::line(&format!(
            "created snap repository {} at {shown} (encryption: {encryption})",
            &repo.config().id[..8]
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn completions(shell: clap_complete::Shell) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    clap_complete::generate(shell, &mut <Cli as clap::CommandFactory>::command(), "snap", &mut out);
    Ok(ExitCode::SUCCESS)
}

fn unlock(g: &args::Global, a: &args::UnlockArgs) -> Result<ExitCode> {
    let backend = location(g)?.at.backend()?;
    if !backend.exists()? {
        return Err(snap::Error::RepoNotFound(backend.location()).into());
    }
    let which = if a.all { snap::backend::Unlock::All } else { snap::backend::Unlock::Stale };
    let removed = backend.unlock(which)?;
    if g.json {
        output::json(&serde_json::json!({ "removed": removed }))?;
    } else if removed.is_empty() {
        output::line("no stale locks")?;
    } else {
        removed.iter().try_for_each(|line| output::line(line))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn repair_index(g: &args::Global) -> Result<ExitCode> {
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
