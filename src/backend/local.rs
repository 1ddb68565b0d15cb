//! A repository in a local directory.
//!
//! ```text
//! <repo>/config                 the config object
//! <repo>/data/<xx>/<packid>     packs, fanned out by the first two hex digits
//! <repo>/snapshots/<snapid>     snapshot manifests
//! <repo>/tmp/                   staging for atomic writes; leftovers are garbage
//! <repo>/lock                   flock(2) target
//! ```
//!
//! The index is not here but in the user's cache directory (see
//! [`super::cache`]); one left by an older snap is removed.
//!
//! A put writes a private temp file, fsyncs it, hard-links it to its final
//! name (which fails if the name exists, so puts are create-only), fsyncs
//! the directory, then drops the temp name. Everything is created 0600/0700.

use std::fs::{self, File};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::cache::{self, CacheDir, INDEX_FILE};
use super::{
    Backend, CONFIG, FileKind, LockGuard, LockMode, LockState, Pieces, Put, Unlock, check_name, is_lower_hex,
    kind_dir, object_key,
};
use crate::error::{Error, IoContext, Result};

const TMP_DIR: &str = "tmp";
/// The largest piece of a streamed read: few system calls, little memory.
const PIECE: u64 = 1 << 20;
const LOCK_FILE: &str = "lock";
/// Where older versions of snap kept the index, with SQLite's companions.
const LEGACY_INDEX: [&str; 3] = ["index.sqlite", "index.sqlite-wal", "index.sqlite-shm"];
const PRIVATE_DIR: u32 = 0o700;
const PRIVATE_FILE: u32 = 0o600;

/// A repository directory on a local POSIX filesystem.
#[derive(Debug)]
pub struct LocalBackend {
    root: PathBuf,
    counter: AtomicU64,
    /// `None`: the user's cache directory, found when the index is opened.
    cache: Option<CacheDir>,
    /// The root, opened once it exists: objects are then opened with one
    /// descriptor each, as by path.
    root_fd: OnceLock<OwnedFd>,
}

struct FileLock(#[allow(dead_code)] File);

impl LockGuard for FileLock {
    /// The kernel keeps a flock for as long as its holder lives: nobody can
    /// take it for stale or remove it.
    fn still_held(&self) -> Result<()> {
        Ok(())
    }

    fn lease_holds(&self) -> Result<()> {
        Ok(())
    }
}

/// A directory of the repository, open. Whoever can write the repository
/// can swap any entry for a link between a check and its use, so nothing
/// below the root is reached through a link: a directory or object is
/// opened from the root in one step with the kernel refusing links on the
/// way (`openat2`), or, where that cannot be asked or to make what is
/// missing, step by step, each relative to its parent's descriptor. The
/// root itself is the user's choice and may be a link.
/// The descriptor is kept as a directory stream, so that listing takes no
/// second one (`Dir::read_from` would open `.` again): a restore short of
/// descriptors lists snapshots too.
struct RepoDir {
    dir: rustix::fs::Dir,
    path: PathBuf,
}

/// What an entry is, seen without following it.
fn entry_kind(st: &rustix::fs::Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

/// The refusal of an entry that is not what a repository holds there.
fn refusal(path: &Path, what: &str) -> Error {
    Error::InvalidInput(format!(
        "{} is {what}: snap takes only real directories and regular files inside a repository, \
         follows no link, and changed nothing (put the real directory or file in its place)",
        path.display()
    ))
}

/// `fd`, opened at `path`, as a file if it is a regular one.
fn regular_file(fd: OwnedFd, path: &Path) -> Result<File> {
    let kind = entry_kind(&rustix::fs::fstat(&fd).at(path)?);
    if kind != FileType::RegularFile {
        return Err(refusal(path, describe(kind)));
    }
    Ok(File::from(fd))
}

/// How `kind` is named in a refusal.
fn describe(kind: FileType) -> &'static str {
    match kind {
        FileType::Symlink => "a symbolic link",
        FileType::Directory => "a directory",
        FileType::RegularFile => "a regular file",
        _ => "not a regular file (a fifo, socket or device)",
    }
}

/// Opens the directory `rel` in `at` without following a link there,
/// making it (private; `sync_parent` then records it) if it is missing and
/// `create`; `None` if it is missing otherwise.
fn open_dir_at(
    at: BorrowedFd<'_>,
    rel: &Path,
    path: PathBuf,
    create: bool,
    sync_parent: impl Fn() -> Result<()>,
) -> Result<Option<RepoDir>> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    loop {
        match rustix::fs::openat(at, rel, flags, Mode::empty()) {
            Ok(fd) => return RepoDir::new(fd, path).map(Some),
            Err(Errno::NOENT) if create => {
                match rustix::fs::mkdirat(at, rel, Mode::from_raw_mode(PRIVATE_DIR)) {
                    // mkdir never follows a link; one planted since is refused
                    // by the open.
                    Ok(()) | Err(Errno::EXIST) => sync_parent()?,
                    Err(e) => return Err(e).at(path),
                }
            }
            Err(Errno::NOENT) => return Ok(None),
            Err(Errno::LOOP | Errno::NOTDIR) => {
                let what = match rustix::fs::statat(at, rel, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) => describe(entry_kind(&st)),
                    Err(_) => "not a directory",
                };
                return Err(refusal(&path, what));
            }
            Err(e) => return Err(e).at(path),
        }
    }
}

