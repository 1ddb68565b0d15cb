//! `snap key list|add|remove|passwd`: the passwords of an encrypted
//! repository. Every key file opens the same master key, so adding or
//! removing one never touches the data.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use snap::backend::LockMode;

use super::context::Global;
use super::{output, password};

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// List the keys (one per password); `*` marks the one that opened the repository
    ///
    /// Lists every key file, oldest first: the first 8 digits of its id, when it was made, and
    /// the user and host that made it. `*` marks the key the given password opened. A key file
    /// that cannot be read is listed with what is wrong with it. Takes the shared lock.
    #[command(after_long_help = "\
Examples:
  snap --repo /mnt/offsite key list
  # With the password from a file instead of a prompt
  SNAP_PASSWORD_FILE=~/.offsite-pw snap --repo /mnt/offsite key list
  # Full key ids, for a script
  snap --repo /mnt/offsite --json key list | jq -r '.[].id'")]
    List,
    /// Add a password
    ///
    /// Writes a key file for a new password, which then opens the repository as well as the
    /// ones it already had. The repository is opened with one of those (SNAP_PASSWORD,
    /// SNAP_PASSWORD_FILE, SNAP_PASSWORD_COMMAND or a prompt); the new password is the first
    /// line of --new-password-file, or is asked for twice. Prints the new key's id. Takes the
    /// shared lock.
    #[command(after_long_help = "\
Examples:
  # Asked for on the terminal: the current password, then the new one twice
  snap --repo /mnt/offsite key add
  # From a script: the current password from a command, the new one from a file
  export SNAP_REPO=/mnt/offsite SNAP_PASSWORD_COMMAND='pass show backup/offsite'
  snap key add --new-password-file ~/new-pw")]
    Add(NewPassword),
    /// Remove a password by key id (not the one in use)
    ///
    /// Deletes the key file whose id starts with ID (see `snap key list`): its password no
    /// longer opens the repository. The key the given password opened cannot be removed, so
    /// the last key never can be; to remove that one, open the repository with another
    /// password. Takes the exclusive lock, so that two removals at once cannot leave no key.
    #[command(after_long_help = "\
Examples:
  # Find the key's id, then remove it (giving another key's password)
  snap --repo /mnt/offsite key list
  snap --repo /mnt/offsite key remove 3f2a9c01")]
    Remove {
        /// Key id or a unique prefix of it
        id: String,
    },
    /// Change the password in use: add a key for the new one, then remove the old key
    ///
    /// Writes a key file for the new password, then deletes the key file the current password
    /// opened; other passwords keep working. An interruption in between leaves both keys,
    /// never none. The new password is the first line of --new-password-file, or is asked for
    /// twice. Takes the exclusive lock.
    #[command(after_long_help = "\
Examples:
  # Asked for on the terminal: the current password, then the new one twice
  snap --repo /mnt/offsite key passwd
  # The new password from a file, removed afterwards
  snap key passwd --new-password-file ~/new-pw && rm ~/new-pw")]
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
    let (repo, _) = super::context::open(g, mode)?;
    // Before asking for a new password that could not be used.
    repo.ensure_encrypted()?;
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
