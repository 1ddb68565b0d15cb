//! Directory nodes of the snapshot Merkle tree. A node is one version byte
//! followed by the postcard encoding of its entries, sorted by name bytes;
//! its id is the tree-domain hash of those bytes. Version 1 is just that;
//! version 2 (written only when some file carries a SHA-256, from `backup
//! --sha256`) appends one `Option<[u8; 32]>` per entry. The encoding is
//! canonical: a node without checksums is always version 1, so an unchanged
//! directory encodes to the same bytes, gets the same id and is stored once.
//!
//! Names are raw bytes (Unix file names need not be UTF-8). A decoded node is
//! checked so that restore can trust it: every name is non-empty, is not `.`
//! or `..`, holds no `/` or NUL, and names are strictly increasing (so no
//! duplicates, and a name cannot be both a symlink and a directory).

use serde::{Deserialize, Serialize};

use super::{DecodeError, Timestamp, decode_exact};
use crate::id::{ChunkId, TreeId};

/// Version byte of a node without checksums.
pub const TREE_VERSION: u8 = 1;
/// Version byte of a node whose entries carry SHA-256 checksums.
pub const TREE_VERSION_SHA256: u8 = 2;

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
    /// SHA-256 of a file's contents, when backed up with `--sha256`. Not
    /// part of the version 1 encoding (see [`Tree::encode`]).
    #[serde(skip)]
    pub sha256: Option<[u8; 32]>,
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
        let checksums = self.entries.iter().any(|e| e.sha256.is_some());
        let mut out = vec![if checksums { TREE_VERSION_SHA256 } else { TREE_VERSION }];
        out.extend(postcard::to_stdvec(self).expect("tree serializes"));
        if checksums {
            let sums: Vec<Option<[u8; 32]>> = self.entries.iter().map(|e| e.sha256).collect();
            out.extend(postcard::to_stdvec(&sums).expect("checksums serialize"));
        }
        out
    }

    /// Decodes and validates a node read from a repository.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let (&version, body) = bytes.split_first().ok_or(DecodeError::Truncated { need: 1, have: 0 })?;
        let tree = match version {
            TREE_VERSION => decode_exact(body)?,
            TREE_VERSION_SHA256 => Self::decode_with_checksums(body)?,
            _ => return Err(DecodeError::NewerVersion(version)),
        };
        tree.validate()?;
        Ok(tree)
    }

    fn decode_with_checksums(body: &[u8]) -> Result<Self, DecodeError> {
        let (mut tree, rest): (Tree, _) = postcard::take_from_bytes(body)?;
        let sums: Vec<Option<[u8; 32]>> = decode_exact(rest)?;
        if sums.len() != tree.entries.len() {
            return Err(DecodeError::invalid("tree", "checksum count differs from entry count"));
        }
        // Canonical form: version 2 only when some file has a checksum.
        if sums.iter().all(Option::is_none) {
            return Err(DecodeError::invalid("tree", "version 2 node without checksums"));
        }
        for (entry, sum) in tree.entries.iter_mut().zip(sums) {
            if sum.is_some() && !matches!(entry.node, Node::File { .. }) {
                return Err(DecodeError::invalid("tree", "a checksum on an entry that is not a file"));
            }
            entry.sha256 = sum;
        }
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
        Entry { name: name.to_vec(), node, meta: Metadata::default(), sha256: None }
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
        fn round_trip(items in prop::collection::btree_map(arb_name(), (arb_node(), any::<u32>(), any::<i64>(), 0u32..1_000_000_000, any::<Option<[u8; 32]>>()), 0..10)) {
            let entries = items.into_iter().map(|(name, (node, mode, secs, nanos, sum))| {
                let mut e = entry(&name, node);
                e.sha256 = sum.filter(|_| matches!(e.node, Node::File { .. }));
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
    fn checksums_make_version_2_and_only_then() {
        let file = || entry(b"f", Node::File { size: 1, chunks: vec![ChunkId::from_bytes([1; 32])] });
        let plain = Tree { entries: vec![file()] };
        assert_eq!(plain.encode()[0], TREE_VERSION, "unchanged bytes without checksums");
        let mut with_sum = Tree { entries: vec![file()] };
        with_sum.entries[0].sha256 = Some([7; 32]);
        let bytes = with_sum.encode();
        assert_eq!(bytes[0], TREE_VERSION_SHA256);
        assert!(bytes.starts_with(&[TREE_VERSION_SHA256]) && bytes[1..].starts_with(&plain.encode()[1..]));
        assert_eq!(Tree::decode(&bytes).unwrap(), with_sum);

        // Non-canonical or inconsistent version 2 nodes are refused.
        let mut none = vec![TREE_VERSION_SHA256];
        none.extend(postcard::to_stdvec(&plain).unwrap());
        none.extend(postcard::to_stdvec(&vec![None::<[u8; 32]>]).unwrap());
        assert!(Tree::decode(&none).is_err());
        let dir = Tree { entries: vec![entry(b"d", Node::Dir { tree: TreeId::from_bytes([0; 32]) })] };
        let mut on_dir = vec![TREE_VERSION_SHA256];
        on_dir.extend(postcard::to_stdvec(&dir).unwrap());
        on_dir.extend(postcard::to_stdvec(&vec![Some([1u8; 32])]).unwrap());
        assert!(Tree::decode(&on_dir).is_err());
        assert_eq!(Tree::decode(&[3]), Err(DecodeError::NewerVersion(3)));
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
