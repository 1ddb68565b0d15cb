//! The source side: what a path on the local filesystem is, its metadata and
//! its directory listing, read without following symlinks, and which paths a
//! backup leaves out. Backups read the file system only through here and
//! through `ops::backup`'s file reader. Below the paths the user named,
//! every entry is reached through its directory's descriptor (`dirfd`),
//! never by its full path: a tree of any depth is read, and a directory
//! swapped for a symlink while the backup runs is not followed.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::ErrorKind;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::sync::Arc;

use ignore::gitignore::{Gitignore, GitignoreBuilder};

mod gitignore;
mod watch;

pub use gitignore::GitIgnores;
pub use watch::{Change, ChangeWatcher};

use crate::dirfd::Dir;
use crate::error::{Error, IoContext, Result};
use crate::format::Timestamp;
use crate::format::tree::{Metadata, Xattr};

/// What kind of thing a path is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    File,
    Dir,
    Symlink,
    Fifo,
    CharDevice,
    BlockDevice,
    Socket,
}

/// The result of `lstat` on a source path.
#[derive(Clone, Debug)]
pub struct Stat {
    /// The kind of the path.
    pub kind: SourceKind,
    /// Length in bytes (regular files).
    pub size: u64,
    /// Device number (device files).
    pub rdev: u64,
    /// Metadata as stored in trees (xattrs not yet read).
    pub meta: Metadata,
}

impl Stat {
    /// Converts what `stat` returned. The field types of `struct stat`
    /// differ between architectures, hence the casts.
    #[allow(clippy::unnecessary_cast)]
    fn from_raw(st: &rustix::fs::Stat) -> Self {
        use rustix::fs::FileType;
        let kind = match FileType::from_raw_mode(st.st_mode as _) {
            FileType::RegularFile => SourceKind::File,
            FileType::Directory => SourceKind::Dir,
            FileType::Symlink => SourceKind::Symlink,
            FileType::Fifo => SourceKind::Fifo,
            FileType::CharacterDevice => SourceKind::CharDevice,
            FileType::BlockDevice => SourceKind::BlockDevice,
            FileType::Socket | FileType::Unknown => SourceKind::Socket,
        };
        Stat {
            kind,
            size: st.st_size as u64,
            rdev: st.st_rdev as u64,
            meta: Metadata {
                mode: st.st_mode as u32 & 0o7777,
                uid: st.st_uid as u32,
                gid: st.st_gid as u32,
                mtime: Timestamp { secs: st.st_mtime as i64, nanos: st.st_mtime_nsec as u32 },
                ctime: Timestamp { secs: st.st_ctime as i64, nanos: st.st_ctime_nsec as u32 },
                inode: st.st_ino as u64,
                dev: st.st_dev as u64,
                nlink: st.st_nlink as u64,
                xattrs: Vec::new(),
            },
        }
    }

    /// Device and inode: what identifies the file.
    pub fn identity(&self) -> (u64, u64) {
        (self.meta.dev, self.meta.inode)
    }

    /// Whether a later look at the same file shows it unchanged: same
    /// inode, size, mtime and ctime.
    pub fn unchanged_since(&self, later: &Stat) -> bool {
        self.kind == later.kind
            && self.size == later.size
            && self.meta.inode == later.meta.inode
            && self.meta.dev == later.meta.dev
            && self.meta.mtime == later.meta.mtime
            && self.meta.ctime == later.meta.ctime
    }
}

/// `lstat` of a path.
pub fn lstat(path: &Path) -> Result<Stat> {
    rustix::fs::lstat(path).map(|st| Stat::from_raw(&st)).at(path)
}

/// `fstat` of an open file.
pub fn fstat(file: &fs::File) -> std::io::Result<Stat> {
    Ok(Stat::from_raw(&rustix::fs::fstat(file)?))
}

/// Where an entry of the source is reached from.
#[derive(Clone, Copy)]
pub enum Place<'a> {
    /// By its full path: a path the user named, or one above it.
    Named,
    /// Through the descriptor of its directory: everything below.
    In(&'a Arc<Dir>),
}

