//! Directory nodes of the snapshot Merkle tree. A node is one version byte
//! ([`TREE_VERSION`]) followed by the postcard encoding of its entries,
//! sorted by name bytes; its id is the BLAKE3 (tree domain) of those bytes.
//! The version byte lets a later format add fields while old nodes in the
//! same repository stay readable. An unchanged directory encodes to the
//! same bytes, gets the same id and is stored once.
//!
//! Names are raw bytes (Unix file names need not be UTF-8). A decoded node is
//! checked so that restore can trust it: every name is non-empty, is not `.`
//! or `..`, holds no `/` or NUL, and names are strictly increasing (so no
//! duplicates, and a name cannot be both a symlink and a directory).

use serde::{Deserialize, Serialize};

use super::{DecodeError, Timestamp, decode_exact};
use crate::id::{ChunkId, TreeId};

/// Version byte that starts every encoded node.
pub const TREE_VERSION: u8 = 1;

/// Longest file name accepted (Linux NAME_MAX).
pub const MAX_NAME_LEN: usize = 255;
/// Longest symlink target accepted (Linux PATH_MAX).
pub const MAX_LINK_TARGET_LEN: usize = 4096;

/// One directory's contents.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    /// Entries sorted by name bytes, names unique.
    pub entries: Vec<Entry>,
}

/// One named thing in a directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// File name as raw bytes.
    #[serde(with = "serde_bytes")]
    pub name: Vec<u8>,
    /// What the entry is, with its type-specific payload.
    pub node: Node,
    /// Metadata common to every kind.
    pub meta: Metadata,
}

/// The kind of an entry and what only that kind has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Node {
    /// A regular file: its length and its chunks in order.
    File { size: u64, chunks: Vec<ChunkId> },
    /// A directory: the id of its node.
    Dir { tree: TreeId },
    /// A symbolic link and its target bytes (never followed).
    Symlink {
        #[serde(with = "serde_bytes")]
        target: Vec<u8>,
    },
    /// A named pipe.
    Fifo,
    /// A character device.
    CharDevice { rdev: u64 },
    /// A block device.
    BlockDevice { rdev: u64 },
    /// A Unix socket (recorded, restored as nothing).
    Socket,
}

/// Metadata captured with `lstat` and `llistxattr`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// Permission bits including setuid, setgid and sticky (`st_mode & 0o7777`).
    pub mode: u32,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Modification time.
    pub mtime: Timestamp,
    /// Status change time; part of change detection, never restored.
    pub ctime: Timestamp,
    /// Inode number; change detection and hardlink grouping.
    pub inode: u64,
    /// Device number; hardlink grouping.
    pub dev: u64,
    /// Link count; above 1 marks a possible hardlink.
    pub nlink: u64,
    /// Extended attributes, sorted by name.
    pub xattrs: Vec<Xattr>,
}

/// One extended attribute.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Xattr {
    /// Attribute name, e.g. `user.comment`.
    #[serde(with = "serde_bytes")]
    pub name: Vec<u8>,
    /// Attribute value.
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
}

impl Node {
    /// A one-letter type code, as in `ls` output.
    pub fn type_char(&self) -> char {
        match self {
            Node::File { .. } => '-',
            Node::Dir { .. } => 'd',
            Node::Symlink { .. } => 'l',
            Node::Fifo => 'p',
            Node::CharDevice { .. } => 'c',
            Node::BlockDevice { .. } => 'b',
            Node::Socket => 's',
        }
    }
}

