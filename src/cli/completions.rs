//! `snap completions SHELL`. The script is made from the parser itself, so
//! this handler, alone, uses `args`.

use std::process::ExitCode;

use anyhow::Result;

use super::args::Cli;

pub fn run(shell: clap_complete::Shell) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    clap_complete::generate(shell, &mut <Cli as clap::CommandFactory>::command(), "snap", &mut out);
    Ok(ExitCode::SUCCESS)
}
