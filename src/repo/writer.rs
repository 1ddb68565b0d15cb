//! The write path for blobs. Many threads call [`BlobWriter::save`]; each new
//! blob is sealed (compressed and checked) outside any lock, then appended to
//! the open pack of its kind. A full pack is stored durably and only then
//! are its index rows committed. Dedup consults blobs pending in this run
//! first, then the index, which only ever names durable packs.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::Repository;
use crate::backend::FileKind;
use crate::error::Result;
use crate::format::tree::Tree;
use crate::id::{BlobId, BlobKind, ChunkId, TreeId};
use crate::pack::{self, FinishedPack, PackWriter};

/// Counters of what a writer added to the repository.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// New blobs stored.
    pub blobs: u64,
    /// Their raw bytes.
    pub raw_bytes: u64,
    /// Their stored bytes.
    pub stored_bytes: u64,
    /// Packs written.
    pub packs: u64,
}

struct State {
    pending: HashSet<BlobId>,
    chunks: PackWriter,
    trees: PackWriter,
}

/// Adds blobs to a repository; call [`BlobWriter::finish`] before
/// referring to them from a snapshot.
pub struct BlobWriter<'r> {
    repo: &'r Repository,
    /// False when repacking: the blobs being moved are indexed already.
    dedup_against_index: bool,
    state: Mutex<State>,
    blobs: AtomicU64,
    raw_bytes: AtomicU64,
    stored_bytes: AtomicU64,
    packs: AtomicU64,
}

impl<'r> BlobWriter<'r> {
    /// A writer with empty packs.
    pub fn new(repo: &'r Repository) -> Self {
        Self::with_dedup(repo, true)
    }

    /// A writer that stores every blob given once, even if the index
    /// already has it elsewhere: for moving blobs out of packs to delete.
    pub fn repacking(repo: &'r Repository) -> Self {
        Self::with_dedup(repo, false)
    }

    fn with_dedup(repo: &'r Repository, dedup_against_index: bool) -> Self {
        BlobWriter {
            repo,
            dedup_against_index,
            state: Mutex::new(State {
                pending: HashSet::new(),
                chunks: empty_pack(repo),
                trees: empty_pack(repo),
            }),
            blobs: AtomicU64::new(0),
            raw_bytes: AtomicU64::new(0),
            stored_bytes: AtomicU64::new(0),
            packs: AtomicU64::new(0),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the blob is already stored or on its way in this run.
    pub fn is_known(&self, blob: &BlobId) -> Result<bool> {
        if self.state().pending.contains(blob) {
            return Ok(true);
        }
        self.repo.with_index(|i| i.contains(blob))
    }

    /// Which of these chunks the index holds, asked in one read transaction
    /// (pending blobs are not counted: ask [`BlobWriter::is_known`]).
    pub fn indexed_chunks(&self, chunks: impl Iterator<Item = ChunkId>) -> Result<HashSet<ChunkId>> {
        self.repo.with_index(|index| {
            index.in_read_transaction(|index| {
                let mut found = HashSet::new();
                for c in chunks {
                    if index.contains(&BlobId::Chunk(c))? {
                        found.insert(c);
                    }
                }
                Ok(found)
            })
        })
    }

    /// Stores `raw` as `blob` unless it is known; returns whether it was new.
    pub fn save(&self, blob: BlobId, raw: &[u8]) -> Result<bool> {
        {
            let mut state = self.state();
            if state.pending.contains(&blob)
                || (self.dedup_against_index && self.repo.with_index(|i| i.contains(&blob))?)
            {
                return Ok(false);
            }
            state.pending.insert(blob);
        }
        let sealed = pack::seal(self.repo.keys(), blob, raw, self.repo.config().compression.zstd_level)?;
        self.blobs.fetch_add(1, Ordering::Relaxed);
        self.raw_bytes.fetch_add(raw.len() as u64, Ordering::Relaxed);
        self.stored_bytes.fetch_add(sealed.stored.len() as u64, Ordering::Relaxed);
        let full = {
            let mut state = self.state();
            let writer = match blob.kind() {
                BlobKind::Chunk => &mut state.chunks,
                BlobKind::Tree => &mut state.trees,
            };
            writer.add(sealed);
            writer.is_full().then(|| std::mem::replace(writer, empty_pack(self.repo)))
        };
        if let Some(writer) = full {
            self.store(writer.finish(self.repo.keys())?)?;
        }
        Ok(true)
    }

    /// Makes the pack durable, then indexes it: never the other way round.
    fn store(&self, pack: FinishedPack) -> Result<()> {
        let FinishedPack { id, bytes, entries } = pack;
        let size = bytes.len() as u64;
        self.repo.backend().put(FileKind::Pack, &id.to_hex(), bytes.into())?;
        crate::crash::point("backup-after-pack-write");
        self.repo.with_index(|i| i.add_pack(&id, size, &entries))?;
        crate::crash::point("backup-after-index-commit");
        self.packs.fetch_add(1, Ordering::Relaxed);
        // The index answers for these blobs now, so the pending set stays
        // as small as the open packs instead of growing with the run (a
        // million-file backup held a million ids). A repacking writer does
        // not ask the index, so it keeps them.
        if self.dedup_against_index {
            let mut state = self.state();
            for e in &entries {
                state.pending.remove(&e.blob);
            }
        }
        Ok(())
    }

    /// Names a chunk with the repository's keys and stores it unless known.
    pub fn save_chunk(&self, data: &[u8]) -> Result<ChunkId> {
        let id = self.repo.keys().hasher().chunk_id(data);
        self.save(BlobId::Chunk(id), data)?;
        Ok(id)
    }

    /// Encodes a directory node, names it and stores it unless known.
    pub fn save_tree(&self, tree: &Tree) -> Result<TreeId> {
        self.save_tree_known(tree, None)
    }

    /// As [`BlobWriter::save_tree`]; a node whose id is `stored` (one read
    /// from this repository, so indexed) is taken as known without a lookup.
    pub fn save_tree_known(&self, tree: &Tree, stored: Option<TreeId>) -> Result<TreeId> {
        let bytes = tree.encode();
        let id = self.repo.keys().hasher().tree_id(&bytes);
        if stored != Some(id) {
            self.save(BlobId::Tree(id), &bytes)?;
        }
        Ok(id)
    }

    /// Stores the partly filled packs; afterwards every saved blob is durable
    /// and indexed.
    pub fn finish(self) -> Result<WriteStats> {
        let open = {
            let mut state = self.state();
            [
                std::mem::replace(&mut state.chunks, empty_pack(self.repo)),
                std::mem::replace(&mut state.trees, empty_pack(self.repo)),
            ]
        };
        for writer in open.into_iter().filter(|w| !w.is_empty()) {
            self.store(writer.finish(self.repo.keys())?)?;
        }
        Ok(WriteStats {
            blobs: self.blobs.load(Ordering::Relaxed),
            raw_bytes: self.raw_bytes.load(Ordering::Relaxed),
            stored_bytes: self.stored_bytes.load(Ordering::Relaxed),
            packs: self.packs.load(Ordering::Relaxed),
        })
    }
}

fn empty_pack(repo: &Repository) -> PackWriter {
    PackWriter::new(repo.config().pack_size as usize, repo.keys())
}
