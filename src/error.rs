//! The library's one error type. Variants are named for what the user can do
//! about them; the path or object that failed is a field, not a string, so
//! callers (verify, the CLI) can say precisely what is affected.

use std::path::PathBuf;

use crate::id::BlobId;

/// Everything that can go wrong inside `snap`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call on a path failed. The OS error is part of
    /// the message, not a separate source, so it is said once.
    #[error("{}: {error}", path.display())]
    Io { path: PathBuf, error: std::io::Error },
    /// No repository at this location (a path or an `s3://` URL).
    #[error("no snap repository at {0} (run `snap init` first)")]
    RepoNotFound(String),
    /// `init` on a location that already holds a repository.
    #[error("a repository already exists at {0}")]
    RepoExists(String),
    /// The location exists but is not a snap repository.
    #[error("{location} is not a snap repository: {detail}")]
    NotARepository { location: String, detail: String },
    /// The repository was written by a newer snap, or uses a feature this one lacks.
    #[error("repository format {found} is not supported by this snap (supports {supported}); upgrade snap")]
    UnsupportedFormat { found: String, supported: String },
    /// Another process holds a lock that conflicts with this operation.
    #[error("repository is locked by another snap process ({detail})")]
    Locked { detail: String },
    /// Bytes read back from the repository are damaged: they were read and
    /// do not decode, or do not match their id. Proves damage.
    #[error("corrupt {object}: {detail}")]
    Corrupt { object: String, detail: String },
    /// A blob the repository needs is in no pack present: the index, which
    /// is brought in line with the storage listing on open, has no copy of
    /// it. Proves damage.
    #[error("{0} not found")]
    Missing(BlobId),
    /// An object was written by a newer snap. Proves nothing about it: a
    /// newer snap reads it.
    #[error("{object} is of a newer format than this snap reads ({detail}); upgrade snap")]
    NewerObject { object: String, detail: String },
    /// The storage handed back fewer or other bytes than asked for (a flaky
    /// disk, a misbehaving server). Proves nothing: the object may be whole.
    #[error("could not read {object}: {detail}")]
    ReadFailed { object: String, detail: String },
    /// A command that acts on damage stopped because something it needed
    /// could not be read, so whether it is damaged is unknown.
    #[error("cannot tell, nothing changed: {0}; try again once the storage reads reliably")]
    CannotTell(String),
    /// An object the repository refers to does not exist.
    #[error("{kind} {id} not found")]
    NotFound { kind: &'static str, id: String },
    /// A snapshot prefix matched more than one snapshot.
    #[error("snapshot prefix {prefix:?} is ambiguous ({count} snapshots match)")]
    AmbiguousPrefix { prefix: String, count: usize },
    /// The user asked for something that cannot be done.
    #[error("{0}")]
    InvalidInput(String),
    /// A command that would act on damage stopped before changing
    /// anything: damage was proved, and what to drop or keep is for the
    /// user to decide (`verify`, then `repair`).
    #[error("{command} refused, nothing was changed: {why}; run `snap verify`")]
    DamageFound { command: &'static str, why: String },
    /// A command stopped before changing anything because going on could
    /// cost data the user would want (a snapshot dated in the future would
    /// make keep rules forget every real one, say).
    #[error("{command} refused, nothing was changed: {why}")]
    Refused { command: &'static str, why: String },
    /// Encryption could not be done (no randomness, a key cannot be made).
    #[error("encryption: {0}")]
    Crypto(String),
    /// A password is needed (to open an encrypted repository, or for a new
    /// key) and none was given; the text says where it can come from.
    #[error("a password is needed: {0}")]
    PasswordRequired(String),
    /// No key file of the repository opens with the password given.
    #[error("wrong password: no key of this repository opens with it")]
    WrongPassword,
    /// Work given up because an earlier write to the repository failed;
    /// that failure is what the operation reports.
    #[error("stopped after a failed write to the repository")]
    Stopped,
    /// The storage failed a request (network, server, permissions).
    #[error("storage {location}: {detail}")]
    Storage { location: String, detail: String },
    /// A restore's target file system is full (space, inodes or quota).
    /// What was written is whole; the rest was not written at all. The
    /// counts are of files, hardlinks, symlinks and nodes.
    #[error(
        "restore stopped, the target is full ({detail}, writing {}): {whole} entries restored whole, \
         {left} not written",
        path.display()
    )]
    TargetFull { path: PathBuf, detail: String, whole: u64, left: u64 },
    /// The local index database holds rows that make no sense. Proves
    /// nothing about the repository: the index is a cache of the packs.
    #[error("index database: {0}; run `snap repair index` to rebuild it from the packs")]
    IndexDamaged(String),
    /// The SQLite index failed.
    #[error("index database: {0}{hint}", hint = index_hint(.0))]
    Index(rusqlite::Error),
    /// The repository lock may have been taken for stale by another
    /// process (a pause, a suspend, failed refreshes, a removed lock object),
    /// so what would have been committed was not.
    #[error(
        "the repository lock may have been lost ({detail}); stopped before committing: no snapshot was written and nothing more was deleted"
    )]
    LockLost { detail: String },
    /// A tree too deep, or naming shared subtrees too often, to walk (see
    /// `tree::Guard`): refused as hostile. Proves no damage (every node may
    /// decode), so nothing is dropped for it.
    #[error("{path}: {detail}")]
    TreeLimit { path: String, detail: String },
}

