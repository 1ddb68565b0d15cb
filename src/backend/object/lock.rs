//! Locks on an object store, where no flock exists. A lock is a lease:
//!
//! - **Taking it.** A process writes `locks/<random>` (create-only) naming
//!   itself (`format/lock.rs`), then lists the others and backs off if one
//!   conflicts (either is exclusive) and is not stale. Two processes that
//!   lock at once each write before they list, so at least one sees the
//!   other: both may give up, never both proceed.
//! - **Staleness, by the store's clock.** A lock is stale when the store's
//!   own modification time of the object is more than `stale_after` (30
//!   minutes) behind the store's time now, or when it names a process of
//!   this very kernel boot and pid namespace that does not exist. No two
//!   hosts' clocks are ever compared: "now" is the modification time the
//!   store gave an object the checker has just written (its own new lock
//!   when taking one, a probe object for `snap unlock` and `snap status`).
//!   A pid names a process only within one kernel and pid namespace, so a
//!   lock of another boot, another namespace, or one that does not say
//!   (version 1) is judged by age alone.
//! - **Holding it.** The holder rewrites its lock every `stale_after / 6`,
//!   noting on a clock that keeps counting through suspend (`CLOCK_BOOTTIME`)
//!   when each rewrite that succeeded was *sent*; the store stamps it no
//!   earlier. Once more than `stale_after / 2` has passed since then, the
//!   lease is lost for good: the process may have been paused or cut off
//!   long enough for someone to take the lock for stale, and a later
//!   rewrite that succeeds (after a SIGSTOP, say) changes nothing.
//! - **Before a commit** ([`LockGuard::still_held`]): the lease is not lost,
//!   the holder's own lock object is still listed, and no conflicting lock
//!   that is not stale has appeared beside it. Otherwise the commit is
//!   refused with [`Error::LockLost`].

use std::os::unix::fs::MetadataExt;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::path::Path as Key;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use tokio::runtime::Runtime;

use super::{ObjectBackend, storage_error};
use crate::backend::{LockGuard, LockMode, LockState, Unlock};
use crate::error::{Error, Result};
use crate::format::lock::{LOCK_VERSION, LockRecord, MAX_LOCK_LEN, MAX_TEXT_LEN};

const LOCK_DIR: &str = "locks";
/// Objects written only to learn the store's time, beside `locks/` (not in
/// it, so no one reads one as a lock).
const CLOCK_PROBE: &str = "clock-probe-";

/// How long a lock lasts, and what follows from that.
#[derive(Clone, Copy, Debug)]
struct Timing {
    /// A lock the store shows not rewritten for longer is stale.
    stale_after: Duration,
    /// How often the holder rewrites it.
    refresh: Duration,
    /// How long after its last rewrite that succeeded the holder still
    /// trusts its lock: half the stale age, leaving the other half for the
    /// commit that follows a check and for the store's coarse timestamps.
    margin: Duration,
}

impl Timing {
    fn of(stale_after: Duration) -> Self {
        Timing { stale_after, refresh: stale_after / 6, margin: stale_after / 2 }
    }

    fn current() -> Self {
        Self::of(crate::crash::lock_stale_after())
    }
}

/// 16 random bytes in hex: a name no other process will pick.
pub(super) fn random_name() -> Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| Error::Crypto(format!("system random source: {e}")))?;
    Ok(hex::encode(bytes))
}

fn this_host() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// What a pid is relative to: one boot of one kernel and one pid namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Identity {
    boot_id: Option<String>,
    pid_ns: Option<u64>,
}

impl Identity {
    /// This process's, read once.
    fn this() -> &'static Identity {
        static ME: OnceLock<Identity> = OnceLock::new();
        ME.get_or_init(|| {
            let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty() && s.len() <= MAX_TEXT_LEN);
            // The namespace file's inode is the namespace's id.
            let pid_ns = std::fs::metadata("/proc/self/ns/pid").ok().map(|m| m.ino());
            Identity { boot_id, pid_ns }
        })
    }

    /// Whether `r`'s pid can be looked up here: it was written in this
    /// kernel boot and pid namespace, and both sides know theirs.
    fn sees_pid_of(&self, r: &LockRecord) -> bool {
        self.boot_id.is_some()
            && self.pid_ns.is_some()
            && r.boot_id == self.boot_id
            && r.pid_ns == self.pid_ns
    }
}

/// Time since boot, suspend included: `Instant` (CLOCK_MONOTONIC) stops
/// while a laptop sleeps, and a lease runs out all the same.
fn boot_clock() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    Duration::new(u64::try_from(t.tv_sec).unwrap_or(0), u32::try_from(t.tv_nsec).unwrap_or(0))
}

/// A duration for messages.
fn span(d: Duration) -> String {
    match d.as_secs() {
        s if s < 120 => format!("{s} s"),
        s => format!("{} min", s / 60),
    }
}

