//! BLAKE3 in one domain per object type. Chunk ids are the plain BLAKE3 of
//! the data (so `b3sum` of a small file equals its chunk id); tree ids use
//! BLAKE3's key-derivation mode with a tree context, so no chunk's bytes can
//! ever be passed off as a tree node (borg CVE-2016-10099 was this mistake).

use crate::id::{ChunkId, PackId, SnapshotId, TreeId};

const TREE_CONTEXT: &str = "snap 2026-11 tree node v1";

/// Id of a chunk's plaintext.
pub fn chunk_id(data: &[u8]) -> ChunkId {
    ChunkId::from_bytes(*blake3::hash(data).as_bytes())
}

/// Id of an encoded tree node.
pub fn tree_id(encoded: &[u8]) -> TreeId {
    let mut h = blake3::Hasher::new_derive_key(TREE_CONTEXT);
    h.update(encoded);
    TreeId::from_bytes(*h.finalize().as_bytes())
}

/// Id (and name) of a pack file.
pub fn pack_id(bytes: &[u8]) -> PackId {
    PackId::from_bytes(*blake3::hash(bytes).as_bytes())
}

/// Id (and name) of a snapshot file.
pub fn snapshot_id(bytes: &[u8]) -> SnapshotId {
    SnapshotId::from_bytes(*blake3::hash(bytes).as_bytes())
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
}
