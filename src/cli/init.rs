//! `snap init`.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use snap::Repository;
use snap::repo::Protection;

use super::context::{Global, location};
use super::{output, password};

#[derive(Debug, Args)]
#[command(after_long_help = "\
Examples:
  # An unencrypted repository on a USB disk
  snap --repo /mnt/usb/snap init
  # An encrypted one; the password is asked for twice
  snap --repo /mnt/offsite init --encryption xchacha20-poly1305
  # The same from a script, with the password from a password manager
  export SNAP_PASSWORD_COMMAND='pass show backup/offsite'
  snap --repo /mnt/offsite init --encryption xchacha20-poly1305")]
pub struct InitArgs {
    /// Encrypt everything stored, with a password (from SNAP_PASSWORD,
    /// SNAP_PASSWORD_FILE, SNAP_PASSWORD_COMMAND, or asked twice)
    #[arg(long, value_enum, default_value = "none", value_name = "SCHEME")]
    pub encryption: EncryptionArg,
}

/// Encryption schemes `init` offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EncryptionArg {
    /// No encryption (format 1)
    None,
    /// XChaCha20-Poly1305 with Argon2id password keys, padded packs and keyed chunking (format 3)
    #[value(name = "xchacha20-poly1305", alias = "chacha20poly1305", alias = "chacha20-poly1305")]
    XChaCha20Poly1305,
}

pub fn run(g: &Global, a: &InitArgs) -> Result<ExitCode> {
    let loc = location(g)?;
    let backend = loc.at.backend()?;
    // Checked before asking for a password that would then be thrown away.
    if backend.exists()? {
        return Err(snap::Error::RepoExists(loc.at.to_string()).into());
    }
    let repo = match a.encryption {
        EncryptionArg::None => Repository::init(backend, Protection::None)?,
        EncryptionArg::XChaCha20Poly1305 => {
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
