//! `Snapshot::decode` on arbitrary bytes, under an unencrypted repository's
//! keys and an encrypted one's (fixed master key): never panics, allocates
//! within a bound of the input, and whatever it accepts carries its keys'
//! header, has absolute source paths and a valid time, round-trips through
//! `encode` under both sets of keys, and never decodes under the other
//! scheme's keys; encoded for a format 3 repository it is padded to a
//! Padmé length and decodes back to itself, without its pad.
//!
//! Then the input's body (after the 8-byte header) is decoded twice more:
//! behind a plain header, and sealed behind an encrypted header. Sealing must
//! not change the outcome, so the fuzzer drives the body decoder of
//! encrypted snapshots as deep as that of plain ones.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use snap::crypto::{Aad, ENVELOPE_OVERHEAD, Keys};
use snap::format::snapshot::{MAX_SNAPSHOT_LEN, MIN_PADDED_SNAPSHOT_LEN, SNAPSHOT_MAGIC, Snapshot};
use snap::format::{HEADER_LEN, OBJECT_VERSION, padme};

fuzz_target!(|data: &[u8]| {
    for keys in common::both_keys() {
        let (decoded, peak) = common::peak_alloc(|| Snapshot::decode(data, keys));
        common::assert_within_budget("snapshot", data.len(), peak);
        if let Ok(snapshot) = decoded {
            check_accepted(data, &snapshot, keys);
        }
    }

    if data.len() >= HEADER_LEN && data.len() + ENVELOPE_OVERHEAD <= MAX_SNAPSHOT_LEN {
        let body = &data[HEADER_LEN..];
        let (plain, sealed) = (common::plain_keys(), common::sealed_keys());
        let mut plain_file = header(plain).to_vec();
        plain_file.extend_from_slice(body);
        let sealed_header = header(sealed);
        let mut sealed_file = sealed_header.to_vec();
        sealed_file
            .extend(sealed.seal(Aad::Snapshot(&sealed_header), body.to_vec()).expect("sealing succeeds"));

        let expected = Snapshot::decode(&plain_file, plain);
        let (decoded, peak) = common::peak_alloc(|| Snapshot::decode(&sealed_file, sealed));
        common::assert_within_budget("sealed snapshot", sealed_file.len(), peak);
        assert_eq!(decoded, expected, "a sealed body decodes differently from the same body in the clear");
        if let Ok(snapshot) = decoded {
            check_accepted(&sealed_file, &snapshot, sealed);
        }
    }
});

/// The header every snapshot file of a repository with `keys` starts with.
fn header(keys: &Keys) -> [u8; HEADER_LEN] {
    let [a, b, c, d] = SNAPSHOT_MAGIC;
    [a, b, c, d, OBJECT_VERSION, keys.scheme().code(), 0, 0]
}

/// Checks a snapshot that `data` decoded to under `keys`.
fn check_accepted(data: &[u8], snapshot: &Snapshot, keys: &Keys) {
    assert!(data.len() <= MAX_SNAPSHOT_LEN);
    assert_eq!(data[..HEADER_LEN], header(keys), "accepted a snapshot with another header");
    assert!(snapshot.time.nanos < 1_000_000_000, "accepted time {:?}", snapshot.time);
    for path in &snapshot.paths {
        assert!(path.starts_with(b"/"), "accepted relative path {path:?}");
    }
    let other = common::other_keys(keys);
    assert!(Snapshot::decode(data, other).is_err(), "a snapshot decoded under both schemes");

    let encoded = round_trip(snapshot, keys);
    assert!(encoded.len() <= data.len(), "re-encoding grew from {} to {} bytes", data.len(), encoded.len());
    let other_encoded = round_trip(snapshot, other);
    assert_eq!(
        encoded.len() + other.overhead(),
        other_encoded.len() + keys.overhead(),
        "sealing added the wrong overhead"
    );
    // Format 3 pads the file to a Padmé length (inputs are far below the
    // largest file, past which it could not), and drops the pad again.
    let padded = round_trip(snapshot, common::padded_keys()).len() as u64;
    assert_eq!(padme(padded, MIN_PADDED_SNAPSHOT_LEN), padded, "a format 3 snapshot of {padded} bytes");
}

/// Encodes `snapshot` under `keys`, checks that it decodes back under them
/// only and encodes the same way again, and returns the encoding.
fn round_trip(snapshot: &Snapshot, keys: &Keys) -> Vec<u8> {
    let encoded = snapshot.encode(keys).expect("a snapshot encodes");
    let again = Snapshot::decode(&encoded, keys).expect("a re-encoded snapshot decodes");
    assert_eq!(&again, snapshot);
    let other = common::other_keys(keys);
    assert!(Snapshot::decode(&encoded, other).is_err(), "an encoding decoded under the other scheme");
    let twice = again.encode(keys).expect("a snapshot encodes");
    if keys.overhead() == 0 {
        assert_eq!(twice, encoded, "snapshot encoding is not stable");
    } else {
        // Every seal draws a fresh nonce: the same length, never the same bytes.
        assert_eq!(twice.len(), encoded.len(), "snapshot encoding changed length");
        assert_ne!(twice, encoded, "two seals of a snapshot are identical");
    }
    encoded
}