/// How long before `now` an object was last written (zero if after it).
fn idle(modified: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    now.signed_duration_since(modified).to_std().unwrap_or(Duration::ZERO)
}

fn guarded<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The holder's view of its lease, shared with the thread that rewrites it.
struct Lease {
    timing: Timing,
    /// Boot-clock time at which the last rewrite that succeeded was sent
    /// (at first, the create): the store stamped it no earlier.
    confirmed: Mutex<Duration>,
    /// Why the lock may have been lost, once it may have. Never cleared:
    /// a paused process that resumes rewrites its lock fine, after a prune
    /// may already have taken it for stale.
    lost: Mutex<Option<String>>,
}

impl Lease {
    fn new(timing: Timing, sent: Duration) -> Self {
        Lease { timing, confirmed: Mutex::new(sent), lost: Mutex::new(None) }
    }

    fn lose(&self, why: impl Into<String>) {
        guarded(&self.lost).get_or_insert_with(|| why.into());
    }

    fn confirm(&self, sent: Duration) {
        let mut confirmed = guarded(&self.confirmed);
        *confirmed = (*confirmed).max(sent);
    }

    /// Whether the lease still holds by the holder's own clock; losing it
    /// for good if the margin has passed.
    fn check(&self) -> Result<()> {
        let since = boot_clock().saturating_sub(*guarded(&self.confirmed));
        if since > self.timing.margin {
            self.lose(format!(
                "not rewritten for {}: this process was paused, suspended or cut off from the store, \
                 and another process may have taken it for stale",
                span(since)
            ));
        }
        match &*guarded(&self.lost) {
            Some(why) => Err(Error::LockLost { detail: why.clone() }),
            None => Ok(()),
        }
    }
}

/// The `locks/` directory of one repository, usable from the holder's
/// refresh thread (which cannot borrow the backend).
#[derive(Clone)]
struct Locks {
    store: Arc<dyn ObjectStore>,
    runtime: Arc<Runtime>,
    dir: Key,
    location: String,
}

/// A lock object and what it says.
struct Other {
    name: String,
    found: Found,
    /// The store's modification time of the object.
    modified: DateTime<Utc>,
}

enum Found {
    Lock(LockRecord),
    Unreadable(String),
}

impl Other {
    fn describe(&self) -> String {
        match &self.found {
            Found::Lock(r) => format!(
                "{} lock of {}@{} pid {}, taken {}",
                if r.exclusive { "exclusive" } else { "shared" },
                r.username,
                r.hostname,
                r.pid,
                DateTime::from_timestamp(r.created, 0)
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                    .unwrap_or_else(|| r.created.to_string()),
            ),
            Found::Unreadable(e) => format!("unreadable lock {LOCK_DIR}/{} ({e})", self.name),
        }
    }

    /// How the user gets rid of it once nobody uses it: an unreadable
    /// lock never goes stale, so only `--all` removes it.
    fn remedy(&self) -> &'static str {
        match self.found {
            Found::Lock(_) => "if that process is gone, `snap unlock` removes the lock",
            Found::Unreadable(_) => {
                "it never goes stale: once no snap (perhaps a newer one) uses the repository, `snap unlock --all` \
                 removes it"
            }
        }
    }

    /// Whether it keeps a holder of `exclusive` out (while not stale).
    fn conflicts_with(&self, exclusive: bool) -> bool {
        match &self.found {
            Found::Lock(r) => exclusive || r.exclusive,
            // Of a newer snap, or damaged: what it means is unknown.
            Found::Unreadable(_) => true,
        }
    }

    /// Why it no longer counts, if it does not, at the store's time `now`.
    fn stale(&self, now: DateTime<Utc>, stale_after: Duration) -> Option<String> {
        verdict(&self.found, self.modified, now, Identity::this(), stale_after, process_alive)
    }
}

/// Why a lock no longer counts, if it does not: its process is gone (only
/// where its pid means something here), or the store shows it not
/// rewritten for more than `stale_after` before `now` (a store time too).
/// Nothing the lock says about time is used: its clock is not ours.
fn verdict(
    found: &Found,
    modified: DateTime<Utc>,
    now: DateTime<Utc>,
    me: &Identity,
    stale_after: Duration,
    alive: impl Fn(u32) -> bool,
) -> Option<String> {
    // An unreadable lock never goes stale: it is removed with `--all`.
    let Found::Lock(r) = found else { return None };
    if me.sees_pid_of(r) && !alive(r.pid) {
        return Some(format!("process {} is gone", r.pid));
    }
    let idle = idle(modified, now);
    (idle > stale_after).then(|| format!("not refreshed for {}", span(idle)))
}

