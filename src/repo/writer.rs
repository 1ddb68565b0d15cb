//! The write path for blobs. Many threads call [`BlobWriter::save`]; each new
//! blob is sealed (compressed and checked) outside any lock, then appended to
//! the open pack of its kind. A full pack goes to a few storing threads of
//! its own, so the threads that chunk never wait on a disk flush or an
//! upload, and only that many packs are ever on their way at once. A pack is
//! stored durably and only then are its index rows committed. Dedup consults
//! blobs pending in this run first, then the index, which only ever names
//! durable packs.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Condvar, Mutex, MutexGuard};

use super::Repository;
use crate::backend::FileKind;
use crate::error::{Error, Result};
use crate::format::tree::{Encoded, Tree};
use crate::id::{BlobId, BlobKind, ChunkId, PackId, TreeId};
use crate::pack::{self, FinishedPack, PackWriter};

/// Counters of what a writer added to the repository.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// New blobs stored.
    pub blobs: u64,
    /// Their raw bytes.
    pub raw_bytes: u64,
    /// Their stored bytes.
    pub stored_bytes: u64,
    /// Packs written, with their sizes.
    pub packs: Vec<(PackId, u64)>,
}

struct State {
    pending: HashSet<BlobId>,
    chunks: PackWriter,
    trees: PackWriter,
}

/// What the threads that fill packs and the threads that store them share.
struct Shared<'r> {
    repo: &'r Repository,
    /// False when repacking: the blobs being moved are indexed already.
    dedup_against_index: bool,
    state: Mutex<State>,
    blobs: AtomicU64,
    raw_bytes: AtomicU64,
    stored_bytes: AtomicU64,
    packs: Mutex<Vec<(PackId, u64)>>,
    /// Set when a pack could not be stored: nothing more is worth sealing.
    failed: AtomicBool,
    /// The first such failure, which is what the run reports.
    failure: Mutex<Option<Error>>,
    /// Full packs waiting for a storing thread to take them, and the signal
    /// that one was taken.
    handing_over: Mutex<usize>,
    taken: Condvar,
}

/// Proof that every blob a writer saved is durable and indexed: what
/// [`BlobWriter::write`] hands back when it succeeds, and the only way to
/// commit a snapshot ([`Durable::save_snapshot`]), so that "packs before
/// the snapshot that names them" is a rule of the types, not of each
/// caller.
pub struct Durable<'r> {
    pub(super) repo: &'r Repository,
}

