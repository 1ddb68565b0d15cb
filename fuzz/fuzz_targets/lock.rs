//! `LockRecord::decode` on arbitrary bytes (a lock object read from a
//! bucket, written by any process with access): never panics, allocates
//! within a bound of the input, and whatever it accepts is a known version
//! with bounded names and a refresh time not before its creation; it
//! survives `encode` -> `decode` unchanged and encodes the same way again.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use snap::format::lock::{LOCK_VERSION, LockRecord, MAX_LOCK_LEN};

fuzz_target!(|data: &[u8]| {
    let (decoded, peak) = common::peak_alloc(|| LockRecord::decode(data));
    common::assert_within_budget("lock", data.len(), peak);
    let Ok(lock) = decoded else { return };

    assert!(data.len() <= MAX_LOCK_LEN, "accepted a lock over the size limit");
    assert!((1..=LOCK_VERSION).contains(&lock.version), "accepted version {}", lock.version);
    assert!(lock.hostname.len() <= 255 && lock.username.len() <= 255, "accepted a long name");
    assert!(lock.refreshed >= lock.created, "accepted a lock refreshed before it was taken");

    let encoded = lock.encode();
    let again = LockRecord::decode(&encoded).expect("a re-encoded lock decodes");
    assert_eq!(again, lock);
    assert_eq!(again.encode(), encoded, "lock encoding is not stable");
});
