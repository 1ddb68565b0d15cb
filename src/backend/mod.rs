//! The storage seam: every byte snap keeps in a repository goes through
//! [`Backend`]. Objects are immutable and content-named, so the trait needs
//! only create-only puts, whole and ranged gets, listing and removal; that is
//! what an S3-compatible store offers too.

pub mod local;

use std::path::PathBuf;

use crate::error::Result;

/// The kinds of object a repository holds, each in its own namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// The repository config (a single object named `config`).
    Config,
    /// Pack files, named by the hex BLAKE3 of their bytes.
    Pack,
    /// Snapshot manifests, named by the hex BLAKE3 of their bytes.
    Snapshot,
    /// Key files of an encrypted repository, named by the hex BLAKE3 of their bytes.
    Key,
}

impl FileKind {
    /// A word for messages.
    pub fn describe(self) -> &'static str {
        match self {
            FileKind::Config => "config",
            FileKind::Pack => "pack",
            FileKind::Snapshot => "snapshot",
            FileKind::Key => "key",
        }
    }
}

/// Whether a create-only put made a new object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Put {
    /// The object was created and is durable.
    Created,
    /// An object of that name already existed and was left untouched.
    Existed,
}

/// Lock modes. Backups and reads share; prune and repair are exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockMode {
    /// Many holders at once.
    Shared,
    /// One holder, no shared holders.
    Exclusive,
}

/// Held while a lock is held; dropping it releases the lock.
pub trait LockGuard: Send + Sync {}

/// One repository's storage.
pub trait Backend: Send + Sync {
    /// Where the repository is, for messages.
    fn location(&self) -> String;

    /// Whether a repository config exists.
    fn exists(&self) -> Result<bool>;

    /// Prepares an empty repository (directories, permissions).
    fn create(&self) -> Result<()>;

    /// Stores `data` under `name` if no such object exists. On `Created`
    /// the object is complete and durable: a crash afterwards keeps it, and a
    /// crash before leaves nothing under `name`. Packs and snapshots are
    /// named by their content, so one found under the name with other bytes
    /// (a torn write) is replaced; the config is never replaced.
    fn put(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<Put>;

    /// Reads a whole object. A missing object is [`crate::Error::NotFound`].
    fn get(&self, kind: FileKind, name: &str) -> Result<Vec<u8>>;

    /// Reads exactly `len` bytes at `offset`; a short object is an error.
    fn get_range(&self, kind: FileKind, name: &str, offset: u64, len: usize) -> Result<Vec<u8>>;

    /// Lists the objects of a kind as (name, size), in no particular order.
    fn list(&self, kind: FileKind) -> Result<Vec<(String, u64)>>;

    /// Removes an object; removing a missing object is not an error.
    fn remove(&self, kind: FileKind, name: &str) -> Result<()>;

    /// Removes what interrupted writes left behind (staging files); returns
    /// how many. Only safe under the exclusive lock, when no write is running.
    fn remove_leftovers(&self) -> Result<u64>;

    /// Takes the repository lock, failing at once if it conflicts.
    fn lock(&self, mode: LockMode) -> Result<Box<dyn LockGuard>>;

    /// Where this repository's local index database lives.
    fn index_path(&self) -> PathBuf;
}
