//! The binary's side: where the repository is, how results are shown, and
//! the exit code. Only this module prints, reads the environment or exits.
//!
//! One shape: `args` holds the parser and the `Command` enum; each command's
//! options sit in its handler's file; `context`, `env`, `output`, `password`
//! and `progress` are leaves that import no command; this file only
//! dispatches.

pub mod args;
mod backup;
mod completions;
pub mod context;
mod copy;
mod dump;
mod env;
mod find;
mod init;
mod key;
pub mod output;
mod password;
mod progress;
mod prune;
mod repair;
mod restore;
mod show;
mod stats;
mod unlock;
mod verify;
mod watch;

use std::process::ExitCode;

use anyhow::Result;

use args::{Cli, Command, RepairCommand};

/// Runs the command; `Ok` carries the exit code.
pub fn run(cli: &Cli) -> Result<ExitCode> {
    let g = &cli.global;
    match &cli.command {
        Command::Init(a) => init::run(g, a),
        Command::Completions { shell } => completions::run(*shell),
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
        Command::Repair(RepairCommand::Index) => repair::repair_index(g),
        Command::Repair(RepairCommand::Snapshots(a)) => repair::repair_snapshots(g, a),
        Command::Repair(RepairCommand::Packs(a)) => repair::repair_packs(g, a),
        Command::Key(k) => key::run(g, k),
        Command::Unlock(a) => unlock::run(g, a),
    }
}