impl Place<'_> {
    /// `lstat` of the entry `name` (at `path`, which names it in errors).
    pub fn lstat(self, name: &OsStr, path: &Path) -> Result<Stat> {
        match self {
            Place::Named => lstat(path),
            Place::In(dir) => dir.stat(name).map(|st| Stat::from_raw(&st)).at(path),
        }
    }

    /// Its extended attributes (see [`xattrs`]). Without `/proc` they are
    /// read by full path, which works up to `PATH_MAX`.
    pub fn xattrs(self, name: &OsStr, path: &Path) -> Result<Vec<Xattr>> {
        match self {
            Place::In(dir) if crate::dirfd::has_proc() => {
                dir.with_entry_path(name, |through| xattrs_through(through, path)).at(path)?
            }
            _ => xattrs(path),
        }
    }

    /// The target of the symlink.
    pub fn read_link(self, name: &OsStr, path: &Path) -> Result<Vec<u8>> {
        match self {
            Place::Named => fs::read_link(path).map(|t| t.into_os_string().into_vec()).at(path),
            Place::In(dir) => dir.read_link(name).at(path),
        }
    }

    /// Opens the file for reading: a symlink there is not followed, and a
    /// fifo does not block.
    pub fn open_file(self, name: &OsStr, path: &Path) -> std::io::Result<fs::File> {
        use rustix::fs::OFlags;
        let flags = OFlags::RDONLY | OFlags::NONBLOCK;
        match self {
            Place::Named => Ok(rustix::fs::open(
                path,
                flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )?
            .into()),
            Place::In(dir) => dir.open(name, flags, 0),
        }
    }

    /// Opens the directory, which `lstat` found as `stat`: what is there
    /// when it is opened must be that directory, not a symlink or another.
    pub fn open_dir(self, name: &OsStr, path: &Path, stat: &Stat) -> Result<Arc<Dir>> {
        let dir = match self {
            Place::Named => Dir::open_root(path, false).at(path)?,
            Place::In(parent) => parent.child(name, Some(stat.identity())),
        };
        dir.fd().at(path)?;
        Ok(dir)
    }
}

/// The names in `dir` (at `path`), sorted by their bytes.
pub fn list(dir: &Arc<Dir>, path: &Path) -> Result<Vec<OsString>> {
    dir.list().at(path)
}

/// A path's extended attributes, sorted by name; a filesystem without
/// xattr support has none. Attributes that vanish while being read are
/// skipped.
pub fn xattrs(path: &Path) -> Result<Vec<Xattr>> {
    xattrs_through(path, path)
}

/// The extended attributes of what `through` names (not following a
/// symlink there); `path` names it in errors.
fn xattrs_through(through: &Path, path: &Path) -> Result<Vec<Xattr>> {
    let names = match xattr::list(through) {
        Ok(names) => names,
        Err(e) if is_unsupported(&e) => return Ok(Vec::new()),
        Err(e) => return Err(crate::Error::io(path, e)),
    };
    let mut out = Vec::new();
    for name in names {
        if let Some(value) = xattr::get(through, &name).at(path)? {
            out.push(Xattr { name: name.as_bytes().to_vec(), value });
        }
    }
    out.sort();
    Ok(out)
}

fn is_unsupported(e: &std::io::Error) -> bool {
    e.kind() == ErrorKind::Unsupported || e.raw_os_error() == Some(rustix::io::Errno::NOTSUP.raw_os_error())
}

/// The bytes of the regular file reached from `dir` by `names` (the last
/// one the file, the others directories), if there is one.
pub(crate) fn read_small_file(dir: &Arc<Dir>, names: &[&str]) -> Option<std::io::Result<Vec<u8>>> {
    use rustix::fs::OFlags;
    let (file, dirs) = names.split_last()?;
    let dir = dirs.iter().fold(dir.clone(), |d, name| d.child(name.as_ref(), None));
    let mut f = dir.open(file.as_ref(), OFlags::RDONLY | OFlags::NONBLOCK, 0).ok()?;
    if !f.metadata().is_ok_and(|m| m.is_file()) {
        return None;
    }
    let mut bytes = Vec::new();
    Some(std::io::Read::read_to_end(&mut f, &mut bytes).map(|_| bytes))
}

