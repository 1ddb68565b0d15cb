//! Named crash points in the commit protocol, for tests: when the
//! environment variable `SNAP_CRASH_AT` names a point, the process aborts
//! there, as abruptly as `kill -9` (no destructors, no flushing). Tests use
//! this to prove that every step of backup and prune leaves a repository
//! that verifies and loses no committed snapshot. Unset, it costs one
//! cached lookup.

use std::sync::OnceLock;

/// The environment variable naming the crash point.
pub const CRASH_ENV: &str = "SNAP_CRASH_AT";

/// Every crash point, in the order a backup then a prune passes them.
pub const POINTS: &[&str] = &[
    "backup-after-pack-write",
    "backup-after-index-commit",
    "backup-before-snapshot",
    "backup-after-snapshot",
    "prune-after-forget",
    "prune-after-repack",
    "prune-after-index-update",
    "prune-after-pack-delete",
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
