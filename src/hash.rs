//! BLAKE3 in one domain per object type. In an unencrypted repository chunk
//! ids are the plain BLAKE3 of the data (so `b3sum` of a small file equals its
//! chunk id) and tree ids use BLAKE3's key-derivation mode with a tree
//! context, so no chunk's bytes can ever be passed off as a tree node (borg
//! CVE-2016-10099 was this mistake). An encrypted repository hashes both in
//! keyed mode with secret keys, so its ids do not reveal which known files
//! it holds.

use zeroize::Zeroizing;

use crate::id::{BlobId, BlobKind, ChunkId, PackId, SnapshotId, TreeId};

const TREE_CONTEXT: &str = "snap 2026-11 tree node v1";

/// Id of a chunk's plaintext in an unencrypted repository.
fn chunk_id(data: &[u8]) -> ChunkId {
    ChunkId::from_bytes(*blake3::hash(data).as_bytes())
}

/// Id of an encoded tree node in an unencrypted repository.
fn tree_id(encoded: &[u8]) -> TreeId {
    let mut h = blake3::Hasher::new_derive_key(TREE_CONTEXT);
    h.update(encoded);
    TreeId::from_bytes(*h.finalize().as_bytes())
}

/// Id (and name) of a pack file.
pub fn pack_id(bytes: &[u8]) -> PackId {
    PackId::from_bytes(*blake3::hash(bytes).as_bytes())
}

/// The id of a pack read in pieces: every byte fed once, in order.
#[derive(Default)]
pub struct PackIdHasher(blake3::Hasher);

impl PackIdHasher {
    /// Feeds the next bytes of the pack.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The id of all bytes fed, as [`pack_id`] gives for them at once.
    pub fn finish(&self) -> PackId {
        PackId::from_bytes(*self.0.finalize().as_bytes())
    }
}

/// Id (and name) of a snapshot file.
pub fn snapshot_id(bytes: &[u8]) -> SnapshotId {
    SnapshotId::from_bytes(*blake3::hash(bytes).as_bytes())
}

/// How one repository names its blobs.
#[derive(Clone)]
pub enum BlobHasher {
    /// Unencrypted: [`chunk_id`] and [`tree_id`].
    Plain,
    /// Encrypted: BLAKE3 keyed mode, one secret key per blob kind.
    Keyed {
        /// Key for chunk ids.
        chunk: Zeroizing<[u8; 32]>,
        /// Key for tree ids.
        tree: Zeroizing<[u8; 32]>,
    },
}

impl BlobHasher {
    /// Id of a chunk's plaintext.
    pub fn chunk_id(&self, data: &[u8]) -> ChunkId {
        match self {
            BlobHasher::Plain => chunk_id(data),
            BlobHasher::Keyed { chunk, .. } => {
                ChunkId::from_bytes(*blake3::keyed_hash(chunk, data).as_bytes())
            }
        }
    }

    /// Id of an encoded tree node.
    pub fn tree_id(&self, encoded: &[u8]) -> TreeId {
        match self {
            BlobHasher::Plain => tree_id(encoded),
            BlobHasher::Keyed { tree, .. } => {
                TreeId::from_bytes(*blake3::keyed_hash(tree, encoded).as_bytes())
            }
        }
    }

    /// The id `raw` has as a blob of `kind`.
    pub fn blob_id(&self, kind: BlobKind, raw: &[u8]) -> BlobId {
        match kind {
            BlobKind::Chunk => BlobId::Chunk(self.chunk_id(raw)),
            BlobKind::Tree => BlobId::Tree(self.tree_id(raw)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_and_tree_domains_differ() {
        assert_ne!(chunk_id(b"x").as_bytes(), tree_id(b"x").as_bytes());
    }

    #[test]
    fn chunk_id_is_plain_blake3() {
        assert_eq!(chunk_id(b"abc").to_hex(), blake3::hash(b"abc").to_hex().as_str());
    }

    #[test]
    fn keyed_ids_differ_from_plain_and_between_kinds() {
        let keyed = BlobHasher::Keyed { chunk: Zeroizing::new([1; 32]), tree: Zeroizing::new([2; 32]) };
        assert_ne!(keyed.chunk_id(b"x"), BlobHasher::Plain.chunk_id(b"x"));
        assert_ne!(keyed.chunk_id(b"x").as_bytes(), keyed.tree_id(b"x").as_bytes());
        assert_eq!(BlobHasher::Plain.tree_id(b"x"), tree_id(b"x"));
    }
}