fn process_alive(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) else { return false };
    // EPERM means it exists but belongs to someone else.
    !matches!(rustix::process::test_kill_process(pid), Err(rustix::io::Errno::SRCH))
}

impl Locks {
    fn of(backend: &ObjectBackend) -> Self {
        Locks {
            store: Arc::clone(&backend.store),
            runtime: Arc::clone(&backend.runtime),
            dir: backend.key(LOCK_DIR),
            location: backend.location.clone(),
        }
    }

    fn key(&self, name: &str) -> Key {
        self.dir.clone().join(name)
    }

    fn error(&self, key: &Key, e: object_store::Error) -> Error {
        storage_error(&self.location, key, e)
    }

    /// Every lock object, as (name below `locks/`, listing).
    fn listed(&self) -> Result<Vec<(String, ObjectMeta)>> {
        let found: Vec<ObjectMeta> = self
            .runtime
            .block_on(self.store.list(Some(&self.dir)).try_collect())
            .map_err(|e| self.error(&self.dir, e))?;
        let skip = self.dir.parts().count();
        Ok(found
            .into_iter()
            .map(|meta| {
                let rest: Vec<String> =
                    meta.location.parts().skip(skip).map(|p| p.as_ref().to_owned()).collect();
                (rest.join("/"), meta)
            })
            .collect())
    }

    /// What a listed lock says; `None` if it was released meanwhile.
    fn read(&self, name: &str, listed: &ObjectMeta) -> Result<Option<Other>> {
        let other = |found| Other { name: name.to_owned(), found, modified: listed.last_modified };
        if listed.size > MAX_LOCK_LEN as u64 {
            // Not read at all: a lock is a few hundred bytes.
            return Ok(Some(other(Found::Unreadable(format!("{} bytes", listed.size)))));
        }
        let key = &listed.location;
        // Replaced by a larger object since the listing (even one listed
        // empty): still never more than one byte past the cap is read.
        let cap = Some(0..MAX_LOCK_LEN as u64 + 1);
        let got = self.runtime.block_on(async {
            let got = self.store.get_opts(key, object_store::GetOptions::new().with_range(cap)).await?;
            let meta = got.meta.clone();
            Ok::<_, object_store::Error>((got.bytes().await?, meta))
        });
        let (bytes, meta) = match got {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            // A range of an empty object is unsatisfiable (416); empty, it
            // is no lock snap wrote.
            Err(_) if listed.size == 0 => return Ok(Some(other(Found::Unreadable("0 bytes".into())))),
            Err(e) => return Err(self.error(key, e)),
        };
        let found = match LockRecord::decode(&bytes) {
            _ if bytes.len() > MAX_LOCK_LEN => Found::Unreadable(format!("more than {MAX_LOCK_LEN} bytes")),
            Ok(r) => Found::Lock(r),
            Err(e) => Found::Unreadable(e.to_string()),
        };
        // The time of the version just read: it may have been rewritten
        // since it was listed.
        Ok(Some(Other { modified: meta.last_modified.max(listed.last_modified), ..other(found) }))
    }

    /// Rewrites a held lock, only if it is still the object this holder
    /// wrote last (`If-Match`), so a lock removed by `snap unlock --all` is
    /// noticed rather than silently written again.
    fn rewrite(&self, key: &Key, record: &LockRecord, e_tag: &mut Option<String>) -> Rewrite {
        let mode = match e_tag.clone() {
            Some(tag) => PutMode::Update(UpdateVersion { e_tag: Some(tag), version: None }),
            // A store without conditional writes: look, then write.
            None => match self.runtime.block_on(self.store.head(key)) {
                Ok(_) => PutMode::Overwrite,
                Err(object_store::Error::NotFound { .. }) => return Rewrite::Gone,
                Err(_) => return Rewrite::Failed,
            },
        };
        let payload = PutPayload::from(Bytes::from(record.encode()));
        match self.runtime.block_on(self.store.put_opts(key, payload, PutOptions::from(mode))) {
            Ok(put) => {
                *e_tag = put.e_tag;
                Rewrite::Done
            }
            // A store without conditional writes: without them from now on.
            Err(object_store::Error::NotImplemented { .. }) => {
                *e_tag = None;
                Rewrite::Failed
            }
            // Changed or gone since: gone, or replaced by someone else, or
            // rewritten by an earlier attempt whose answer was lost (then it
            // is still ours, with a tag this holder never heard of).
            Err(object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. }) => {
                let got = self.runtime.block_on(async {
                    let got = self.store.get(key).await?;
                    let tag = got.meta.e_tag.clone();
                    Ok::<_, object_store::Error>((got.bytes().await?, tag))
                });
                match got {
                    Ok((bytes, tag)) if LockRecord::decode(&bytes).is_ok_and(|r| same_holder(&r, record)) => {
                        *e_tag = tag;
                        Rewrite::Failed
                    }
                    Ok(_) | Err(object_store::Error::NotFound { .. }) => Rewrite::Gone,
                    Err(_) => Rewrite::Failed,
                }
            }
            Err(_) => Rewrite::Failed,
        }
    }
}

