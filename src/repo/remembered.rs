//! What this machine remembers, outside the repository, about repositories
//! it has opened: that one was encrypted. Someone with write access to a
//! repository could delete its key files and put an unencrypted config in
//! its place, so that the next backup writes plaintext; a repository once
//! opened encrypted here is refused when it later says it is not. The notes
//! are empty files in `$XDG_STATE_HOME/snap/encrypted/` (`~/.local/state/...`):
//! `<id>` for the config's id, and `at-<hash>` for the place (the BLAKE3 of
//! its canonical path or URL), so a config with a new id at the same place
//! is refused as well. A machine that never opened the repository has
//! none, which is the limit DESIGN.md 19.4 states.

use std::path::PathBuf;

use crate::error::{Error, Result};

fn notes(repo_id: &str, place: &str) -> Vec<PathBuf> {
    let Some(dir) = dirs::state_dir().map(|d| d.join("snap").join("encrypted")) else { return Vec::new() };
    let mut out = vec![dir.join(format!("at-{}", blake3::hash(place.as_bytes()).to_hex()))];
    // Config ids are checked to be hex when decoded; anything else never
    // becomes a file name.
    if crate::backend::is_object_id(repo_id) {
        out.push(dir.join(repo_id));
    }
    out
}

/// Notes that the repository is encrypted. Best effort: a machine that
/// cannot write its state directory only loses this extra check.
pub(super) fn note_encrypted(repo_id: &str, place: &str) {
    for path in notes(repo_id, place) {
        if path.exists() {
            continue;
        }
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = std::fs::File::create(&path);
    }
}

/// Refuses an unencrypted config for a repository noted as encrypted, by
/// its id or its place.
pub(super) fn refuse_downgrade(repo_id: &str, place: &str) -> Result<()> {
    match notes(repo_id, place).into_iter().find(|path| path.exists()) {
        Some(path) => Err(Error::corrupt(
            "config",
            format!(
                "it says the repository is unencrypted, but it was encrypted when this machine last \
                 opened it (noted in {}); the config and key files may have been replaced, so snap will \
                 not read or write it",
                path.display()
            ),
        )),
        None => Ok(()),
    }
}
