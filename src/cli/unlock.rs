//! `snap unlock`.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use super::context::{Global, location};
use super::output;

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// Remove every lock, not only stale ones
    #[arg(long)]
    pub all: bool,
}

pub fn run(g: &Global, a: &UnlockArgs) -> Result<ExitCode> {
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
