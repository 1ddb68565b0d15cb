//! The source side: what a path on the local filesystem is, its metadata and
//! its directory listing, read without following symlinks. Backups read the
//! file system only through here and through `ops::backup`'s file reader.

use std::ffi::OsString;
use std::fs;
use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::error::{IoContext, Result};
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
    /// Converts `std` metadata.
    pub fn from_metadata(m: &fs::Metadata) -> Self {
        let ft = m.file_type();
        let kind = if ft.is_file() {
            SourceKind::File
        } else if ft.is_dir() {
            SourceKind::Dir
        } else if ft.is_symlink() {
            SourceKind::Symlink
        } else if ft.is_fifo() {
            SourceKind::Fifo
        } else if ft.is_char_device() {
            SourceKind::CharDevice
        } else if ft.is_block_device() {
            SourceKind::BlockDevice
        } else {
            SourceKind::Socket
        };
        Stat {
            kind,
            size: m.size(),
            rdev: m.rdev(),
            meta: Metadata {
                mode: m.mode() & 0o7777,
                uid: m.uid(),
                gid: m.gid(),
                mtime: Timestamp { secs: m.mtime(), nanos: m.mtime_nsec() as u32 },
                ctime: Timestamp { secs: m.ctime(), nanos: m.ctime_nsec() as u32 },
                inode: m.ino(),
                dev: m.dev(),
                nlink: m.nlink(),
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
    Ok(Stat::from_metadata(&fs::symlink_metadata(path).at(path)?))
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

/// The names in a directory, sorted by their bytes.
pub fn list_dir(path: &Path) -> Result<Vec<OsString>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(path).at(path)? {
        names.push(entry.at(path)?.file_name());
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
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
        assert_eq!(list_dir(dir.path()).unwrap(), ["a", "b", "c"]);
        assert_eq!(lstat(&dir.path().join("a")).unwrap().kind, SourceKind::Dir);
        assert_eq!(lstat(&dir.path().join("b")).unwrap().size, 1);
        assert_eq!(lstat(&dir.path().join("c")).unwrap().kind, SourceKind::Symlink);
    }
}
