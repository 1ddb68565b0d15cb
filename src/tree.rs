//! Reading the snapshot Merkle tree: find the entry at a path, and walk a
//! subtree depth first in name order. Works through [`TreeStore`], so it
//! knows nothing about packs or the index.

use crate::error::{Error, Result};
use crate::format::tree::{Entry, Node, Page, Tree};
use std::collections::HashSet;

use crate::id::{ChunkId, TreeId};
use crate::names;

/// Anything that can load directories by id.
pub trait TreeStore: Sync {
    /// Loads and validates one directory, with the ids of the pages it is
    /// stored in besides its node (none unless paged): whoever counts the
    /// blobs a tree needs must count those too.
    fn load_node(&self, id: &TreeId) -> Result<(Tree, Vec<TreeId>)>;

    /// Loads and validates one directory.
    fn load_tree(&self, id: &TreeId) -> Result<Tree> {
        Ok(self.load_node(id)?.0)
    }

    /// As [`Self::load_node`], for a walk that may go on past damage: each
    /// page of a paged directory that fails to load is handed to `lost`,
    /// and left out (of the tree and the page ids) if it returns `Ok`. (A
    /// store without pages of its own loads whole.)
    fn load_node_lossy(&self, id: &TreeId, _lost: &mut LostPage<'_>) -> Result<(Tree, Vec<TreeId>)> {
        self.load_node(id)
    }

    /// What a walk does when the directory at `path` fails to load with
    /// `error` (or, with `page`, one page of it does): `Ok` goes on without
    /// it, `Err` ends the walk (the default).
    fn hole(&self, _path: &[Vec<u8>], _page: Option<&Page>, error: Error) -> Result<()> {
        Err(error)
    }
}

/// What a loader does with a page that failed to load: `Ok` leaves it out.
pub type LostPage<'a> = dyn FnMut(&Page, Error) -> Result<()> + 'a;

/// A directory a walk could not enter, or one page of a large one it
/// could not read: damaged or missing.
#[derive(Debug)]
pub struct Hole {
    /// Names from the snapshot's root (empty: the root itself).
    pub path: Vec<Vec<u8>>,
    /// The page lost, for a paged directory whose other pages were read;
    /// `None`: the whole directory.
    pub page: Option<Page>,
    pub error: Error,
}

impl Hole {
    /// The path for display, escaped.
    pub fn shown(&self) -> String {
        names::display_components(&self.path)
    }

    /// For a lost page, which entries it held: "N entries from A to B".
    pub fn entries(&self) -> Option<String> {
        let (e, p) = (names::escape, self.page.as_ref()?);
        Some(format!("{} entries from {} to {}", p.count, e(&p.first), e(&p.last)))
    }
}

/// A store for walks that go on past damage: a directory whose node is
/// proved damaged or missing reads as empty and is recorded as a hole, to
/// be named; any other error (I/O, a newer format) proves nothing and
/// still ends the walk.
pub struct WithHoles<'a> {
    store: &'a dyn TreeStore,
    holes: std::sync::Mutex<Vec<Hole>>,
}

impl<'a> WithHoles<'a> {
    pub fn new(store: &'a dyn TreeStore) -> Self {
        WithHoles { store, holes: Default::default() }
    }

    /// The holes met so far, in the order met.
    pub fn into_holes(self) -> Vec<Hole> {
        self.holes.into_inner().unwrap_or_else(|p| p.into_inner())
    }
}

impl TreeStore for WithHoles<'_> {
    fn load_node(&self, id: &TreeId) -> Result<(Tree, Vec<TreeId>)> {
        self.store.load_node(id)
    }

    fn load_tree(&self, id: &TreeId) -> Result<Tree> {
        self.store.load_tree(id)
    }

    fn load_node_lossy(&self, id: &TreeId, lost: &mut LostPage<'_>) -> Result<(Tree, Vec<TreeId>)> {
        self.store.load_node_lossy(id, lost)
    }

    fn hole(&self, path: &[Vec<u8>], page: Option<&Page>, error: Error) -> Result<()> {
        if !error.proves_damage() {
            return Err(error);
        }
        let hole = Hole { path: path.to_vec(), page: page.cloned(), error };
        self.holes.lock().unwrap_or_else(|p| p.into_inner()).push(hole);
        Ok(())
    }
}

