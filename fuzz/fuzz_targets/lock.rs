//! `LockRecord::decode` on arbitrary bytes (a lock object read from a
//! bucket, written by any process with access): never panics, allocates
//! within a bound of the input, and whatever it accepts is a known version
//! with bounded names, an identity only from version 2 on, and a refresh
//! time not before its creation; it survives `encode` -> `decode` unchanged
//! and encodes the same way again.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use snap::format::lock::{LOCK_VERSION, LockRecord, MAX_LOCK_LEN, MAX_TEXT_LEN};

fuzz_target!(|data: &[u8]| {
    let (decoded, peak) = common::peak_alloc(|| LockRecord::decode(data));
    common::assert_within_budget("lock", data.len(), peak);
    let Ok(lock) = decoded else { return };

    assert!(data.len() <= MAX_LOCK_LEN, "accepted a lock over the size limit");
    assert!((1..=LOCK_VERSION).contains(&lock.version), "accepted version {}", lock.version);
    assert!(
        lock.hostname.len() <= MAX_TEXT_LEN && lock.username.len() <= MAX_TEXT_LEN,
        "accepted a long name"
    );
    assert!(lock.boot_id.as_ref().is_none_or(|b| b.len() <= MAX_TEXT_LEN), "accepted a long boot id");
    assert!(
        lock.version >= 2 || (lock.boot_id.is_none() && lock.pid_ns.is_none()),
        "accepted a version 1 lock with an identity"
    );
    assert!(lock.refreshed >= lock.created, "accepted a lock refreshed before it was taken");

    let encoded = lock.encode();
    let again = LockRecord::decode(&encoded).expect("a re-encoded lock decodes");
    assert_eq!(again, lock);
    assert_eq!(again.encode(), encoded, "lock encoding is not stable");
});
