//! The safety snapshot: before a restore replaces anything in its target,
//! the part of the target it writes into is backed up into the same
//! repository, so whatever the restore replaces can be got back.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::format::snapshot::Snapshot;
use crate::id::SnapshotId;
use crate::names;
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

/// What to back up: where the restore writes (the included path, or each
/// of the snapshot's paths, under the target) when that holds everything it
/// replaces, so that a restore into `/` backs up the restored paths, not
/// the machine; otherwise (a snapshot whose paths do not match its tree)
/// the whole target.
pub(super) fn roots<'a>(
    target: &Path,
    snap: &Snapshot,
    include: Option<&Path>,
    mut replaced: impl Iterator<Item = &'a Path>,
) -> Vec<PathBuf> {
    let split: Vec<Vec<Vec<u8>>> = match include {
        Some(path) => names::split_snapshot_path(path).into_iter().collect(),
        None => snap
            .paths
            .iter()
            .filter_map(|p| names::split_snapshot_path(Path::new(OsStr::from_bytes(p))).ok())
            .collect(),
    };
    let declared: HashSet<PathBuf> = split.iter().map(|components| names::join(target, components)).collect();
    if !replaced.all(|path| path.ancestors().any(|a| declared.contains(a))) {
        return vec![target.to_path_buf()];
    }
    declared.into_iter().filter(|p| holds_something(p)).collect()
}

/// Anything but nothing or an empty directory.
fn holds_something(path: &Path) -> bool {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::read_dir(path).is_ok_and(|mut entries| entries.next().is_some()),
        Ok(_) => true,
        Err(_) => false,
    }
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
