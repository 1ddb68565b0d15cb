//! Named crash points in the commit protocol, for tests: when the
//! environment variable `SNAP_CRASH_AT` names a point, the process aborts
//! there, as abruptly as `kill -9` (no destructors, no flushing). Tests use
//! this to prove that every step of backup and prune leaves a repository
//! that verifies and loses no committed snapshot. Unset, it costs one
//! cached lookup.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable naming the crash point.
pub const CRASH_ENV: &str = "SNAP_CRASH_AT";

/// Every crash point, in the order a backup then a prune passes them.
pub const POINTS: &[&str] = &[
    "backup-after-pack-write",
    "backup-after-index-commit",
    "backup-before-snapshot",
    "backup-after-snapshot",
    "prune-after-forget",
    "prune-after-pack-delete",
    "prune-after-index-update",
    "prune-after-repack",
    "repair-index-after-destroy",
];

/// Aborts the process if `SNAP_CRASH_AT` names `point`.
pub fn point(point: &str) {
    static TARGET: OnceLock<Option<String>> = OnceLock::new();
    let target = TARGET.get_or_init(|| std::env::var(CRASH_ENV).ok());
    if target.as_deref() == Some(point) {
        eprintln!("snap: crash point {point} reached, aborting");
        std::process::abort();
    }
}

/// The environment variable that makes the Nth fsync (1-based) of the
/// local backend fail with EIO, as a failing disk's would: tests use it to
/// show an fsync error ends a write with an error and harms nothing.
pub const FSYNC_FAULT_ENV: &str = "SNAP_FAIL_FSYNC";

/// Called before each fsync of the local backend: an EIO error when
/// `SNAP_FAIL_FSYNC` names this call's number. Unset, it costs one cached
/// lookup.
pub fn fsync_fault() -> std::io::Result<()> {
    static TARGET: OnceLock<Option<u64>> = OnceLock::new();
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let target = TARGET.get_or_init(|| std::env::var(FSYNC_FAULT_ENV).ok().and_then(|v| v.parse().ok()));
    match target {
        Some(n) if CALLS.fetch_add(1, Ordering::Relaxed) + 1 == *n => {
            Err(std::io::Error::from_raw_os_error(libc::EIO))
        }
        _ => Ok(()),
    }
}

/// The environment variable that shortens how long an object-store lock
/// lasts without a refresh before others may take it for stale (whole
/// seconds; the refresh interval and the holder's margin follow from it):
/// tests use it to let a paused backup's lock go stale in seconds rather
/// than half an hour. Unset or unreadable, the real age applies.
pub const LOCK_STALE_ENV: &str = "SNAP_TEST_LOCK_STALE_SECS";

/// How long a lock object lasts without a refresh (30 minutes unless
/// `SNAP_TEST_LOCK_STALE_SECS` says otherwise). Read once.
pub fn lock_stale_after() -> std::time::Duration {
    static STALE: OnceLock<std::time::Duration> = OnceLock::new();
    *STALE.get_or_init(|| {
        let secs = std::env::var(LOCK_STALE_ENV).ok().and_then(|v| v.trim().parse::<u64>().ok());
        std::time::Duration::from_secs(secs.filter(|s| *s > 0).unwrap_or(30 * 60))
    })
}

/// The environment variable that lowers the size past which a directory
/// is stored as pages (bytes): tests use it to page a directory of a few
/// thousand entries instead of a few hundred thousand. Unset or
/// unreadable, the real size applies.
pub const TREE_PAGE_ENV: &str = "SNAP_TEST_TREE_PAGE_BYTES";

/// The size past which a directory is stored as pages
/// ([`crate::format::tree::PAGE_BYTES`] unless `SNAP_TEST_TREE_PAGE_BYTES`
/// says otherwise). Read once.
pub fn tree_page_bytes() -> usize {
    static BYTES: OnceLock<usize> = OnceLock::new();
    *BYTES.get_or_init(|| {
        let bytes = std::env::var(TREE_PAGE_ENV).ok().and_then(|v| v.trim().parse::<usize>().ok());
        bytes.filter(|b| *b > 0).unwrap_or(crate::format::tree::PAGE_BYTES)
    })
}

/// The environment variable that pauses a command at a named point:
/// `POINT=FILE` makes it create `FILE` there and wait (up to two minutes)
/// until `FILE` is removed, so a test can change the file system in
/// between (swap a directory of a restore's target for a symlink, say).
pub const PAUSE_ENV: &str = "SNAP_TEST_PAUSE";

/// Every pause point.
pub const PAUSE_POINTS: &[&str] = &["restore-after-dirs", "restore-before-links", "restore-before-metadata"];

/// Pauses here if `SNAP_TEST_PAUSE` names `point`. Unset, it costs one
/// cached lookup.
pub fn pause(point: &str) {
    static TARGET: OnceLock<Option<(String, std::path::PathBuf)>> = OnceLock::new();
    let target = TARGET.get_or_init(|| {
        let v = std::env::var(PAUSE_ENV).ok()?;
        let (at, file) = v.split_once('=')?;
        Some((at.to_owned(), file.into()))
    });
    let Some((at, file)) = target.as_ref().filter(|(at, _)| at == point) else { return };
    if std::fs::write(file, at).is_err() {
        return;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while file.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