/// Adds blobs to a repository, inside [`BlobWriter::write`].
pub struct BlobWriter<'a> {
    shared: &'a Shared<'a>,
    /// Hands full packs to the storing threads; it holds none itself, so a
    /// thread with a full pack waits until one of them is free.
    to_store: SyncSender<FinishedPack>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<'a> BlobWriter<'a> {
    /// Runs `work` with a writer, then stores the partly filled packs; when
    /// this returns `Ok`, every blob saved is durable and indexed, so a
    /// snapshot may refer to it. A pack that could not be stored fails the
    /// whole run with its error.
    pub fn write<'r, R>(
        repo: &'r Repository,
        work: impl FnOnce(&BlobWriter<'_>) -> Result<R>,
    ) -> Result<(R, WriteStats, Durable<'r>)> {
        let (out, stats) = run(repo, true, work)?;
        Ok((out, stats, Durable { repo }))
    }

    /// As [`BlobWriter::write`], but every blob given is stored once even if
    /// the index already has it elsewhere: for moving blobs out of packs to
    /// delete.
    pub fn repack<R>(
        repo: &Repository,
        work: impl FnOnce(&BlobWriter<'_>) -> Result<R>,
    ) -> Result<(R, WriteStats)> {
        run(repo, false, work)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.shared.state)
    }

    pub(super) fn repo(&self) -> &'a Repository {
        self.shared.repo
    }

    /// Whether the blob is already stored or on its way in this run.
    pub fn is_known(&self, blob: &BlobId) -> Result<bool> {
        if self.state().pending.contains(blob) {
            return Ok(true);
        }
        self.repo().with_index(|i| i.contains(blob))
    }

    /// Which of these chunks the index holds, asked in one read transaction
    /// (pending blobs are not counted: ask [`BlobWriter::is_known`]).
    pub fn indexed_chunks(&self, chunks: impl Iterator<Item = ChunkId>) -> Result<HashSet<ChunkId>> {
        let found = self.repo().contains_many(chunks.map(BlobId::Chunk))?;
        Ok(found.into_iter().filter_map(|b| b.as_chunk()).collect())
    }

    /// Stores `raw` as `blob` unless it is known; returns whether it was new.
    pub fn save(&self, blob: BlobId, raw: &[u8]) -> Result<bool> {
        let shared = self.shared;
        if shared.failed.load(Ordering::Relaxed) {
            return Err(Error::Stopped);
        }
        {
            let mut state = self.state();
            if state.pending.contains(&blob)
                || (shared.dedup_against_index && self.repo().with_index(|i| i.contains(&blob))?)
            {
                return Ok(false);
            }
            state.pending.insert(blob);
        }
        self.wait_while_handing_over();
        let repo = self.repo();
        let sealed = pack::seal(repo.keys(), blob, raw, repo.config().compression.zstd_level)?;
        shared.blobs.fetch_add(1, Ordering::Relaxed);
        shared.raw_bytes.fetch_add(raw.len() as u64, Ordering::Relaxed);
        shared.stored_bytes.fetch_add(sealed.stored.len() as u64, Ordering::Relaxed);
        let full = {
            let mut state = self.state();
            let writer = match blob.kind() {
                BlobKind::Chunk => &mut state.chunks,
                BlobKind::Tree => &mut state.trees,
            };
            writer.add(sealed);
            writer.is_full().then(|| std::mem::replace(writer, empty_pack(repo)))
        };
        if let Some(writer) = full {
            self.hand_over(writer)?;
        }
        Ok(true)
    }

    /// Finishes a pack and waits for a storing thread to take it.
    fn hand_over(&self, writer: PackWriter) -> Result<()> {
        let pack = writer.finish(self.repo().keys())?;
        *lock(&self.shared.handing_over) += 1;
        // Fails only when every storing thread is gone, which they are not
        // before this writer is dropped unless one panicked.
        let sent = self.to_store.send(pack).map_err(|_| Error::Stopped);
        *lock(&self.shared.handing_over) -= 1;
        self.shared.taken.notify_all();
        sent
    }

    /// While a full pack waits for a storing thread, sealing more blobs
    /// would only fill another pack to wait beside it: storage is the
    /// bottleneck then, and each waiting pack holds its 16 MiB.
    fn wait_while_handing_over(&self) {
        let waiting = lock(&self.shared.handing_over);
        drop(self.shared.taken.wait_while(waiting, |n| *n > 0).unwrap_or_else(|p| p.into_inner()));
    }

    /// Names a chunk with the repository's keys and stores it unless known.
    pub fn save_chunk(&self, data: &[u8]) -> Result<ChunkId> {
        let id = self.repo().keys().hasher().chunk_id(data);
        self.save(BlobId::Chunk(id), data)?;
        Ok(id)
    }

    /// Encodes a directory node, names it and stores it unless known.
    pub fn save_tree(&self, tree: &Tree) -> Result<TreeId> {
        self.save_tree_known(tree, None)
    }

    /// As [`BlobWriter::save_tree`]; a node whose id is `stored` (one read
    /// from this repository, pages and all, so indexed) is taken as known
    /// without a lookup. Pages go first, each stored unless known: a known
    /// node does not prove its pages are.
    pub fn save_tree_known(&self, tree: &Tree, stored: Option<TreeId>) -> Result<TreeId> {
        let (id, encoded) = encode_tree(self.repo(), tree);
        if stored != Some(id) {
            for (page, bytes) in &encoded.pages {
                self.save(BlobId::Tree(*page), bytes)?;
            }
            self.save(BlobId::Tree(id), &encoded.node)?;
        }
        Ok(id)
    }

    /// Hands over the partly filled packs; the storing threads end once
    /// they have stored them, as this writer (their only sender) is gone.
    fn flush(self) -> Result<()> {
        let open = {
            let mut state = self.state();
            let repo = self.repo();
            [
                std::mem::replace(&mut state.chunks, empty_pack(repo)),
                std::mem::replace(&mut state.trees, empty_pack(repo)),
            ]
        };
        for writer in open.into_iter().filter(|w| !w.is_empty()) {
            self.hand_over(writer)?;
        }
        Ok(())
    }
}