impl RepoDir {
    fn open_root(path: &Path) -> Result<RepoDir> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = rustix::fs::open(path, flags, Mode::empty()).at(path)?;
        RepoDir::new(fd, path.to_owned())
    }

    fn new(fd: OwnedFd, path: PathBuf) -> Result<RepoDir> {
        Ok(RepoDir { dir: rustix::fs::Dir::new(fd).at(&path)?, path })
    }

    fn fd(&self) -> Result<BorrowedFd<'_>> {
        self.dir.fd().at(&self.path)
    }

    fn entry_path(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// `lstat` of `name`; `None` if there is nothing of that name.
    fn stat(&self, name: &str) -> Result<Option<rustix::fs::Stat>> {
        match rustix::fs::statat(self.fd()?, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(e).at(self.entry_path(name)),
        }
    }

    /// Fails if `name` exists and is not of `kind` (a repository's own
    /// entries, checked before any command starts).
    fn expect(&self, name: &str, kind: FileType) -> Result<()> {
        match self.stat(name)? {
            Some(st) if entry_kind(&st) != kind => {
                Err(refusal(&self.entry_path(name), describe(entry_kind(&st))))
            }
            _ => Ok(()),
        }
    }

    /// The subdirectory `name`: `None` if it is missing and not to be
    /// made; made private (and recorded durably in this one) if `create`.
    fn child(&self, name: &str, create: bool) -> Result<Option<RepoDir>> {
        open_dir_at(self.fd()?, Path::new(name), self.entry_path(name), create, || self.sync())
    }

    /// The same for an entry of the root, reached by path: only the root
    /// may be a link, and `O_NOFOLLOW` refuses one at the last step, so
    /// this holds no descriptor of the root meanwhile (a restore short of
    /// descriptors lists snapshots too).
    fn top(root: &Path, name: &str, create: bool) -> Result<Option<RepoDir>> {
        let path = root.join(name);
        open_dir_at(rustix::fs::CWD, &path, path.clone(), create, || RepoDir::open_root(root)?.sync())
    }

    /// The regular file `name`, opened with `flags`: a link is never
    /// followed, and a fifo does not block the open (`O_NONBLOCK` changes
    /// nothing for the regular file that is kept).
    fn open_file(&self, name: &str, flags: OFlags, mode: u32) -> Result<std::result::Result<File, Errno>> {
        let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
        let fd = match rustix::fs::openat(self.fd()?, name, flags, Mode::from_raw_mode(mode)) {
            Ok(fd) => fd,
            Err(Errno::LOOP) => return Err(refusal(&self.entry_path(name), "a symbolic link")),
            Err(e) => return Ok(Err(e)),
        };
        regular_file(fd, &self.entry_path(name)).map(Ok)
    }

    /// Makes this directory's entries durable.
    fn sync(&self) -> Result<()> {
        let fd = self.fd()?;
        crate::crash::fsync_fault().and_then(|()| Ok(rustix::fs::fsync(fd)?)).at(&self.path)
    }

    /// The names of the entries, with what each is and its size, as they
    /// come (`.` and `..` left out; names that are not UTF-8 are no
    /// object's and are skipped).
    fn entries(&mut self) -> Result<Vec<(String, FileType, u64)>> {
        self.dir.rewind();
        let mut names = Vec::new();
        while let Some(entry) = self.dir.read() {
            let entry = entry.at(&self.path)?;
            let Ok(name) = std::str::from_utf8(entry.file_name().to_bytes()) else { continue };
            if name != "." && name != ".." {
                names.push(name.to_owned());
            }
        }
        let mut out = Vec::new();
        for name in names {
            // Removed since it was listed: not there.
            let Some(st) = self.stat(&name)? else { continue };
            out.push((name, entry_kind(&st), st.st_size as u64));
        }
        Ok(out)
    }

    fn remove(&self, name: &str) -> Result<bool> {
        match rustix::fs::unlinkat(self.fd()?, name, AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(e).at(self.entry_path(name)),
        }
    }
}

/// Where an object is: its directory (relative to the root, split into
/// steps) and its file name.
fn object_place(kind: FileKind, name: &str) -> Result<(Vec<String>, String)> {
    let key = object_key(kind, name)?;
    let mut steps: Vec<String> = key.split('/').map(str::to_owned).collect();
    let file = steps.pop().expect("a key has a name");
    Ok((steps, file))
}

