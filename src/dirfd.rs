//! Directories reached through descriptors. Backup and restore reach every
//! entry relative to its parent directory's open descriptor, never through
//! a full path, for two reasons: a path longer than `PATH_MAX` (4,096
//! bytes) cannot be named in one system call but can be reached one step at
//! a time, and a directory swapped for a symlink while a restore runs must
//! not redirect it. Each step down is `openat(O_DIRECTORY | O_NOFOLLOW)`,
//! so a symlink on the way is refused, never followed; and the first open
//! of a directory records its identity (device and inode), so finding
//! another directory there on a later open is refused too.
//!
//! A tree of any size may be reached this way with a bounded number of
//! descriptors: the most recently used are kept (at most [`KEPT_OPEN`], and
//! a quarter of the process's descriptor limit), a directory
//! whose descriptor was dropped is opened again from its nearest ancestor
//! that is still open, and the root is held for the whole run. Least
//! recently *used*, not opened: a walk's ancestors are used for every
//! directory opened below them, so they stay open while it is there.

use std::ffi::{OsStr, OsString};
use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rustix::fs::{AtFlags, Mode, OFlags};

/// Most descriptors kept open besides those in use: enough for the
/// directories a parallel walk or restore is working in at once, far below
/// the usual limit of 1,024 per process.
pub const KEPT_OPEN: usize = 128;

/// How many descriptors are kept: [`KEPT_OPEN`], or a quarter of a lower
/// limit (the rest is for files, packs and the index). Asked once.
fn kept_open() -> NonZeroUsize {
    static KEPT: OnceLock<NonZeroUsize> = OnceLock::new();
    *KEPT.get_or_init(|| {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
        let quarter = limit.map_or(KEPT_OPEN, |l| usize::try_from(l / 4).unwrap_or(KEPT_OPEN));
        NonZeroUsize::new(quarter.clamp(4, KEPT_OPEN)).expect("at least 4")
    })
}

/// A directory, reached from its parent by name.
#[derive(Debug)]
pub struct Dir {
    parent: Option<Arc<Dir>>,
    name: OsString,
    /// The root's descriptor, held for the whole run (`None`: the root
    /// does not exist, so nothing below it does either).
    root: Option<Arc<OwnedFd>>,
    /// This directory's key among the kept descriptors (unique for the
    /// process's life, unlike an address).
    key: u64,
    /// Device and inode, from the first open (or from the `lstat` that
    /// found it): a later open finding another directory is refused.
    identity: OnceLock<(u64, u64)>,
    kept: Arc<Kept>,
}

/// The most recently used descriptors of one tree, by directory key.
#[derive(Debug)]
struct Kept(Mutex<lru::LruCache<u64, Arc<OwnedFd>>>);

impl Default for Kept {
    fn default() -> Self {
        Kept(Mutex::new(lru::LruCache::new(kept_open())))
    }
}

impl Kept {
    fn lock(&self) -> std::sync::MutexGuard<'_, lru::LruCache<u64, Arc<OwnedFd>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `open`, which opens a descriptor. Out of descriptors (others
    /// are open too), the kept ones are let go (those in use stay open)
    /// and it is tried once more: they are only kept to save opens.
    /// Nothing is created before the kernel finds a free descriptor, so
    /// trying an `O_CREAT | O_EXCL` open again is safe.
    fn retrying<T>(&self, open: impl Fn() -> rustix::io::Result<T>) -> rustix::io::Result<T> {
        match open() {
            Err(rustix::io::Errno::MFILE) => {
                self.lock().clear();
                open()
            }
            opened => opened,
        }
    }
}

