//! The storage seam: every byte snap keeps in a repository goes through
//! [`Backend`]. Objects are immutable and content-named, so the trait needs
//! only create-only puts, whole and ranged gets, listing and removal; that is
//! what an S3-compatible store offers too.

mod cache;
pub mod local;
pub mod object;

use std::path::PathBuf;

use bytes::Bytes;

use crate::error::{Error, Result};

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

/// The error for an object of `len` bytes where at most `max` may be.
pub(crate) fn check_cap(kind: FileKind, name: &str, len: u64, max: usize) -> Result<()> {
    if len > max as u64 {
        return Err(Error::corrupt(
            format!("{} {name}", kind.describe()),
            format!("{len} bytes or more, larger than the limit of {max}: refused before reading it"),
        ));
    }
    Ok(())
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
pub trait LockGuard: Send + Sync {
    /// Whether no other process can have taken this lock for stale or
    /// removed it: called right before a commit (a snapshot written,
    /// anything deleted), which must not happen after an error
    /// ([`crate::Error::LockLost`] when the lock may have been lost).
    fn still_held(&self) -> Result<()>;

    /// The part of [`LockGuard::still_held`] that asks nothing of the
    /// store: whether this holder's own lease is still fresh. Enough
    /// between full checks in a loop of commits, since another process
    /// can take the lock for stale only after the lease has run out.
    fn lease_holds(&self) -> Result<()>;
}

/// Who holds the repository lock, as far as a look that takes no lock
/// can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LockState {
    /// No other snap process is using the repository.
    Free,
    /// Another snap process is using it (a backup, restore or other reader).
    Shared,
    /// Another snap process holds it exclusively (prune or repair).
    Exclusive,
    /// No process holds it exclusively; whether others share it cannot be
    /// seen from here.
    NotExclusive,
}

impl LockState {
    /// Whether another snap process is (or may be) using the repository.
    pub fn in_use(self) -> bool {
        self != LockState::Free
    }
}

/// Which locks `snap unlock` removes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unlock {
    /// Only locks whose holder is gone: a dead process of this kernel and
    /// pid namespace, or a lock the store shows not rewritten for far
    /// longer than its refresh interval.
    Stale,
    /// Every lock, whoever holds it (the user vouches that none is running).
    All,
}

/// The bytes of a ranged read, handed over in pieces as they arrive, so
/// that reading much of an object never holds all of it at once.
pub trait Pieces: Send {
    /// The next piece; `None` once there are no more. The pieces of a range
    /// may fall short of it or run past it: the reader checks.
    fn next_piece(&mut self) -> Result<Option<Bytes>>;
}

/// A range read whole, as one piece: what a backend without streaming gives.
pub(crate) struct Whole(pub(crate) Option<Bytes>);

impl Pieces for Whole {
    fn next_piece(&mut self) -> Result<Option<Bytes>> {
        Ok(self.0.take())
    }
}

/// One repository's storage.
pub trait Backend: Send + Sync {
    /// Where the repository is, for messages.
    fn location(&self) -> String;

    /// Where the repository is, as one name for one place: the canonical
    /// path of a local directory, the URL of a bucket and prefix. What
    /// this machine remembers about a repository is keyed by it too.
    fn place(&self) -> String {
        self.location()
    }

    /// Whether a repository config exists.
    fn exists(&self) -> Result<bool>;

    /// Whether nothing at all is stored there (a new or empty directory, a
    /// prefix without objects): the only place `init` makes a repository.
    fn is_empty(&self) -> Result<bool>;

    /// Prepares an empty repository (directories, permissions).
    fn create(&self) -> Result<()>;

    /// Stores `data` under `name` if no such object exists. On `Created`
    /// the object is complete and durable: a crash afterwards keeps it, and a
    /// crash before leaves nothing under `name`. Packs and snapshots are
    /// named by their content, so one found under the name with other bytes
    /// (a torn write) is replaced; the config is never replaced.
    /// The bytes are handed over (`Bytes` from a `Vec` is not a copy): a
    /// store keeps them while the request is in flight.
    fn put(&self, kind: FileKind, name: &str, data: Bytes) -> Result<Put>;

    /// Reads a whole object. A missing object is [`crate::Error::NotFound`].
    fn get(&self, kind: FileKind, name: &str) -> Result<Vec<u8>>;

    /// Reads a whole object of a kind with a size cap (config, key files,
    /// snapshots), refusing one larger than `max` bytes with
    /// [`crate::Error::Corrupt`] before reading it whole: a planted huge
    /// object must not be downloaded or held only to be rejected. This
    /// default (for wrappers) reads it whole and then checks; both real
    /// backends check the size first and never read past the cap.
    fn get_capped(&self, kind: FileKind, name: &str, max: usize) -> Result<Vec<u8>> {
        let bytes = self.get(kind, name)?;
        check_cap(kind, name, bytes.len() as u64, max)?;
        Ok(bytes)
    }

    /// Reads exactly `len` bytes at `offset`; a short object is an error.
    fn get_range(&self, kind: FileKind, name: &str, offset: u64, len: usize) -> Result<Vec<u8>>;

