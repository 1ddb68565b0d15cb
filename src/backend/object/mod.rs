//! A repository on an object store (S3 and compatible servers), in the same
//! layout as a local directory (see [`super::object_key`]) under a key
//! prefix, with `locks/<32 hex>` beside it.
//!
//! The engine is synchronous and the client (`object_store`) is async: each
//! call runs to completion on a small tokio runtime owned by the backend, so
//! the engine's worker threads may each have a request in flight.
//!
//! Puts of the config, snapshots and key files are create-only
//! (`If-None-Match: *`), which `create` checks the server honours. Packs are
//! named by their content, so writing one again writes the same bytes: they
//! may go up in parts (multipart) when large, where create-only does not
//! exist. An object becomes visible whole or not at all, so a crash leaves
//! nothing under a final name but complete objects; an unfinished multipart
//! upload stays invisible (a bucket lifecycle rule removes such uploads).

mod lock;
mod s3;

pub use s3::S3Url;

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as Key;
use object_store::{
    GetOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart,
};
use tokio::runtime::Runtime;

use super::cache::{CacheDir, INDEX_FILE};
use super::{
    Backend, CONFIG, FileKind, LockGuard, LockMode, LockState, Pieces, Put, Unlock, Whole, check_name,
    kind_dir, object_key,
};
use crate::error::{Error, Result};

/// Objects larger than this go up in parts, several at once.
const MULTIPART_ABOVE: usize = 32 << 20;
/// The part size of a multipart upload (S3 wants at least 5 MiB).
const PART_SIZE: usize = 8 << 20;
/// Parts of one upload in flight at once.
const PARTS_IN_FLIGHT: usize = 4;
/// Requests worth having in flight at once for restore, verify and sync.
const PARALLEL_REQUESTS: usize = 8;
/// The most one GET of a streamed range asks for: a longer range goes on
/// with the next GET, so each request ends well within the request timeout
/// (and its retries) even on a slow link shared by many.
const STREAM_WINDOW: u64 = 8 << 20;
const TREE_CACHE_DIR: &str = "trees";

/// A repository under a prefix of an object store.
pub struct ObjectBackend {
    store: Arc<dyn ObjectStore>,
    prefix: Option<Key>,
    location: String,
    runtime: Arc<Runtime>,
    cache: CacheDir,
    /// How long a put that failed in transit is tried again.
    retry_timeout: Duration,
}

impl std::fmt::Debug for ObjectBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectBackend").field("location", &self.location).finish()
    }
}

impl ObjectBackend {
    /// A repository at `s3://BUCKET/PREFIX`, configured from the standard
    /// AWS environment variables (see [`S3Url`]). Makes no request.
    pub fn s3(url: &S3Url) -> Result<Self> {
        let (store, retry_timeout) = s3::build(url)?;
        let backend = Self::with_cache(Arc::new(store), url.prefix(), url.to_string(), CacheDir::user()?)?;
        Ok(ObjectBackend { retry_timeout, ..backend })
    }

