//! The `snap` command: parses arguments, runs one command through the
//! library, and turns any error into one line on stderr and an exit code.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::args::Cli::parse();
    // Repository files (and SQLite's -wal/-shm) must be private to their owner.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    match cli::run(&args) {
        Ok(code) => code,
        Err(e) if cli::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("snap: {e:#}");
            ExitCode::from(cli::exit_code_of(&e))
        }
    }
}
