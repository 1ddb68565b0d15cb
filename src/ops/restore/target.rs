//! The restore target, reached only through directory descriptors: where
//! a planned entry goes ([`At`]), the target checked and opened, files and
//! nodes created without following anything, and the identities that tell
//! an entry this restore made from one put in its place since. Nothing here
//! knows the plan; the rest of restore decides what goes where.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::dirfd::{Dir, identity};
use crate::error::{Error, IoContext, Result};

/// Where a planned entry goes: its directory, and its path under the
/// target (whose last component is its name) to name it in messages.
#[derive(Clone)]
pub(super) struct At {
    pub(super) parent: Arc<Dir>,
    pub(super) path: PathBuf,
}

impl At {
    pub(super) fn name(&self) -> &OsStr {
        self.path.file_name().expect("planned paths end in a validated name")
    }

    pub(super) fn stat(&self) -> std::io::Result<rustix::fs::Stat> {
        self.parent.stat(self.name())
    }

    /// Removes whatever non-directory is here, so a new file, link or node
    /// can be created without following anything.
    pub(super) fn clear(&self) -> std::io::Result<()> {
        match self.parent.remove(self.name()) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

pub(super) fn target_full(path: &Path, error: &std::io::Error, whole: u64, left: u64) -> Error {
    Error::TargetFull { path: path.to_path_buf(), detail: error.to_string(), whole, left }
}

/// Whether an error says the target file system has no room (space,
/// inodes or quota): every later write would fail the same way.
pub(super) fn is_full(error: &std::io::Error) -> bool {
    [rustix::io::Errno::NOSPC, rustix::io::Errno::DQUOT]
        .iter()
        .any(|e| error.raw_os_error() == Some(e.raw_os_error()))
}

/// Checks the target before creating anything (a target inside the
/// repository is refused without leaving a trace there), then creates it
/// unless this is a dry run. Returns it resolved through symlinks, and
/// opened (not in a dry run of a target that does not exist yet).
pub(super) fn prepare_target(
    target: &Path,
    repo_dir: Option<&Path>,
    dry_run: bool,
) -> Result<(PathBuf, Arc<Dir>)> {
    let resolved = resolve_existing_prefix(target)?;
    if let Some(dir) = repo_dir {
        let repo = dir.canonicalize().at(dir)?;
        if resolved.starts_with(&repo) {
            return Err(Error::InvalidInput(format!(
                "cannot restore into {}: it lies inside the repository",
                target.display()
            )));
        }
    }
    if fs::metadata(&resolved).is_ok_and(|m| !m.is_dir()) {
        return Err(Error::InvalidInput(format!(
            "cannot restore into {}: it is not a directory",
            target.display()
        )));
    }
    if dry_run && !resolved.exists() {
        return Ok((resolved, Dir::root(None)));
    }
    if !dry_run {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(target).at(target)?;
    }
    let resolved = target.canonicalize().at(target)?;
    // Resolved already: a symlink found there now was put there since.
    let root = Dir::open_root(&resolved, false).at(&resolved)?;
    Ok((resolved, root))
}

/// `path` made absolute, with its longest existing prefix resolved through
/// symlinks and the rest appended as given.
pub(super) fn resolve_existing_prefix(path: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(path).at(path)?;
    let mut rest = Vec::new();
    let mut base = abs.as_path();
    loop {
        match base.canonicalize() {
            Ok(real) => return Ok(rest.iter().rev().fold(real, |p, c| p.join(c))),
            Err(_) => match (base.parent(), base.file_name()) {
                (Some(parent), Some(name)) => {
                    rest.push(name.to_owned());
                    base = parent;
                }
                _ => return Ok(abs),
            },
        }
    }
}

/// Whether `path` lies below one of `dirs`.
pub(super) fn below(dirs: &HashSet<PathBuf>, path: &Path) -> bool {
    !dirs.is_empty() && path.ancestors().skip(1).any(|a| dirs.contains(a))
}

pub(super) fn is_dir(st: &rustix::fs::Stat) -> bool {
    rustix::fs::FileType::from_raw_mode(st.st_mode as _) == rustix::fs::FileType::Directory
}

/// Device, inode and owner: what identifies an entry the restore made or
/// found, until it applies the entry's metadata. The owner is part of it
/// because a device and inode are used again as soon as a file is
/// removed: someone who can write into its directory may remove it and
/// make one of theirs that gets the same inode, but not one of this
/// process's (or of the owner it found).
pub(super) type Owned = (u64, u64, u32);

pub(super) fn owned_identity(st: &rustix::fs::Stat) -> Owned {
    let (dev, ino) = identity(st);
    (dev, ino, st.st_uid)
}

/// The error that stops a restore finding a non-directory where a directory belongs.
pub(super) fn not_a_directory(path: &Path) -> Error {
    Error::InvalidInput(format!("cannot restore: {} exists and is not a directory", path.display()))
}

/// Whether this process may set owners and make devices (asked once: a
/// restore would otherwise ask for every file).
pub(super) fn is_root() -> bool {
    static ROOT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ROOT.get_or_init(|| rustix::process::geteuid().is_root())
}

/// Creates a file of `len` bytes at `at`, in place of whatever is there
/// if `replace` (the plan found something there). Setting the length first
/// leaves never-written (all-zero) chunks as holes.
pub(super) fn create_sized(at: &At, len: u64, replace: bool) -> std::io::Result<fs::File> {
    use rustix::fs::OFlags;
    // Where the plan found nothing, nothing is removed: if something has
    // appeared since, creating fails instead of replacing it.
    if replace {
        at.clear()?;
    }
    let f = at.parent.open(at.name(), OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL, 0o600)?;
    // Made here, so taken back here if it cannot get its length: the
    // caller only removes what it knows it created.
    f.set_len(len).inspect_err(|_| drop(at.parent.remove(at.name())))?;
    Ok(f)
}

/// Records the identity of the node just made at `at`, if what is there
/// is owned by this process: someone who can write into its directory
/// cannot make a node of this process's, so one swapped in since is not
/// taken for it (and gets no metadata).
pub(super) fn record_made(at: &At, made: &OnceLock<Owned>) {
    if let Ok(st) = at.stat()
        && st.st_uid == rustix::process::geteuid().as_raw()
    {
        let _ = made.set(owned_identity(&st));
    }
}

pub(super) fn make_device(at: &At, kind: rustix::fs::FileType, rdev: u64) -> std::io::Result<()> {
    if !is_root() {
        return Err(std::io::Error::new(ErrorKind::PermissionDenied, "device files need root to restore"));
    }
    make_node(at, kind, rdev)
}

pub(super) fn make_node(at: &At, kind: rustix::fs::FileType, rdev: u64) -> std::io::Result<()> {
    at.clear()?;
    at.parent.mknod(at.name(), kind, rdev)
}
