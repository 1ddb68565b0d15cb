//! Blobs in and out of packs. `seal` turns raw bytes into what is stored
//! (compressed when it pays) and proves the result decodes back to the same
//! id before it may enter a pack; `open` reverses it and refuses any blob
//! whose bytes no longer hash to its id. Encryption will wrap here.

mod writer;

pub use writer::{FinishedPack, PackWriter};

use crate::compress;
use crate::error::{Error, Result};
use crate::format::pack::{Compression, PackEntry};
use crate::hash;
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

/// The id `raw` has when stored as a blob of `blob`'s kind.
fn id_of(blob: &BlobId, raw: &[u8]) -> BlobId {
    match blob {
        BlobId::Chunk(_) => BlobId::Chunk(hash::chunk_id(raw)),
        BlobId::Tree(_) => BlobId::Tree(hash::tree_id(raw)),
    }
}

/// Compresses `raw` when it pays and checks that the stored form opens back
/// to `blob` (restic's lesson: a compressor bug must not reach the disk).
pub fn seal(blob: BlobId, raw: &[u8], level: i32) -> Result<SealedBlob> {
    let raw_len = u32::try_from(raw.len())
        .ok()
        .filter(|len| *len <= crate::format::MAX_BLOB_LEN)
        .ok_or_else(|| Error::InvalidInput(format!("{blob} is {} bytes, over the blob limit", raw.len())))?;
    let (stored, compression) = match compress::compress(raw, level) {
        Some(c) => (c, Compression::Zstd),
        None => (raw.to_vec(), Compression::None),
    };
    let sealed = SealedBlob { blob, stored, raw_len, compression };
    if compression != Compression::None {
        let entry = PackEntry { blob, offset: 0, stored_len: 0, raw_len, compression };
        open(&entry, &sealed.stored).map_err(|e| Error::corrupt(format!("{blob} before writing"), e))?;
    }
    Ok(sealed)
}

/// Decodes a blob's stored bytes and checks them against its id.
pub fn open(entry: &PackEntry, stored: &[u8]) -> Result<Vec<u8>> {
    let raw = compress::decompress(stored, entry.compression, entry.raw_len)
        .map_err(|e| Error::decode(entry.blob.to_string(), e))?;
    if id_of(&entry.blob, &raw) != entry.blob {
        return Err(Error::corrupt(entry.blob.to_string(), "contents do not match the id"));
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_tamper() {
        let raw = b"hello hello hello hello hello hello hello".repeat(10);
        let blob = BlobId::Chunk(hash::chunk_id(&raw));
        let s = seal(blob, &raw, 3).unwrap();
        let entry = PackEntry {
            blob,
            offset: 0,
            stored_len: s.stored.len() as u32,
            raw_len: s.raw_len,
            compression: s.compression,
        };
        assert_eq!(open(&entry, &s.stored).unwrap(), raw);
        let mut bad = s.stored.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        assert!(open(&entry, &bad).is_err());
    }

    #[test]
    fn a_chunk_cannot_pose_as_a_tree() {
        let raw = b"tree bytes".to_vec();
        let as_chunk = hash::chunk_id(&raw);
        let forged = BlobId::Tree(crate::id::TreeId::from_bytes(*as_chunk.as_bytes()));
        let entry = PackEntry {
            blob: forged,
            offset: 0,
            stored_len: 10,
            raw_len: 10,
            compression: Compression::None,
        };
        assert!(open(&entry, &raw).is_err());
    }
}