/// Whether two records were written by one holder (all but the refresh time).
fn same_holder(a: &LockRecord, b: &LockRecord) -> bool {
    a == &LockRecord { refreshed: a.refreshed, ..b.clone() }
}

enum Rewrite {
    Done,
    /// Not rewritten this time; tried again at the next interval.
    Failed,
    /// The object is no longer this holder's.
    Gone,
}

/// What a holder sees beside its own lock.
enum Seen {
    Clear,
    OwnMissing,
    Conflict(Other),
}

/// A lock this process holds: removed when dropped, rewritten meanwhile.
struct HeldLock {
    locks: Locks,
    name: String,
    exclusive: bool,
    lease: Arc<Lease>,
    stop: Option<mpsc::Sender<()>>,
    refresher: Option<JoinHandle<()>>,
}

impl HeldLock {
    /// Starts rewriting the lock just written as `name`.
    fn start(
        locks: Locks,
        name: String,
        mut record: LockRecord,
        mut e_tag: Option<String>,
        lease: Arc<Lease>,
    ) -> Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let mut held =
            HeldLock { exclusive: record.exclusive, name, lease, locks, stop: Some(stop), refresher: None };
        let (locks, key, lease) = (held.locks.clone(), held.locks.key(&held.name), Arc::clone(&held.lease));
        let refresher = std::thread::Builder::new().name("snap-lock".into()).spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(lease.timing.refresh) {
                // Before each rewrite, so a process resuming from a pause
                // loses its lease before a rewrite that succeeds can hide
                // the gap.
                let _ = lease.check();
                let sent = boot_clock();
                // Never before `created`, even if this clock went back: a
                // lock refreshed before it was taken does not decode.
                record.refreshed = Utc::now().timestamp().max(record.created);
                match locks.rewrite(&key, &record, &mut e_tag) {
                    Rewrite::Done => lease.confirm(sent),
                    Rewrite::Failed => {}
                    Rewrite::Gone => lease.lose("its lock object was removed (by `snap unlock --all`?)"),
                }
            }
        });
        // On failure `held` is dropped here, which removes the lock.
        held.refresher = Some(refresher.map_err(|e| Error::Storage {
            location: held.locks.location.clone(),
            detail: format!("start the lock refresh thread: {e}"),
        })?);
        Ok(held)
    }

    /// Lists the locks beside this one. Their age is measured against the
    /// store's time of this holder's own last rewrite, which is no later
    /// than the store's now: a lock is never taken for stale too early.
    fn look(&self) -> Result<Seen> {
        let listed = self.locks.listed()?;
        let Some((_, own)) = listed.iter().find(|(name, _)| *name == self.name) else {
            return Ok(Seen::OwnMissing);
        };
        let now = own.last_modified;
        for (name, meta) in listed.iter().filter(|(name, _)| *name != self.name) {
            let Some(other) = self.locks.read(name, meta)? else { continue };
            if other.conflicts_with(self.exclusive)
                && other.stale(now, self.lease.timing.stale_after).is_none()
            {
                return Ok(Seen::Conflict(other));
            }
        }
        Ok(Seen::Clear)
    }
}

impl LockGuard for HeldLock {
    fn still_held(&self) -> Result<()> {
        self.lease.check()?;
        let seen =
            self.look().map_err(|e| Error::LockLost { detail: format!("it could not be checked: {e}") })?;
        match seen {
            Seen::Clear => {}
            Seen::OwnMissing => self.lease.lose("its lock object is gone (removed by `snap unlock --all`?)"),
            Seen::Conflict(other) => self.lease.lose(format!("{} is held beside it", other.describe())),
        }
        // Again: the listing itself may have taken long.
        self.lease.check()
    }

    fn lease_holds(&self) -> Result<()> {
        self.lease.check()
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
        let _ = self.locks.runtime.block_on(self.locks.store.delete(&self.locks.key(&self.name)));
    }
}