/// What to leave out of a backup. Nothing is left out unless asked.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// gitignore-style patterns, relative to `/`: a pattern without a slash
    /// matches a name at any depth, `dir/` only directories, `!p` re-includes.
    pub excludes: Vec<String>,
    /// Files of such patterns, one per line (`#` starts a comment).
    pub exclude_files: Vec<std::path::PathBuf>,
    /// Leave out regular files larger than this many bytes.
    pub exclude_larger_than: Option<u64>,
    /// Leave out the contents of directories tagged with a valid
    /// `CACHEDIR.TAG` (the tag file itself is kept).
    pub exclude_caches: bool,
    /// Do not descend into directories on another file system than the
    /// source they were reached from (the mount point itself is kept).
    pub one_file_system: bool,
    /// Honour `.gitignore` files (and `.git/info/exclude`) as git does.
    pub git_ignore: bool,
}

/// The `CACHEDIR.TAG` file name and signature (bford.info/cachedir).
pub const CACHEDIR_TAG: &str = "CACHEDIR.TAG";
const CACHEDIR_SIGNATURE: &[u8] = b"Signature: 8a477f597d28d172789f06886806bc55";

/// Named pattern sets for `--exclude-preset`.
pub const PRESETS: &[(&str, &[&str])] = &[(
    "dev",
    &[
        "__pycache__/",
        "*.pyc",
        "*.pyo",
        ".venv/",
        "venv/",
        ".tox/",
        ".mypy_cache/",
        ".pytest_cache/",
        "node_modules/",
        ".next/",
        ".parcel-cache/",
        "target/",
        ".gradle/",
        ".DS_Store",
        "Thumbs.db",
        ".cache/",
        "*.swp",
        "*~",
    ],
)];

/// The patterns of a named preset.
pub fn preset(name: &str) -> Result<&'static [&'static str]> {
    PRESETS.iter().find(|(n, _)| *n == name).map(|(_, p)| *p).ok_or_else(|| {
        let known: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
        Error::InvalidInput(format!("unknown exclude preset {name:?} (known: {})", known.join(", ")))
    })
}

/// A compiled [`Selection`].
#[derive(Debug)]
pub struct Filter {
    patterns: Gitignore,
    larger_than: Option<u64>,
    exclude_caches: bool,
    one_file_system: bool,
    git_ignore: bool,
}

impl Filter {
    /// Compiles the patterns; a bad pattern or unreadable file is an error.
    pub fn new(sel: &Selection) -> Result<Self> {
        let mut b = GitignoreBuilder::new("/");
        for pattern in &sel.excludes {
            b.add_line(None, pattern)
                .map_err(|e| Error::InvalidInput(format!("bad exclude pattern {pattern:?}: {e}")))?;
        }
        for file in &sel.exclude_files {
            std::fs::metadata(file).at(file)?;
            if let Some(e) = b.add(file) {
                return Err(Error::InvalidInput(format!("exclude file {}: {e}", file.display())));
            }
        }
        let patterns = b.build().map_err(|e| Error::InvalidInput(format!("exclude patterns: {e}")))?;
        Ok(Filter {
            patterns,
            larger_than: sel.exclude_larger_than,
            exclude_caches: sel.exclude_caches,
            one_file_system: sel.one_file_system,
            git_ignore: sel.git_ignore,
        })
    }

    /// Whether `.gitignore` files are honoured.
    pub fn uses_git_ignore(&self) -> bool {
        self.git_ignore
    }

    /// Whether a path found inside a backed-up directory is left out.
    pub fn excludes(&self, path: &Path, stat: &Stat) -> bool {
        let too_large = stat.kind == SourceKind::File && self.larger_than.is_some_and(|max| stat.size > max);
        too_large || self.patterns.matched(path, stat.kind == SourceKind::Dir).is_ignore()
    }

    /// Whether only the tag of this directory is kept.
    pub fn is_excluded_cache(&self, dir: &Arc<Dir>) -> bool {
        self.exclude_caches && is_cache_dir(dir)
    }

    /// Whether a directory on device `dev` is entered, given the devices of
    /// the sources.
    pub fn enters_device(&self, dev: u64, source_devices: &[u64]) -> bool {
        !self.one_file_system || source_devices.contains(&dev)
    }
}

