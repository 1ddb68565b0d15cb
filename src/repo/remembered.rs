//! What this machine remembers, outside the repository, about repositories
//! it has opened: that one was encrypted. Someone with write access to a
//! repository could delete its key files and put an unencrypted config with
//! the same id in its place, so that the next backup writes plaintext; a
//! repository once opened encrypted here is refused when it later says it is
//! not. The note is an empty file `$XDG_STATE_HOME/snap/encrypted/<id>`
//! (`~/.local/state/...`); a machine that never opened the repository has
//! none, which is the limit DESIGN.md 19.4 states.

use std::path::PathBuf;

use crate::error::{Error, Result};

fn note(repo_id: &str) -> Option<PathBuf> {
    // Config ids are checked to be hex when decoded; anything else never
    // becomes a file name.
    crate::backend::is_object_id(repo_id)
        .then(|| dirs::state_dir().map(|d| d.join("snap").join("encrypted").join(repo_id)))?
}

/// Notes that the repository is encrypted. Best effort: a machine that
/// cannot write its state directory only loses this extra check.
pub(super) fn note_encrypted(repo_id: &str) {
    let Some(path) = note(repo_id) else { return };
    if path.exists() {
        return;
    }
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::File::create(&path);
}

/// Refuses an unencrypted config for a repository noted as encrypted.
pub(super) fn refuse_downgrade(repo_id: &str) -> Result<()> {
    match note(repo_id) {
        Some(path) if path.exists() => Err(Error::corrupt(
            "config",
            format!(
                "it says the repository is unencrypted, but it was encrypted when this machine last \
                 opened it (noted in {}); the config and key files may have been replaced, so snap will \
                 not read or write it",
                path.display()
            ),
        )),
        _ => Ok(()),
    }
}
