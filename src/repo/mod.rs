//! The repository: config, lock, index and the two legal paths for data.
//! Writing goes packs (durable) -> index rows -> snapshot file, in that order
//! and only that order (see `writer.rs` and `snapshots.rs`); reading goes id
//! -> index -> byte range of a pack -> decode and check against the id.

mod snapshots;
mod sync;
mod writer;

pub use snapshots::SnapshotList;
pub use sync::SyncReport;
pub use writer::{BlobWriter, WriteStats};

use std::sync::Mutex;

use crate::backend::{Backend, FileKind, LockGuard, LockMode, Put};
use crate::chunk::Chunker;
use crate::error::{Error, Result};
use crate::format::DecodeError;
use crate::format::config::Config;
use crate::format::tree::Tree;
use crate::id::{BlobId, TreeId};
use crate::index::{BlobLocation, Index};
use crate::pack;

/// A repository object that could not be read, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Unreadable {
    /// The object's name.
    pub name: String,
    /// What went wrong.
    pub error: String,
}

/// An open repository holding its lock for as long as it lives.
pub struct Repository {
    backend: Box<dyn Backend>,
    config: Config,
    index: Mutex<Index>,
    sync: SyncReport,
    _lock: Box<dyn LockGuard>,
}

impl Repository {
    /// Creates a new repository and opens it.
    pub fn init(backend: Box<dyn Backend>) -> Result<Self> {
        let location = backend.location();
        if backend.exists()? {
            return Err(Error::RepoExists(location.into()));
        }
        backend.create()?;
        let mut id = [0u8; 32];
        getrandom::fill(&mut id).map_err(|e| Error::InvalidInput(format!("no randomness: {e}")))?;
        if backend.put(FileKind::Config, "config", &Config::new(id).encode())? == Put::Existed {
            return Err(Error::RepoExists(location.into()));
        }
        Self::open(backend, LockMode::Shared)
    }

    /// Opens an existing repository, takes the lock and brings the index up
    /// to date with the packs actually present.
    pub fn open(backend: Box<dyn Backend>, mode: LockMode) -> Result<Self> {
        let config = read_config(backend.as_ref())?;
        let lock = backend.lock(mode)?;
        let index = Index::open(&backend.index_path()).map_err(|e| match e {
            Error::Index(inner) => Error::corrupt(
                "index database",
                format!("{inner}; run `snap repair index` to rebuild it from the packs"),
            ),
            other => other,
        })?;
        let mut repo = Repository {
            backend,
            config,
            index: Mutex::new(index),
            sync: SyncReport::default(),
            _lock: lock,
        };
        repo.sync = repo.sync_index()?;
        Ok(repo)
    }

    /// The repository config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The storage backend.
    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// What opening found out about packs and index.
    pub fn sync_report(&self) -> &SyncReport {
        &self.sync
    }

    /// A chunker with this repository's parameters.
    pub fn chunker(&self) -> Chunker {
        Chunker::new(self.config.chunker)
    }

    /// Runs `f` with the index locked. The lock ends with the call, so it
    /// can never be held across other repository work (a guard kept alive
    /// by a `for` or `match` scrutinee once deadlocked prune).
    pub fn with_index<T>(&self, f: impl FnOnce(&mut Index) -> T) -> T {
        f(&mut self.index.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Where a blob is stored; an error if it is not indexed.
    pub fn locate(&self, blob: &BlobId) -> Result<BlobLocation> {
        self.with_index(|i| i.lookup(blob))?.ok_or_else(|| Error::NotFound {
            kind: match blob {
                BlobId::Chunk(_) => "chunk",
                BlobId::Tree(_) => "tree",
            },
            id: blob.as_bytes().iter().map(|b| format!("{b:02x}")).collect(),
        })
    }

    /// Reads, decodes and checks one blob.
    pub fn read_blob(&self, blob: &BlobId) -> Result<Vec<u8>> {
        let loc = self.locate(blob)?;
        let stored = self.backend.get_range(
            FileKind::Pack,
            &loc.pack.to_hex(),
            u64::from(loc.entry.offset),
            loc.entry.stored_len as usize,
        )?;
        pack::open(&loc.entry, &stored)
    }

    /// Loads and decodes a directory node.
    pub fn load_tree(&self, id: &TreeId) -> Result<Tree> {
        let raw = self.read_blob(&BlobId::Tree(*id))?;
        Tree::decode(&raw).map_err(|e| Error::decode(format!("tree {id}"), e))
    }
}

impl Repository {
    /// Rebuilds the index from the packs alone, under the exclusive lock:
    /// the old database is deleted first, so nothing it said survives.
    pub fn rebuild_index(backend: Box<dyn Backend>) -> Result<SyncReport> {
        read_config(backend.as_ref())?;
        let lock = backend.lock(LockMode::Exclusive)?;
        Index::destroy(&backend.index_path())?;
        drop(lock);
        let repo = Self::open(backend, LockMode::Exclusive)?;
        Ok(repo.sync)
    }
}

/// Reads and checks the config. Done before anything is locked, created or
/// deleted, so a directory that is not a snap repository (or one of a newer
/// format) is left exactly as it was.
pub fn read_config(backend: &dyn Backend) -> Result<Config> {
    let location = backend.location();
    if !backend.exists()? {
        return Err(Error::RepoNotFound(location.into()));
    }
    Config::decode(&backend.get(FileKind::Config, "config")?).map_err(|e| match e {
        DecodeError::NewerVersion(v) => Error::UnsupportedFormat {
            found: format!("version {v}"),
            supported: format!("version {}", crate::format::FORMAT_VERSION),
        },
        other => Error::NotARepository { path: location.into(), detail: format!("config: {other}") },
    })
}