fn next_key() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Dir {
    /// The root of a tree, from its open descriptor (`None`: it does not
    /// exist, and every operation below it finds nothing).
    pub fn root(fd: Option<OwnedFd>) -> Arc<Dir> {
        Arc::new(Dir {
            parent: None,
            name: OsString::new(),
            root: fd.map(Arc::new),
            key: next_key(),
            identity: OnceLock::new(),
            kept: Arc::default(),
        })
    }

    /// Opens the directory at `path` as a root. A symlink as its last
    /// component is followed only when `follow` says so.
    pub fn open_root(path: &Path, follow: bool) -> io::Result<Arc<Dir>> {
        let nofollow = if follow { OFlags::empty() } else { OFlags::NOFOLLOW };
        let fd = rustix::fs::open(path, dir_flags() | nofollow, Mode::empty())?;
        Ok(Dir::root(Some(fd)))
    }

    /// The directory `name` inside this one (not opened yet). `identity`,
    /// when known from an `lstat`, is what opening it must find.
    pub fn child(self: &Arc<Self>, name: &OsStr, identity: Option<(u64, u64)>) -> Arc<Dir> {
        Arc::new(Dir {
            parent: Some(self.clone()),
            name: name.to_owned(),
            root: None,
            key: next_key(),
            identity: identity.map(OnceLock::from).unwrap_or_default(),
            kept: self.kept.clone(),
        })
    }

    /// The directory's descriptor, opened (with its ancestors, as far as
    /// needed) if it is not open. Iterative, so depth costs no stack.
    pub fn fd(self: &Arc<Self>) -> io::Result<Arc<OwnedFd>> {
        let mut to_open = Vec::new();
        let mut at = self;
        let mut base = loop {
            if let Some(fd) = at.held() {
                break fd;
            }
            match &at.parent {
                Some(parent) => {
                    to_open.push(at);
                    at = parent;
                }
                None => return Err(io::ErrorKind::NotFound.into()),
            }
        };
        for dir in to_open.into_iter().rev() {
            base = dir.open_in(base.as_fd())?;
        }
        Ok(base)
    }

    fn held(&self) -> Option<Arc<OwnedFd>> {
        self.root.clone().or_else(|| self.kept.lock().get(&self.key).cloned())
    }

    fn open_in(&self, parent: BorrowedFd) -> io::Result<Arc<OwnedFd>> {
        let fd = self.open_fd(parent)?;
        let st = rustix::fs::fstat(&fd)?;
        self.keep(fd, &st)
    }

    /// Opens this directory in `parent`, refusing whatever is not a directory.
    fn open_fd(&self, parent: BorrowedFd) -> io::Result<OwnedFd> {
        let open = || rustix::fs::openat(parent, &self.name, dir_flags() | OFlags::NOFOLLOW, Mode::empty());
        self.kept.retrying(open).map_err(|e| match e {
            rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => replaced("not a directory any more"),
            e => e.into(),
        })
    }

    /// Keeps `fd` (whose `fstat` is `st`) as this directory's descriptor
    /// if it is this directory: the first one found, or recorded when made.
    fn keep(&self, fd: OwnedFd, st: &rustix::fs::Stat) -> io::Result<Arc<OwnedFd>> {
        let found = identity(st);
        if *self.identity.get_or_init(|| found) != found {
            return Err(replaced("another directory now"));
        }
        let fd = Arc::new(fd);
        self.kept.lock().put(self.key, fd.clone());
        Ok(fd)
    }

    /// Whether `found`, what its name in its parent leads to now, is still
    /// this directory (the one its first open found): a directory moved
    /// away while open keeps receiving what is written through its
    /// descriptor, wherever it now is.
    pub fn is_still_at(&self, found: &rustix::fs::Stat) -> bool {
        self.identity.get().is_none_or(|id| *id == identity(found))
    }

    /// This directory's name in its parent (empty for the root).
    pub fn name(&self) -> &OsStr {
        &self.name
    }

    /// `lstat` of the entry `name`.
    pub fn stat(self: &Arc<Self>, name: &OsStr) -> io::Result<rustix::fs::Stat> {
        Ok(rustix::fs::statat(self.fd()?.as_fd(), name, AtFlags::SYMLINK_NOFOLLOW)?)
    }

    /// Opens the entry `name` with `flags` (and mode, when creating); a
    /// symlink there is never followed.
    pub fn open(self: &Arc<Self>, name: &OsStr, flags: OFlags, mode: u32) -> io::Result<std::fs::File> {
        let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let dir = self.fd()?;
        let fd =
            self.kept.retrying(|| rustix::fs::openat(dir.as_fd(), name, flags, Mode::from_raw_mode(mode)))?;
        Ok(fd.into())
    }

    /// A descriptor of the entry `name` itself, whatever it is (`O_PATH`:
    /// nothing is opened for reading, a fifo does not block, a device is
    /// not touched, a symlink is the symlink).
    pub fn open_path(self: &Arc<Self>, name: &OsStr) -> io::Result<OwnedFd> {
        let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let dir = self.fd()?;
        Ok(self.kept.retrying(|| rustix::fs::openat(dir.as_fd(), name, flags, Mode::empty()))?)
    }

    /// The names in this directory, sorted by their bytes (`.` and `..` left out).
    pub fn list(self: &Arc<Self>) -> io::Result<Vec<OsString>> {
        let mut names = self.names_in(self.fd()?.as_fd())?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        Ok(names)
    }

    /// The names in the directory open as `fd`, as they come.
    fn names_in(&self, fd: BorrowedFd) -> io::Result<Vec<OsString>> {
        let mut dir = self.kept.retrying(|| rustix::fs::Dir::read_from(fd))?;
        let mut names = Vec::new();
        while let Some(entry) = dir.read() {
            let name = entry?.file_name().to_bytes().to_vec();
            if name != b"." && name != b".." {
                names.push(OsString::from(OsStr::from_bytes(&name)));
            }
        }
        Ok(names)
    }

    /// Creates the directory `name`.
    pub fn mkdir(self: &Arc<Self>, name: &OsStr, mode: u32) -> io::Result<()> {
        Ok(rustix::fs::mkdirat(self.fd()?.as_fd(), name, Mode::from_raw_mode(mode))?)
    }

    /// Creates this directory in its parent and records the identity of
    /// what it made, so that every later open must find that very
    /// directory. Recorded at its first open instead, it would leave whoever
    /// can write into the parent the time until then to put a directory of
    /// theirs in its place, which would then be taken for it (filled, and
    /// given the snapshot's owner and mode). Even right after `mkdirat`,
    /// what is there is only taken for the one made if it is an empty
    /// directory of this process's user: they can move one there, not make one.
    pub fn make(self: &Arc<Self>, mode: u32) -> io::Result<()> {
        // The root is opened, never made.
        let Some(parent) = &self.parent else { return Err(io::ErrorKind::AlreadyExists.into()) };
        parent.mkdir(&self.name, mode)?;
        let fd = self.open_fd(parent.fd()?.as_fd())?;
        let st = rustix::fs::fstat(&fd)?;
        if st.st_uid != rustix::process::geteuid().as_raw() || !self.names_in(fd.as_fd())?.is_empty() {
            return Err(io::Error::other("replaced by another directory right after it was made"));
        }
        self.keep(fd, &st).map(drop)
    }

    /// Removes the non-directory `name` (a symlink is removed, not followed).
    pub fn remove(self: &Arc<Self>, name: &OsStr) -> io::Result<()> {
        Ok(rustix::fs::unlinkat(self.fd()?.as_fd(), name, AtFlags::empty())?)
    }

    /// Creates the symlink `name` pointing at `target`.
    pub fn symlink(self: &Arc<Self>, target: &[u8], name: &OsStr) -> io::Result<()> {
        Ok(rustix::fs::symlinkat(OsStr::from_bytes(target), self.fd()?.as_fd(), name)?)
    }

    /// Makes `name` another name of `from`'s entry `from_name` (a symlink
    /// there is linked itself, not followed).
    pub fn hard_link(self: &Arc<Self>, name: &OsStr, from: &Arc<Dir>, from_name: &OsStr) -> io::Result<()> {
        let (from_fd, fd) = (from.fd()?, self.fd()?);
        Ok(rustix::fs::linkat(from_fd.as_fd(), from_name, fd.as_fd(), name, AtFlags::empty())?)
    }

    /// Makes `name` another name of the file open as `fd` (an `O_PATH`
    /// descriptor will do): the very file, whatever its old name leads to now.
    pub fn hard_link_fd(self: &Arc<Self>, name: &OsStr, fd: BorrowedFd) -> io::Result<()> {
        let dir = self.fd()?;
        let from = fd_path(fd);
        Ok(rustix::fs::linkat(rustix::fs::CWD, &from, dir.as_fd(), name, AtFlags::SYMLINK_FOLLOW)?)
    }

    /// Creates the fifo or device node `name`.
    pub fn mknod(self: &Arc<Self>, name: &OsStr, kind: rustix::fs::FileType, rdev: u64) -> io::Result<()> {
        let mode = Mode::from_raw_mode(0o600);
        Ok(rustix::fs::mknodat(self.fd()?.as_fd(), name, kind, mode, rdev)?)
    }

    /// The target of the symlink `name`.
    pub fn read_link(self: &Arc<Self>, name: &OsStr) -> io::Result<Vec<u8>> {
        Ok(rustix::fs::readlinkat(self.fd()?.as_fd(), name, Vec::new())?.into_bytes())
    }

    /// Calls `with` on a short path naming the entry `name` through this
    /// directory's descriptor (`/proc/self/fd/N/name`), for the calls that
    /// have no descriptor form (extended attributes of an entry not
    /// opened). Only the last component is the entry itself: a call that
    /// does not follow symlinks acts on it exactly.
    pub fn with_entry_path<T>(
        self: &Arc<Self>,
        name: &OsStr,
        with: impl FnOnce(&Path) -> T,
    ) -> io::Result<T> {
        let fd = self.fd()?;
        Ok(with(&fd_path(fd.as_fd()).join(name)))
    }
}

