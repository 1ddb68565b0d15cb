//! The repository: config, lock, index and the two legal paths for data.
//! Writing goes packs (durable) -> index rows -> snapshot file, in that order
//! and only that order (see `writer.rs` and `snapshots.rs`); reading goes id
//! -> index -> byte range of a pack -> decode and check against the id.

mod check;
mod file;
mod gc;
mod ingest;
mod keys;
mod lookup;
mod pack_reader;
mod remembered;
mod snapshots;
mod sync;
mod tree_cache;
mod writer;

pub(crate) use check::PackRead;
pub use file::FileReader;
pub(crate) use ingest::{Contents, ReadError};
pub use keys::{KeyInfo, PasswordFn};
pub use pack_reader::PackReader;
pub use snapshots::{SAFETY_TAG, SnapshotList, read_snapshots};
pub use sync::SyncReport;
pub(crate) use writer::tree_id;
pub use writer::{BlobWriter, Durable, WriteStats};

use std::collections::HashMap;
use std::sync::Mutex;

use crate::backend::{Backend, FileKind, LockGuard, LockMode, Put};
use crate::chunk::Chunker;
use crate::crypto::keyfile::KeyOwner;
use crate::crypto::{Keys, Scheme};
use crate::error::{Error, Result};
use crate::format::DecodeError;
use crate::format::config::Config;
use crate::format::pack::PackEntry;
use crate::format::tree::{Stored, Tree};
use crate::id::{BlobId, PackId, TreeId};
use crate::index::{BlobLocation, Index};
use crate::pack;
use crate::tree::LostPage;

/// A repository object that could not be read, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Unreadable {
    /// The object's name.
    pub name: String,
    /// What went wrong.
    pub error: String,
    /// Whether that proves the object damaged ([`Error::proves_damage`]);
    /// if not (an I/O error, a newer format), it may well be whole.
    pub damaged: bool,
    /// Its length as listed, for a pack.
    #[serde(skip)]
    pub size: Option<u64>,
}

impl Unreadable {
    /// The object `name` that failed to load with `error`.
    pub fn new(name: impl Into<String>, error: &Error) -> Self {
        Unreadable { name: name.into(), error: error.detail(), damaged: error.proves_damage(), size: None }
    }
}

/// An open repository holding its lock for as long as it lives.
pub struct Repository {
    backend: Box<dyn Backend>,
    config: Config,
    keys: Keys,
    /// Built once: format 3's cut rule derives a table and a key schedule.
    chunker: Chunker,
    unlocked: Option<keys::Unlocked>,
    index: Mutex<Index>,
    sync: SyncReport,
    /// Threads for work that waits on a remote store more than on the CPU.
    io_pool: Option<rayon::ThreadPool>,
    /// Local copies of a remote repository's tree packs.
    tree_cache: Option<tree_cache::TreeCache>,
    lock: Box<dyn LockGuard>,
}

/// How `init` protects a new repository.
pub enum Protection<'a> {
    /// Unencrypted (format 1).
    None,
    /// Encrypted (format 3: padded packs, keyed chunking) with a first key
    /// for this password.
    Password(&'a str, &'a KeyOwner),
}

/// The most a paged directory may decode to: some 10 million entries, 64
/// pages of [`crate::format::tree::PAGE_BYTES`].
pub const MAX_DIRECTORY_BYTES: u64 = 1 << 30;