    /// A repository under `prefix` of any store, its index cached under
    /// `cache_dir/<repository id>/`.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        location: String,
        cache_dir: PathBuf,
    ) -> Result<Self> {
        Self::with_cache(store, prefix, location, CacheDir::at(cache_dir))
    }

    fn with_cache(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        location: String,
        cache: CacheDir,
    ) -> Result<Self> {
        let prefix = match prefix.trim_matches('/') {
            "" => None,
            p => Some(Key::parse(p).map_err(|e| Error::InvalidInput(format!("bad key prefix {p:?}: {e}")))?),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("snap-io")
            .enable_all()
            .build()
            .map_err(|e| Error::Storage {
                location: location.clone(),
                detail: format!("start I/O runtime: {e}"),
            })?;
        Ok(ObjectBackend {
            store,
            prefix,
            location,
            runtime: Arc::new(runtime),
            cache,
            retry_timeout: s3::DEFAULT_RETRY_TIMEOUT,
        })
    }

    /// The full key of a relative name.
    fn key(&self, relative: &str) -> Key {
        match &self.prefix {
            Some(p) => Key::from_iter(p.parts().chain(Key::from(relative).parts())),
            None => Key::from(relative),
        }
    }

    fn object(&self, kind: FileKind, name: &str) -> Result<Key> {
        Ok(self.key(&object_key(kind, name)?))
    }

    /// Turns a client error about `key` into ours.
    fn error(&self, key: &Key, e: object_store::Error) -> Error {
        storage_error(&self.location, key, e)
    }

    fn not_found(kind: FileKind, name: &str) -> Error {
        Error::NotFound { kind: kind.describe(), id: name.to_owned() }
    }

    /// Runs a put again when it failed in transit (a connection reset in
    /// the middle of an upload, a server that went away): the client
    /// retries those only for requests it knows to be idempotent, and every
    /// put snap makes is (a content-named object, or a lock under a random
    /// name; a create-only put that had in fact succeeded comes back as
    /// "exists").
    fn retrying<T>(&self, put: impl Fn() -> object_store::Result<T>) -> object_store::Result<T> {
        let started = Instant::now();
        let mut wait = s3::backoff().init_backoff;
        loop {
            match put() {
                Err(e) if failed_in_transit(&e) && started.elapsed() + wait < self.retry_timeout => {
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(s3::backoff().max_backoff);
                }
                result => return result,
            }
        }
    }

    fn put_create_only(&self, key: &Key, data: Bytes) -> Result<Put> {
        let put = || {
            let opts = PutOptions::from(PutMode::Create);
            self.runtime.block_on(self.store.put_opts(key, PutPayload::from(data.clone()), opts))
        };
        match self.retrying(put) {
            Ok(_) => Ok(Put::Created),
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {
                Ok(Put::Existed)
            }
            Err(e) => Err(self.error(key, e)),
        }
    }

    /// Uploads in parts, several at once; an upload that fails is aborted
    /// so it leaves nothing behind.
    fn put_multipart(&self, key: &Key, data: Bytes) -> Result<()> {
        self.retrying(|| self.upload_in_parts(key, &data)).map_err(|e| self.error(key, e))
    }

    fn upload_in_parts(&self, key: &Key, data: &Bytes) -> object_store::Result<()> {
        self.runtime
            .block_on(async {
                let upload = self.store.put_multipart(key).await?;
                let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
                let mut at = 0;
                while at < data.len() {
                    if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                        // Best effort: parts of an upload never completed are
                        // invisible anyway, and a lifecycle rule reclaims them.
                        let _ = writer.abort().await;
                        return Err(e);
                    }
                    let end = (at + PART_SIZE).min(data.len());
                    writer.put(data.slice(at..end));
                    at = end;
                }
                // Aborts the upload itself when a part or the completion fails.
                writer.finish().await
            })
            .map(drop)
    }

    /// An object's bytes, whole or a range of them.
    fn fetch(&self, key: &Key, range: Option<Range<u64>>) -> object_store::Result<Bytes> {
        self.runtime.block_on(async {
            match range {
                Some(r) => self.store.get_range(key, r).await,
                None => self.store.get(key).await?.bytes().await,
            }
        })
    }

    /// The size of the object under `key`, if there is one.
    fn size_of(&self, key: &Key) -> Result<Option<u64>> {
        match self.runtime.block_on(self.store.head(key)) {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error(key, e)),
        }
    }

    fn read(&self, kind: FileKind, name: &str, range: Option<Range<u64>>) -> Result<Bytes> {
        let key = self.object(kind, name)?;
        self.fetch(&key, range).map_err(|e| self.read_error(kind, name, &key, e))
    }

    fn read_error(&self, kind: FileKind, name: &str, key: &Key, e: object_store::Error) -> Error {
        match e {
            object_store::Error::NotFound { .. } => Self::not_found(kind, name),
            e => self.error(key, e),
        }
    }

    /// Every object under a relative directory, as (key below it, size).
    fn list_under(&self, dir: &str) -> Result<Vec<(String, u64)>> {
        let base = self.key(dir);
        let found: Vec<_> = self
            .runtime
            .block_on(self.store.list(Some(&base)).try_collect::<Vec<_>>())
            .map_err(|e| self.error(&base, e))?;
        let skip = base.parts().count();
        Ok(found
            .into_iter()
            .map(|meta| {
                let rest: Vec<String> =
                    meta.location.parts().skip(skip).map(|p| p.as_ref().to_owned()).collect();
                (rest.join("/"), meta.size)
            })
            .collect())
    }

    fn delete(&self, key: &Key) -> Result<()> {
        match self.runtime.block_on(self.store.delete(key)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error(key, e)),
        }
    }

    /// Some servers accept `If-None-Match: *` and overwrite anyway; snap's
    /// config, snapshots and locks rely on create-only writes, so a
    /// repository is only made where a second create of one key fails.
    fn check_create_only(&self) -> Result<()> {
        let key = self.key(&format!("create-only-probe-{}", lock::random_name()?));
        let first = self.put_create_only(&key, Bytes::from_static(b"1"));
        let second = first.as_ref().ok().map(|_| self.put_create_only(&key, Bytes::from_static(b"2")));
        self.delete(&key)?;
        match (first?, second.transpose()?) {
            (Put::Created, Some(Put::Existed)) => Ok(()),
            _ => Err(Error::Storage {
                location: self.location.clone(),
                detail: "the server ignores create-only writes (If-None-Match: *), which snap needs to \
                         never overwrite a repository's objects; use a server that honours them"
                    .into(),
            }),
        }
    }
}

