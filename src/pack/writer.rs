//! Builds one pack in memory: header, sealed blobs, then trailer and footer.
//! A pack is only ever handed to storage whole, so a half-built pack can
//! never appear under a pack name. In format 3 the blobs are laid out in a
//! random order (which chunks of a file share a pack, and where, no longer
//! follows the file) and the pack is padded (`format::pack`).

use super::SealedBlob;
use crate::crypto::Keys;
use crate::error::{Error, Result};
use crate::format::HEADER_LEN;
use crate::format::pack::{PackEntry, encode_trailer, pack_header};
use crate::hash;
use crate::id::PackId;

/// Accumulates blobs until the pack reaches its target size.
#[derive(Debug)]
pub struct PackWriter {
    header: Vec<u8>,
    blobs: Vec<SealedBlob>,
    /// The pack's length so far: header and stored blobs.
    len: usize,
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
        PackWriter { header: pack_header(keys), blobs: Vec::new(), len: HEADER_LEN, target }
    }

    /// Adds a sealed blob.
    pub fn add(&mut self, blob: SealedBlob) {
        self.len += blob.stored.len();
        self.blobs.push(blob);
    }

    /// Whether the pack has reached its target size.
    pub fn is_full(&self) -> bool {
        self.len >= self.target
    }

    /// Whether no blob was added.
    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty()
    }

    /// Lays out the blobs (shuffled when `keys` hide sizes), appends the
    /// trailer (sealed with the same `keys` as the blobs) and names the
    /// pack.
    pub fn finish(mut self, keys: &Keys) -> Result<FinishedPack> {
        if keys.hides_sizes() {
            shuffle(&mut self.blobs)?;
        }
        let mut bytes = self.header;
        bytes.reserve(self.len - HEADER_LEN);
        let mut entries = Vec::with_capacity(self.blobs.len());
        for blob in self.blobs {
            entries.push(PackEntry {
                blob: blob.blob,
                offset: u32::try_from(bytes.len()).expect("packs stay far below 4 GiB"),
                stored_len: u32::try_from(blob.stored.len()).expect("sealed blobs are below the blob limit"),
                raw_len: blob.raw_len,
                compression: blob.compression,
            });
            bytes.extend_from_slice(&blob.stored);
        }
        let tail = encode_trailer(&entries, bytes.len(), keys)?;
        bytes.extend(tail);
        Ok(FinishedPack { id: hash::pack_id(&bytes), bytes, entries })
    }
}

/// Fisher-Yates with the system's random source: the order must not be
/// one an observer could reproduce.
fn shuffle<T>(items: &mut [T]) -> Result<()> {
    let mut random = vec![0u8; 8 * items.len()];
    getrandom::fill(&mut random).map_err(|e| Error::Crypto(format!("system random source: {e}")))?;
    for (i, word) in random.chunks_exact(8).enumerate().skip(1).rev() {
        // The modulo's bias is below 2^-40 for any pack's blob count.
        let j = u64::from_le_bytes(word.try_into().expect("8 bytes")) % (i as u64 + 1);
        items.swap(i, j as usize);
    }
    Ok(())
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

    #[test]
    fn format_3_packs_are_shuffled_and_padded() {
        let keys = Keys::from_master_for(&[5; 32], crate::format::SIZE_HIDING_VERSION);
        let added: Vec<BlobId> =
            (0..20u8).map(|i| BlobId::Chunk(keys.hasher().chunk_id(&[i; 300]))).collect();
        let orders: Vec<Vec<BlobId>> = (0..3)
            .map(|_| {
                let mut w = PackWriter::new(1 << 20, &keys);
                for (i, blob) in added.iter().enumerate() {
                    w.add(crate::pack::seal(&keys, *blob, &[i as u8; 300], 3).unwrap());
                }
                let done = w.finish(&keys).unwrap();
                assert_eq!(decode_pack(&done.bytes, &keys).unwrap(), done.entries);
                assert_eq!(done.bytes.len() as u64, crate::format::pack::MIN_PACK_LEN);
                done.entries.iter().map(|e| e.blob).collect()
            })
            .collect();
        // Three orders of 20 blobs all equal to the order added: 1 in 20!^3.
        assert!(orders.iter().any(|o| *o != added), "blobs were laid out in the order added");
    }
}