impl Tree {
    /// Encodes the node; its id is the tree-domain hash of these bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![TREE_VERSION];
        out.extend(postcard::to_stdvec(self).expect("tree serializes"));
        out
    }

    /// Decodes and validates a node read from a repository.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let (&version, body) = bytes.split_first().ok_or(DecodeError::Truncated { need: 1, have: 0 })?;
        if version != TREE_VERSION {
            return Err(DecodeError::NewerVersion(version));
        }
        let tree: Tree = decode_exact(body)?;
        tree.validate()?;
        Ok(tree)
    }

    /// Sorts entries by name so the encoding is canonical.
    pub fn sort(&mut self) {
        self.entries.sort_by(|a, b| a.name.cmp(&b.name));
    }

    /// The entry with this exact name.
    pub fn find(&self, name: &[u8]) -> Option<&Entry> {
        self.entries.binary_search_by(|e| e.name.as_slice().cmp(name)).ok().map(|i| &self.entries[i])
    }

    fn validate(&self) -> Result<(), DecodeError> {
        for pair in self.entries.windows(2) {
            if pair[0].name >= pair[1].name {
                return Err(DecodeError::invalid("tree", "names not strictly sorted"));
            }
        }
        self.entries.iter().try_for_each(Entry::validate)
    }
}

impl Entry {
    fn validate(&self) -> Result<(), DecodeError> {
        validate_name(&self.name)?;
        self.meta.mtime.validate("mtime")?;
        self.meta.ctime.validate("ctime")?;
        if let Node::Symlink { target } = &self.node
            && (target.is_empty() || target.len() > MAX_LINK_TARGET_LEN || target.contains(&0))
        {
            return Err(DecodeError::invalid("symlink target", format!("{} bytes", target.len())));
        }
        Ok(())
    }
}

/// Checks that `name` is a single, safe path component.
pub fn validate_name(name: &[u8]) -> Result<(), DecodeError> {
    let bad = name.is_empty()
        || name.len() > MAX_NAME_LEN
        || name == b"."
        || name == b".."
        || name.contains(&b'/')
        || name.contains(&0);
    if bad {
        return Err(DecodeError::invalid("entry name", format!("{:?}", String::from_utf8_lossy(name))));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(name: &[u8], node: Node) -> Entry {
        Entry { name: name.to_vec(), node, meta: Metadata::default() }
    }

    fn arb_node() -> impl Strategy<Value = Node> {
        prop_oneof![
            (any::<u64>(), prop::collection::vec(any::<[u8; 32]>(), 0..4)).prop_map(|(size, c)| Node::File {
                size,
                chunks: c.into_iter().map(ChunkId::from_bytes).collect()
            }),
            any::<[u8; 32]>().prop_map(|t| Node::Dir { tree: TreeId::from_bytes(t) }),
            prop::collection::vec(1u8..=255, 1..50).prop_map(|target| Node::Symlink { target }),
            Just(Node::Fifo),
            any::<u64>().prop_map(|rdev| Node::CharDevice { rdev }),
            Just(Node::Socket),
        ]
    }

    fn arb_name() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(any::<u8>().prop_filter("no / or NUL", |b| *b != b'/' && *b != 0), 1..=255)
            .prop_filter("not . or ..", |n| n != b"." && n != b"..")
    }

    proptest! {
        #[test]
        fn round_trip(items in prop::collection::btree_map(arb_name(), (arb_node(), any::<u32>(), any::<i64>(), 0u32..1_000_000_000), 0..10)) {
            let entries = items.into_iter().map(|(name, (node, mode, secs, nanos))| {
                let mut e = entry(&name, node);
                e.meta.mode = mode;
                e.meta.mtime = Timestamp { secs, nanos };
                e.meta.xattrs = vec![Xattr { name: b"user.x".to_vec(), value: name.clone() }];
                e
            }).collect();
            let tree = Tree { entries };
            prop_assert_eq!(Tree::decode(&tree.encode()).unwrap(), tree);
        }
    }

    #[test]
    fn hostile_names_are_rejected() {
        for name in [&b""[..], b".", b"..", b"a/b", b"/etc", b"nul\0"] {
            let tree = Tree { entries: vec![entry(name, Node::Fifo)] };
            assert!(Tree::decode(&tree.encode()).is_err(), "{name:?} accepted");
        }
    }

    #[test]
    fn duplicate_names_are_rejected() {
        let tree = Tree {
            entries: vec![
                entry(b"x", Node::Symlink { target: b"/etc".to_vec() }),
                entry(b"x", Node::Dir { tree: TreeId::from_bytes([0; 32]) }),
            ],
        };
        assert!(Tree::decode(&tree.encode()).is_err());
    }
}
