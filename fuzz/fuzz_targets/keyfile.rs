//! `KeyFile::decode` on arbitrary bytes: never panics, allocates within a
//! bound of the input, and whatever it accepts respects the limits that keep
//! a hostile key file from exhausting memory or time when it is unlocked
//! (Argon2 memory, passes and lanes, salt length) and holds a wrapped master
//! key and a config MAC of the right lengths; it survives `encode` ->
//! `decode` unchanged and encodes the same way again.
//!
//! Then the accepted key file is unlocked, with its Argon2 cost clamped to
//! the minimum (8 KiB per lane, one pass) so the fuzz loop stays fast, with
//! a fixed password and repository id and with ones taken from its own
//! fields: that must never panic or fail, and never yield a master key (the
//! fuzzer cannot have sealed one under a key derived with those parameters).

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use snap::crypto::ENVELOPE_OVERHEAD;
use snap::crypto::keyfile::unlock;
use snap::format::keyfile::{
    KEYFILE_VERSION, KeyFile, MAX_KDF_ITERATIONS, MAX_KDF_MEMORY_KIB, MAX_KDF_PARALLELISM, MAX_KEYFILE_LEN,
};

/// The longest `created`, `hostname` and `username` a key file may hold
/// (mirrors the decoder's private limit).
const MAX_TEXT_LEN: usize = 255;

fuzz_target!(|data: &[u8]| {
    let (decoded, peak) = common::peak_alloc(|| KeyFile::decode(data));
    common::assert_within_budget("key file", data.len(), peak);
    let Ok(key) = decoded else { return };

    assert!(data.len() <= MAX_KEYFILE_LEN, "accepted a key file over the size limit");
    assert!((1..=KEYFILE_VERSION).contains(&key.version), "accepted version {}", key.version);
    for text in [&key.created, &key.hostname, &key.username] {
        assert!(text.len() <= MAX_TEXT_LEN, "accepted a {}-byte text field", text.len());
    }
    let kdf = &key.kdf;
    assert_eq!(kdf.algorithm, "argon2id");
    assert!((1..=MAX_KDF_PARALLELISM).contains(&kdf.parallelism), "accepted {kdf:?}");
    assert!((1..=MAX_KDF_ITERATIONS).contains(&kdf.iterations), "accepted {kdf:?}");
    assert!((8 * kdf.parallelism..=MAX_KDF_MEMORY_KIB).contains(&kdf.memory_kib), "accepted {kdf:?}");
    assert!((16..=64).contains(&kdf.salt.len()), "accepted a salt of {} bytes", kdf.salt.len());
    assert_eq!(
        key.master_key.len(),
        32 + ENVELOPE_OVERHEAD,
        "accepted a wrapped master key of the wrong length"
    );
    assert_eq!(key.config_mac.len(), 32, "accepted a config MAC of the wrong length");

    let encoded = key.encode();
    assert!(encoded.len() <= MAX_KEYFILE_LEN, "an accepted key file encodes over the size limit");
    let again = KeyFile::decode(&encoded).expect("a re-encoded key file decodes");
    assert_eq!(again, key);
    assert_eq!(again.encode(), encoded, "key file encoding is not stable");

    let mut cheap = key.clone();
    cheap.kdf.memory_kib = 8 * cheap.kdf.parallelism;
    cheap.kdf.iterations = 1;
    let password = key.username.clone();
    let repo_id = key.hostname.as_bytes();
    for (password, repo_id) in [("password", &b"fuzz repository"[..]), (password.as_str(), repo_id)] {
        match unlock(&cheap, password, repo_id) {
            Ok(None) => {}
            Ok(Some(_)) => panic!("a fuzzed key file unlocked"),
            Err(e) => panic!("unlocking a valid key file failed: {e}"),
        }
    }
});
