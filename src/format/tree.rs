//! Directory nodes of the snapshot Merkle tree. A node is one version byte
//! followed by the postcard encoding of its entries, sorted by name bytes;
//! its id is the tree-domain hash of those bytes. Version 1 is just that;
//! version 2 (written only when some file carries a SHA-256, from `backup
//! --sha256`) appends one `Option<[u8; 32]>` per entry. The encoding is
//! canonical: a node without checksums is always version 1, so an unchanged
//! directory encodes to the same bytes, gets the same id and is stored once.
//!
//! A directory whose node would pass [`PAGE_BYTES`] is stored as pages:
//! runs of consecutive entries, each a version 1 or 2 node of its own, and
//! a version 3 node listing them ([`Page`]). The cut points are a pure
//! function of the entries, so an unchanged huge directory keeps its id too.
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
/// Version byte of a directory stored as pages: the node lists them.
pub const TREE_VERSION_PAGED: u8 = 3;

/// Largest version 1 or 2 encoding of a directory stored as one node; a
/// larger one is cut into pages of at most about this much each. Far below
/// the blob cap (128 MiB), so that no page nears it, and large enough that
/// only directories of more than about 150,000 entries are paged.
pub const PAGE_BYTES: usize = 16 << 20;

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

/// One page of a paged directory: `count` consecutive entries from `first`
/// to `last`, stored as the version 1 or 2 node `tree`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    #[serde(with = "serde_bytes")]
    pub first: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub last: Vec<u8>,
    pub count: u64,
    pub tree: TreeId,
}

/// A directory node as stored: the whole directory, or the list of its pages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stored {
    Whole(Tree),
    Paged(Vec<Page>),
}

/// The blobs that store one directory: its pages (none unless paged), which
/// must be stored before it, and its own node, whose id is the directory's.
#[derive(Clone, Debug)]
pub struct Encoded {
    pub pages: Vec<(TreeId, Vec<u8>)>,
    pub node: Vec<u8>,
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

    /// Encodes the directory as it is stored: one node, or, when that node
    /// would pass `page_bytes`, pages cut before the entry that would take
    /// a page past it (by [`entry_cost`]) and a node listing them. `name`
    /// gives a page's id.
    pub fn encode_stored(&self, page_bytes: usize, name: &dyn Fn(&[u8]) -> TreeId) -> Encoded {
        let whole = self.encode();
        let parts = if whole.len() > page_bytes { cut(&self.entries, page_bytes) } else { Vec::new() };
        // One entry alone past the limit is not cut: one page would be
        // the same node under another id.
        if parts.len() < 2 {
            return Encoded { pages: Vec::new(), node: whole };
        }
        let mut pages = Vec::with_capacity(parts.len());
        let mut index = Vec::with_capacity(parts.len());
        for part in parts {
            let bytes = Tree { entries: part.to_vec() }.encode();
            let tree = name(&bytes);
            let (first, last) = (&part[0].name, &part[part.len() - 1].name);
            index.push(Page { first: first.clone(), last: last.clone(), count: part.len() as u64, tree });
            pages.push((tree, bytes));
        }
        let mut node = vec![TREE_VERSION_PAGED];
        node.extend(postcard::to_stdvec(&index).expect("page list serializes"));
        Encoded { pages, node }
    }

