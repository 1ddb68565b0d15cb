//! Locks on an object store, where no flock exists: a holder writes
//! `locks/<random>` (create-only) naming itself, then lists the others and
//! backs off if one conflicts. Two processes that lock at once each write
//! before they list, so at least one sees the other: both may give up, never
//! both proceed. A holder rewrites its lock every few minutes; a lock whose
//! process is gone (same host, dead pid) or that has not been rewritten for
//! far longer than that is stale: it no longer blocks anyone, and
//! `snap unlock` removes it.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use tokio::runtime::Runtime;

use super::ObjectBackend;
use crate::backend::{LockGuard, LockMode, Unlock};
use crate::error::{Error, Result};
use crate::format::lock::{LOCK_VERSION, LockRecord};

const LOCK_DIR: &str = "locks";
/// How often a holder rewrites its lock.
const REFRESH: Duration = Duration::from_secs(5 * 60);
/// A lock not rewritten for this long is stale (six missed refreshes).
const STALE_AFTER_SECS: i64 = 30 * 60;

/// 16 random bytes in hex: a name no other process will pick.
pub(super) fn random_name() -> Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| Error::Crypto(format!("system random source: {e}")))?;
    Ok(hex::encode(bytes))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn this_host() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// A lock this process holds: removed when dropped, rewritten meanwhile.
struct HeldLock {
    stop: Option<mpsc::Sender<()>>,
    refresher: Option<JoinHandle<()>>,
    store: Arc<dyn ObjectStore>,
    runtime: Arc<Runtime>,
    key: Key,
}

impl LockGuard for HeldLock {}

impl HeldLock {
    fn start(backend: &ObjectBackend, key: Key, record: LockRecord) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        let store = Arc::clone(&backend.store);
        let runtime = Arc::clone(&backend.runtime);
        let (refresh_key, refresh_store, refresh_runtime) =
            (key.clone(), Arc::clone(&store), Arc::clone(&runtime));
        let record = Mutex::new(record);
        let refresher = std::thread::spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(REFRESH) {
                let mut rec = record.lock().unwrap_or_else(|p| p.into_inner());
                rec.refreshed = now();
                let payload = PutPayload::from(Bytes::from(rec.encode()));
                // A failed rewrite is tried again at the next interval; the
                // lock only turns stale after several in a row.
                let _ = refresh_runtime.block_on(refresh_store.put(&refresh_key, payload));
            }
        });
        HeldLock { stop: Some(stop), refresher: Some(refresher), store, runtime, key }
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.refresher.take() {
            let _ = t.join();
        }
        // If this fails the lock is left behind; it goes stale and
        // `snap unlock` removes it.
        let _ = self.runtime.block_on(self.store.delete(&self.key));
    }
}

/// What a lock object says.
enum Found {
    Lock(LockRecord),
    Unreadable(String),
}

impl Found {
    fn describe(&self, name: &str) -> String {
        match self {
            Found::Lock(r) => format!(
                "{} lock of {}@{} pid {}, taken {}",
                if r.exclusive { "exclusive" } else { "shared" },
                r.username,
                r.hostname,
                r.pid,
                chrono::DateTime::from_timestamp(r.created, 0)
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                    .unwrap_or_else(|| r.created.to_string()),
            ),
            Found::Unreadable(e) => format!("unreadable lock {LOCK_DIR}/{name} ({e})"),
        }
    }

    /// Why the lock no longer counts, if it does not.
    fn stale(&self, now: i64, host: &str) -> Option<String> {
        let Found::Lock(r) = self else { return None };
        if r.hostname == host && !process_alive(r.pid) {
            return Some(format!("process {} is gone", r.pid));
        }
        let idle = now - r.refreshed;
        (idle > STALE_AFTER_SECS).then(|| format!("not refreshed for {} min", idle / 60))
    }
}

fn process_alive(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) else { return false };
    // EPERM means it exists but belongs to someone else.
    !matches!(rustix::process::test_kill_process(pid), Err(rustix::io::Errno::SRCH))
}

/// Every lock object but `except`, with what it says.
fn found_locks(backend: &ObjectBackend, except: Option<&str>) -> Result<Vec<(String, Found)>> {
    let mut out = Vec::new();
    for (name, _) in backend.list_under(LOCK_DIR)? {
        if Some(name.as_str()) == except {
            continue;
        }
        let key = backend.key(&format!("{LOCK_DIR}/{name}"));
        let bytes = match backend.fetch_capped(&key, crate::format::lock::MAX_LOCK_LEN) {
            Ok(b) => b,
            // Released between the listing and the read.
            Err(object_store::Error::NotFound { .. }) => continue,
            Err(e) => return Err(backend.error(&key, e)),
        };
        let found = match LockRecord::decode(&bytes) {
            Ok(r) => Found::Lock(r),
            Err(e) => Found::Unreadable(e.to_string()),
        };
        out.push((name, found));
    }
    Ok(out)
}

/// Takes a lock, or fails at once naming the holder that conflicts.
pub(super) fn acquire(backend: &ObjectBackend, mode: LockMode) -> Result<Box<dyn LockGuard>> {
    let exclusive = mode == LockMode::Exclusive;
    let taken = now();
    let record = LockRecord {
        version: LOCK_VERSION,
        exclusive,
        hostname: this_host(),
        username: std::env::var("USER").unwrap_or_default(),
        pid: std::process::id(),
        created: taken,
        refreshed: taken,
    };
    let name = random_name()?;
    let key = backend.key(&format!("{LOCK_DIR}/{name}"));
    backend.put_create_only(&key, Bytes::from(record.encode()))?;
    // From here on, any early return drops the guard, which removes the lock.
    let guard = HeldLock::start(backend, key, record);
    let host = this_host();
    for (other, found) in found_locks(backend, Some(&name))? {
        let conflicts = match &found {
            Found::Lock(r) => exclusive || r.exclusive,
            Found::Unreadable(_) => true,
        };
        if conflicts && found.stale(taken, &host).is_none() {
            return Err(Error::Locked {
                detail: format!(
                    "{}; if that process is gone, `snap unlock` removes the lock",
                    found.describe(&other)
                ),
            });
        }
    }
    Ok(Box::new(guard))
}

/// Removes stale locks, or all; returns a line for each removed.
pub(super) fn remove(backend: &ObjectBackend, which: Unlock) -> Result<Vec<String>> {
    let (now, host) = (now(), this_host());
    let mut removed = Vec::new();
    for (name, found) in found_locks(backend, None)? {
        let why = match (which, found.stale(now, &host)) {
            (_, Some(why)) => why,
            (Unlock::All, None) => "--all".to_owned(),
            (Unlock::Stale, None) => continue,
        };
        backend.delete(&backend.key(&format!("{LOCK_DIR}/{name}")))?;
        removed.push(format!("removed {} ({why})", found.describe(&name)));
    }
    Ok(removed)
}