impl LocalBackend {
    /// A backend rooted at `root` (which need not exist yet), its index in
    /// the user's cache directory.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalBackend { root: root.into(), counter: AtomicU64::new(0), cache: None, root_fd: OnceLock::new() }
    }

    /// The same, its index cached under `cache_dir` instead.
    pub fn with_cache_dir(root: impl Into<PathBuf>, cache_dir: impl Into<PathBuf>) -> Self {
        LocalBackend { cache: Some(CacheDir::at(cache_dir)), ..Self::new(root) }
    }

    /// The repository directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    #[cfg(test)]
    fn path(&self, kind: FileKind, name: &str) -> Result<PathBuf> {
        Ok(self.root.join(object_key(kind, name)?))
    }

    fn temp_name(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}.tmp", std::process::id())
    }

    /// The directory reached by `steps` below the root: `None` if a step
    /// is missing and not to be made. `data/`, `snapshots/` and `keys/`
    /// may be missing from a copy made by a tool that keeps no empty
    /// directory (git, or a round trip through an object store): missing,
    /// they hold nothing, and a put makes them again.
    fn dir(&self, steps: &[String], create: bool) -> Result<Option<RepoDir>> {
        let Some((first, rest)) = steps.split_first() else {
            return RepoDir::open_root(&self.root).map(Some);
        };
        let rel = steps.join("/");
        match self.resolve(&rel, OFlags::RDONLY | OFlags::DIRECTORY, 0) {
            Some(Ok(fd)) => return RepoDir::new(fd, self.root.join(&rel)).map(Some),
            Some(Err(Errno::NOENT)) if !create => return Ok(None),
            // To make what is missing, or to name what is in the way.
            _ => {}
        }
        let Some(mut dir) = RepoDir::top(&self.root, first, create)? else { return Ok(None) };
        for step in rest {
            match dir.child(step, create)? {
                Some(child) => dir = child,
                None => return Ok(None),
            }
        }
        Ok(Some(dir))
    }

    /// Opens `rel` below the root in one step, the kernel refusing a link
    /// anywhere on the way (`openat2` with `RESOLVE_NO_SYMLINKS`): one
    /// descriptor, as an open by path takes. `None` where that cannot be
    /// asked (no root yet, a kernel before 5.6, a rename racing the
    /// lookup): the caller then walks step by step.
    fn resolve(&self, rel: &str, flags: OFlags, mode: u32) -> Option<std::result::Result<OwnedFd, Errno>> {
        let root = match self.root_fd.get() {
            Some(fd) => fd,
            None => {
                let fd = rustix::fs::open(
                    &self.root,
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .ok()?;
                self.root_fd.get_or_init(|| fd)
            }
        };
        let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
        let how = ResolveFlags::NO_SYMLINKS | ResolveFlags::BENEATH;
        match rustix::fs::openat2(root, rel, flags, Mode::from_raw_mode(mode), how) {
            Err(Errno::NOSYS | Errno::AGAIN | Errno::PERM | Errno::INVAL) => None,
            opened => Some(opened),
        }
    }

    /// `tmp/` is only staging, so a repository copied without it (rsync
    /// excludes, a tidy user) gets it back.
    fn staging_dir(&self) -> Result<RepoDir> {
        Ok(self.dir(&[TMP_DIR.to_owned()], true)?.expect("made if missing"))
    }

    fn open(&self, kind: FileKind, name: &str) -> Result<(File, PathBuf)> {
        let (steps, file) = object_place(kind, name)?;
        let not_found = || Error::NotFound { kind: kind.describe(), id: name.to_owned() };
        let key = object_key(kind, name)?;
        match self.resolve(&key, OFlags::RDONLY, 0) {
            Some(Ok(fd)) => {
                let path = self.root.join(&key);
                return Ok((regular_file(fd, &path)?, path));
            }
            Some(Err(Errno::NOENT)) => return Err(not_found()),
            // A link on the way: the walk names it.
            _ => {}
        }
        let dir = self.dir(&steps, false)?.ok_or_else(not_found)?;
        let path = dir.entry_path(&file);
        match dir.open_file(&file, OFlags::RDONLY, 0)? {
            Ok(f) => Ok((f, path)),
            Err(Errno::NOENT) => Err(not_found()),
            Err(e) => Err(e).at(path),
        }
    }
}

impl LocalBackend {
    /// An index an older snap kept in the repository holds every blob's
    /// exact length in the clear, readable by anyone who can read the
    /// disk; it is only a cache, so it goes (unlink never follows a link).
    /// A failure leaves it (a read-only disk still restores) and changes
    /// nothing else: the index used is the one in the cache.
    fn remove_legacy_index(&self, root: &RepoDir) {
        for name in LEGACY_INDEX {
            let _ = root.remove(name);
        }
    }