/// Loads the directory at `path` for a walk: a node, or a page of it, that
/// fails to load is what the store's [`TreeStore::hole`] says.
fn load_for_walk(store: &dyn TreeStore, id: &TreeId, path: &[Vec<u8>]) -> Result<Tree> {
    let mut lost = |page: &Page, e| store.hole(path, Some(page), e);
    match store.load_node_lossy(id, &mut lost) {
        Ok((tree, _)) => Ok(tree),
        Err(e) => store.hole(path, None, e).map(|()| Tree::default()),
    }
}

impl TreeStore for crate::repo::Repository {
    fn load_node(&self, id: &TreeId) -> Result<(Tree, Vec<TreeId>)> {
        crate::repo::Repository::load_node(self, id)
    }

    fn load_tree(&self, id: &TreeId) -> Result<Tree> {
        crate::repo::Repository::load_tree(self, id)
    }

    fn load_node_lossy(&self, id: &TreeId, lost: &mut LostPage<'_>) -> Result<(Tree, Vec<TreeId>)> {
        crate::repo::Repository::load_node_lossy(self, id, lost)
    }
}

/// A store whose nodes that fail to load read as empty, for walks that
/// report what they reach and were told about the failures already.
pub struct Lenient<'a>(pub &'a dyn TreeStore);

impl TreeStore for Lenient<'_> {
    fn load_node(&self, id: &TreeId) -> Result<(Tree, Vec<TreeId>)> {
        Ok(self.0.load_node(id).unwrap_or_default())
    }

    fn load_node_lossy(&self, id: &TreeId, lost: &mut LostPage<'_>) -> Result<(Tree, Vec<TreeId>)> {
        Ok(self.0.load_node_lossy(id, lost).unwrap_or_default())
    }
}

/// Called with the path (names from the root) and entry of each visited entry.
pub type Visitor<'a> = dyn FnMut(&[Vec<u8>], &Entry) -> Result<()> + 'a;

/// A [`Visitor`] that also says whether to go below a directory entry.
pub type PruningVisitor<'a> = dyn FnMut(&[Vec<u8>], &Entry) -> Result<bool> + 'a;

/// What a path inside a snapshot names.
#[derive(Clone, Debug)]
pub enum Found {
    /// The snapshot root (the path was empty or `/`).
    Root(TreeId),
    /// An entry somewhere below the root.
    Entry(Entry),
}

/// Finds the entry at `path` (names from the root) below `root`.
pub fn find(store: &dyn TreeStore, root: TreeId, path: &[Vec<u8>]) -> Result<Found> {
    let Some((last, dirs)) = path.split_last() else { return Ok(Found::Root(root)) };
    let mut tree = store.load_tree(&root)?;
    for (depth, name) in dirs.iter().enumerate() {
        let next = match tree.find(name) {
            Some(Entry { node: Node::Dir { tree }, .. }) => *tree,
            _ => return Err(not_in_snapshot(&path[..=depth])),
        };
        tree = store.load_tree(&next)?;
    }
    tree.find(last).cloned().map(Found::Entry).ok_or_else(|| not_in_snapshot(path))
}

fn not_in_snapshot(path: &[Vec<u8>]) -> Error {
    Error::NotFound { kind: "path", id: names::display_components(path) }
}

/// Deepest directory nesting a walk follows. Real trees stay far below it
/// (a path of 65,536 one-byte names is 128 KiB, 32 times PATH_MAX, and issue
/// 26 wants such trees to work), while it keeps a hostile chain of nodes
/// from holding an unbounded stack of frames.
pub const MAX_DEPTH: usize = 65_536;

/// A walk may visit at most this many times as many entries as the distinct
/// nodes it loaded hold (plus [`VISIT_FLOOR`]). Entries carry inode and
/// device numbers, so two places of one file system only share a node when
/// they are the same directory seen twice (a bind mount, the same source
/// named twice, a hardlink farm's leaf): legitimate sharing multiplies a
/// part of the tree by a small number. A hostile DAG naming one subtree
/// twice per level multiplies by 2^depth; with this budget its walk ends
/// after work linear in the bytes it stored, never "for ever".
pub const VISIT_FACTOR: u64 = 256;