fn is_cache_dir(dir: &Arc<Dir>) -> bool {
    let mut head = [0u8; CACHEDIR_SIGNATURE.len()];
    let flags = rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NONBLOCK;
    dir.open(CACHEDIR_TAG.as_ref(), flags, 0)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok_and(|()| head == CACHEDIR_SIGNATURE)
}

/// Parses a size such as `500`, `64K`, `10M`, `1.5G` or `2TiB` (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64> {
    let bad = || Error::InvalidInput(format!("{s:?} is not a size (examples: 500K, 10M, 2G)"));
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().map_err(|_| bad())?;
    let shift = match unit.trim().to_ascii_lowercase().trim_end_matches("ib").trim_end_matches('b') {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return Err(bad()),
    };
    let bytes = value * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_sorting() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("b"), "x").unwrap();
        fs::create_dir(dir.path().join("a")).unwrap();
        std::os::unix::fs::symlink("nowhere", dir.path().join("c")).unwrap();
        std::os::unix::fs::symlink("a", dir.path().join("d")).unwrap();
        let open = Dir::open_root(dir.path(), false).unwrap();
        let at = Place::In(&open);
        assert_eq!(list(&open, dir.path()).unwrap(), ["a", "b", "c", "d"]);
        assert_eq!(at.lstat("b".as_ref(), &dir.path().join("b")).unwrap().size, 1);
        let c = at.lstat("c".as_ref(), &dir.path().join("c")).unwrap();
        assert_eq!(c.kind, SourceKind::Symlink);
        assert!(at.lstat("gone".as_ref(), &dir.path().join("gone")).is_err());
        let d = open.child("d".as_ref(), None);
        assert!(list(&d, &dir.path().join("d")).is_err(), "a symlink to a directory is not entered");
        assert_eq!(lstat(&dir.path().join("a")).unwrap().kind, SourceKind::Dir);
        assert_eq!(lstat(&dir.path().join("b")).unwrap().size, 1);
        assert_eq!(lstat(&dir.path().join("c")).unwrap().kind, SourceKind::Symlink);
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("500").unwrap(), 500);
        assert_eq!(parse_size("64K").unwrap(), 64 << 10);
        assert_eq!(parse_size("10M").unwrap(), 10 << 20);
        assert_eq!(parse_size("1.5G").unwrap(), 3 << 29);
        assert_eq!(parse_size("2TiB").unwrap(), 2 << 40);
        assert_eq!(parse_size("3mb").unwrap(), 3 << 20);
        for bad in ["", "x", "10Q", "-1", "1..2M"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn patterns_follow_gitignore_rules_from_root() {
        let sel = Selection {
            excludes: vec![
                "*.pyc".into(),
                "node_modules/".into(),
                "/abs/anchored".into(),
                "!keep.pyc".into(),
            ],
            ..Selection::default()
        };
        let f = Filter::new(&sel).unwrap();
        let stat = |kind| Stat { kind, size: 0, rdev: 0, meta: Metadata::default() };
        assert!(f.excludes(Path::new("/a/b/x.pyc"), &stat(SourceKind::File)));
        assert!(!f.excludes(Path::new("/a/b/keep.pyc"), &stat(SourceKind::File)));
        assert!(f.excludes(Path::new("/deep/node_modules"), &stat(SourceKind::Dir)));
        assert!(!f.excludes(Path::new("/deep/node_modules"), &stat(SourceKind::File)));
        assert!(f.excludes(Path::new("/abs/anchored"), &stat(SourceKind::Dir)));
        assert!(!f.excludes(Path::new("/other/abs/anchored"), &stat(SourceKind::Dir)));
    }

    #[test]
    fn cache_tag_needs_the_signature() {
        let dir = tempfile::tempdir().unwrap();
        let f = Filter::new(&Selection { exclude_caches: true, ..Selection::default() }).unwrap();
        let open = Dir::open_root(dir.path(), false).unwrap();
        fs::write(dir.path().join(CACHEDIR_TAG), "not a tag").unwrap();
        assert!(!f.is_excluded_cache(&open));
        fs::write(dir.path().join(CACHEDIR_TAG), [CACHEDIR_SIGNATURE, b"\n# made by a test"].concat())
            .unwrap();
        assert!(f.is_excluded_cache(&open));
    }
}
