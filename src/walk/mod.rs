//! The source side: what a path on the local filesystem is, its metadata and
//! its directory listing, read without following symlinks, and which paths a
//! backup leaves out. Backups read the file system only through here and
//! through `ops::backup`'s file reader.

use std::ffi::OsString;
use std::fs;
use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use ignore::gitignore::{Gitignore, GitignoreBuilder};

mod gitignore;
mod watch;

pub use gitignore::GitIgnores;
pub use watch::{Change, ChangeWatcher};

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

/// A path's extended attributes, sorted by name; a filesystem without
/// xattr support has none. Attributes that vanish while being read are
/// skipped.
pub fn xattrs(path: &Path) -> Result<Vec<Xattr>> {
    let names = match xattr::list(path) {
        Ok(names) => names,
        Err(e) if is_unsupported(&e) => return Ok(Vec::new()),
        Err(e) => return Err(crate::Error::io(path, e)),
    };
    let mut out = Vec::new();
    for name in names {
        if let Some(value) = xattr::get(path, &name).at(path)? {
            out.push(Xattr { name: name.as_bytes().to_vec(), value });
        }
    }
    out.sort();
    Ok(out)
}

fn is_unsupported(e: &std::io::Error) -> bool {
    e.kind() == ErrorKind::Unsupported || e.raw_os_error() == Some(rustix::io::Errno::NOTSUP.raw_os_error())
}

/// A directory kept open while its entries are backed up: each entry is
/// looked at relative to it, so the kernel does not walk the whole path
/// again for every entry.
pub struct OpenDir {
    dir: rustix::fs::Dir,
}

impl OpenDir {
    /// Opens the directory at `path` (not following a symlink there) and
    /// lists its names, sorted by their bytes.
    pub fn open(path: &Path) -> Result<(OpenDir, Vec<OsString>)> {
        use rustix::fs::{Mode, OFlags};
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::open(path, flags, Mode::empty()).at(path)?;
        let mut dir = rustix::fs::Dir::new(fd).at(path)?;
        let mut names = Vec::new();
        while let Some(entry) = dir.read() {
            let entry = entry.at(path)?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(OsString::from(std::ffi::OsStr::from_bytes(name)));
            }
        }
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        Ok((OpenDir { dir }, names))
    }

    /// `lstat` of the entry `name`; `path` (its full path) names it in errors.
    pub fn lstat(&self, name: &std::ffi::OsStr, path: &Path) -> Result<Stat> {
        let fd = self.dir.fd().at(path)?;
        rustix::fs::statat(fd, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
            .map(|st| Stat::from_raw(&st))
            .at(path)
    }
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
    pub fn is_excluded_cache(&self, dir: &Path) -> bool {
        self.exclude_caches && is_cache_dir(dir)
    }

    /// Whether a directory on device `dev` is entered, given the devices of
    /// the sources.
    pub fn enters_device(&self, dev: u64, source_devices: &[u64]) -> bool {
        !self.one_file_system || source_devices.contains(&dev)
    }
}

fn is_cache_dir(dir: &Path) -> bool {
    let mut head = [0u8; CACHEDIR_SIGNATURE.len()];
    std::fs::File::open(dir.join(CACHEDIR_TAG))
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
        let (open, names) = OpenDir::open(dir.path()).unwrap();
        assert_eq!(names, ["a", "b", "c", "d"]);
        assert_eq!(open.lstat("b".as_ref(), &dir.path().join("b")).unwrap().size, 1);
        assert_eq!(open.lstat("c".as_ref(), &dir.path().join("c")).unwrap().kind, SourceKind::Symlink);
        assert!(open.lstat("gone".as_ref(), &dir.path().join("gone")).is_err());
        assert!(OpenDir::open(&dir.path().join("d")).is_err(), "a symlink to a directory is not entered");
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
        fs::write(dir.path().join(CACHEDIR_TAG), "not a tag").unwrap();
        assert!(!f.is_excluded_cache(dir.path()));
        fs::write(dir.path().join(CACHEDIR_TAG), [CACHEDIR_SIGNATURE, b"\n# made by a test"].concat())
            .unwrap();
        assert!(f.is_excluded_cache(dir.path()));
    }
}