/// Visits always allowed, whatever the ratio: small trees with much
/// sharing cost little however they are shaped.
pub const VISIT_FLOOR: u64 = 1 << 16;

/// The limits of one walk: its depth, and a visit budget against a DAG
/// that names shared subtrees exponentially often. Every walk over
/// snapshot trees (here, and diff's and find's own) counts through one.
#[derive(Debug, Default)]
pub struct Guard {
    /// Distinct nodes loaded.
    distinct: HashSet<TreeId>,
    /// Entries those nodes hold.
    stored: u64,
    /// Entries visited, every time they were reached.
    visits: u64,
}

impl Guard {
    /// A fresh budget.
    pub fn new() -> Self {
        Guard::default()
    }

    /// Counts a node that was loaded (its entries count once per distinct id).
    pub fn loaded(&mut self, id: &TreeId, entries: usize) {
        if self.distinct.insert(*id) {
            self.stored(entries);
        }
    }

    /// Counts `entries` distinct entries of something other than a node
    /// (a cached result standing for one), which the caller saw once.
    pub fn stored(&mut self, entries: usize) {
        self.stored = self.stored.saturating_add(entries as u64);
    }

    /// Counts one visited entry at `path`; an error once the budget is spent.
    pub fn visit(&mut self, path: &[Vec<u8>]) -> Result<()> {
        self.visits += 1;
        let budget = self.stored.saturating_mul(VISIT_FACTOR).max(VISIT_FLOOR);
        if self.visits > budget {
            return Err(Error::TreeLimit {
                path: short_path(path),
                detail: format!(
                    "visit budget exhausted: {} entries visited, more than {VISIT_FACTOR} times the {} \
                     distinct entries stored (a tree naming the same subtrees over and over); refused as hostile",
                    self.visits, self.stored
                ),
            });
        }
        Ok(())
    }

    /// Checks that a walk `depth` directories deep may go one further.
    pub fn descend(&self, depth: usize, path: &[Vec<u8>]) -> Result<()> {
        if depth >= MAX_DEPTH {
            return Err(Error::TreeLimit {
                path: short_path(path),
                detail: format!("tree deeper than {MAX_DEPTH} levels: refused as hostile"),
            });
        }
        Ok(())
    }
}

/// A path for an error message: a hostile one may be 65,536 names long, so
/// only its first names are shown, with the depth.
fn short_path(path: &[Vec<u8>]) -> String {
    const SHOWN: usize = 8;
    if path.len() <= SHOWN {
        return names::display_components(path);
    }
    format!("{}/... ({} levels)", names::display_components(&path[..SHOWN]), path.len())
}

/// Calls `visit(path, entry)` for every entry below `tree`, parents before
/// children, siblings in name order. `prefix` is the path of `tree`.
pub fn walk(
    store: &dyn TreeStore,
    tree: TreeId,
    prefix: &mut Vec<Vec<u8>>,
    visit: &mut Visitor<'_>,
) -> Result<()> {
    walk_pruned(store, tree, prefix, &mut |path, entry| visit(path, entry).map(|()| true))
}

/// Like [`walk`], but the visitor says whether to go below a directory
/// (`true`) or leave it out. Iterative, with a [`Guard`]: no tree, however
/// deep or shared, overflows the stack or runs for ever.
pub fn walk_pruned(
    store: &dyn TreeStore,
    tree: TreeId,
    prefix: &mut Vec<Vec<u8>>,
    visit: &mut PruningVisitor<'_>,
) -> Result<()> {
    let mut guard = Guard::new();
    // The walk's own root is never a hole: a walk that can show nothing
    // fails instead.
    let root = store.load_tree(&tree)?;
    guard.loaded(&tree, root.entries.len());
    // One frame per directory being listed; below the first, each frame's
    // directory name is the last name of `prefix`.
    let mut stack = vec![root.entries.into_iter()];
    while let Some(frame) = stack.last_mut() {
        let Some(entry) = frame.next() else {
            stack.pop();
            if !stack.is_empty() {
                prefix.pop();
            }
            continue;
        };
        prefix.push(entry.name.clone());
        guard.visit(prefix)?;
        let descend = visit(prefix, &entry)?;
        match entry.node {
            Node::Dir { tree } if descend => {
                guard.descend(stack.len(), prefix)?;
                let below = load_for_walk(store, &tree, prefix)?;
                guard.loaded(&tree, below.entries.len());
                stack.push(below.entries.into_iter());
            }
            _ => {
                prefix.pop();
            }
        }
    }
    Ok(())
}

