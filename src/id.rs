//! Typed 32-byte identifiers. A chunk id can never be passed where a tree id
//! is expected; each id type is hashed in its own domain (see `hash.rs`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Length of every id in bytes.
pub const ID_LEN: usize = 32;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; ID_LEN]);

        // Binary formats (postcard) store the 32 raw bytes; human-readable
        // ones (JSON output) show hex.
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                if s.is_human_readable() { s.serialize_str(&self.to_hex()) } else { self.0.serialize(s) }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                if d.is_human_readable() {
                    let s = String::deserialize(d)?;
                    Self::from_hex(&s).map_err(serde::de::Error::custom)
                } else {
                    <[u8; ID_LEN]>::deserialize(d).map(Self)
                }
            }
        }

        impl $name {
            /// What this id names, for messages.
            pub const KIND: &'static str = $kind;

            /// Wraps raw bytes.
            pub const fn from_bytes(bytes: [u8; ID_LEN]) -> Self {
                Self(bytes)
            }

            /// The raw bytes.
            pub const fn as_bytes(&self) -> &[u8; ID_LEN] {
                &self.0
            }

            /// Lower-case hex, as used in file names.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// The first 8 hex digits, as shown to users.
            pub fn short(&self) -> String {
                hex::encode(&self.0[..4])
            }

            /// Parses a full 64-digit hex id.
            pub fn from_hex(s: &str) -> Result<Self> {
                let mut out = [0u8; ID_LEN];
                hex::decode_to_slice(s, &mut out)
                    .map_err(|_| Error::InvalidInput(format!("not a {} id: {s:?}", $kind)))?;
                Ok(Self(out))
            }

            /// Reads an id from a 32-byte slice (an SQLite blob column).
            pub fn from_slice(bytes: &[u8]) -> Result<Self> {
                let arr: [u8; ID_LEN] = bytes
                    .try_into()
                    .map_err(|_| Error::IndexDamaged(format!("{} id of {} bytes", $kind, bytes.len())))?;
                Ok(Self(arr))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }
    };
}

id_type!(
    /// BLAKE3 of a chunk's plaintext bytes.
    ChunkId,
    "chunk"
);
id_type!(
    /// BLAKE3 (tree domain) of an encoded directory node.
    TreeId,
    "tree"
);
id_type!(
    /// BLAKE3 of a pack file's bytes; also its file name.
    PackId,
    "pack"
);
id_type!(
    /// BLAKE3 of a snapshot file's bytes; also its file name.
    SnapshotId,
    "snapshot"
);

/// The two kinds of blob a pack holds. The kind is stored beside the id in
/// every pack entry and index row, so a chunk can never be read as a tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BlobKind {
    /// File contents.
    Chunk,
    /// An encoded directory node.
    Tree,
}

impl BlobKind {
    /// The byte stored on disk for this kind.
    pub const fn code(self) -> u8 {
        match self {
            BlobKind::Chunk => 0,
            BlobKind::Tree => 1,
        }
    }

    /// The kind for an on-disk byte, if known.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(BlobKind::Chunk),
            1 => Some(BlobKind::Tree),
            _ => None,
        }
    }
}

/// A blob's identity: its kind and its id. The index and packs key on this.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BlobId {
    /// A file chunk.
    Chunk(ChunkId),
    /// A directory node.
    Tree(TreeId),
}

impl BlobId {
    /// Builds a blob id from its parts.
    pub const fn new(kind: BlobKind, bytes: [u8; ID_LEN]) -> Self {
        match kind {
            BlobKind::Chunk => BlobId::Chunk(ChunkId::from_bytes(bytes)),
            BlobKind::Tree => BlobId::Tree(TreeId::from_bytes(bytes)),
        }
    }

    /// Which kind of blob this is.
    pub const fn kind(&self) -> BlobKind {
        match self {
            BlobId::Chunk(_) => BlobKind::Chunk,
            BlobId::Tree(_) => BlobKind::Tree,
        }
    }

    /// The raw id bytes.
    pub const fn as_bytes(&self) -> &[u8; ID_LEN] {
        match self {
            BlobId::Chunk(id) => id.as_bytes(),
            BlobId::Tree(id) => id.as_bytes(),
        }
    }

    /// The chunk id, if this is a chunk.
    pub const fn as_chunk(&self) -> Option<ChunkId> {
        match self {
            BlobId::Chunk(id) => Some(*id),
            BlobId::Tree(_) => None,
        }
    }
}

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlobId::Chunk(id) => write!(f, "chunk {id}"),
            BlobId::Tree(id) => write!(f, "tree {id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let id = ChunkId::from_bytes([0xab; 32]);
        assert_eq!(ChunkId::from_hex(&id.to_hex()).unwrap(), id);
        assert_eq!(id.short(), "abababab");
    }

    #[test]
    fn serde_is_hex_in_json_and_raw_in_postcard() {
        let id = TreeId::from_bytes([1; 32]);
        assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{}\"", "01".repeat(32)));
        assert_eq!(serde_json::from_str::<TreeId>(&serde_json::to_string(&id).unwrap()).unwrap(), id);
        assert_eq!(postcard::to_stdvec(&id).unwrap(), vec![1; 32]);
    }

    #[test]
    fn bad_hex_is_an_error() {
        assert!(TreeId::from_hex("zz").is_err());
        assert!(TreeId::from_hex(&"a".repeat(63)).is_err());
    }

    #[test]
    fn blob_kind_codes_round_trip() {
        for kind in [BlobKind::Chunk, BlobKind::Tree] {
            assert_eq!(BlobKind::from_code(kind.code()), Some(kind));
        }
        assert_eq!(BlobKind::from_code(7), None);
    }
}