    /// Decodes and validates a single node (version 1 or 2): a directory
    /// of one node, or one page of a paged directory.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let (&version, body) = bytes.split_first().ok_or(DecodeError::Truncated { need: 1, have: 0 })?;
        DecodeError::check_version("tree", version.into(), TREE_VERSION_PAGED.into())?;
        let tree = match version {
            TREE_VERSION => decode_exact(body)?,
            TREE_VERSION_SHA256 => Self::decode_with_checksums(body)?,
            _ => return Err(DecodeError::invalid("tree", "a paged directory where one node belongs")),
        };
        tree.validate()?;
        Ok(tree)
    }

    /// Decodes and validates a directory's node as stored.
    pub fn decode_stored(bytes: &[u8]) -> Result<Stored, DecodeError> {
        match bytes.split_first() {
            Some((&TREE_VERSION_PAGED, body)) => {
                let pages: Vec<Page> = decode_exact(body)?;
                validate_pages(&pages)?;
                Ok(Stored::Paged(pages))
            }
            _ => Self::decode(bytes).map(Stored::Whole),
        }
    }

    /// The directory from its page list and its pages, decoded, in order;
    /// each must be what the list says it is. A page given as `None` (lost
    /// to damage) is left out: the others still read as themselves.
    pub fn join_pages(pages: &[Page], parts: Vec<Option<Tree>>) -> Result<Self, DecodeError> {
        if parts.len() != pages.len() {
            return Err(DecodeError::invalid("paged tree", "page count differs from the list"));
        }
        let mut entries = Vec::new();
        for (page, part) in pages.iter().zip(parts) {
            let Some(part) = part else { continue };
            let ends = part.entries.first().zip(part.entries.last());
            let matches = part.entries.len() as u64 == page.count
                && ends.is_some_and(|(a, z)| a.name == page.first && z.name == page.last);
            if !matches {
                return Err(DecodeError::invalid(
                    "tree page",
                    format!("{} is not what its list says", page.tree),
                ));
            }
            entries.extend(part.entries);
        }
        Ok(Tree { entries })
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
        // Every chunk holds at least one byte: more chunks than bytes (4
        // million ids under `size: 0`, compressing to a few kilobytes) is
        // not a file, only a way to make readers allocate.
        if let Node::File { size, chunks } = &self.node
            && (chunks.len() as u64 > *size || chunks.is_empty() != (*size == 0))
        {
            return Err(DecodeError::invalid("file", format!("{} chunks for {size} bytes", chunks.len())));
        }
        if let Node::Symlink { target } = &self.node
            && (target.is_empty() || target.len() > MAX_LINK_TARGET_LEN || target.contains(&0))
        {
            return Err(DecodeError::invalid("symlink target", format!("{} bytes", target.len())));
        }
        Ok(())
    }
}

/// What an entry adds to a page: its encoding and its checksum slot.
/// Only the cut points depend on it, and it is a pure function of the
/// entry, so the pages of an unchanged directory are the same.
fn entry_cost(entry: &Entry) -> usize {
    let encoded = postcard::to_stdvec(entry).map_or(0, |v| v.len());
    encoded + if entry.sha256.is_some() { 33 } else { 1 }
}

/// Runs of consecutive entries, each cut before the entry that would take
/// it past `limit` (a run holds at least one entry).
fn cut(entries: &[Entry], limit: usize) -> Vec<&[Entry]> {
    let mut parts = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (i, entry) in entries.iter().enumerate() {
        let cost = entry_cost(entry);
        if i > start && size + cost > limit {
            parts.push(&entries[start..i]);
            (start, size) = (i, 0);
        }
        size += cost;
    }
    if start < entries.len() {
        parts.push(&entries[start..]);
    }
    parts
}

