//! `snap key list|add|remove|passwd`: the passwords of an encrypted
//! repository. Every key file opens the same master key, so adding or
//! removing one never touches the data.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use snap::backend::LockMode;

use super::args::Global;
use super::{output, password};

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// List the keys (one per password); `*` marks the one that opened the repository
    List,
    /// Add a password
    Add(NewPassword),
    /// Remove a password by key id (not the one in use)
    Remove {
        /// Key id or a unique prefix of it
        id: String,
    },
    /// Change the password in use: add a key for the new one, then remove the old key
    Passwd(NewPassword),
}

#[derive(Debug, Args)]
pub struct NewPassword {
    /// Read the new password from the first line of this file instead of asking
    #[arg(long, value_name = "FILE")]
    pub new_password_file: Option<PathBuf>,
}

pub fn run(g: &Global, cmd: &KeyCommand) -> Result<ExitCode> {
    // Removing keys is exclusive, so two removals can never leave none.
    let mode = match cmd {
        KeyCommand::List | KeyCommand::Add(_) => LockMode::Shared,
        KeyCommand::Remove { .. } | KeyCommand::Passwd(_) => LockMode::Exclusive,
    };
    let (repo, _) = super::open(g, mode)?;
    match cmd {
        KeyCommand::List => {
            let keys = repo.list_keys()?;
            if g.json {
                output::json(&keys)?;
            }
            for k in keys.iter().filter(|_| !g.json) {
                let mark = if k.current { "*" } else { " " };
                output::line(&format!(
                    "{mark} {}  {}  {}@{}",
                    &k.id[..8],
                    k.created,
                    k.username,
                    k.hostname
                ))?;
            }
        }
        KeyCommand::Add(a) => {
            let new = password::new(a.new_password_file.as_deref())?;
            let id = repo.add_key(&new, &password::owner())?;
            report(g, "added", &id)?;
        }
        KeyCommand::Remove { id } => {
            let removed = repo.remove_key(id)?;
            report(g, "removed", &removed)?;
        }
        KeyCommand::Passwd(a) => {
            let new = password::new(a.new_password_file.as_deref())?;
            let id = repo.change_password(&new, &password::owner())?;
            report(g, "password changed; new key", &id)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn report(g: &Global, what: &str, id: &str) -> Result<()> {
    if g.json {
        output::json(&serde_json::json!({ "key": id }))
    } else {
        output::line(&format!("{what} {}", &id[..8]))
    }
}
