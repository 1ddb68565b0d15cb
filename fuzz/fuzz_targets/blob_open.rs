//! `pack::open` (open the envelope, decompress, then check the id) with
//! arbitrary entry fields and stored bytes, under an unencrypted repository's
//! keys or an encrypted one's (fixed master key): never panics, and returns
//! `Ok` only with bytes of the declared length whose id, in the entry's own
//! domain and under the keys' hasher, is the entry's id. Under encryption,
//! bytes that were never sealed are always refused.
//!
//! With the "forge" bit, the entry is made to describe the payload honestly
//! (raw or as a real zstd frame, then sealed as that very blob), so `open`
//! must succeed, and the same stored bytes must still be refused under the
//! other blob kind (no type confusion) and under the other scheme's keys.
//!
//! Input: byte 0 = flags (bit 0 tree, bit 1 zstd, bit 2 forge, bit 3
//! encrypted), bytes 1..5 raw_len, 5..9 offset, 9..13 stored_len, 13..45 id,
//! rest = payload.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use snap::crypto::Aad;
use snap::format::pack::{Compression, PackEntry};
use snap::id::{BlobId, BlobKind};
use snap::pack::open;

fn u32_at(data: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(data[at..at + 4].try_into().unwrap())
}

fn other(kind: BlobKind) -> BlobKind {
    match kind {
        BlobKind::Chunk => BlobKind::Tree,
        BlobKind::Tree => BlobKind::Chunk,
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 45 {
        return;
    }
    let flags = data[0];
    let kind = if flags & 1 == 0 { BlobKind::Chunk } else { BlobKind::Tree };
    let compression = if flags & 2 == 0 { Compression::None } else { Compression::Zstd };
    let forge = flags & 4 != 0;
    let keys = if flags & 8 == 0 { common::plain_keys() } else { common::sealed_keys() };
    let payload = &data[45..];

    let mut entry = PackEntry {
        blob: BlobId::new(kind, data[13..45].try_into().unwrap()),
        offset: u32_at(data, 5),
        stored_len: u32_at(data, 9),
        raw_len: u32_at(data, 1),
        compression,
    };
    let stored = if forge {
        entry.blob = keys.hasher().blob_id(kind, payload);
        entry.raw_len = payload.len() as u32;
        let encoded = match compression {
            Compression::None => payload.to_vec(),
            Compression::Zstd => zstd::bulk::compress(payload, 1).expect("zstd compresses"),
        };
        keys.seal(Aad::Blob(&entry.blob), encoded).expect("sealing succeeds")
    } else {
        payload.to_vec()
    };
    entry.stored_len = if forge { stored.len() as u32 } else { entry.stored_len };

    match open(keys, &entry, &stored) {
        Ok(raw) => {
            assert_eq!(raw.len(), entry.raw_len as usize, "Ok with the wrong length");
            assert_eq!(
                keys.hasher().blob_id(kind, &raw),
                entry.blob,
                "Ok with bytes that do not hash to the id"
            );
            if forge {
                assert_eq!(raw, payload);
            } else {
                assert_eq!(keys.overhead(), 0, "opened an encrypted blob that was never sealed");
            }
        }
        Err(e) => assert!(!forge, "refused an honest {compression:?} blob: {e}"),
    }

    if forge {
        let confused = PackEntry { blob: BlobId::new(other(kind), *entry.blob.as_bytes()), ..entry };
        assert!(open(keys, &confused, &stored).is_err(), "a {kind:?} opened as a {:?}", other(kind));
        let other_keys = common::other_keys(keys);
        assert!(open(other_keys, &entry, &stored).is_err(), "a blob opened under the other scheme's keys");
    }
});