    /// A put found its name taken. Content-named objects have exactly one
    /// valid content, so an existing one with other bytes is a torn or
    /// damaged write and is atomically replaced; the config is never
    /// replaced (creating it is how `init` claims a directory). Whatever
    /// is there must be a regular file.
    fn settle_existing(
        &self,
        kind: FileKind,
        staging: &RepoDir,
        tmp: &str,
        dir: &RepoDir,
        name: &str,
        data: &[u8],
    ) -> Result<Put> {
        let path = dir.entry_path(name);
        let existing = match dir.open_file(name, OFlags::RDONLY, 0)? {
            Ok(f) => f,
            Err(e) => return Err(e).at(path),
        };
        if kind == FileKind::Config {
            return Ok(Put::Existed);
        }
        let mut found = Vec::new();
        existing.take(data.len() as u64 + 1).read_to_end(&mut found).at(&path)?;
        if found == data {
            return Ok(Put::Existed);
        }
        rustix::fs::renameat(staging.fd()?, tmp, dir.fd()?, name).at(&path)?;
        dir.sync()?;
        Ok(Put::Created)
    }

    /// Writes `data` durably to the new staging file `tmp`.
    fn write_staged(staging: &RepoDir, tmp: &str, data: &[u8]) -> Result<()> {
        let path = staging.entry_path(tmp);
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL;
        let mut f = staging.open_file(tmp, flags, PRIVATE_FILE)?.at(&path)?;
        f.write_all(data).at(&path)?;
        crate::crash::fsync_fault().and_then(|()| f.sync_all()).at(&path)
    }
}

/// What a repository's own entries are where they exist: directories
/// and files, never symlinks. A link planted by whoever can write the
/// repository (`tmp` pointing at a home directory, `lock` at a file
/// elsewhere) would make snap delete or write outside it.
const OWN_DIRS: [&str; 4] = ["data", "snapshots", "keys", TMP_DIR];
const OWN_FILES: [&str; 2] = [CONFIG, LOCK_FILE];

impl Backend for LocalBackend {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn place(&self) -> String {
        self.root.canonicalize().unwrap_or_else(|_| self.root.clone()).display().to_string()
    }

