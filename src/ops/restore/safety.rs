//! The safety snapshot: before a restore replaces anything in its target,
//! what it replaces (and only that) is backed up into the same repository,
//! so whatever the restore replaces can be got back.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::id::SnapshotId;
use crate::ops::backup::{BackupOptions, backup};
use crate::ops::{Warning, WarningKind};
use crate::progress::Progress;
use crate::repo::Repository;

/// The tags every safety snapshot carries.
pub const SAFETY_TAGS: [&str; 2] = [crate::repo::SAFETY_TAG, "pre-restore"];

/// Asks for a safety snapshot, and says what to record in it.
#[derive(Clone, Debug)]
pub struct SafetySnapshot {
    /// The snapshot about to be restored, named in the safety snapshot's message.
    pub restoring: SnapshotId,
    /// Host name to record.
    pub hostname: String,
    /// User name to record.
    pub username: String,
}

/// What to back up: exactly what the restore replaces, and nothing more.
/// The snapshot is not trusted: one whose paths say `/`, restored into a
/// home directory over one `.bashrc`, would otherwise carry the whole
/// home directory into the repository it came from.
pub(super) fn roots<'a>(replaced: impl Iterator<Item = &'a Path>) -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = replaced.map(Path::to_path_buf).collect();
    roots.sort();
    roots.dedup();
    roots
}

/// Backs up `roots` into the repository, tagged [`SAFETY_TAGS`]. A safety
/// snapshot that could not read everything would not protect everything,
/// so then the restore stops before writing anything. Returns its id and
/// its other warnings.
pub(super) fn take(
    repo: &Repository,
    roots: Vec<PathBuf>,
    safety: &SafetySnapshot,
    repository_dir: Option<&Path>,
    progress: &dyn Progress,
) -> Result<(SnapshotId, Vec<Warning>)> {
    let opts = BackupOptions {
        paths: roots,
        tags: SAFETY_TAGS.map(String::from).to_vec(),
        message: Some(format!(
            "safety snapshot taken before restoring snapshot {} over it",
            safety.restoring
        )),
        repository_dir: repository_dir.map(Path::to_path_buf),
        hostname: safety.hostname.clone(),
        username: safety.username.clone(),
        ..Default::default()
    };
    let report = backup(repo, &opts, progress)?;
    // Without `skip_if_unchanged` a backup always writes its snapshot.
    let id =
        report.snapshot.ok_or_else(|| Error::InvalidInput("the safety snapshot was not written".into()))?;
    let unread: Vec<&Warning> = report.warnings.iter().filter(|w| w.kind == WarningKind::Failed).collect();
    if let Some(first) = unread.first() {
        return Err(Error::InvalidInput(format!(
            "cannot restore: the safety snapshot {} could not read {} path(s) of the target \
             (first {}: {}); nothing was restored (--no-safety-snapshot restores without it)",
            id.short(),
            unread.len(),
            first.path,
            first.message
        )));
    }
    let warnings = report
        .warnings
        .into_iter()
        .map(|w| Warning { message: format!("safety snapshot: {}", w.message), ..w })
        .collect();
    Ok((id, warnings))
}