/// Drops a chain of directories one at a time: dropping each parent inside
/// its child's drop would take one stack frame per level.
impl Drop for Dir {
    fn drop(&mut self) {
        let mut next = self.parent.take();
        while let Some(parent) = next {
            next = Arc::into_inner(parent).and_then(|mut dir| dir.parent.take());
        }
    }
}

/// Whether `/proc/self/fd` is there (it is unless `/proc` is not mounted,
/// as in some chroots): the calls with no descriptor form need it. Asked once.
pub fn has_proc() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| Path::new("/proc/self/fd").is_dir())
}

/// The path through which the kernel reaches what `fd` is open on.
pub fn fd_path(fd: BorrowedFd) -> PathBuf {
    use std::os::fd::AsRawFd;
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Device and inode of what `st` describes: what identifies a file.
#[allow(clippy::unnecessary_cast)] // the field types differ between architectures
pub fn identity(st: &rustix::fs::Stat) -> (u64, u64) {
    (st.st_dev as u64, st.st_ino as u64)
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC
}

/// The error for a directory that was replaced while in use.
fn replaced(now: &str) -> io::Error {
    io::Error::other(format!("a directory on its way was replaced while in use ({now})"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn a_chain_deeper_than_path_max_is_reached_step_by_step() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Dir::open_root(tmp.path(), true).unwrap();
        let name = OsString::from("d".repeat(200));
        let mut dir = root.clone();
        for _ in 0..30 {
            dir.mkdir(&name, 0o700).unwrap();
            dir = dir.child(&name, None);
        }
        dir.open("f".as_ref(), OFlags::WRONLY | OFlags::CREATE, 0o600).unwrap();
        // The chain is 6,000 bytes long, and every descriptor but the root's
        // may be dropped: the deepest directory is opened again from the root.
        assert!(fs::metadata(tmp.path().join(vec![name.to_str().unwrap(); 30].join("/"))).is_err());
        root.kept.lock().clear();
        assert_eq!(dir.list().unwrap(), ["f"]);
    }

    #[test]
    fn a_directory_swapped_for_a_symlink_or_another_directory_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = Dir::open_root(tmp.path(), true).unwrap();
        root.mkdir("a".as_ref(), 0o700).unwrap();
        let a = root.child("a".as_ref(), None);
        a.fd().unwrap();
        // Renamed away while open: the open descriptor still reaches it.
        fs::rename(tmp.path().join("a"), tmp.path().join("moved")).unwrap();
        std::os::unix::fs::symlink(outside.path(), tmp.path().join("a")).unwrap();
        a.open("f".as_ref(), OFlags::WRONLY | OFlags::CREATE, 0o600).unwrap();
        assert!(tmp.path().join("moved/f").exists());
        // Once dropped, opening again finds the symlink and refuses it.
        root.kept.lock().clear();
        let err = a.open("g".as_ref(), OFlags::WRONLY | OFlags::CREATE, 0o600).unwrap_err();
        assert!(err.to_string().contains("replaced"), "{err}");
        // A different directory in its place is refused as well.
        fs::remove_file(tmp.path().join("a")).unwrap();
        fs::create_dir(tmp.path().join("a")).unwrap();
        assert!(a.stat("f".as_ref()).unwrap_err().to_string().contains("another directory"));
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_directory_made_is_known_before_its_first_use() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Dir::open_root(tmp.path(), true).unwrap();
        let made = root.child("made".as_ref(), None);
        made.make(0o700).unwrap();
        // Swapped before anything was opened in it, and its descriptor let
        // go: the next open finds another directory, not the one made.
        root.kept.lock().clear();
        fs::rename(tmp.path().join("made"), tmp.path().join("moved")).unwrap();
        fs::create_dir(tmp.path().join("made")).unwrap();
        let err = made.open("f".as_ref(), OFlags::WRONLY | OFlags::CREATE, 0o600).unwrap_err();
        assert!(err.to_string().contains("another directory"), "{err}");
        assert_eq!(fs::read_dir(tmp.path().join("made")).unwrap().count(), 0);
        assert_eq!(made.make(0o700).unwrap_err().kind(), io::ErrorKind::AlreadyExists);
    }

    #[test]
    fn a_missing_root_has_nothing_below_it() {
        let root = Dir::root(None);
        let child = root.child("x".as_ref(), None);
        assert_eq!(child.stat("y".as_ref()).unwrap_err().kind(), io::ErrorKind::NotFound);
    }
}