/// Whether a request failed below HTTP (no response, or a cut one) rather
/// than being answered with an error.
fn failed_in_transit(e: &object_store::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        if inner.downcast_ref::<object_store::client::HttpError>().is_some() {
            return true;
        }
        source = inner.source();
    }
    false
}

fn storage_error(location: &str, key: &Key, e: object_store::Error) -> Error {
    // The client's message repeats the store's name and nests its causes;
    // one line with the key and the innermost cause is what a user needs.
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(inner) = source {
        detail = inner.to_string();
        source = inner.source();
    }
    Error::Storage { location: location.to_owned(), detail: format!("{key}: {detail}") }
}

impl Backend for ObjectBackend {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn exists(&self) -> Result<bool> {
        Ok(self.size_of(&self.key(CONFIG))?.is_some())
    }

    fn is_empty(&self) -> Result<bool> {
        let base = self.key("");
        let first = self.runtime.block_on(self.store.list(Some(&base)).try_next());
        Ok(first.map_err(|e| self.error(&base, e))?.is_none())
    }

    /// Buckets are made by their owner; what a new repository needs is a
    /// server that keeps create-only writes.
    fn create(&self) -> Result<()> {
        self.check_create_only()
    }

    fn put(&self, kind: FileKind, name: &str, data: Bytes) -> Result<Put> {
        let key = self.object(kind, name)?;
        if kind == FileKind::Pack && data.len() > MULTIPART_ABOVE {
            return self.put_multipart(&key, data).map(|()| Put::Created);
        }
        self.put_create_only(&key, data)
    }

    fn get(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        self.read(kind, name, None).map(Vec::from)
    }

    fn get_capped(&self, kind: FileKind, name: &str, max: usize) -> Result<Vec<u8>> {
        let key = self.object(kind, name)?;
        let size = self.size_of(&key)?.ok_or_else(|| Self::not_found(kind, name))?;
        super::check_cap(kind, name, size, max)?;
        // Replaced between the two requests: still never more than the cap.
        let bytes = self.read(kind, name, (size > 0).then_some(0..max as u64 + 1))?;
        super::check_cap(kind, name, bytes.len() as u64, max)?;
        Ok(bytes.into())
    }

    fn get_range(&self, kind: FileKind, name: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let bytes = self.read(kind, name, Some(offset..offset + len as u64))?;
        if bytes.len() != len {
            return Err(Error::read_failed(
                format!("{} {name}", kind.describe()),
                format!("truncated: cannot read {len} bytes at offset {offset}"),
            ));
        }
        Ok(bytes.into())
    }

