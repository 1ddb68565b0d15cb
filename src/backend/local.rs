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

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use super::cache::{self, CacheDir, INDEX_FILE};
use super::{
    Backend, CONFIG, FileKind, LockGuard, LockMode, LockState, Pieces, Put, Unlock, check_name, kind_dir,
    object_key,
};
use crate::error::{Error, IoContext, Result};

const TMP_DIR: &str = "tmp";
/// The largest piece of a streamed read: few system calls, little memory.
const PIECE: u64 = 1 << 20;
const LOCK_FILE: &str = "lock";
/// Where older versions of snap kept the index, with SQLite's companions.
const LEGACY_INDEX: [&str; 3] = ["index.sqlite", "index.sqlite-wal", "index.sqlite-shm"];

/// A repository directory on a local POSIX filesystem.
#[derive(Debug)]
pub struct LocalBackend {
    root: PathBuf,
    counter: AtomicU64,
    /// `None`: the user's cache directory, found when the index is opened.
    cache: Option<CacheDir>,
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

impl LocalBackend {
    /// A backend rooted at `root` (which need not exist yet), its index in
    /// the user's cache directory.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalBackend { root: root.into(), counter: AtomicU64::new(0), cache: None }
    }

    /// The same, its index cached under `cache_dir` instead.
    pub fn with_cache_dir(root: impl Into<PathBuf>, cache_dir: impl Into<PathBuf>) -> Self {
        LocalBackend { cache: Some(CacheDir::at(cache_dir)), ..Self::new(root) }
    }

    /// The repository directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir(&self, kind: FileKind) -> PathBuf {
        self.root.join(kind_dir(kind))
    }

    fn path(&self, kind: FileKind, name: &str) -> Result<PathBuf> {
        Ok(self.root.join(object_key(kind, name)?))
    }

    fn temp_path(&self) -> PathBuf {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        self.root.join(TMP_DIR).join(format!("{}-{n}.tmp", std::process::id()))
    }

    /// `tmp/` is only staging, so a repository copied without it (rsync
    /// excludes, a tidy user) gets it back; mkdir never follows a link
    /// planted in its place, and `no_link` then refuses that.
    fn staging_dir(&self) -> Result<()> {
        let dir = self.root.join(TMP_DIR);
        if mkdir_private(&dir)? {
            fsync_dir(&self.root)?;
        }
        no_link(&dir, true)
    }

    fn open(&self, kind: FileKind, name: &str) -> Result<(File, PathBuf)> {
        let path = self.path(kind, name)?;
        // An object that is a symlink is never followed (ELOOP).
        let flags = rustix::fs::OFlags::NOFOLLOW.bits() as i32;
        match OpenOptions::new().read(true).custom_flags(flags).open(&path) {
            Ok(f) => Ok((f, path)),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                Err(Error::NotFound { kind: kind.describe(), id: name.to_owned() })
            }
            Err(e) => Err(Error::io(path, e)),
        }
    }
}

impl LocalBackend {
    /// An index an older snap kept in the repository holds every blob's
    /// exact length in the clear, readable by anyone who can read the
    /// disk; it is only a cache, so it goes (unlink never follows a link).
    /// A failure leaves it (a read-only disk still restores) and changes
    /// nothing else: the index used is the one in the cache.
    fn remove_legacy_index(&self) {
        for name in LEGACY_INDEX {
            let _ = fs::remove_file(self.root.join(name));
        }
    }

    /// A put found its name taken. Content-named objects have exactly one
    /// valid content, so an existing one with other bytes is a torn or
    /// damaged write and is atomically replaced; the config is never
    /// replaced (creating it is how `init` claims a directory).
    fn settle_existing(&self, kind: FileKind, tmp: &Path, path: &Path, data: &[u8]) -> Result<Put> {
        if kind == FileKind::Config || fs::read(path).is_ok_and(|existing| existing == data) {
            return Ok(Put::Existed);
        }
        fs::rename(tmp, path).at(path)?;
        fsync_dir(path.parent().expect("object paths have a parent"))?;
        Ok(Put::Created)
    }
}

/// What a repository's own entries are where they exist: directories
/// and files, never symlinks. A link planted by whoever can write the
/// repository (`tmp` pointing at a home directory, `lock` at a file
/// elsewhere) would make snap delete or write outside it.
const OWN_DIRS: [&str; 4] = ["data", "snapshots", "keys", TMP_DIR];
const OWN_FILES: [&str; 2] = [CONFIG, LOCK_FILE];

/// Fails unless `path` is missing or a real directory (or, with `dir`
/// false, not a symlink).
fn no_link(path: &Path, dir: bool) -> Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        other => other.at(path)?,
    };
    if meta.file_type().is_symlink() || (dir && !meta.is_dir()) {
        let what = if meta.file_type().is_symlink() { "a symbolic link" } else { "not a directory" };
        return Err(Error::InvalidInput(format!(
            "{} is {what}: snap follows no link inside a repository and changed nothing (put the real \
             directory or file in its place)",
            path.display()
        )));
    }
    Ok(())
}

fn mkdir_private(path: &Path) -> Result<bool> {
    match fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(Error::io(path, e)),
    }
}

fn fsync_dir(path: &Path) -> Result<()> {
    File::open(path).and_then(|d| crate::crash::fsync_fault().and_then(|()| d.sync_all())).at(path)
}

