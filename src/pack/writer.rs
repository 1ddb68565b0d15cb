//! Builds one pack in memory: header, sealed blobs, then trailer and footer.
//! A pack is only ever handed to storage whole, so a half-built pack can
//! never appear under a pack name.

use super::SealedBlob;
use crate::crypto::Keys;
use crate::error::Result;
use crate::format::pack::{PackEntry, encode_trailer, pack_header};
use crate::hash;
use crate::id::PackId;

/// Accumulates blobs until the pack reaches its target size.
#[derive(Debug)]
pub struct PackWriter {
    bytes: Vec<u8>,
    entries: Vec<PackEntry>,
    target: usize,
}

/// A complete pack, named by the hash of its bytes.
#[derive(Debug)]
pub struct FinishedPack {
    /// BLAKE3 of `bytes`.
    pub id: PackId,
    /// The whole pack file.
    pub bytes: Vec<u8>,
    /// What it holds.
    pub entries: Vec<PackEntry>,
}

impl PackWriter {
    /// An empty pack aiming at `target` bytes, sealed with `keys`.
    pub fn new(target: usize, keys: &Keys) -> Self {
        PackWriter { bytes: pack_header(keys), entries: Vec::new(), target }
    }

    /// Appends a sealed blob.
    pub fn add(&mut self, blob: SealedBlob) {
        let offset = u32::try_from(self.bytes.len()).expect("packs stay far below 4 GiB");
        let stored_len = u32::try_from(blob.stored.len()).expect("sealed blobs are below the blob limit");
        self.bytes.extend_from_slice(&blob.stored);
        self.entries.push(PackEntry {
            blob: blob.blob,
            offset,
            stored_len,
            raw_len: blob.raw_len,
            compression: blob.compression,
        });
    }

    /// Whether the pack has reached its target size.
    pub fn is_full(&self) -> bool {
        self.bytes.len() >= self.target
    }

    /// Whether no blob was added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends the trailer (sealed with the same `keys` as the blobs) and
    /// names the pack.
    pub fn finish(mut self, keys: &Keys) -> Result<FinishedPack> {
        self.bytes.extend(encode_trailer(&self.entries, keys)?);
        Ok(FinishedPack { id: hash::pack_id(&self.bytes), bytes: self.bytes, entries: self.entries })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::pack::decode_pack;
    use crate::id::BlobId;

    #[test]
    fn finished_pack_decodes_to_its_entries() {
        for keys in [Keys::plain(), Keys::from_master(&[5; 32])] {
            let mut w = PackWriter::new(1 << 20, &keys);
            for i in 0..3u8 {
                let raw = vec![i; 100 * (i as usize + 1)];
                let blob = BlobId::Chunk(keys.hasher().chunk_id(&raw));
                w.add(crate::pack::seal(&keys, blob, &raw, 3).unwrap());
            }
            let done = w.finish(&keys).unwrap();
            assert_eq!(done.id, hash::pack_id(&done.bytes));
            assert_eq!(decode_pack(&done.bytes, &keys).unwrap(), done.entries);
        }
    }
}