impl Repository {
    /// Creates a new repository and opens it. An encrypted repository's key
    /// file is written before its config: the config is what makes the
    /// directory a repository, so a crash in between leaves no repository
    /// (and `init` can simply be run again).
    pub fn init(backend: Box<dyn Backend>, protection: Protection<'_>) -> Result<Self> {
        let location = backend.location();
        if backend.exists()? {
            return Err(Error::RepoExists(location));
        }
        // As borg: a repository is made only where nothing is. Anything
        // else (an encrypted repository whose config was deleted, say)
        // must not get a new config beside what it holds.
        if !backend.is_empty()? {
            return Err(Error::InvalidInput(format!(
                "cannot make a repository at {location}: it is not empty; choose a new or empty directory \
                 (or bucket prefix)"
            )));
        }
        let scheme = match protection {
            Protection::None => Scheme::None,
            Protection::Password(..) => Scheme::XChaCha20Poly1305,
        };
        let id = *crate::crypto::random_key()?;
        let config = Config::new(id, scheme);
        let config_bytes = config.encode();
        backend.create()?;
        let (keys, unlocked) = match protection {
            Protection::None => (Keys::plain(), None),
            Protection::Password(password, owner) => {
                let (keys, unlocked) =
                    keys::write_first_key(backend.as_ref(), (&config, &config_bytes), password, owner)?;
                remembered::note_encrypted(&config.local_name(), &backend.place());
                (keys, Some(unlocked))
            }
        };
        if backend.put(FileKind::Config, "config", config_bytes.into())? == Put::Existed {
            return Err(Error::RepoExists(location));
        }
        let lock = backend.lock(LockMode::Shared)?;
        Self::open_unlocked(backend, (lock, false), config, keys, unlocked)
    }

    /// Opens an existing unencrypted repository (an encrypted one is
    /// [`Error::PasswordRequired`]); see [`Repository::open_with`].
    pub fn open(backend: Box<dyn Backend>, mode: LockMode) -> Result<Self> {
        Self::open_with(backend, mode, &|| {
            Err(Error::PasswordRequired("the repository is encrypted and no password was given".into()))
        })
    }

    /// Opens an existing repository, unlocks its key (asking `password`
    /// only if it is encrypted), takes the lock and brings the index up to
    /// date with the packs actually present.
    pub fn open_with(backend: Box<dyn Backend>, mode: LockMode, password: PasswordFn<'_>) -> Result<Self> {
        let (config, config_bytes) = read_config_bytes(backend.as_ref())?;
        let (keys, unlocked) = keys::unlock(backend.as_ref(), &config, &config_bytes, password)?;
        let lock = backend.lock(mode)?;
        // With no write running, what interrupted ones left goes before the
        // index is opened, which on a full disk needs that room.
        let leftovers = if mode == LockMode::Exclusive { backend.remove_leftovers()? } else { 0 };
        let exclusive = mode == LockMode::Exclusive;
        let mut repo = Self::open_unlocked(backend, (lock, exclusive), config, keys, unlocked)?;
        repo.sync.leftovers_removed = leftovers;
        Ok(repo)
    }

    fn open_unlocked(
        backend: Box<dyn Backend>,
        lock: (Box<dyn LockGuard>, bool),
        config: Config,
        keys: Keys,
        unlocked: Option<keys::Unlocked>,
    ) -> Result<Self> {
        refuse_unfinished_rebuild(&backend.index_path(&config.local_name())?)?;
        let mut repo = Self::assemble(backend, lock, config, keys, unlocked)?;
        repo.sync = repo.sync_index()?;
        Ok(repo)
    }