/// Walks whatever `path` names: the entry itself, then all below it.
pub fn walk_path(
    store: &dyn TreeStore,
    root: TreeId,
    path: &[Vec<u8>],
    visit: &mut Visitor<'_>,
) -> Result<()> {
    let mut prefix = path.to_vec();
    match find(store, root, path)? {
        Found::Root(id) => walk(store, id, &mut prefix, visit),
        Found::Entry(entry) => {
            visit(&prefix, &entry)?;
            match entry.node {
                Node::Dir { tree } => walk(store, tree, &mut prefix, visit),
                _ => Ok(()),
            }
        }
    }
}

/// Calls `done(id, tree)` once for every distinct tree at and below `root`
/// that is not in `seen`, children before parents, and adds it to `seen`
/// (pass the same set for several roots to handle each tree once in all).
/// Iterative, with the depth limit of [`Guard`]; each tree is loaded once.
pub fn post_order(
    store: &dyn TreeStore,
    root: TreeId,
    seen: &mut HashSet<TreeId>,
    done: &mut dyn FnMut(TreeId, Tree) -> Result<()>,
) -> Result<()> {
    if !seen.insert(root) {
        return Ok(());
    }
    let guard = Guard::new();
    // Each frame: a tree, the index of its next entry to look at, and its
    // name (for error messages).
    let mut stack = vec![(root, store.load_tree(&root)?, 0usize)];
    let mut path: Vec<Vec<u8>> = Vec::new();
    while let Some((_, tree, next)) = stack.last_mut() {
        // Marked seen when pushed: in a DAG (ids are hashes, so no cycles)
        // a tree reached again while on the stack cannot happen, and one
        // reached after it was popped is done.
        let child = tree.entries[*next..].iter().enumerate().find_map(|(i, e)| match e.node {
            Node::Dir { tree } if !seen.contains(&tree) => Some((i, tree, &e.name)),
            _ => None,
        });
        match child {
            Some((offset, id, name)) => {
                path.push(name.clone());
                *next += offset + 1;
                guard.descend(stack.len(), &path)?;
                seen.insert(id);
                let below = store.load_tree(&id)?;
                stack.push((id, below, 0));
            }
            None => {
                if let Some((id, tree, _)) = stack.pop() {
                    path.pop();
                    done(id, tree)?;
                }
            }
        }
    }
    Ok(())
}

/// Everything reachable from a set of root trees.
#[derive(Debug, Default)]
pub struct Reachable {
    /// Trees that loaded.
    pub trees: HashSet<TreeId>,
    /// Chunks those trees name.
    pub chunks: HashSet<ChunkId>,
    /// Trees that failed to load, with the error.
    pub failed: Vec<(TreeId, Error)>,
}