/// By hand rather than `#[from]`, which would also make the SQLite error
/// the source and have it said twice.
impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Index(e)
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), error: source }
    }

    /// A decode failure of a named repository object.
    pub fn corrupt(object: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        Error::Corrupt { object: object.into(), detail: detail.to_string() }
    }

    /// Storage that handed back other bytes than asked for.
    pub fn read_failed(object: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        Error::ReadFailed { object: object.into(), detail: detail.to_string() }
    }

    /// The message without the name of the object or path, for reports
    /// that already name it.
    pub fn detail(&self) -> String {
        match self {
            Error::Corrupt { detail, .. } | Error::ReadFailed { detail, .. } => detail.clone(),
            Error::Missing(_) => "not found in any pack present".to_owned(),
            Error::Io { error, .. } => error.to_string(),
            other => other.to_string(),
        }
    }

    /// Converts a decoder error about `object`: [`Error::NewerObject`] for
    /// a newer format version, else [`Error::Corrupt`].
    pub fn decode(object: impl Into<String>, err: DecodeError) -> Self {
        match err {
            newer @ (DecodeError::NewerVersion { .. } | DecodeError::Unknown { .. }) => {
                Error::NewerObject { object: object.into(), detail: newer.to_string() }
            }
            other => Error::corrupt(object, other),
        }
    }

    /// Whether this error proves the object it concerns damaged or missing
    /// (rule 1 of DESIGN.md). Only such an error may lead a command to drop,
    /// rewrite or delete anything; every other error (I/O, storage, network,
    /// a newer format, a lock) leaves the object's state unknown.
    pub fn proves_damage(&self) -> bool {
        matches!(self, Error::Corrupt { .. } | Error::Missing(_))
    }
}

/// Where to look when the index cannot be written: SQLite names neither
/// the file nor the disk.
fn index_hint(e: &rusqlite::Error) -> &'static str {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull | rusqlite::ErrorCode::SystemIoFailure) => {
            " (the index is kept in the cache directory, $XDG_CACHE_HOME/snap or ~/.cache/snap: is its disk full \
             or failing?)"
        }
        _ => "",
    }
}

/// Attaches a path to an `io::Result`.
pub trait IoContext<T> {
    /// Maps the error to [`Error::Io`] naming `path`.
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}

impl<T> IoContext<T> for rustix::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(std::io::Error::from).at(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_or_failing_disk_under_the_index_says_where_the_index_is() {
        let sqlite =
            |code| Error::Index(rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None));
        for code in [rusqlite::ffi::SQLITE_FULL, rusqlite::ffi::SQLITE_IOERR] {
            assert!(sqlite(code).to_string().contains("cache directory"), "{}", sqlite(code));
        }
        assert!(!sqlite(rusqlite::ffi::SQLITE_BUSY).to_string().contains("cache directory"));
    }
}

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("truncated: need {need} bytes, have {have}")]
    Truncated { need: usize, have: usize },
    #[error("bad magic {found:?} (expected {expected:?})")]
    BadMagic { found: [u8; 4], expected: [u8; 4] },
    /// A version this snap does not know yet: a newer snap wrote it. Says
    /// which version of what, so that a tree or key file is not taken for
    /// the repository's format.
    #[error("{what} version {found} is newer than this snap supports ({supported})")]
    NewerVersion { what: &'static str, found: u32, supported: u32 },
    /// A code this snap does not know in an otherwise sound object (its
    /// checksum holds): a newer snap wrote it.
    #[error("unknown {what} {code}")]
    Unknown { what: &'static str, code: u8 },
    #[error("encryption byte {0} does not match the repository's scheme")]
    UnknownEncryption(u8),
    #[error("checksum mismatch")]
    Checksum,
    #[error("authentication failed: the bytes were altered or sealed under another key or as another object")]
    Authentication,
    #[error("{what} of {len} bytes exceeds the limit of {max}")]
    TooLarge { what: &'static str, len: u64, max: u64 },
    #[error("invalid {what}: {detail}")]
    Invalid { what: &'static str, detail: String },
    #[error("malformed encoding: {0}")]
    Encoding(String),
}

impl DecodeError {
    /// Versions count from 1: one above `supported` was written by a newer
    /// snap; 0 was written by none.
    pub(crate) fn check_version(what: &'static str, found: u32, supported: u32) -> Result<(), DecodeError> {
        match found {
            0 => Err(DecodeError::invalid(what, "version 0")),
            newer if newer > supported => Err(DecodeError::NewerVersion { what, found, supported }),
            _ => Ok(()),
        }
    }

    pub(crate) fn invalid(what: &'static str, detail: impl Into<String>) -> Self {
        DecodeError::Invalid { what, detail: detail.into() }
    }
}

impl From<postcard::Error> for DecodeError {
    fn from(e: postcard::Error) -> Self {
        DecodeError::Encoding(e.to_string())
    }
}