    /// The repository with its index open, not yet reconciled with storage.
    fn assemble(
        backend: Box<dyn Backend>,
        (lock, exclusive): (Box<dyn LockGuard>, bool),
        config: Config,
        keys: Keys,
        unlocked: Option<keys::Unlocked>,
    ) -> Result<Self> {
        let path = backend.index_path(&config.local_name())?;
        let index = if exclusive { Index::open_exclusive(&path) } else { Index::open(&path) };
        let index = index.map_err(|e| match e {
            // Only a database SQLite found malformed is damaged; a full
            // disk or an I/O error says nothing about it.
            Error::Index(inner) if index_damaged(&inner) => Error::IndexDamaged(inner.to_string()),
            other => other,
        })?;
        let io_pool = match backend.parallelism() {
            Some(n) => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .thread_name(|i| format!("snap-io-{i}"))
                    .build()
                    .map_err(|e| Error::Storage {
                        location: backend.location(),
                        detail: format!("threads: {e}"),
                    })?,
            ),
            None => None,
        };
        let tree_cache = backend.tree_cache_dir(&config.local_name())?.map(tree_cache::TreeCache::new);
        let chunker = chunker_for(&config, &keys);
        Ok(Repository {
            io_pool,
            tree_cache,
            backend,
            config,
            keys,
            chunker,
            unlocked,
            index: Mutex::new(index),
            sync: SyncReport::default(),
            lock,
        })
    }

    /// Runs `f` so that its parallel iterators have as many requests in
    /// flight as the storage rewards: on a remote store more threads than
    /// cores (each mostly waiting on the network, each holding at most one
    /// read), on a local disk the usual CPU threads.
    pub fn in_io_pool<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match &self.io_pool {
            Some(pool) => pool.install(f),
            None => f(),
        }
    }

    /// The repository config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The keys objects are named and sealed with.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The storage backend. Private to this module and its children: the
    /// commands ask the repository to read, ingest or collect garbage, and
    /// never decide for themselves what a stored file's error means or
    /// whether it may be deleted.
    fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// Fails ([`Error::LockLost`]) unless the lock taken at open is surely
    /// still this process's: called right before every commit (a snapshot
    /// written, snapshots or packs deleted), which must not happen once
    /// another process may have taken the lock for stale.
    pub fn check_lock(&self) -> Result<()> {
        self.lock.still_held()
    }

    /// The cheap part of [`Self::check_lock`] (nothing asked of the store),
    /// for the commits of a loop between full checks.
    pub(crate) fn check_lease(&self) -> Result<()> {
        self.lock.lease_holds()
    }

    /// What opening found out about packs and index.
    pub fn sync_report(&self) -> &SyncReport {
        &self.sync
    }

    /// A chunker with this repository's parameters and keys.
    pub fn chunker(&self) -> Chunker {
        self.chunker.clone()
    }

    /// Runs `f` with the index locked. The lock ends with the call, so it
    /// can never be held across other repository work (a guard kept alive
    /// by a `for` or `match` scrutinee once deadlocked prune). Private like
    /// [`Self::backend`]: the commands ask questions of the index through
    /// `lookup.rs`, and only the repository changes it.
    fn with_index<T>(&self, f: impl FnOnce(&mut Index) -> T) -> T {
        f(&mut self.index.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Where a blob is stored; an error if it is not indexed.
    pub fn locate(&self, blob: &BlobId) -> Result<BlobLocation> {
        self.with_index(|i| i.lookup(blob))?.ok_or_else(|| self.absent(blob))
    }

    /// The error for a blob the index has no present copy of. That proves
    /// it missing only when every pack in storage is indexed: a pack whose
    /// trailer could not be read (an I/O error, or a damaged trailer with
    /// no old rows to salvage it from) may hold it.
    pub fn absent(&self, blob: &BlobId) -> Error {
        match self.unindexed_packs().first() {
            None => match self.with_index(|i| i.damaged_copies(blob)).ok().and_then(|d| d.first().copied()) {
                Some(pack) => Error::corrupt(
                    blob.to_string(),
                    format!("no intact copy: pack {pack} holds one found damaged"),
                ),
                None => Error::Missing(*blob),
            },
            Some(u) => Error::read_failed(
                blob.to_string(),
                format!(
                    "it is in no indexed pack, but {} pack(s) could not be indexed and may hold it (pack {}: {})",
                    self.unindexed_packs().len(),
                    u.name,
                    u.error
                ),
            ),
        }
    }

    /// Packs in storage whose contents are not in the index (their
    /// trailer could not be read).
    pub fn unindexed_packs(&self) -> Vec<&Unreadable> {
        self.sync.unreadable.iter().filter(|u| PackId::from_hex(&u.name).is_ok()).collect()
    }

    /// From now on, trees come only from tree packs fetched anew from the
    /// store (each once, checked against its name), never from copies made
    /// before: verify checks the repository, not what this machine kept.
    pub fn refetch_trees(&self) {
        if let Some(cache) = &self.tree_cache {
            cache.refetch();
        }
    }

    /// Reads, decodes and checks one blob. A copy proved damaged is marked
    /// (see [`Self::open_blob`]), so the next lookup finds another copy if
    /// the index has one; only when none is left is the damage the answer.
    pub fn read_blob(&self, blob: &BlobId) -> Result<Vec<u8>> {
        let mut loc = self.locate(blob)?;
        let mut tried = Vec::new();
        loop {
            let proved = match self.read_copy(blob, &loc) {
                Err(e) if e.proves_damage() => e,
                other => return other,
            };
            tried.push(loc.pack);
            // A lookup that fails, or serves a copy already tried (its mark
            // could not be written), leaves the first proof as the answer.
            match self.locate(blob) {
                Ok(next) if !tried.contains(&next.pack) => loc = next,
                _ => return Err(proved),
            }
        }
    }

    /// Reads one copy of a blob: from the tree cache where it has it.
    fn read_copy(&self, blob: &BlobId, loc: &BlobLocation) -> Result<Vec<u8>> {
        if let (BlobId::Tree(_), Some(cache)) = (blob, &self.tree_cache) {
            let (offset, len) = (u64::from(loc.entry.offset), loc.entry.stored_len as usize);
            match cache
                .read(self.backend(), &loc.pack, offset, len)
                .and_then(|s| pack::open(&self.keys, &loc.entry, &s))
            {
                Ok(raw) => return Ok(raw),
                // Whatever went wrong, the store itself has the last word.
                Err(_) => cache.forget(&loc.pack),
            }
        }
        let stored =
            self.read_pack_range(&loc.pack, u64::from(loc.entry.offset), loc.entry.stored_len as usize)?;
        self.open_blob(&loc.pack, &loc.entry, &stored)
    }

    /// Opens the stored bytes of a blob read from `pack`. Bytes proved
    /// damaged get that copy marked in the index: no lookup serves it
    /// again, so the next backup stores the data anew and readers take
    /// another copy.
    pub fn open_blob(&self, pack: &PackId, entry: &PackEntry, stored: &[u8]) -> Result<Vec<u8>> {
        pack::open(&self.keys, entry, stored).inspect_err(|e| {
            if e.proves_damage() {
                // The finding is not lost if this fails: the error goes back
                // to the caller, and the next read finds the damage again.
                let _ = self.with_index(|i| i.mark_damaged(pack, &entry.blob));
            }
        })
    }

    /// Opens a format 3 pack's padding envelope, read with the rest of the
    /// pack. Padding proved damaged gets the pack marked in the index: its
    /// blobs stay in use (each stands on its own), and `repair packs`
    /// rewrites the pack from them.
    pub fn open_padding(&self, pack: &PackId, padding: &[u8]) -> Result<()> {
        crate::format::pack::check_padding(padding, &self.keys).map_err(|e| {
            // As for blobs: a mark that cannot be written is found again.
            let _ = self.with_index(|i| i.set_padding_damaged(pack, true));
            Error::corrupt(
                format!("pack {pack}"),
                format!("padding envelope: {e}; it holds no data, and `snap repair packs` rewrites the pack from its blobs"),
            )
        })
    }

    /// Exactly `len` bytes of a pack from `offset`. Backends promise that,
    /// but a short read (a flaky disk, a misbehaving server) must be an
    /// error here, before any caller slices into the bytes.
    pub fn read_pack_range(&self, pack: &PackId, offset: u64, len: usize) -> Result<Vec<u8>> {
        let bytes = self.backend.get_range(FileKind::Pack, &pack.to_hex(), offset, len)?;
        if bytes.len() != len {
            return Err(Error::read_failed(
                format!("pack {pack}"),
                format!("short read: {} of {len} bytes at offset {offset}", bytes.len()),
            ));
        }
        Ok(bytes)
    }

    /// Loads and decodes a directory, all its pages if it is paged.
    pub fn load_tree(&self, id: &TreeId) -> Result<Tree> {
        self.load_tree_parts(id, &mut |_, _| {})
    }

    /// As [`Self::load_tree`], with the ids of its pages (none unless paged):
    /// blobs the directory needs besides its own node.
    pub fn load_node(&self, id: &TreeId) -> Result<(Tree, Vec<TreeId>)> {
        self.load_node_lossy(id, &mut |_, e| Err(e))
    }

    /// As [`Self::load_node`]; a page that fails to load is handed to
    /// `lost` with its error and left out if `lost` returns `Ok`.
    pub(crate) fn load_node_lossy(
        &self,
        id: &TreeId,
        lost: &mut LostPage<'_>,
    ) -> Result<(Tree, Vec<TreeId>)> {
        let mut pages = Vec::new();
        let tree = self.load_tree_with(id, &mut |part, _| pages.push(part), lost)?;
        pages.pop(); // its own node, handed over last
        Ok((tree, pages))
    }

    /// Refuses a paged directory whose pages decode to more than
    /// [`MAX_DIRECTORY_BYTES`] in all, asked of the index before any page
    /// is read: compressed pages of repeated ids could otherwise make a few
    /// stored kilobytes decode to gigabytes. A page the index lacks is left
    /// to the read, which reports it.
    fn check_directory_size(&self, id: &TreeId, pages: &[crate::format::tree::Page]) -> Result<()> {
        let mut total = 0u64;
        for page in pages {
            if let Ok(loc) = self.locate(&BlobId::Tree(page.tree)) {
                total = total.saturating_add(u64::from(loc.entry.raw_len));
            }
        }
        if total > MAX_DIRECTORY_BYTES {
            return Err(Error::TreeLimit {
                path: format!("tree {id}"),
                detail: format!(
                    "a directory of {total} bytes in {} pages, more than {MAX_DIRECTORY_BYTES}: refused as hostile",
                    pages.len()
                ),
            });
        }
        Ok(())
    }

    /// Loads a directory and hands each blob it is stored in to `part`, as
    /// read: its pages in order, then its own node.
    pub fn load_tree_parts(&self, id: &TreeId, part: &mut dyn FnMut(TreeId, Vec<u8>)) -> Result<Tree> {
        self.load_tree_with(id, part, &mut |_, e| Err(e))
    }

    /// As [`Self::load_tree_parts`]; a page that fails to load is handed to
    /// `lost` with its error and left out if `lost` returns `Ok`.
    fn load_tree_with(
        &self,
        id: &TreeId,
        part: &mut dyn FnMut(TreeId, Vec<u8>),
        lost: &mut LostPage<'_>,
    ) -> Result<Tree> {
        let raw = self.read_blob(&BlobId::Tree(*id))?;
        let bad = |e| Error::decode(format!("tree {id}"), e);
        let tree = match Tree::decode_stored(&raw).map_err(bad)? {
            Stored::Whole(tree) => tree,
            Stored::Paged(pages) => {
                self.check_directory_size(id, &pages)?;
                let mut parts = Vec::with_capacity(pages.len());
                for page in &pages {
                    let read = self.read_blob(&BlobId::Tree(page.tree)).and_then(|bytes| {
                        let decoded = Tree::decode(&bytes)
                            .map_err(|e| Error::decode(format!("tree {id}, page {}", page.tree), e))?;
                        Ok((decoded, bytes))
                    });
                    parts.push(match read {
                        Ok((decoded, bytes)) => {
                            part(page.tree, bytes);
                            Some(decoded)
                        }
                        Err(e) => lost(page, e).map(|()| None)?,
                    });
                }
                Tree::join_pages(&pages, parts).map_err(bad)?
            }
        };
        part(*id, raw);
        Ok(tree)
    }
}

impl Repository {
    /// Rebuilds the index from the packs alone, under the exclusive lock:
    /// the old database is deleted first, so nothing it said survives but
    /// its marks of damaged copies, its rows for packs whose trailer is
    /// damaged, and its rows for packs not listed now that hold marks
    /// (recorded missing). Each marked copy is read again through the new
    /// rows: unmarked, a damaged copy would serve the next backup's
    /// deduplication, but a mark set through a wrong row, or on a pack put
    /// back whole, must go. The key is unlocked first, so a wrong password
    /// deletes nothing.
    ///
    /// The old database is first copied whole beside it (`index.old.sqlite`,
    /// durable before anything is deleted) and that copy removed only once
    /// the new index is built: a rebuild that is killed finds it at the
    /// next try and still salvages from it; one that fails puts it back. A
    /// copy that cannot be made (a full disk) stops the rebuild before
    /// anything is changed.
    pub fn rebuild_index(backend: Box<dyn Backend>, password: PasswordFn<'_>) -> Result<SyncReport> {
        let (config, config_bytes) = read_config_bytes(backend.as_ref())?;
        let (keys, unlocked) = keys::unlock(backend.as_ref(), &config, &config_bytes, password)?;
        let lock = backend.lock(LockMode::Exclusive)?;
        let path = backend.index_path(&config.local_name())?;
        let aside = path.with_file_name(OLD_INDEX_FILE);
        keep_old_index(&path, &aside)?;
        let old = aside.exists().then(|| Index::open(&aside).ok()).flatten();
        let marks = old.as_ref().and_then(|o| o.damage_marks().ok()).unwrap_or_default();
        Index::destroy(&path)?;
        crate::crash::point("repair-index-after-destroy");
        let mut repo = match Self::assemble(backend, (lock, true), config, keys, unlocked) {
            Ok(repo) => repo,
            Err(e) => {
                // Nothing was built: the old index goes back as it was.
                drop(old);
                let _ = put_back(&path, &aside);
                return Err(e);
            }
        };
        let built = repo.rebuild_from(old.as_ref(), &marks);
        drop(old);
        if let Err(e) = built {
            // Half an index forgets more than the old one knew (the marks
            // of every pack not read yet): the old one goes back, so a
            // rebuild that fails (a listing refused, storage unreachable)
            // changes nothing. Should putting it back fail too, the copy
            // stays beside it for the next rebuild, as after a kill.
            let _ = repo.put_back_index(&path, &aside);
            return Err(e);
        }
        Index::destroy(&aside)?;
        Ok(repo.sync)
    }

    /// Fills the empty index from storage: reconciled as every open is,
    /// then the packs whose trailer is damaged salvaged from `old`'s rows,
    /// then the marks of `old` checked again through the new rows (the
    /// salvaged ones included).
    fn rebuild_from(&mut self, old: Option<&Index>, marks: &[(PackId, BlobId)]) -> Result<()> {
        self.sync = self.sync_index()?;
        if let Some(old) = old {
            self.salvage_trailers(old)?;
        }
        self.sync.damage_marks_kept = self.recheck_marks(marks, old);
        Ok(())
    }

    /// Closes the index and puts the copy at `aside` back in its place,
    /// still under the lock, which goes last.
    fn put_back_index(self, path: &std::path::Path, aside: &std::path::Path) -> Result<()> {
        let Repository { index, lock, .. } = self;
        drop(index);
        put_back(path, aside)?;
        drop(lock);
        Ok(())
    }

    /// Indexes each pack whose trailer is damaged from `old`'s rows for it
    /// (those that lie within the pack as listed now). Each blob is read
    /// where its row says: one that opens and matches its id is indexed,
    /// one proved damaged is indexed marked damaged (verify names it, no
    /// lookup serves it), and one that could not be read (an I/O error)
    /// is indexed as it was: that proves nothing, and every later read
    /// checks the blob anyway.
    fn salvage_trailers(&mut self, old: &Index) -> Result<()> {
        let mut still = Vec::new();
        for u in std::mem::take(&mut self.sync.unreadable) {
            let id = PackId::from_hex(&u.name).ok().filter(|_| u.damaged);
            let (Some(id), Some(size)) = (id, u.size) else {
                still.push(u);
                continue;
            };
            let rows: Vec<PackEntry> = old
                .pack_entries(&id)?
                .into_iter()
                .filter(|e| u64::from(e.offset) + u64::from(e.stored_len) <= size)
                .collect();
            if rows.is_empty() {
                still.push(u);
                continue;
            }
            let mut salvaged = sync::Salvaged { pack: u.name, rows: rows.len(), ..Default::default() };
            let damaged: Vec<BlobId> = rows
                .iter()
                .filter_map(|e| match self.read_blob_in(&id, e) {
                    Ok(_) => {
                        salvaged.kept += 1;
                        None
                    }
                    Err(err) if err.proves_damage() => Some(e.blob),
                    Err(_) => {
                        salvaged.unchecked += 1;
                        None
                    }
                })
                .collect();
            self.with_index(|i| {
                i.add_pack(&id, size, &rows)?;
                i.set_trailer_damaged(&id, true)?;
                damaged.iter().try_for_each(|blob| i.mark_damaged(&id, blob))
            })?;
            salvaged.damaged = damaged.len();
            self.sync.salvaged.push(salvaged);
        }
        self.sync.unreadable = still;
        Ok(())
    }

    /// Reads and opens the blob `entry` describes in `pack` (checked
    /// against its id; a copy proved damaged is marked so).
    fn read_blob_in(&self, pack: &PackId, entry: &PackEntry) -> Result<Vec<u8>> {
        let (offset, len) = (u64::from(entry.offset), entry.stored_len as usize);
        self.read_pack_range(pack, offset, len).and_then(|s| self.open_blob(pack, entry, &s))
    }

    /// Reads each copy once marked damaged again; marks those proved
    /// damaged again, or that could not be read (the old proof stands),
    /// and returns how many. The marks of a pack the new index does not
    /// hold at all (not listed now: moved aside, or its trailer unreadable)
    /// are kept with `old`'s rows for it, recorded missing, for when it is
    /// back. Never fails: the old database is gone, so a mark it cannot
    /// check is set all the same (best effort, as every mark is).
    fn recheck_marks(&self, marks: &[(PackId, BlobId)], old: Option<&Index>) -> u64 {
        let mut kept = 0;
        let mut unlisted: HashMap<PackId, Vec<BlobId>> = HashMap::new();
        for (pack, blob) in marks {
            let loc = match self.with_index(|i| i.lookup_in(pack, blob)) {
                Ok(Some(loc)) => loc,
                Ok(None) if matches!(self.with_index(|i| i.pack_size(pack)), Ok(None)) => {
                    unlisted.entry(*pack).or_default().push(*blob);
                    continue;
                }
                // That pack no longer holds the blob.
                Ok(None) => continue,
                Err(_) => {
                    let _ = self.with_index(|i| i.mark_damaged(pack, blob));
                    kept += 1;
                    continue;
                }
            };
            match self.read_blob_in(pack, &loc.entry) {
                Ok(_) => {}
                // open_blob marked it.
                Err(e) if e.proves_damage() => kept += 1,
                Err(_) => {
                    let _ = self.with_index(|i| i.mark_damaged(pack, blob));
                    kept += 1;
                }
            }
        }
        let Some(old) = old else { return kept };
        for (pack, blobs) in unlisted {
            let rows = old.pack_size(&pack).and_then(|size| Ok((size, old.pack_entries(&pack)?)));
            let Ok((Some(size), entries)) = rows else { continue };
            if self.with_index(|i| i.add_missing_pack(&pack, size, &entries, &blobs)).is_ok() {
                kept += blobs.len() as u64;
            }
        }
        kept
    }
}

/// The chunker a repository's format and keys call for: format 3's keyed
/// rule, or FastCDC with the seed (0 when unencrypted).
fn chunker_for(config: &Config, keys: &Keys) -> Chunker {
    match keys.chunker_key() {
        Some(key) => Chunker::keyed(config.chunker, key),
        None => {
            Chunker::new(crate::format::config::ChunkerParams { seed: keys.chunker_seed(), ..config.chunker })
        }
    }
}

/// Where `repair index` keeps the old database while it rebuilds.
const OLD_INDEX_FILE: &str = "index.old.sqlite";

/// Fails while a rebuild of the index at `path` is unfinished (its copy
/// of the old database is still beside it): the index may be partial,
/// without the marks of damaged copies (a backup would deduplicate
/// against them) or the rows of packs not read yet (a restore would call
/// their blobs missing). Only `repair index` goes on from there.
fn refuse_unfinished_rebuild(path: &std::path::Path) -> Result<()> {
    let aside = path.with_file_name(OLD_INDEX_FILE);
    match std::fs::symlink_metadata(&aside) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        _ => Err(Error::IndexDamaged(format!(
            "a rebuild of the index did not finish (its copy of the old index is at {})",
            aside.display()
        ))),
    }
}