/// Takes a lock, or fails at once naming the holder that conflicts.
pub(super) fn acquire(backend: &ObjectBackend, mode: LockMode) -> Result<Box<dyn LockGuard>> {
    let me = Identity::this();
    let taken = Utc::now().timestamp();
    let record = LockRecord {
        version: LOCK_VERSION,
        exclusive: mode == LockMode::Exclusive,
        hostname: this_host(),
        username: std::env::var("USER").unwrap_or_default(),
        pid: std::process::id(),
        boot_id: me.boot_id.clone(),
        pid_ns: me.pid_ns,
        created: taken,
        refreshed: taken,
    };
    let locks = Locks::of(backend);
    let name = random_name()?;
    let key = locks.key(&name);
    let sent = boot_clock();
    let data = Bytes::from(record.encode());
    let put = || {
        let opts = PutOptions::from(PutMode::Create);
        backend.runtime.block_on(backend.store.put_opts(&key, PutPayload::from(data.clone()), opts))
    };
    // A random name exists already only if an earlier attempt of this put
    // landed; the first rewrite then goes without If-Match.
    let e_tag = match backend.retrying(put) {
        Ok(put) => put.e_tag,
        Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => None,
        Err(e) => return Err(backend.error(&key, e)),
    };
    // From here on, any early return drops the guard, which removes the lock.
    let lease = Arc::new(Lease::new(Timing::current(), sent));
    let guard = HeldLock::start(locks, name, record, e_tag, lease)?;
    match guard.look()? {
        Seen::Clear => Ok(Box::new(guard)),
        Seen::Conflict(other) => {
            Err(Error::Locked { detail: format!("{}; {}", other.describe(), other.remedy()) })
        }
        Seen::OwnMissing => Err(Error::LockLost {
            detail: "its lock object was not listed right after it was written".into(),
        }),
    }
}

/// The store's time now: the modification time it gives an object written
/// for the purpose, then removed.
fn store_now(backend: &ObjectBackend) -> Result<DateTime<Utc>> {
    let key = backend.key(&format!("{CLOCK_PROBE}{}", random_name()?));
    backend.put_create_only(&key, Bytes::new())?;
    let head = backend.runtime.block_on(backend.store.head(&key));
    backend.delete(&key)?;
    head.map(|meta| meta.last_modified).map_err(|e| backend.error(&key, e))
}

/// Every lock object with what it says, and the store's time now; no
/// probe is written when there are no locks.
fn all_locks(backend: &ObjectBackend) -> Result<(Vec<Other>, DateTime<Utc>)> {
    let locks = Locks::of(backend);
    let listed = locks.listed()?;
    if listed.is_empty() {
        return Ok((Vec::new(), Utc::now()));
    }
    // Taken before the locks are read: a lock rewritten meanwhile then
    // looks younger, never older.
    let now = store_now(backend)?;
    let mut out = Vec::new();
    for (name, meta) in &listed {
        out.extend(locks.read(name, meta)?);
    }
    Ok((out, now))
}

/// Removes stale locks, or all; returns a line for each removed.
pub(super) fn remove(backend: &ObjectBackend, which: Unlock) -> Result<Vec<String>> {
    let stale_after = Timing::current().stale_after;
    let (found, now) = all_locks(backend)?;
    let mut removed = Vec::new();
    for other in found {
        let why = match (which, other.stale(now, stale_after)) {
            (_, Some(why)) => why,
            (Unlock::All, None) => "--all".to_owned(),
            (Unlock::Stale, None) => continue,
        };
        backend.delete(&backend.key(&format!("{LOCK_DIR}/{}", other.name)))?;
        removed.push(format!("removed {} ({why})", other.describe()));
    }
    Ok(removed)
}