fn run<R>(
    repo: &Repository,
    dedup_against_index: bool,
    work: impl FnOnce(&BlobWriter<'_>) -> Result<R>,
) -> Result<(R, WriteStats)> {
    let shared = Shared {
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
        packs: Mutex::new(Vec::new()),
        failed: AtomicBool::new(false),
        failure: Mutex::new(None),
        handing_over: Mutex::new(0),
        taken: Condvar::new(),
    };
    let (to_store, full_packs) = sync_channel(0);
    let full_packs = Mutex::new(full_packs);
    let result = std::thread::scope(|scope| {
        for _ in 0..repo.backend().puts_in_flight().max(1) {
            scope.spawn(|| shared.store_from(&full_packs));
        }
        let writer = BlobWriter { shared: &shared, to_store };
        let out = work(&writer)?;
        writer.flush()?;
        Ok(out)
    });
    // The storing threads have ended: every pack handed over is stored, or
    // its failure recorded.
    if let Some(e) = lock(&shared.failure).take() {
        return Err(e);
    }
    let stats = WriteStats {
        blobs: shared.blobs.into_inner(),
        raw_bytes: shared.raw_bytes.into_inner(),
        stored_bytes: shared.stored_bytes.into_inner(),
        packs: shared.packs.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner),
    };
    result.map(|out| (out, stats))
}

impl Shared<'_> {
    /// A storing thread: stores packs until the writer is gone.
    fn store_from(&self, full_packs: &Mutex<Receiver<FinishedPack>>) {
        loop {
            // The receiver is locked only to take a pack (in a `while let`
            // the guard would live through the store, one store at a time).
            let next = lock(full_packs).recv();
            let Ok(pack) = next else { return };
            // After a failure packs are still taken, so that no thread
            // filling them waits for ever, but not stored.
            if self.failed.load(Ordering::Relaxed) {
                continue;
            }
            if let Err(e) = self.store(pack) {
                lock(&self.failure).get_or_insert(e);
                self.failed.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Makes the pack durable, then indexes it: never the other way round.
    fn store(&self, pack: FinishedPack) -> Result<()> {
        let FinishedPack { id, bytes, entries } = pack;
        let size = bytes.len() as u64;
        self.repo.backend().put(FileKind::Pack, &id.to_hex(), bytes.into())?;
        crate::crash::point("backup-after-pack-write");
        self.repo.with_index(|i| i.add_pack(&id, size, &entries))?;
        crate::crash::point("backup-after-index-commit");
        lock(&self.packs).push((id, size));
        // The index answers for these blobs now, so the pending set stays
        // as small as the open packs instead of growing with the run (a
        // million-file backup held a million ids). A repacking writer does
        // not ask the index, so it keeps them.
        if self.dedup_against_index {
            let mut state = lock(&self.state);
            for e in &entries {
                state.pending.remove(&e.blob);
            }
        }
        Ok(())
    }
}

fn empty_pack(repo: &Repository) -> PackWriter {
    PackWriter::new(repo.config().pack_size as usize, repo.keys())
}

/// A directory as `repo` stores it (pages named with its keys) and its id.
fn encode_tree(repo: &Repository, tree: &Tree) -> (TreeId, Encoded) {
    let hasher = repo.keys().hasher();
    let encoded = tree.encode_stored(crate::crash::tree_page_bytes(), &|bytes| hasher.tree_id(bytes));
    (hasher.tree_id(&encoded.node), encoded)
}

/// The id `repo` gives a directory, without storing anything.
pub(crate) fn tree_id(repo: &Repository, tree: &Tree) -> TreeId {
    encode_tree(repo, tree).0
}