/// Copies the index at `path` to `aside`, durably, unless a copy is there
/// already (left by a rebuild that did not finish: the index beside it may
/// be partial, the copy is whole). An index that does not open, or that
/// SQLite finds malformed, has nothing to keep; any other failure (a full
/// disk) stops before anything is deleted.
fn keep_old_index(path: &std::path::Path, aside: &std::path::Path) -> Result<()> {
    if aside.exists() {
        return Ok(());
    }
    let Ok(old) = Index::open_exclusive(path) else { return Ok(()) };
    let partial = aside.with_extension("sqlite.tmp");
    Index::destroy(&partial)?;
    match old.copy_to(&partial) {
        Err(Error::Index(e)) if index_damaged(&e) => return Ok(()),
        other => other.map_err(|e| {
            Error::CannotTell(format!(
                "repair index could not keep a copy of the old index at {} ({e}), which it needs to salvage \
                 packs whose trailer is damaged",
                partial.display()
            ))
        })?,
    }
    persist(&partial, aside)
}

/// Puts the old index kept at `aside` back at `path`, over whatever a
/// rebuild made there (its journal files too).
fn put_back(path: &std::path::Path, aside: &std::path::Path) -> Result<()> {
    Index::destroy(path)?;
    persist(aside, path)
}

/// Makes the file `partial` durable under the name `dest`: fsync, rename,
/// fsync of the directory.
fn persist(partial: &std::path::Path, dest: &std::path::Path) -> Result<()> {
    use crate::error::IoContext;
    std::fs::File::open(partial).and_then(|f| f.sync_all()).at(partial)?;
    std::fs::rename(partial, dest).at(dest)?;
    let dir = dest.parent().unwrap_or(std::path::Path::new("."));
    std::fs::File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

/// Whether SQLite found the database itself malformed.
fn index_damaged(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    )
}

