//! Blobs in and out of packs. `seal` turns raw bytes into what is stored
//! (compressed when it pays) and proves the result decodes back to the same
//! id before it may enter a pack; `open` reverses it and refuses any blob
//! whose bytes no longer hash to its id. Compression comes first, then
//! sealing (encryption, in an encrypted repository), which binds the blob's
//! kind and id into the authenticated data.

mod writer;

pub use writer::{FinishedPack, PackWriter};

use std::borrow::Cow;

use crate::compress;
use crate::crypto::{Aad, Keys};
use crate::error::{Error, Result};
use crate::format::pack::{Compression, PackEntry};
use crate::id::BlobId;

/// A blob ready to be appended to a pack.
#[derive(Debug)]
pub struct SealedBlob {
    /// The blob's identity.
    pub blob: BlobId,
    /// The bytes to store.
    pub stored: Vec<u8>,
    /// Length of the raw bytes.
    pub raw_len: u32,
    /// Encoding of `stored`.
    pub compression: Compression,
}

/// Compresses `raw` when it pays, seals it, and checks that the stored form
/// opens back to `blob` (restic's lesson: a compressor bug must not reach
/// the disk).
pub fn seal(keys: &Keys, blob: BlobId, raw: &[u8], level: i32) -> Result<SealedBlob> {
    let raw_len = u32::try_from(raw.len())
        .ok()
        .filter(|len| *len <= crate::format::MAX_BLOB_LEN)
        .ok_or_else(|| Error::InvalidInput(format!("{blob} is {} bytes, over the blob limit", raw.len())))?;
    let (stored, compression) = match compress::compress(raw, level) {
        Some(c) => (c, Compression::Zstd),
        None => (raw.to_vec(), Compression::None),
    };
    let stored = keys.seal(Aad::Blob(&blob), stored)?;
    let sealed = SealedBlob { blob, stored, raw_len, compression };
    if compression != Compression::None || keys.overhead() > 0 {
        // The caller named the blob by hashing `raw`; the stored form must
        // give back exactly `raw` (compared at memory speed, not hashed).
        let entry = PackEntry { blob, offset: 0, stored_len: 0, raw_len, compression };
        let back = unseal(keys, &entry, &sealed.stored)
            .map_err(|e| Error::corrupt(format!("{blob} before writing"), e))?;
        if back != raw {
            return Err(Error::corrupt(format!("{blob} before writing"), "does not open to its contents"));
        }
    }
    Ok(sealed)
}

/// Opens and decodes a blob's stored bytes and checks them against its id.
pub fn open(keys: &Keys, entry: &PackEntry, stored: &[u8]) -> Result<Vec<u8>> {
    let raw = unseal(keys, entry, stored)?;
    if keys.hasher().blob_id(entry.blob.kind(), &raw) != entry.blob {
        return Err(Error::corrupt(entry.blob.to_string(), "contents do not match the id"));
    }
    Ok(raw)
}

/// Decrypts and decompresses a blob's stored bytes, unchecked.
fn unseal(keys: &Keys, entry: &PackEntry, stored: &[u8]) -> Result<Vec<u8>> {
    let decode_error = |e| Error::decode(entry.blob.to_string(), e);
    Ok(match (keys.open(Aad::Blob(&entry.blob), stored).map_err(decode_error)?, entry.compression) {
        // Decryption already made a fresh buffer of the raw bytes: no copy.
        (Cow::Owned(plain), Compression::None) if plain.len() == entry.raw_len as usize => plain,
        (opened, compression) => {
            compress::decompress(&opened, compression, entry.raw_len).map_err(decode_error)?
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::BlobHasher;

    fn entry_for(s: &SealedBlob) -> PackEntry {
        PackEntry {
            blob: s.blob,
            offset: 0,
            stored_len: s.stored.len() as u32,
            raw_len: s.raw_len,
            compression: s.compression,
        }
    }

    #[test]
    fn seal_open_round_trip_and_tamper() {
        for keys in [Keys::plain(), Keys::from_master(&[9; 32])] {
            for raw in [b"hello hello hello hello hello hello hello".repeat(10), b"short".to_vec()] {
                let blob = BlobId::Chunk(keys.hasher().chunk_id(&raw));
                let s = seal(&keys, blob, &raw, 3).unwrap();
                let entry = entry_for(&s);
                assert_eq!(open(&keys, &entry, &s.stored).unwrap(), raw);
                let mut bad = s.stored.clone();
                let last = bad.len() - 1;
                bad[last] ^= 0xff;
                assert!(open(&keys, &entry, &bad).is_err());
            }
        }
    }

    #[test]
    fn encrypted_blobs_hide_their_plaintext_and_need_the_key() {
        let keys = Keys::from_master(&[9; 32]);
        let raw = b"a secret file body, repeated: a secret file body".to_vec();
        let s = seal(&keys, BlobId::Chunk(keys.hasher().chunk_id(&raw)), &raw, 3).unwrap();
        assert!(!s.stored.windows(8).any(|w| raw.windows(8).any(|r| r == w)));
        let other = Keys::from_master(&[10; 32]);
        assert!(open(&other, &entry_for(&s), &s.stored).is_err());
    }

    #[test]
    fn a_chunk_cannot_pose_as_a_tree() {
        let raw = b"tree bytes".to_vec();
        let as_chunk = BlobHasher::Plain.chunk_id(&raw);
        let forged = BlobId::Tree(crate::id::TreeId::from_bytes(*as_chunk.as_bytes()));
        let entry = PackEntry {
            blob: forged,
            offset: 0,
            stored_len: 10,
            raw_len: 10,
            compression: Compression::None,
        };
        assert!(open(&Keys::plain(), &entry, &raw).is_err());
        let keys = Keys::from_master(&[9; 32]);
        let chunk = BlobId::Chunk(keys.hasher().chunk_id(&raw));
        let s = seal(&keys, chunk, &raw, 3).unwrap();
        let as_tree = BlobId::Tree(crate::id::TreeId::from_bytes(*chunk.as_bytes()));
        assert!(open(&keys, &PackEntry { blob: as_tree, ..entry_for(&s) }, &s.stored).is_err());
    }
}
