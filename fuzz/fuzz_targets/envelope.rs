//! Envelopes (`crypto::Keys::seal` / `open`) under an encrypted repository's
//! keys (fixed master key).
//!
//! Opening: the input, as sealed bytes, is opened as every kind of object (a
//! chunk, a tree, a pack trailer, a snapshot body, a wrapped master key):
//! never a panic, allocation within a bound of the input, and never `Ok`,
//! since nothing here was sealed under the key (an input shorter than an
//! envelope is refused as truncated, any other as unauthentic). Plain keys
//! hand the bytes back unchanged.
//!
//! Sealing: the payload is sealed as the object byte 0 picks, and then opens
//! to the payload, as that object only: flipping any one byte (position
//! from bytes 1..3, XOR mask from byte 3), cutting the last byte, opening it
//! as any other object or under another master key all fail. Sealing the
//! same payload twice gives different nonces.
//!
//! Input: byte 0 = object, bytes 1..3 = flip position (u16 LE, folded into
//! the envelope), byte 3 = flip mask (0 counts as 1), rest = payload.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use snap::crypto::{Aad, ENVELOPE_OVERHEAD, Keys, NONCE_LEN};
use snap::format::DecodeError;
use snap::id::{BlobId, ChunkId, TreeId};

const ID: [u8; 32] = [0x5a; 32];
const OTHER_ID: [u8; 32] = {
    let mut id = ID;
    id[31] ^= 1;
    id
};
const PLAIN_SNAPSHOT_HEADER: [u8; 8] = *b"SNSN\x01\x00\x00\x00";
const SEALED_SNAPSHOT_HEADER: [u8; 8] = *b"SNSN\x01\x01\x00\x00";

fuzz_target!(|data: &[u8]| {
    let keys = common::sealed_keys();
    let chunk = BlobId::Chunk(ChunkId::from_bytes(ID));
    let other_chunk = BlobId::Chunk(ChunkId::from_bytes(OTHER_ID));
    let tree = BlobId::Tree(TreeId::from_bytes(ID));
    let objects = [
        Aad::Blob(&chunk),
        Aad::Blob(&other_chunk),
        Aad::Blob(&tree),
        Aad::PackTrailer,
        Aad::Snapshot(&SEALED_SNAPSHOT_HEADER),
        Aad::Snapshot(&PLAIN_SNAPSHOT_HEADER),
        Aad::Snapshot(b""),
        Aad::MasterKey(&ID),
        Aad::MasterKey(&OTHER_ID),
        Aad::MasterKey(b""),
    ];

    for aad in objects {
        let (opened, peak) = common::peak_alloc(|| keys.open(aad, data).map(|b| b.len()));
        common::assert_within_budget("envelope", data.len(), peak);
        let expected = if data.len() < ENVELOPE_OVERHEAD {
            DecodeError::Truncated { need: ENVELOPE_OVERHEAD, have: data.len() }
        } else {
            DecodeError::Authentication
        };
        assert_eq!(opened, Err(expected), "bytes never sealed opened as {aad:?}");
        assert_eq!(&*common::plain_keys().open(aad, data).expect("plain keys open anything"), data);
    }

    if data.len() < 4 {
        return;
    }
    let picked = usize::from(data[0]) % objects.len();
    let aad = objects[picked];
    let flip_at = usize::from(u16::from_le_bytes([data[1], data[2]]));
    let mask = data[3].max(1);
    let payload = &data[4..];

    let sealed = keys.seal(aad, payload.to_vec()).expect("sealing succeeds");
    assert_eq!(sealed.len(), payload.len() + ENVELOPE_OVERHEAD);
    assert_eq!(keys.open(aad, &sealed).as_deref(), Ok(payload), "a sealed payload did not open");

    let mut flipped = sealed.clone();
    flipped[flip_at % sealed.len()] ^= mask;
    assert_eq!(
        keys.open(aad, &flipped),
        Err(DecodeError::Authentication),
        "opened an envelope with byte {} flipped by {mask:#04x}",
        flip_at % sealed.len()
    );
    assert!(keys.open(aad, &sealed[..sealed.len() - 1]).is_err(), "opened a cut envelope");
    for (i, other) in objects.iter().enumerate() {
        if i != picked {
            assert!(keys.open(*other, &sealed).is_err(), "sealed as {aad:?}, opened as {other:?}");
        }
    }
    let mut other_master = common::FIXED_KEY;
    other_master[0] ^= 1;
    assert!(Keys::from_master(&other_master).open(aad, &sealed).is_err(), "opened under another master key");

    let again = keys.seal(aad, payload.to_vec()).expect("sealing succeeds");
    assert_ne!(sealed[..NONCE_LEN], again[..NONCE_LEN], "two seals used the same nonce");
});