    fn is_empty(&self) -> Result<bool> {
        match fs::read_dir(&self.root) {
            Ok(mut entries) => Ok(entries.next().is_none()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(true),
            Err(e) => Err(Error::io(&self.root, e)),
        }
    }

    fn exists(&self) -> Result<bool> {
        let path = self.root.join(CONFIG);
        match fs::symlink_metadata(&path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    fn create(&self) -> Result<()> {
        if let Some(parent) = self.root.parent().filter(|p| !p.as_os_str().is_empty()) {
            use std::os::unix::fs::DirBuilderExt;
            fs::DirBuilder::new().recursive(true).mode(PRIVATE_DIR).create(parent).at(parent)?;
        }
        match rustix::fs::mkdir(&self.root, Mode::from_raw_mode(PRIVATE_DIR)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e).at(&self.root),
        }
        let root = RepoDir::open_root(&self.root)?;
        for sub in [kind_dir(FileKind::Pack), kind_dir(FileKind::Snapshot), kind_dir(FileKind::Key), TMP_DIR]
        {
            match rustix::fs::mkdirat(root.fd()?, sub, Mode::from_raw_mode(PRIVATE_DIR)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(e).at(root.entry_path(sub)),
            }
        }
        root.sync()
    }

    fn put(&self, kind: FileKind, name: &str, data: Bytes) -> Result<Put> {
        let data = &data[..];
        let (steps, file) = object_place(kind, name)?;
        let dir = self.dir(&steps, true)?.expect("made if missing");
        let staging = self.staging_dir()?;
        let tmp = self.temp_name();
        let path = dir.entry_path(&file);
        let result = Self::write_staged(&staging, &tmp, data).and_then(|()| {
            match rustix::fs::linkat(staging.fd()?, &tmp, dir.fd()?, &file, AtFlags::empty()) {
                // A put that fails must leave nothing under the name: an
                // object whose directory entry may not be durable is taken
                // back.
                Ok(()) => dir.sync().map(|()| Put::Created).inspect_err(|_| drop(dir.remove(&file))),
                Err(Errno::EXIST) => self.settle_existing(kind, &staging, &tmp, &dir, &file, data),
                Err(e) => Err(e).at(&path),
            }
        });
        // Whatever happened, the staging file goes: one left by a write
        // that failed on a full disk would keep the disk full.
        let _ = staging.remove(&tmp);
        result
    }

    fn get(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        let (mut f, path) = self.open(kind, name)?;
        let mut out = Vec::new();
        f.read_to_end(&mut out).at(&path)?;
        Ok(out)
    }

    fn get_capped(&self, kind: FileKind, name: &str, max: usize) -> Result<Vec<u8>> {
        let (f, path) = self.open(kind, name)?;
        super::check_cap(kind, name, f.metadata().at(&path)?.len(), max)?;
        // The file may grow after the check: never read more than one byte
        // past the cap.
        let mut out = Vec::new();
        f.take(max as u64 + 1).read_to_end(&mut out).at(&path)?;
        super::check_cap(kind, name, out.len() as u64, max)?;
        Ok(out)
    }

    fn get_range(&self, kind: FileKind, name: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
        let (mut f, path) = self.open(kind, name)?;
        f.seek(SeekFrom::Start(offset)).at(&path)?;
        let mut out = vec![0; len];
        f.read_exact(&mut out).map_err(|e| match e.kind() {
            ErrorKind::UnexpectedEof => Error::read_failed(
                format!("{} {name}", kind.describe()),
                format!("truncated: cannot read {len} bytes at offset {offset}"),
            ),
            _ => Error::io(&path, e),
        })?;
        Ok(out)
    }

    fn stream_range(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: u64,
    ) -> Result<Box<dyn Pieces + '_>> {
        let (mut file, path) = self.open(kind, name)?;
        file.seek(SeekFrom::Start(offset)).at(&path)?;
        Ok(Box::new(FilePieces { file, path, left: len }))
    }

    /// Every object in its place. An entry under an object's name that is
    /// not a regular file (a link, a directory, a fifo) ends the listing:
    /// left out, the object would pass for missing, which is proof of loss
    /// (repair drops what used it, prune forgets it); followed, it would
    /// be someone else's file. What is not at an object's place (strays,
    /// a pack outside its fan-out directory) is no object and left out.
    fn list(&self, kind: FileKind) -> Result<Vec<(String, u64)>> {
        let mut out = Vec::new();
        if kind == FileKind::Config {
            let root = RepoDir::open_root(&self.root)?;
            if let Some(st) = root.stat(CONFIG)? {
                out.push((CONFIG.to_owned(), st.st_size as u64));
            }
            return Ok(out);
        }
        let Some(mut dir) = self.dir(&[kind_dir(kind).to_owned()], false)? else { return Ok(out) };
        if kind != FileKind::Pack {
            list_objects(&mut dir, kind, "", &mut out)?;
            return Ok(out);
        }
        for (sub, _, _) in dir.entries()? {
            if is_fan_out(&sub) {
                // Gone since it was listed: it holds nothing now.
                if let Some(mut fan) = dir.child(&sub, false)? {
                    list_objects(&mut fan, kind, &sub, &mut out)?;
                }
            }
        }
        Ok(out)
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        let (steps, file) = object_place(kind, name)?;
        let Some(dir) = self.dir(&steps, false)? else { return Ok(()) };
        if dir.remove(&file)? {
            dir.sync()?;
        }
        Ok(())
    }

    /// Removes only what puts leave: regular files named `<pid>-<n>.tmp`,
    /// in a real `tmp/` directory.
    fn remove_leftovers(&self) -> Result<u64> {
        let Some(mut dir) = self.dir(&[TMP_DIR.to_owned()], false)? else { return Ok(0) };
        let mut removed = 0;
        for (name, kind, _) in dir.entries()? {
            if is_staging_name(&name) && kind == FileType::RegularFile && dir.remove(&name)? {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Every command locks before anything else, so this is where the
    /// repository's own entries are checked for planted links.
    fn lock(&self, mode: LockMode) -> Result<Box<dyn LockGuard>> {
        let root = RepoDir::open_root(&self.root)?;
        for name in OWN_DIRS {
            root.expect(name, FileType::Directory)?;
        }
        for name in OWN_FILES {
            root.expect(name, FileType::RegularFile)?;
        }
        self.remove_legacy_index(&root);
        let path = root.entry_path(LOCK_FILE);
        let file = match root.open_file(LOCK_FILE, OFlags::RDWR | OFlags::CREATE, PRIVATE_FILE)? {
            Ok(f) => f,
            // A repository on a read-only file system (a disk remounted
            // read-only after errors, a read-only mount of a backup disk)
            // is still read and restored: a shared flock needs no write
            // access, and it still keeps out a prune through another mount.
            Err(Errno::ROFS) if mode == LockMode::Shared => {
                root.open_file(LOCK_FILE, OFlags::RDONLY, 0)?.at(&path)?
            }
            Err(e) => return Err(e).at(path),
        };
        let res = match mode {
            LockMode::Shared => file.try_lock_shared(),
            LockMode::Exclusive => file.try_lock(),
        };
        match res {
            Ok(()) => Ok(Box::new(FileLock(file))),
            Err(fs::TryLockError::WouldBlock) => Err(Error::Locked {
                detail: match mode {
                    LockMode::Shared => "an exclusive operation such as prune is running".into(),
                    LockMode::Exclusive => "another operation is running".into(),
                },
            }),
            Err(fs::TryLockError::Error(e)) => Err(Error::io(path, e)),
        }
    }

    /// flock locks die with their process, so none is ever stale; `All`
    /// cannot take a lock another live process holds either.
    fn unlock(&self, _which: Unlock) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    /// Without taking a lock anyone could trip over: an exclusive try-lock,
    /// however brief, makes a backup starting in that instant fail, so only
    /// a shared one is tried (it fails while an exclusive holder exists; a
    /// prune starting in that instant fails, as with any reader). Shared
    /// holders are counted in `/proc/locks`, where the kernel lists every
    /// flock; where that cannot be read or matched to the file, they are
    /// unknown.
    fn lock_holders(&self) -> Result<LockState> {
        let root = RepoDir::open_root(&self.root)?;
        let path = root.entry_path(LOCK_FILE);
        let file = match root.open_file(LOCK_FILE, OFlags::RDONLY, 0)? {
            Ok(f) => f,
            // Never locked since the repository was made.
            Err(Errno::NOENT) => return Ok(LockState::Free),
            Err(e) => return Err(e).at(path),
        };
        match file.try_lock_shared() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Ok(LockState::Exclusive),
            Err(fs::TryLockError::Error(e)) => return Err(Error::io(path, e)),
        }
        // Counted while this probe holds its own shared lock, which is how
        // the file's entries are told from the others.
        let others = file.metadata().ok().and_then(|m| {
            let locks = fs::read_to_string("/proc/locks").ok()?;
            flock_holders(&locks, m.dev(), m.ino())?.checked_sub(1)
        });
        Ok(match others {
            Some(0) => LockState::Free,
            Some(_) => LockState::Shared,
            None => LockState::NotExclusive,
        })
    }

    /// In the cache, per repository and place (see [`cache::local_subdir`]).
    fn index_path(&self, repo_id: &str) -> Result<PathBuf> {
        let cache = match &self.cache {
            Some(c) => c.clone(),
            None => CacheDir::user()?,
        };
        Ok(cache.dir(repo_id, &cache::local_subdir(&self.root)?)?.join(INDEX_FILE))
    }
}

/// How many flocks `/proc/locks` lists on the file `dev`/`ino` (lines like
/// `1: FLOCK  ADVISORY  READ 9578 fe:00:5341217 0 EOF`; waiters, marked
/// `->`, hold nothing). `None` if none: the caller holds one itself, so the
/// file's entries are not recognisable here (an overlay file system, say).
fn flock_holders(locks: &str, dev: u64, ino: u64) -> Option<usize> {
    let id = format!("{:02x}:{:02x}:{ino}", libc::major(dev), libc::minor(dev));
    let held = locks
        .lines()
        .filter(|line| !line.contains("->"))
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(1) == Some(&"FLOCK") && fields.get(5) == Some(&id.as_str())
        })
        .count();
    (held > 0).then_some(held)
}

/// Whether `name` is one [`LocalBackend::temp_name`] makes.
fn is_staging_name(name: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    name.strip_suffix(".tmp")
        .and_then(|stem| stem.split_once('-'))
        .is_some_and(|(a, b)| digits(a) && digits(b))
}

/// Whether `name` is a directory packs fan out into (`data/<xx>`).
fn is_fan_out(name: &str) -> bool {
    name.len() == 2 && is_lower_hex(name)
}

/// Adds the objects in `dir` whose names start with `prefix` (a pack's
/// fan-out directory); other names are not objects here and are skipped.
fn list_objects(dir: &mut RepoDir, kind: FileKind, prefix: &str, out: &mut Vec<(String, u64)>) -> Result<()> {
    for (name, entry, size) in dir.entries()? {
        if check_name(kind, &name).is_err() || !name.starts_with(prefix) {
            continue;
        }
        if entry != FileType::RegularFile {
            return Err(refusal(&dir.entry_path(&name), describe(entry)));
        }
        out.push((name, size));
    }
    Ok(())
}

/// A range of a file read front to back, a piece at a time.
struct FilePieces {
    file: File,
    path: PathBuf,
    /// Bytes of the range not yet read.
    left: u64,
}

impl Pieces for FilePieces {
    fn next_piece(&mut self) -> Result<Option<Bytes>> {
        let mut buf = vec![0; self.left.min(PIECE) as usize];
        if buf.is_empty() {
            return Ok(None);
        }
        let n = loop {
            match self.file.read(&mut buf) {
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                read => break read.at(&self.path)?,
            }
        };
        if n == 0 {
            // The file ends early; the reader names the shortfall.
            return Ok(None);
        }
        buf.truncate(n);
        self.left -= n as u64;
        Ok(Some(buf.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn name(c: char) -> String {
        c.to_string().repeat(64)
    }

    #[test]
    fn ranges_stream_in_pieces_and_stop_where_the_file_does() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path());
        b.create().unwrap();
        let data: Vec<u8> = (0..2 * PIECE + 777).map(|i| (i * 13 % 251) as u8).collect();
        b.put(FileKind::Pack, &name('c'), Bytes::from(data.clone())).unwrap();
        let len = data.len() as u64 - 100;
        let pieces =
            super::super::all_pieces(b.stream_range(FileKind::Pack, &name('c'), 100, len).unwrap()).unwrap();
        assert_eq!(pieces.iter().map(|p| p.len() as u64).collect::<Vec<_>>(), [PIECE, PIECE, 677]);
        assert_eq!(pieces.concat(), data[100..]);
        // Past the end the pieces stop short; the reader names the shortfall.
        let tail =
            super::super::all_pieces(b.stream_range(FileKind::Pack, &name('c'), len, 1000).unwrap()).unwrap();
        assert_eq!(tail.concat(), data[len as usize..]);
        assert!(matches!(b.stream_range(FileKind::Pack, &name('d'), 0, 1), Err(Error::NotFound { .. })));
    }

    /// The index is in the cache, a private directory per repository id
    /// and place: a copy of the directory elsewhere (same id) gets its own.
    #[test]
    fn the_index_lives_in_the_cache_per_repository_and_place() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let id = name('e');
        let paths: Vec<PathBuf> = ["a", "b"]
            .iter()
            .map(|r| {
                fs::create_dir(dir.path().join(r)).unwrap();
                LocalBackend::with_cache_dir(dir.path().join(r), &cache).index_path(&id).unwrap()
            })
            .collect();
        assert_ne!(paths[0], paths[1]);
        for path in &paths {
            assert!(path.starts_with(cache.join(&id)), "{}", path.display());
            assert_eq!(path.file_name().unwrap(), INDEX_FILE);
            let mode = fs::metadata(path.parent().unwrap()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        // Reached through a link, the same directory is the same place.
        std::os::unix::fs::symlink(dir.path().join("a"), dir.path().join("link")).unwrap();
        let linked = LocalBackend::with_cache_dir(dir.path().join("link"), &cache).index_path(&id).unwrap();
        assert_eq!(linked, paths[0]);
        let bad = LocalBackend::with_cache_dir(dir.path().join("a"), &cache).index_path("../x");
        assert!(matches!(bad, Err(Error::InvalidInput(_))));
    }

    #[test]
    fn capped_reads_refuse_what_is_too_large() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path());
        b.create().unwrap();
        b.put(FileKind::Snapshot, &name('a'), Bytes::from(vec![7u8; 101])).unwrap();
        assert_eq!(b.get_capped(FileKind::Snapshot, &name('a'), 101).unwrap().len(), 101);
        let err = b.get_capped(FileKind::Snapshot, &name('a'), 100).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("larger than the limit of 100"), "{err}");
        assert!(matches!(b.get_capped(FileKind::Snapshot, &name('b'), 100), Err(Error::NotFound { .. })));
    }