/// A page list as a reader may trust it: two pages or more (a single page
/// would be a node stored under a second id), none empty, names valid and
/// strictly increasing from page to page.
fn validate_pages(pages: &[Page]) -> Result<(), DecodeError> {
    if pages.len() < 2 {
        return Err(DecodeError::invalid("paged tree", "fewer than two pages"));
    }
    for page in pages {
        validate_name(&page.first)?;
        validate_name(&page.last)?;
        let one = page.count == 1;
        if page.count == 0 || page.first > page.last || one != (page.first == page.last) {
            return Err(DecodeError::invalid("paged tree", format!("page {} is inconsistent", page.tree)));
        }
    }
    if pages.windows(2).any(|w| w[0].last >= w[1].first) {
        return Err(DecodeError::invalid("paged tree", "pages not in strictly increasing name order"));
    }
    Ok(())
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
            (any::<u32>(), prop::collection::vec(any::<[u8; 32]>(), 0..4)).prop_map(|(extra, c)| {
                Node::File {
                    // At least one byte per chunk, none without chunks.
                    size: if c.is_empty() { 0 } else { c.len() as u64 + u64::from(extra) },
                    chunks: c.into_iter().map(ChunkId::from_bytes).collect(),
                }
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
        assert_eq!(
            Tree::decode(&[4]),
            Err(DecodeError::NewerVersion { what: "tree", found: 4, supported: 3 })
        );
    }

    fn many(n: usize) -> Tree {
        let entries = (0..n).map(|i| entry(format!("file-{i:06}").as_bytes(), Node::Fifo)).collect();
        Tree { entries }
    }

    fn plain_id(bytes: &[u8]) -> TreeId {
        crate::hash::BlobHasher::Plain.tree_id(bytes)
    }

    /// A paged directory as a reader gets it back from its blobs.
    fn read_back(encoded: &Encoded) -> Tree {
        let Stored::Paged(pages) = Tree::decode_stored(&encoded.node).unwrap() else { panic!("not paged") };
        let parts = encoded.pages.iter().map(|(_, b)| Some(Tree::decode(b).unwrap())).collect();
        Tree::join_pages(&pages, parts).unwrap()
    }

    #[test]
    fn a_large_directory_is_paged_canonically_and_a_small_one_is_not() {
        let small = many(10);
        let encoded = small.encode_stored(4096, &plain_id);
        assert!(encoded.pages.is_empty());
        assert_eq!(encoded.node, small.encode(), "a small directory's bytes do not change");

        let large = many(1000);
        let encoded = large.encode_stored(4096, &plain_id);
        assert!(encoded.pages.len() > 2, "{} pages", encoded.pages.len());
        assert_eq!(encoded.node[0], TREE_VERSION_PAGED);
        for (id, bytes) in &encoded.pages {
            assert!(bytes.len() <= 4096 + 8, "a page of {} bytes", bytes.len());
            assert_eq!(*id, plain_id(bytes));
        }
        assert_eq!(read_back(&encoded), large);
        let again = large.encode_stored(4096, &plain_id);
        assert_eq!(again.node, encoded.node, "the same directory gets the same pages");

        // One entry alone past the limit is one node, not one page.
        let one = many(1);
        assert!(one.encode_stored(1, &plain_id).pages.is_empty());
    }

    #[test]
    fn pages_that_are_not_what_their_list_says_are_refused() {
        let encoded = many(1000).encode_stored(4096, &plain_id);
        let Stored::Paged(pages) = Tree::decode_stored(&encoded.node).unwrap() else { panic!("not paged") };
        let parts = || encoded.pages.iter().map(|(_, b)| Some(Tree::decode(b).unwrap())).collect::<Vec<_>>();
        let mut swapped = parts();
        swapped.swap(0, 1);
        assert!(Tree::join_pages(&pages, swapped).is_err());
        let mut short = parts();
        short[0].as_mut().unwrap().entries.pop();
        assert!(Tree::join_pages(&pages, short).is_err());
        assert!(Tree::join_pages(&pages, parts()[1..].to_vec()).is_err());
        // A page lost to damage is left out; the others are themselves.
        let mut lost = parts();
        lost[1] = None;
        let kept = Tree::join_pages(&pages, lost).unwrap();
        assert_eq!(kept.entries.len() as u64, 1000 - pages[1].count);
        assert!(kept.find(&pages[1].first).is_none() && kept.find(&pages[0].first).is_some());
        // A page cannot itself be paged.
        assert!(Tree::decode(&encoded.node).is_err());
    }

    #[test]
    fn page_lists_out_of_order_or_of_one_page_are_refused() {
        let page = |first: &[u8], last: &[u8], count| Page {
            first: first.to_vec(),
            last: last.to_vec(),
            count,
            tree: TreeId::from_bytes([1; 32]),
        };
        let node = |pages: &[Page]| {
            let mut bytes = vec![TREE_VERSION_PAGED];
            bytes.extend(postcard::to_stdvec(pages).unwrap());
            bytes
        };
        assert!(Tree::decode_stored(&node(&[page(b"a", b"c", 2), page(b"d", b"d", 1)])).is_ok());
        for bad in [
            vec![page(b"a", b"c", 2)],
            vec![page(b"a", b"c", 2), page(b"c", b"d", 2)],
            vec![page(b"a", b"c", 0), page(b"d", b"e", 2)],
            vec![page(b"c", b"a", 2), page(b"d", b"e", 2)],
            vec![page(b"a", b"a", 2), page(b"d", b"e", 2)],
            vec![page(b"a", b"c", 2), page(b"d/", b"e", 2)],
        ] {
            assert!(Tree::decode_stored(&node(&bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn files_with_more_chunks_than_bytes_are_rejected() {
        let chunks = vec![ChunkId::from_bytes([1; 32]); 3];
        for (size, chunks) in [(2, chunks.clone()), (0, chunks.clone()), (5, Vec::new())] {
            let tree = Tree { entries: vec![entry(b"f", Node::File { size, chunks })] };
            assert!(Tree::decode(&tree.encode()).is_err(), "size {size}");
        }
        let tree = Tree { entries: vec![entry(b"f", Node::File { size: 3, chunks })] };
        assert!(Tree::decode(&tree.encode()).is_ok());
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