/// Who holds the lock, from the listing alone (no lock is written).
pub(super) fn holders(backend: &ObjectBackend) -> Result<LockState> {
    let stale_after = Timing::current().stale_after;
    let (found, now) = all_locks(backend)?;
    let mut state = LockState::Free;
    for other in found.iter().filter(|o| o.stale(now, stale_after).is_none()) {
        if other.conflicts_with(false) {
            // Exclusive, or unreadable: either keeps every other process out.
            return Ok(LockState::Exclusive);
        }
        state = LockState::Shared;
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Backend;

    const MIN: Duration = Duration::from_secs(60);

    fn record(boot_id: Option<&str>, pid_ns: Option<u64>, refreshed: i64) -> Found {
        Found::Lock(LockRecord {
            version: 2,
            exclusive: true,
            hostname: this_host(),
            username: "u".into(),
            pid: 7,
            boot_id: boot_id.map(str::to_owned),
            pid_ns,
            created: i64::MIN,
            refreshed,
        })
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    fn me() -> Identity {
        Identity { boot_id: Some("boot-a".into()), pid_ns: Some(11) }
    }

    #[test]
    fn a_pid_counts_only_in_its_own_kernel_and_namespace() {
        let (dead, alive) = (|_: u32| false, |_: u32| true);
        let now = at(10_000);
        let fresh = at(10_000 - 60);
        let here = record(Some("boot-a"), Some(11), 0);
        assert_eq!(verdict(&here, fresh, now, &me(), 30 * MIN, dead).as_deref(), Some("process 7 is gone"));
        assert_eq!(verdict(&here, fresh, now, &me(), 30 * MIN, alive), None);
        // Same host name, but another boot, another namespace, or unknown:
        // a dead-looking pid means nothing, only age decides.
        for other in [
            record(Some("boot-b"), Some(11), 0),
            record(Some("boot-a"), Some(12), 0),
            record(None, None, 0),
            record(Some("boot-a"), None, 0),
        ] {
            assert_eq!(verdict(&other, fresh, now, &me(), 30 * MIN, dead), None);
            let old = at(10_000 - 31 * 60);
            assert_eq!(
                verdict(&other, old, now, &me(), 30 * MIN, alive).as_deref(),
                Some("not refreshed for 31 min")
            );
        }
        // A checker that does not know its own identity judges nobody by pid.
        assert_eq!(verdict(&record(None, None, 0), fresh, now, &Identity::default(), 30 * MIN, dead), None);
    }

    #[test]
    fn the_store_time_decides_whatever_the_lock_says() {
        let never = |_: u32| -> bool { unreachable!("another namespace: no pid is looked up") };
        let now = at(1_000_000);
        for refreshed in [i64::MIN, -1, 0, 1_000_000, i64::MAX] {
            let found = record(Some("boot-b"), Some(1), refreshed);
            assert_eq!(
                verdict(&found, at(1_000_000 - 29 * 60), now, &me(), 30 * MIN, never),
                None,
                "{refreshed}"
            );
            assert!(verdict(&found, at(1_000_000 - 31 * 60), now, &me(), 30 * MIN, never).is_some());
        }
        // A modification time after the checker's now is no age at all.
        assert_eq!(idle(at(2_000_000), now), Duration::ZERO);
        let extremes = (DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC);
        assert_eq!(idle(extremes.1, extremes.0), Duration::ZERO);
        assert!(idle(extremes.0, extremes.1) > Duration::from_secs(u64::from(u32::MAX)));
        // An unreadable lock is never stale.
        assert_eq!(verdict(&Found::Unreadable("x".into()), at(0), now, &me(), MIN, never), None);
    }

    #[test]
    fn a_lease_lost_stays_lost() {
        let timing = Timing::of(Duration::from_secs(60));
        let lease = Lease::new(timing, boot_clock());
        lease.check().unwrap();
        // As after a pause: the last confirmed rewrite is older than the margin.
        let lease = Lease::new(timing, boot_clock().saturating_sub(timing.margin + Duration::from_secs(1)));
        let lost = lease.check().unwrap_err();
        assert!(
            matches!(lost, Error::LockLost { .. }) && lost.to_string().contains("not rewritten for"),
            "{lost}"
        );
        // The rewrite that succeeds on resuming does not bring it back.
        lease.confirm(boot_clock());
        assert!(matches!(lease.check(), Err(Error::LockLost { .. })));
    }

    #[test]
    fn the_boot_clock_runs() {
        let a = boot_clock();
        std::thread::sleep(Duration::from_millis(5));
        assert!(boot_clock() > a && a > Duration::ZERO);
    }

    /// A store whose clock can be moved for chosen objects (their
    /// modification times read back older), and that records every put.
    #[derive(Debug, Default)]
    struct Watched {
        inner: object_store::memory::InMemory,
        aged: Mutex<Vec<(String, chrono::TimeDelta)>>,
        puts: Mutex<Vec<Key>>,
        /// Key ends whose listing says 100 bytes, as if the object had
        /// been replaced by a larger one since.
        understated: Mutex<Vec<String>>,
    }

    impl std::fmt::Display for Watched {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "Watched")
        }
    }

    impl Watched {
        /// Ages the object whose key ends in `key_end`. A match on the end,
        /// not a substring: `locks/a` must not also age a random lock name
        /// that happens to begin with `a`.
        fn age(&self, key_end: &str, by: Duration) {
            guarded(&self.aged).push((key_end.to_owned(), chrono::TimeDelta::from_std(by).unwrap()));
        }

        fn shift(&self, mut meta: ObjectMeta) -> ObjectMeta {
            for (part, by) in guarded(&self.aged).iter() {
                if meta.location.as_ref().ends_with(part.as_str()) {
                    meta.last_modified -= *by;
                }
            }
            meta
        }
    }

    #[async_trait::async_trait]
    impl ObjectStore for Watched {
        async fn put_opts(
            &self,
            key: &Key,
            payload: PutPayload,
            opts: PutOptions,
        ) -> object_store::Result<object_store::PutResult> {
            guarded(&self.puts).push(key.clone());
            self.inner.put_opts(key, payload, opts).await
        }
        async fn put_multipart_opts(
            &self,
            key: &Key,
            opts: object_store::PutMultipartOptions,
        ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
            self.inner.put_multipart_opts(key, opts).await
        }
        async fn get_opts(
            &self,
            key: &Key,
            options: object_store::GetOptions,
        ) -> object_store::Result<object_store::GetResult> {
            let mut got = self.inner.get_opts(key, options).await?;
            got.meta = self.shift(got.meta);
            Ok(got)
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
            let understate = |mut meta: ObjectMeta| {
                if guarded(&self.understated).iter().any(|end| meta.location.as_ref().ends_with(end.as_str()))
                {
                    meta.size = 100;
                }
                meta
            };
            let metas: Vec<_> = futures::executor::block_on(self.inner.list(prefix).try_collect::<Vec<_>>())
                .map(|all| all.into_iter().map(|m| Ok(understate(self.shift(m)))).collect())
                .unwrap_or_else(|e| vec![Err(e)]);
            Box::pin(futures::stream::iter(metas))
        }
        async fn list_with_delimiter(
            &self,
            prefix: Option<&Key>,
        ) -> object_store::Result<object_store::ListResult> {
            self.inner.list_with_delimiter(prefix).await
        }
        async fn copy_opts(
            &self,
            from: &Key,
            to: &Key,
            options: object_store::CopyOptions,
        ) -> object_store::Result<()> {
            self.inner.copy_opts(from, to, options).await
        }
    }

    fn backend_on(store: Arc<Watched>) -> (ObjectBackend, tempfile::TempDir) {
        let cache = tempfile::tempdir().unwrap();
        let b = ObjectBackend::new(store, "p", "mem://test".into(), cache.path().to_owned()).unwrap();
        (b, cache)
    }

    /// Writes a lock object as another process would.
    fn plant(b: &ObjectBackend, name: &str, record: &LockRecord) {
        let key = b.key(&format!("{LOCK_DIR}/{name}"));
        b.runtime.block_on(b.store.put(&key, PutPayload::from(record.encode()))).unwrap();
    }

    fn planted(exclusive: bool, pid: u32, boot_id: Option<String>, refreshed: i64) -> LockRecord {
        LockRecord {
            version: LOCK_VERSION,
            exclusive,
            hostname: this_host(),
            username: "planted".into(),
            pid,
            boot_id,
            pid_ns: Identity::this().pid_ns,
            created: i64::MIN,
            refreshed,
        }
    }

    /// A pid no process has: above the kernel's limit.
    fn dead_pid() -> u32 {
        std::fs::read_to_string("/proc/sys/kernel/pid_max").map_or(4_194_304, |s| s.trim().parse().unwrap())
            + 1
    }

    #[test]
    fn another_kernels_lock_with_a_live_looking_pid_is_judged_by_store_age_only() {
        let store = Arc::new(Watched::default());
        let (b, _cache) = backend_on(Arc::clone(&store));
        let stale_after = Timing::current().stale_after;
        // This test's own pid is alive; in another boot it names nothing
        // here, and its far-future refresh time is the other host's clock.
        plant(&b, "a", &planted(true, std::process::id(), Some("another-boot".into()), i64::MAX));
        let refused = b.lock(LockMode::Shared).err().expect("a fresh exclusive lock keeps others out");
        assert!(refused.to_string().contains("exclusive lock of planted@"), "{refused}");
        assert_eq!(b.lock_holders().unwrap(), LockState::Exclusive);
        // Old by the store's clock: stale, whatever its pid and fields say.
        store.age("locks/a", stale_after + Duration::from_secs(5));
        drop(b.lock(LockMode::Exclusive).unwrap());
        assert_eq!(b.lock_holders().unwrap(), LockState::Free);
        let removed = b.unlock(Unlock::Stale).unwrap();
        assert!(removed.len() == 1 && removed[0].contains("not refreshed for"), "{removed:?}");

        // A far-past refresh time on a lock the store saw just now: live.
        plant(&b, "b", &planted(true, std::process::id(), Some("another-boot".into()), i64::MIN));
        assert!(b.lock(LockMode::Shared).is_err());
        assert!(b.unlock(Unlock::Stale).unwrap().is_empty());
        b.unlock(Unlock::All).unwrap();

        // A dead pid of another kernel is not looked up: only age decides.
        plant(&b, "c", &planted(true, dead_pid(), Some("another-boot".into()), 0));
        assert!(b.lock(LockMode::Shared).is_err());
        // In this kernel and pid namespace it is gone, so the lock is stale.
        plant(&b, "c", &planted(true, dead_pid(), Identity::this().boot_id.clone(), 0));
        if Identity::this().boot_id.is_some() && Identity::this().pid_ns.is_some() {
            drop(b.lock(LockMode::Shared).unwrap());
            let removed = b.unlock(Unlock::Stale).unwrap();
            assert!(removed[0].contains(&format!("process {} is gone", dead_pid())), "{removed:?}");
        }
    }

    #[test]
    fn a_lock_grown_since_its_listing_is_read_no_further_than_the_cap() {
        let store = Arc::new(Watched::default());
        let (b, _cache) = backend_on(Arc::clone(&store));
        let key = b.key(&format!("{LOCK_DIR}/grown"));
        b.runtime.block_on(b.store.put(&key, PutPayload::from(vec![b'x'; 1 << 20]))).unwrap();
        guarded(&store.understated).push("locks/grown".into());
        let refused = b.lock(LockMode::Shared).err().expect("an unreadable lock keeps others out");
        assert!(refused.to_string().contains(&format!("more than {MAX_LOCK_LEN} bytes")), "{refused}");
        assert!(refused.to_string().contains("`snap unlock --all`"), "{refused}");
        b.unlock(Unlock::All).unwrap();
        // An empty object: unreadable too, never an error of the store.
        let empty = b.key(&format!("{LOCK_DIR}/empty"));
        b.runtime.block_on(b.store.put(&empty, PutPayload::from(Vec::new()))).unwrap();
        let refused = b.lock(LockMode::Shared).err().expect("an empty lock keeps others out");
        assert!(refused.to_string().contains("unreadable lock"), "{refused}");
    }

    #[test]
    fn a_holder_whose_lock_was_removed_or_overtaken_may_not_commit() {
        let store = Arc::new(Watched::default());
        let (b, _cache) = backend_on(Arc::clone(&store));
        let shared = b.lock(LockMode::Shared).unwrap();
        shared.still_held().unwrap();
        // Another shared holder is no conflict for a shared one.
        let other = b.lock(LockMode::Shared).unwrap();
        shared.still_held().unwrap();
        drop(other);
        // A live exclusive lock beside it: someone took it for stale.
        plant(&b, "x", &planted(true, std::process::id(), Some("another-boot".into()), 0));
        let lost = shared.still_held().unwrap_err();
        assert!(
            matches!(lost, Error::LockLost { .. }) && lost.to_string().contains("exclusive lock"),
            "{lost}"
        );
        // Sticky: gone though the other lock is.
        b.unlock(Unlock::All).unwrap();
        assert!(matches!(shared.still_held(), Err(Error::LockLost { .. })));
        drop(shared);

        let exclusive = b.lock(LockMode::Exclusive).unwrap();
        exclusive.still_held().unwrap();
        b.unlock(Unlock::All).unwrap();
        let lost = exclusive.still_held().unwrap_err();
        assert!(lost.to_string().contains("lock object is gone"), "{lost}");
    }

    #[test]
    fn looking_at_the_lock_writes_no_lock() {
        let store = Arc::new(Watched::default());
        let (b, _cache) = backend_on(Arc::clone(&store));
        assert_eq!(b.lock_holders().unwrap(), LockState::Free);
        let held = b.lock(LockMode::Shared).unwrap();
        let puts_before = guarded(&store.puts).len();
        assert_eq!(b.lock_holders().unwrap(), LockState::Shared);
        let puts: Vec<Key> = guarded(&store.puts)[puts_before..].to_vec();
        assert!(
            puts.iter().all(|k| !k.as_ref().contains("/locks/")),
            "looking wrote a lock object: {puts:?}"
        );
        // Only the clock probe, removed again.
        assert!(puts.iter().all(|k| k.as_ref().contains(CLOCK_PROBE)), "{puts:?}");
        assert_eq!(b.list_under("").unwrap().len(), 1, "only the held lock remains");
        drop(held);
        let exclusive = b.lock(LockMode::Exclusive).unwrap();
        assert_eq!(b.lock_holders().unwrap(), LockState::Exclusive);
        drop(exclusive);
        assert_eq!(b.lock_holders().unwrap(), LockState::Free);
    }

    #[test]
    fn a_refresh_finds_its_lock_removed_and_the_lease_is_lost() {
        let store = Arc::new(Watched::default());
        let (b, _cache) = backend_on(Arc::clone(&store));
        let locks = Locks::of(&b);
        let record = planted(false, 1, None, 0);
        let key = locks.key("r");
        let put = b.runtime.block_on(b.store.put(&key, PutPayload::from(record.encode()))).unwrap();
        let mut tag = put.e_tag;
        assert!(matches!(locks.rewrite(&key, &record, &mut tag), Rewrite::Done));
        // An earlier rewrite landed but its answer was lost: still ours.
        let landed = LockRecord { refreshed: 5, ..record.clone() };
        b.runtime.block_on(b.store.put(&key, PutPayload::from(landed.encode()))).unwrap();
        assert!(matches!(locks.rewrite(&key, &record, &mut tag), Rewrite::Failed));
        assert!(matches!(locks.rewrite(&key, &record, &mut tag), Rewrite::Done));
        // Removed (`unlock --all`): not written again.
        b.runtime.block_on(b.store.delete(&key)).unwrap();
        assert!(matches!(locks.rewrite(&key, &record, &mut tag), Rewrite::Gone));
        assert!(b.list_under(LOCK_DIR).unwrap().is_empty(), "a removed lock was written again");
    }
}