    #[test]
    fn put_is_create_only_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path().join("repo"));
        b.create().unwrap();
        assert_eq!(b.put(FileKind::Pack, &name('a'), Bytes::from_static(b"one")).unwrap(), Put::Created);
        assert_eq!(b.put(FileKind::Pack, &name('a'), Bytes::from_static(b"one")).unwrap(), Put::Existed);
        assert_eq!(b.get(FileKind::Pack, &name('a')).unwrap(), b"one");
        let mode = fs::metadata(b.path(FileKind::Pack, &name('a')).unwrap()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let mode = fs::metadata(b.root()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert_eq!(b.list(FileKind::Pack).unwrap(), vec![(name('a'), 3)]);
        assert!(fs::read_dir(b.root().join(TMP_DIR)).unwrap().next().is_none());
    }

    /// A copy made without `tmp/` works as it is; a link in its place is
    /// refused and nothing is written where it points.
    #[test]
    fn a_missing_staging_dir_comes_back_and_a_linked_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path().join("repo"));
        b.create().unwrap();
        fs::remove_dir(b.root().join(TMP_DIR)).unwrap();
        assert_eq!(b.remove_leftovers().unwrap(), 0);
        assert_eq!(b.put(FileKind::Pack, &name('a'), Bytes::from_static(b"one")).unwrap(), Put::Created);
        assert!(fs::symlink_metadata(b.root().join(TMP_DIR)).unwrap().is_dir());
        fs::remove_dir(b.root().join(TMP_DIR)).unwrap();
        let elsewhere = dir.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, b.root().join(TMP_DIR)).unwrap();
        let err = b.put(FileKind::Pack, &name('b'), Bytes::from_static(b"two")).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(fs::read_dir(&elsewhere).unwrap().next().is_none());
        assert!(matches!(b.get(FileKind::Pack, &name('b')), Err(Error::NotFound { .. })));
    }

    #[test]
    fn a_damaged_object_under_its_name_is_replaced_but_config_never_is() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path());
        b.create().unwrap();
        b.put(FileKind::Pack, &name('a'), Bytes::from_static(b"tor")).unwrap();
        assert_eq!(
            b.put(FileKind::Pack, &name('a'), Bytes::from_static(b"torn write")).unwrap(),
            Put::Created
        );
        assert_eq!(b.get(FileKind::Pack, &name('a')).unwrap(), b"torn write");
        b.put(FileKind::Config, "config", Bytes::from_static(b"mine")).unwrap();
        assert_eq!(b.put(FileKind::Config, "config", Bytes::from_static(b"theirs")).unwrap(), Put::Existed);
        assert_eq!(b.get(FileKind::Config, "config").unwrap(), b"mine");
    }

    /// A pack is where its name puts it or it is not listed; a fan-out
    /// directory that is a file is refused, not taken for an empty one.
    #[test]
    fn only_packs_in_their_place_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path());
        b.create().unwrap();
        b.put(FileKind::Pack, &name('a'), Bytes::from_static(b"one")).unwrap();
        let data = b.root().join("data");
        fs::create_dir(data.join("old")).unwrap();
        fs::write(data.join("old").join(name('b')), "stray").unwrap();
        fs::create_dir(data.join("cc")).unwrap();
        fs::write(data.join("cc").join(name('d')), "misplaced").unwrap();
        assert_eq!(b.list(FileKind::Pack).unwrap(), vec![(name('a'), 3)]);
        fs::write(data.join("ee"), "not a directory").unwrap();
        let err = b.list(FileKind::Pack).unwrap_err();
        assert!(err.to_string().contains("data/ee is a regular file"), "{err}");
    }

    /// A put finding something else than a regular file at its name does
    /// not read, follow or replace it.
    #[test]
    fn a_put_onto_a_link_or_fifo_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path().join("repo"));
        b.create().unwrap();
        let outside = dir.path().join("outside");
        fs::write(&outside, "theirs").unwrap();
        let at = b.path(FileKind::Snapshot, &name('a')).unwrap();
        std::os::unix::fs::symlink(&outside, &at).unwrap();
        let err = b.put(FileKind::Snapshot, &name('a'), Bytes::from_static(b"mine")).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(fs::read_to_string(&outside).unwrap(), "theirs");
        assert!(fs::symlink_metadata(&at).unwrap().file_type().is_symlink());
        fs::remove_file(&at).unwrap();
        rustix::fs::mknodat(rustix::fs::CWD, &at, FileType::Fifo, Mode::from_raw_mode(0o600), 0).unwrap();
        let err = b.put(FileKind::Snapshot, &name('a'), Bytes::from_static(b"mine")).unwrap_err();
        assert!(err.to_string().contains("fifo"), "{err}");
        assert!(matches!(b.get(FileKind::Snapshot, &name('a')), Err(Error::InvalidInput(_))));
        assert!(fs::read_dir(b.root().join(TMP_DIR)).unwrap().next().is_none());
    }

    #[test]
    fn short_range_read_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path());
        b.create().unwrap();
        b.put(FileKind::Snapshot, &name('b'), Bytes::from_static(b"12345")).unwrap();
        assert_eq!(b.get_range(FileKind::Snapshot, &name('b'), 1, 3).unwrap(), b"234");
        assert!(matches!(b.get_range(FileKind::Snapshot, &name('b'), 3, 5), Err(Error::ReadFailed { .. })));
        assert!(matches!(b.get(FileKind::Snapshot, &name('c')), Err(Error::NotFound { .. })));
    }

    #[test]
    fn names_that_could_escape_are_refused() {
        let b = LocalBackend::new("/nonexistent");
        assert!(b.get(FileKind::Pack, "../../etc/passwd").is_err());
    }

    #[test]
    fn exclusive_lock_conflicts_with_shared() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path());
        b.create().unwrap();
        let shared = b.lock(LockMode::Shared).unwrap();
        let _second = b.lock(LockMode::Shared).unwrap();
        assert!(matches!(b.lock(LockMode::Exclusive), Err(Error::Locked { .. })));
        drop(shared);
    }

    #[test]
    fn holders_are_seen_without_taking_a_lock_anyone_could_trip_over() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path());
        b.create().unwrap();
        assert_eq!(b.lock_holders().unwrap(), LockState::Free);
        let exclusive = b.lock(LockMode::Exclusive).unwrap();
        assert_eq!(b.lock_holders().unwrap(), LockState::Exclusive);
        drop(exclusive);
        let shared = b.lock(LockMode::Shared).unwrap();
        // Where /proc/locks shows this file's flocks, the holder is seen.
        let seen = b.lock_holders().unwrap();
        assert!(matches!(seen, LockState::Shared | LockState::NotExclusive), "{seen:?}");
        if std::fs::read_to_string("/proc/locks").is_ok_and(|l| l.contains("FLOCK")) {
            assert_eq!(seen, LockState::Shared);
        }
        // Looking took nothing that stays: a second reader and then a
        // prune get their locks.
        drop(b.lock(LockMode::Shared).unwrap());
        drop(shared);
        assert_eq!(b.lock_holders().unwrap(), LockState::Free);
        drop(b.lock(LockMode::Exclusive).unwrap());
    }

    #[test]
    fn proc_locks_lines_are_matched_by_device_and_inode() {
        let dev = libc::makedev(0xfe, 0);
        let locks = "1: FLOCK  ADVISORY  READ 9578 fe:00:5341217 0 EOF\n\
                     2: FLOCK  ADVISORY  READ 9579 fe:00:5341217 0 EOF\n\
                     2: -> FLOCK  ADVISORY  WRITE 9600 fe:00:5341217 0 EOF\n\
                     3: POSIX  ADVISORY  WRITE 9578 fe:00:5341217 0 EOF\n\
                     4: FLOCK  ADVISORY  WRITE 9578 fe:00:10133507 0 EOF\n";
        assert_eq!(flock_holders(locks, dev, 5341217), Some(2));
        assert_eq!(flock_holders(locks, dev, 10133507), Some(1));
        assert_eq!(flock_holders(locks, dev, 7), None);
        assert_eq!(flock_holders(locks, libc::makedev(8, 1), 5341217), None);
    }
}
