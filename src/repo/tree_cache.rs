//! Whole tree packs of a remote repository, kept on local disk. Every
//! backup, restore, ls or diff walks directory nodes one by one; on an
//! object store each would be a request, so a tree pack is fetched whole the
//! first time one of its nodes is needed and read locally after that. Packs
//! are immutable and named by their hash, so a copy never goes stale: it is
//! checked against its name when fetched, every node read from it is still
//! checked against its id, and a copy that fails either is dropped and the
//! node read from the store instead. Copies of packs that left the
//! repository are removed when the index is reconciled. Verify wants the
//! store's bytes, not a copy made earlier: after [`TreeCache::refetch`]
//! each pack is fetched anew (once) before nodes are read from it.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::backend::{Backend, FileKind};
use crate::error::{Error, IoContext, Result};
use crate::hash;
use crate::id::PackId;

pub(super) struct TreeCache {
    dir: PathBuf,
    /// One lock per pack being fetched, so threads that want nodes of the
    /// same pack wait for one download instead of starting their own.
    fetching: Mutex<HashMap<PackId, Arc<Mutex<()>>>>,
    /// Whether copies made before [`TreeCache::refetch`] are ignored.
    refetching: AtomicBool,
    /// Packs fetched by this process.
    fetched: Mutex<HashSet<PackId>>,
}

impl TreeCache {
    pub(super) fn new(dir: PathBuf) -> Self {
        TreeCache {
            dir,
            fetching: Mutex::default(),
            refetching: AtomicBool::new(false),
            fetched: Mutex::default(),
        }
    }

    /// From now on, reads only copies this process fetched itself.
    pub(super) fn refetch(&self) {
        self.refetching.store(true, Ordering::Relaxed);
    }

    fn path(&self, pack: &PackId) -> PathBuf {
        self.dir.join(pack.to_hex())
    }

    /// Exactly `len` bytes at `offset` of a tree pack, fetching the pack
    /// whole first when there is no local copy.
    pub(super) fn read(
        &self,
        backend: &dyn Backend,
        pack: &PackId,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>> {
        if let Some(bytes) = self.read_local(pack, offset, len) {
            return Ok(bytes);
        }
        let lock = {
            let mut fetching = self.fetching.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(fetching.entry(*pack).or_default())
        };
        let _one_download = lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(bytes) = self.read_local(pack, offset, len) {
            return Ok(bytes);
        }
        let whole = backend.get(FileKind::Pack, &pack.to_hex())?;
        if hash::pack_id(&whole) != *pack {
            return Err(Error::corrupt(format!("pack {pack}"), "contents do not match the pack's name"));
        }
        self.fetched.lock().unwrap_or_else(|p| p.into_inner()).insert(*pack);
        // Best effort: without a copy the node is still returned.
        let _ = self.store(pack, &whole);
        let range = usize::try_from(offset).ok().and_then(|start| whole.get(start..start.checked_add(len)?));
        range.map(<[u8]>::to_vec).ok_or_else(|| {
            Error::read_failed(format!("pack {pack}"), format!("short read: {len} bytes at offset {offset}"))
        })
    }

    fn read_local(&self, pack: &PackId, offset: u64, len: usize) -> Option<Vec<u8>> {
        if self.refetching.load(Ordering::Relaxed)
            && !self.fetched.lock().unwrap_or_else(|p| p.into_inner()).contains(pack)
        {
            return None;
        }
        let file = File::open(self.path(pack)).ok()?;
        let mut out = vec![0; len];
        file.read_exact_at(&mut out, offset).ok()?;
        Some(out)
    }

    /// Written under a temporary name and renamed, so a copy is whole or
    /// absent (not synced: it is a cache, and is checked when read).
    fn store(&self, pack: &PackId, bytes: &[u8]) -> Result<()> {
        let tmp = self.dir.join(format!("{}.{}.tmp", pack.to_hex(), std::process::id()));
        std::fs::write(&tmp, bytes).at(&tmp)?;
        let path = self.path(pack);
        std::fs::rename(&tmp, &path).at(&path)
    }

    /// Drops the local copy of a pack (it failed a check).
    pub(super) fn forget(&self, pack: &PackId) {
        let _ = std::fs::remove_file(self.path(pack));
    }

    /// Removes the copies of packs the repository no longer has, and
    /// temporary files left by interrupted runs.
    pub(super) fn retain(&self, present: impl Fn(&PackId) -> bool) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let keep = name.to_str().and_then(|n| PackId::from_hex(n).ok()).is_some_and(|id| present(&id));
            if !keep {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}