fn write_durable(path: &Path, data: &[u8]) -> Result<()> {
    let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).at(path)?;
    f.write_all(data).at(path)?;
    crate::crash::fsync_fault().and_then(|()| f.sync_all()).at(path)
}

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
            fs::DirBuilder::new().recursive(true).mode(0o700).create(parent).at(parent)?;
        }
        mkdir_private(&self.root)?;
        for sub in [kind_dir(FileKind::Pack), kind_dir(FileKind::Snapshot), kind_dir(FileKind::Key), TMP_DIR]
        {
            mkdir_private(&self.root.join(sub))?;
        }
        fsync_dir(&self.root)
    }

    fn put(&self, kind: FileKind, name: &str, data: Bytes) -> Result<Put> {
        let data = &data[..];
        let path = self.path(kind, name)?;
        let dir = path.parent().expect("object paths have a parent").to_path_buf();
        if kind == FileKind::Pack && mkdir_private(&dir)? {
            fsync_dir(&self.dir(kind))?;
        }
        no_link(&dir, true)?;
        self.staging_dir()?;
        let tmp = self.temp_path();
        let result = write_durable(&tmp, data).and_then(|()| match fs::hard_link(&tmp, &path) {
            // A put that fails must leave nothing under the name: an object
            // whose directory entry may not be durable is taken back.
            Ok(()) => fsync_dir(&dir).map(|()| Put::Created).inspect_err(|_| drop(fs::remove_file(&path))),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => self.settle_existing(kind, &tmp, &path, data),
            Err(e) => Err(Error::io(&path, e)),
        });
        // Whatever happened, the staging file goes: one left by a write
        // that failed on a full disk would keep the disk full.
        let _ = fs::remove_file(&tmp);
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

    fn list(&self, kind: FileKind) -> Result<Vec<(String, u64)>> {
        let dir = self.dir(kind);
        let mut out = Vec::new();
        match kind {
            FileKind::Config => {
                if let Ok(m) = fs::metadata(self.root.join(CONFIG)) {
                    out.push((CONFIG.to_owned(), m.len()));
                }
            }
            FileKind::Snapshot => list_names(&dir, kind, &mut out)?,
            // Repositories made before encryption existed have no `keys/`.
            FileKind::Key if !dir.exists() => {}
            FileKind::Key => list_names(&dir, kind, &mut out)?,
            FileKind::Pack => {
                for sub in fs::read_dir(&dir).at(&dir)? {
                    let sub = sub.at(&dir)?;
                    let file_type = sub.file_type().at(sub.path())?;
                    if file_type.is_dir() {
                        list_names(&sub.path(), kind, &mut out)?;
                    } else if file_type.is_symlink() {
                        // Its packs would look missing; say why instead.
                        no_link(&sub.path(), true)?;
                    }
                }
            }
        }
        Ok(out)
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        let path = self.path(kind, name)?;
        no_link(path.parent().expect("object paths have a parent"), true)?;
        match fs::remove_file(&path) {
            Ok(()) => fsync_dir(path.parent().expect("object paths have a parent")),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Removes only what puts leave: files named `<pid>-<n>.tmp`, in a
    /// real `tmp/` directory.
    fn remove_leftovers(&self) -> Result<u64> {
        let dir = self.root.join(TMP_DIR);
        no_link(&dir, true)?;
        let entries = match fs::read_dir(&dir) {
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(0),
            other => other.at(&dir)?,
        };
        let mut removed = 0;
        for entry in entries {
            let entry = entry.at(&dir)?;
            let ours = entry.file_name().to_str().is_some_and(is_staging_name);
            if ours && entry.file_type().at(entry.path())?.is_file() {
                fs::remove_file(entry.path()).at(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Every command locks before anything else, so this is where the
    /// repository's own entries are checked for planted links.
    fn lock(&self, mode: LockMode) -> Result<Box<dyn LockGuard>> {
        for name in OWN_DIRS {
            no_link(&self.root.join(name), true)?;
        }
        for name in OWN_FILES {
            no_link(&self.root.join(name), false)?;
        }
        self.remove_legacy_index();
        let path = self.root.join(LOCK_FILE);
        let nofollow = rustix::fs::OFlags::NOFOLLOW.bits() as i32;
        let opened = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(nofollow)
            .open(&path);
        let file = match opened {
            // A repository on a read-only file system (a disk remounted
            // read-only after errors, a read-only mount of a backup disk)
            // is still read and restored: a shared flock needs no write
            // access, and it still keeps out a prune through another mount.
            Err(e) if mode == LockMode::Shared && e.raw_os_error() == Some(libc::EROFS) => {
                OpenOptions::new().read(true).custom_flags(nofollow).open(&path).at(&path)?
            }
            other => other.at(&path)?,
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
        let path = self.root.join(LOCK_FILE);
        let file = match File::open(&path) {
            Ok(f) => f,
            // Never locked since the repository was made.
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(LockState::Free),
            Err(e) => return Err(Error::io(path, e)),
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

/// Adds the well-formed object names in `dir` (temp files and strays are
/// not objects and are skipped).
/// Whether `name` is one [`LocalBackend::temp_path`] makes.
fn is_staging_name(name: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    name.strip_suffix(".tmp")
        .and_then(|stem| stem.split_once('-'))
        .is_some_and(|(a, b)| digits(a) && digits(b))
}

fn list_names(dir: &Path, kind: FileKind, out: &mut Vec<(String, u64)>) -> Result<()> {
    for entry in fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
        if check_name(kind, &name).is_err() {
            continue;
        }
        let meta = entry.metadata().at(entry.path())?;
        if meta.is_file() {
            out.push((name, meta.len()));
        }
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