    /// Reads `len` bytes at `offset` in pieces as they arrive (one request
    /// on a remote store), for ranges too large to be worth holding whole.
    /// By default the range is read whole, as one piece.
    fn stream_range(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: u64,
    ) -> Result<Box<dyn Pieces + '_>> {
        let len = usize::try_from(len).map_err(|_| Error::InvalidInput(format!("a read of {len} bytes")))?;
        Ok(Box::new(Whole(Some(self.get_range(kind, name, offset, len)?.into()))))
    }

    /// Lists the objects of a kind as (name, size), in no particular order.
    fn list(&self, kind: FileKind) -> Result<Vec<(String, u64)>>;

    /// Removes an object; removing a missing object is not an error.
    fn remove(&self, kind: FileKind, name: &str) -> Result<()>;

    /// Removes what interrupted writes left behind (staging files); returns
    /// how many. Only safe under the exclusive lock, when no write is running.
    fn remove_leftovers(&self) -> Result<u64>;

    /// Takes the repository lock, failing at once if it conflicts.
    fn lock(&self, mode: LockMode) -> Result<Box<dyn LockGuard>>;

    /// Removes locks left by processes that are gone; returns a line about
    /// each lock removed.
    fn unlock(&self, which: Unlock) -> Result<Vec<String>>;

    /// Who holds the lock, found without taking it exclusively: even a
    /// brief exclusive lock taken to look would make another process's
    /// backup fail. By default a shared lock is tried and released, which
    /// tells an exclusive holder from none (a prune starting in that
    /// instant fails, as beside any reader); backends that can list their
    /// holders say more.
    fn lock_holders(&self) -> Result<LockState> {
        match self.lock(LockMode::Shared) {
            Ok(_probe) => Ok(LockState::NotExclusive),
            Err(Error::Locked { .. }) => Ok(LockState::Exclusive),
            Err(e) => Err(e),
        }
    }

    /// Where the local index database of the repository with this id lives
    /// (its directory is created).
    fn index_path(&self, repo_id: &str) -> Result<PathBuf>;

    /// Where whole tree packs are kept locally (its directory is created),
    /// for a store where a request costs far more than a disk read; `None`
    /// for a local repository, which reads its own packs as fast.
    fn tree_cache_dir(&self, _repo_id: &str) -> Result<Option<PathBuf>> {
        Ok(None)
    }

    /// How many reads are worth having in flight at once, when that is more
    /// than the CPU threads: a local disk gains nothing from more threads
    /// than cores (`None`), requests to a server mostly wait on the network.
    fn parallelism(&self) -> Option<usize> {
        None
    }

    /// How many packs are worth storing at once. Each costs a pack's worth
    /// of memory while it is on its way; a local disk writes one at a time
    /// as fast as several.
    fn puts_in_flight(&self) -> usize {
        1
    }
}

/// The relative name of an object: the same layout in a directory and in a
/// bucket, so a repository copied between them file by file stays valid.
///
/// ```text
/// config            the config object
/// data/<xx>/<id>    packs, fanned out by the first two hex digits
/// snapshots/<id>    snapshot manifests
/// keys/<id>         key files of an encrypted repository
/// ```
pub fn object_key(kind: FileKind, name: &str) -> Result<String> {
    check_name(kind, name)?;
    Ok(match kind {
        FileKind::Config => CONFIG.to_owned(),
        FileKind::Pack => format!("{}/{}/{name}", kind_dir(kind), &name[..2]),
        FileKind::Snapshot | FileKind::Key => format!("{}/{name}", kind_dir(kind)),
    })
}

/// The directory a kind lives in (empty for the config, at the top).
pub fn kind_dir(kind: FileKind) -> &'static str {
    match kind {
        FileKind::Config => "",
        FileKind::Pack => "data",
        FileKind::Snapshot => "snapshots",
        FileKind::Key => "keys",
    }
}

/// The config's name.
pub const CONFIG: &str = "config";

/// Whether `s` is an id as snap writes it in names: 64 lower-case hex
/// digits (object names, and the repository id naming local caches).
pub fn is_object_id(s: &str) -> bool {
    s.len() == 64 && is_lower_hex(s)
}

/// Whether `s` is lower-case hex digits only.
pub(crate) fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Object names are fixed words or 64 hex digits; anything else could
/// escape the repository, so it is refused.
pub fn check_name(kind: FileKind, name: &str) -> Result<()> {
    let ok = match kind {
        FileKind::Config => name == CONFIG,
        FileKind::Pack | FileKind::Snapshot | FileKind::Key => is_object_id(name),
    };
    if ok { Ok(()) } else { Err(Error::InvalidInput(format!("bad {} name {name:?}", kind.describe()))) }
}

/// Where a repository is: a directory, or a bucket and key prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A directory on a local filesystem.
    Local(PathBuf),
    /// `s3://BUCKET/PREFIX` on an S3-compatible store.
    S3(object::S3Url),
}

impl Location {
    /// Reads `s3://BUCKET[/PREFIX]` as an object store and anything else as
    /// a path (which need not be UTF-8).
    pub fn parse(s: &std::ffi::OsStr) -> Result<Self> {
        match s.to_str().and_then(|s| s.strip_prefix("s3://")) {
            Some(rest) => object::S3Url::parse(rest).map(Location::S3),
            None => Ok(Location::Local(PathBuf::from(s))),
        }
    }

    /// The directory, for a local repository.
    pub fn local_path(&self) -> Option<&std::path::Path> {
        match self {
            Location::Local(p) => Some(p),
            Location::S3(_) => None,
        }
    }

    /// Opens the storage (no request is made yet).
    pub fn backend(&self) -> Result<Box<dyn Backend>> {
        Ok(match self {
            Location::Local(p) => Box::new(local::LocalBackend::new(p)),
            Location::S3(url) => Box::new(object::ObjectBackend::s3(url)?),
        })
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::S3(url) => write!(f, "{url}"),
        }
    }
}

/// Every piece of a streamed range, in order.
#[cfg(test)]
pub(crate) fn all_pieces(mut pieces: Box<dyn Pieces + '_>) -> Result<Vec<Bytes>> {
    std::iter::from_fn(|| pieces.next_piece().transpose()).collect()
}