/// Loads every tree reachable from `roots`, each distinct tree once (shared
/// subtrees across snapshots cost nothing extra).
pub fn reachable(store: &dyn TreeStore, roots: impl IntoIterator<Item = TreeId>) -> Reachable {
    let mut out = Reachable::default();
    let mut seen = HashSet::new();
    let mut todo: Vec<TreeId> = roots.into_iter().collect();
    while let Some(id) = todo.pop() {
        if !seen.insert(id) {
            continue;
        }
        // A page lost to damage is one failure; the directory's other pages
        // are still walked, so what they use is known.
        let mut lost = |page: &Page, e| {
            out.failed.push((page.tree, e));
            Ok(())
        };
        match store.load_node_lossy(&id, &mut lost) {
            Ok((tree, pages)) => {
                out.trees.insert(id);
                out.trees.extend(pages);
                for e in tree.entries {
                    match e.node {
                        Node::Dir { tree } => todo.push(tree),
                        Node::File { chunks, .. } => out.chunks.extend(chunks),
                        _ => {}
                    }
                }
            }
            Err(e) => out.failed.push((id, e)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::tree::Metadata;
    use std::collections::HashMap;

    /// Trees in memory.
    #[derive(Default)]
    struct Store(HashMap<TreeId, Tree>);

    impl TreeStore for Store {
        fn load_node(&self, id: &TreeId) -> Result<(Tree, Vec<TreeId>)> {
            let tree = self.0.get(id).cloned().ok_or(Error::NotFound { kind: "tree", id: id.to_hex() })?;
            Ok((tree, Vec::new()))
        }
    }

    impl Store {
        fn add(&mut self, entries: Vec<Entry>) -> TreeId {
            let tree = Tree { entries };
            let id = crate::hash::BlobHasher::Plain.tree_id(&tree.encode());
            self.0.insert(id, tree);
            id
        }
    }

    fn dir(name: &str, tree: TreeId) -> Entry {
        Entry { name: name.into(), node: Node::Dir { tree }, meta: Metadata::default(), sha256: None }
    }

    /// Deeper than a test thread's 2 MiB stack held the old recursion.
    #[test]
    fn a_deep_chain_is_walked_without_recursion() {
        let mut store = Store::default();
        let mut id = store.add(vec![]);
        for _ in 0..30_000 {
            id = store.add(vec![dir("d", id)]);
        }
        let (mut visits, mut deepest) = (0, 0);
        walk(&store, id, &mut Vec::new(), &mut |path, _| {
            visits += 1;
            deepest = deepest.max(path.len());
            Ok(())
        })
        .unwrap();
        assert_eq!((visits, deepest), (30_000, 30_000));
        let mut order = Vec::new();
        post_order(&store, id, &mut HashSet::new(), &mut |id, _| {
            order.push(id);
            Ok(())
        })
        .unwrap();
        assert_eq!((order.len(), order.last()), (30_001, Some(&id)), "each tree once, root last");
    }

    #[test]
    fn depth_and_sharing_are_bounded() {
        let mut store = Store::default();
        let bottom = store.add(vec![]);
        let mut id = bottom;
        for _ in 0..MAX_DEPTH + 1 {
            id = store.add(vec![dir("d", id)]);
        }
        let err = walk(&store, id, &mut Vec::new(), &mut |_, _| Ok(())).unwrap_err();
        assert!(err.to_string().contains("tree deeper than 65536 levels: refused as hostile"), "{err}");
        assert!(!err.proves_damage(), "a deep tree may be whole");
        let err = post_order(&store, id, &mut HashSet::new(), &mut |_, _| Ok(())).unwrap_err();
        assert!(matches!(err, Error::TreeLimit { .. }), "{err}");

        // Each level names the one below twice: 2^40 paths from 80 entries.
        let mut id = bottom;
        for _ in 0..40 {
            id = store.add(vec![dir("a", id), dir("b", id)]);
        }
        let mut visits = 0u64;
        let err = walk(&store, id, &mut Vec::new(), &mut |_, _| {
            visits += 1;
            Ok(())
        })
        .unwrap_err();
        assert!(err.to_string().contains("visit budget exhausted"), "{err}");
        assert_eq!(visits, VISIT_FLOOR, "stopped at the floor (80 distinct entries stored)");

        // Legitimate sharing (one subtree in two places) is walked whole.
        let mut id = bottom;
        for i in 0..100 {
            let name = format!("f{i}");
            id = store.add(vec![dir(&name, id), dir("z", bottom)]);
        }
        let shared = store.add(vec![dir("x", id), dir("y", id)]);
        let mut visits = 0;
        walk(&store, shared, &mut Vec::new(), &mut |_, _| {
            visits += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(visits, 2 + 2 * 200);
    }
}