/// The keys of a repository, without locking or opening it (for reading
/// immutable objects while another process holds the lock).
pub fn read_keys(backend: &dyn Backend, password: PasswordFn<'_>) -> Result<Keys> {
    let (config, config_bytes) = read_config_bytes(backend)?;
    Ok(keys::unlock(backend, &config, &config_bytes, password)?.0)
}

/// Reads and checks the config. Done before anything is locked, created or
/// deleted, so a directory that is not a snap repository (or one of a newer
/// format) is left exactly as it was.
pub fn read_config(backend: &dyn Backend) -> Result<Config> {
    read_config_bytes(backend).map(|(config, _)| config)
}

/// The config and its exact bytes (key files authenticate them).
fn read_config_bytes(backend: &dyn Backend) -> Result<(Config, Vec<u8>)> {
    let location = backend.location();
    if !backend.exists()? {
        return Err(Error::RepoNotFound(location));
    }
    let bytes = backend.get_capped(FileKind::Config, "config", crate::format::config::MAX_CONFIG_LEN)?;
    let config = Config::decode(&bytes).map_err(|e| match e {
        DecodeError::NewerVersion { found, supported, .. } => Error::UnsupportedFormat {
            found: format!("version {found}"),
            supported: format!("version {supported}"),
        },
        other => Error::NotARepository { location, detail: format!("config: {other}") },
    })?;
    Ok((config, bytes))
}