    fn stream_range(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: u64,
    ) -> Result<Box<dyn Pieces + '_>> {
        if len == 0 {
            return Ok(Box::new(Whole(None)));
        }
        let key = self.object(kind, name)?;
        let (name, end) = (name.to_owned(), offset + len);
        let mut pieces = BodyPieces { backend: self, kind, name, key, body: None, due: 0, next: offset, end };
        pieces.next_window()?;
        Ok(Box::new(pieces))
    }

    fn list(&self, kind: FileKind) -> Result<Vec<(String, u64)>> {
        if kind == FileKind::Config {
            return Ok(self
                .size_of(&self.key(CONFIG))?
                .map(|size| (CONFIG.to_owned(), size))
                .into_iter()
                .collect());
        }
        let dir = kind_dir(kind);
        // Only objects exactly where their name puts them count; strays
        // (a key under the wrong fan-out directory, a foreign file) are not
        // objects of the repository.
        Ok(self
            .list_under(dir)?
            .into_iter()
            .filter_map(|(rest, size)| {
                let name = rest.rsplit('/').next()?.to_owned();
                let expected = object_key(kind, &name).ok()?;
                (check_name(kind, &name).is_ok() && expected == format!("{dir}/{rest}"))
                    .then_some((name, size))
            })
            .collect())
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        self.delete(&self.object(kind, name)?)
    }

    /// Nothing partial is ever visible: an unfinished multipart upload is not
    /// an object, and the client aborts the ones that fail.
    fn remove_leftovers(&self) -> Result<u64> {
        Ok(0)
    }

    fn lock(&self, mode: LockMode) -> Result<Box<dyn LockGuard>> {
        lock::acquire(self, mode)
    }

    fn unlock(&self, which: Unlock) -> Result<Vec<String>> {
        lock::remove(self, which)
    }

    fn lock_holders(&self) -> Result<LockState> {
        lock::holders(self)
    }

    fn index_path(&self, repo_id: &str) -> Result<PathBuf> {
        Ok(self.cache.dir(repo_id, "")?.join(INDEX_FILE))
    }

    fn tree_cache_dir(&self, repo_id: &str) -> Result<Option<PathBuf>> {
        self.cache.dir(repo_id, TREE_CACHE_DIR).map(Some)
    }

    fn parallelism(&self) -> Option<usize> {
        Some(PARALLEL_REQUESTS)
    }

    /// One per core, as the packs they upload are filled by one thread per
    /// core: each upload holds a whole pack in memory, so more would cost
    /// memory without keeping more of the cores busy.
    fn puts_in_flight(&self) -> usize {
        std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, PARALLEL_REQUESTS)
    }
}

/// A range read as the bodies of GETs of at most [`STREAM_WINDOW`] bytes
/// each, taken as they arrive.
struct BodyPieces<'b> {
    backend: &'b ObjectBackend,
    kind: FileKind,
    name: String,
    key: Key,
    /// The body of the current GET, and how many of its bytes are still due.
    body: Option<BoxStream<'static, object_store::Result<Bytes>>>,
    due: u64,
    /// Where the next GET starts, and where the range ends.
    next: u64,
    end: u64,
}

impl BodyPieces<'_> {
    fn next_window(&mut self) -> Result<()> {
        let to = self.end.min(self.next + STREAM_WINDOW);
        let opts = GetOptions::new().with_range(Some(self.next..to));
        let got = self.backend.runtime.block_on(self.backend.store.get_opts(&self.key, opts));
        let got = got.map_err(|e| self.backend.read_error(self.kind, &self.name, &self.key, e))?;
        (self.body, self.due, self.next) = (Some(got.into_stream()), to - self.next, to);
        Ok(())
    }
}

impl Pieces for BodyPieces<'_> {
    fn next_piece(&mut self) -> Result<Option<Bytes>> {
        loop {
            if let Some(body) = &mut self.body {
                match self.backend.runtime.block_on(body.next()) {
                    // Bytes past what was asked for would land at the wrong
                    // offsets of the next window: they are dropped.
                    Some(Ok(piece)) if self.due > 0 => {
                        let piece = piece.slice(..piece.len().min(self.due as usize));
                        self.due -= piece.len() as u64;
                        return Ok(Some(piece));
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(self.backend.error(&self.key, e)),
                    // A body that ended early ends the range; the reader
                    // names the shortfall.
                    None if self.due > 0 => return Ok(None),
                    None => self.body = None,
                }
            }
            if self.next == self.end {
                return Ok(None);
            }
            self.next_window()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use object_store::{
        CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, PutMultipartOptions,
        PutResult,
    };
    use std::sync::atomic::Ordering;

    fn backend_on(store: Arc<dyn ObjectStore>) -> (ObjectBackend, tempfile::TempDir) {
        let cache = tempfile::tempdir().unwrap();
        let b =
            ObjectBackend::new(store, "some/prefix", "mem://test".into(), cache.path().to_owned()).unwrap();
        (b, cache)
    }

    fn name(c: char) -> String {
        c.to_string().repeat(64)
    }

    #[test]
    fn puts_are_create_only_reads_are_exact_and_strays_are_not_objects() {
        let store = Arc::new(InMemory::new());
        let (b, _cache) = backend_on(store.clone());
        assert!(!b.exists().unwrap());
        assert_eq!(b.put(FileKind::Snapshot, &name('a'), Bytes::from_static(b"one")).unwrap(), Put::Created);
        assert_eq!(b.put(FileKind::Snapshot, &name('a'), Bytes::from_static(b"two")).unwrap(), Put::Existed);
        assert_eq!(b.get(FileKind::Snapshot, &name('a')).unwrap(), b"one");
        assert_eq!(b.get_range(FileKind::Snapshot, &name('a'), 1, 2).unwrap(), b"ne");
        assert!(matches!(b.get_range(FileKind::Snapshot, &name('a'), 1, 5), Err(Error::ReadFailed { .. })));
        assert!(matches!(b.get(FileKind::Pack, &name('b')), Err(Error::NotFound { .. })));
        b.put(FileKind::Pack, &name('b'), Bytes::from_static(b"pack")).unwrap();

        // A pack under the wrong fan-out directory and foreign keys are not objects.
        let rt = &b.runtime;
        for stray in ["some/prefix/data/cc/".to_owned() + &name('b'), "some/prefix/snapshots/x".into()] {
            rt.block_on(store.put(&Key::from(stray), PutPayload::from_static(b"x"))).unwrap();
        }
        assert_eq!(b.list(FileKind::Pack).unwrap(), vec![(name('b'), 4)]);
        assert_eq!(b.list(FileKind::Snapshot).unwrap(), vec![(name('a'), 3)]);
        b.remove(FileKind::Pack, &name('b')).unwrap();
        b.remove(FileKind::Pack, &name('b')).unwrap();
        assert!(b.list(FileKind::Pack).unwrap().is_empty());
        assert!(b.put(FileKind::Pack, "../escape", Bytes::from_static(b"x")).is_err());
    }

    #[test]
    fn ranges_stream_as_they_arrive() {
        let (b, _cache) = backend_on(Arc::new(InMemory::new()));
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        b.put(FileKind::Pack, &name('e'), Bytes::from(data.clone())).unwrap();
        let pieces =
            super::super::all_pieces(b.stream_range(FileKind::Pack, &name('e'), 5, 200_000).unwrap())
                .unwrap();
        assert_eq!(pieces.concat(), data[5..200_005]);
        // Beyond one window's worth the range goes on with further GETs.
        let big: Vec<u8> = (0..2 * STREAM_WINDOW + 999).map(|i| (i * 11 % 251) as u8).collect();
        b.put(FileKind::Pack, &name('a'), Bytes::from(big.clone())).unwrap();
        let len = big.len() as u64 - 3;
        let pieces =
            super::super::all_pieces(b.stream_range(FileKind::Pack, &name('a'), 3, len).unwrap()).unwrap();
        assert_eq!(pieces.concat(), big[3..]);
        // A range past the object's end comes back short (the reader names
        // the shortfall) or fails; it never hands over misplaced bytes.
        let over = b
            .stream_range(FileKind::Pack, &name('a'), len - 5, STREAM_WINDOW + 50)
            .and_then(super::super::all_pieces);
        if let Ok(pieces) = over {
            assert_eq!(pieces.concat(), big[len as usize - 5..]);
        }
    }

    #[test]
    fn large_packs_go_up_in_parts_and_come_back_whole() {
        let (b, _cache) = backend_on(Arc::new(InMemory::new()));
        let data: Vec<u8> = (0..MULTIPART_ABOVE + PART_SIZE + 12345).map(|i| (i * 7 % 251) as u8).collect();
        b.put(FileKind::Pack, &name('d'), Bytes::from(data.clone())).unwrap();
        assert_eq!(b.get(FileKind::Pack, &name('d')).unwrap(), data);
        assert_eq!(b.list(FileKind::Pack).unwrap(), vec![(name('d'), data.len() as u64)]);
    }

    #[test]
    fn shared_locks_coexist_and_exclusive_ones_do_not() {
        let (b, _cache) = backend_on(Arc::new(InMemory::new()));
        let first = b.lock(LockMode::Shared).unwrap();
        let second = b.lock(LockMode::Shared).unwrap();
        let refused = b.lock(LockMode::Exclusive).err().expect("exclusive while shared held");
        assert!(refused.to_string().contains("shared lock of"), "{refused}");
        drop((first, second));
        let exclusive = b.lock(LockMode::Exclusive).unwrap();
        assert!(b.lock(LockMode::Shared).is_err());
        // The holder's own process is alive, so nothing is stale.
        assert!(b.unlock(Unlock::Stale).unwrap().is_empty());
        assert_eq!(b.unlock(Unlock::All).unwrap().len(), 1);
        drop(exclusive);
        assert!(b.list_under("locks").unwrap().is_empty());
    }

    #[test]
    fn the_index_is_cached_per_repository_id() {
        let (b, cache) = backend_on(Arc::new(InMemory::new()));
        let id = "ab".repeat(32);
        assert_eq!(b.index_path(&id).unwrap(), cache.path().join(&id).join(INDEX_FILE));
        assert!(b.index_path("../../etc").is_err());
    }

    /// A store with the faults of real servers: one that accepts
    /// `If-None-Match: *` and overwrites anyway, as some do, and connections
    /// cut after a put reached the store but before its answer came back.
    #[derive(Debug, Default)]
    struct Quirky {
        inner: InMemory,
        ignores_create_only: bool,
        cuts_left: std::sync::atomic::AtomicUsize,
    }

    impl std::fmt::Display for Quirky {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "Quirky")
        }
    }

    fn cut() -> object_store::Error {
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let http =
            object_store::client::HttpError::new(object_store::client::HttpErrorKind::Interrupted, reset);
        object_store::Error::Generic { store: "Quirky", source: Box::new(http) }
    }

    #[async_trait::async_trait]
    impl ObjectStore for Quirky {
        async fn put_opts(
            &self,
            key: &Key,
            payload: PutPayload,
            opts: PutOptions,
        ) -> object_store::Result<PutResult> {
            let opts = if self.ignores_create_only { PutOptions::default() } else { opts };
            let result = self.inner.put_opts(key, payload, opts).await?;
            let cut_now =
                self.cuts_left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
            if cut_now.is_ok() { Err(cut()) } else { Ok(result) }
        }
        async fn put_multipart_opts(
            &self,
            key: &Key,
            opts: PutMultipartOptions,
        ) -> object_store::Result<Box<dyn MultipartUpload>> {
            self.inner.put_multipart_opts(key, opts).await
        }
        async fn get_opts(&self, key: &Key, options: GetOptions) -> object_store::Result<GetResult> {
            self.inner.get_opts(key, options).await
        }
        fn delete_stream(
            &self,
            keys: futures::stream::BoxStream<'static, object_store::Result<Key>>,
        ) -> futures::stream::BoxStream<'static, object_store::Result<Key>> {
            self.inner.delete_stream(keys)
        }
        fn list(
            &self,
            prefix: Option<&Key>,
        ) -> futures::stream::BoxStream<'static, object_store::Result<ObjectMeta>> {
            self.inner.list(prefix)
        }
        async fn list_with_delimiter(&self, prefix: Option<&Key>) -> object_store::Result<ListResult> {
            self.inner.list_with_delimiter(prefix).await
        }
        async fn copy_opts(&self, from: &Key, to: &Key, options: CopyOptions) -> object_store::Result<()> {
            self.inner.copy_opts(from, to, options).await
        }
    }

    #[test]
    fn a_put_cut_in_transit_is_tried_again_and_lands_once() {
        let store = Quirky { cuts_left: 1.into(), ..Quirky::default() };
        let (b, _cache) = backend_on(Arc::new(store));
        // The first attempt stored it; the second found it there.
        assert_eq!(b.put(FileKind::Snapshot, &name('e'), Bytes::from_static(b"snap")).unwrap(), Put::Existed);
        assert_eq!(b.get(FileKind::Snapshot, &name('e')).unwrap(), b"snap");
        assert_eq!(b.put(FileKind::Snapshot, &name('f'), Bytes::from_static(b"next")).unwrap(), Put::Created);
        // An answered error is not a cut: it is reported at once.
        assert!(!failed_in_transit(&object_store::Error::NotImplemented {
            operation: "x".into(),
            implementer: "y".into()
        }));
        assert!(failed_in_transit(&cut()));
    }

    #[test]
    fn a_server_that_ignores_create_only_writes_gets_no_repository() {
        let (b, _cache) = backend_on(Arc::new(Quirky { ignores_create_only: true, ..Quirky::default() }));
        let refused = b.create().expect_err("create must refuse");
        assert!(refused.to_string().contains("ignores create-only writes"), "{refused}");
        assert!(b.list_under("").unwrap().is_empty(), "the probe was left behind");
        let (good, _cache) = backend_on(Arc::new(InMemory::new()));
        good.create().unwrap();
        assert!(good.list_under("").unwrap().is_empty(), "the probe was left behind");
    }
}
