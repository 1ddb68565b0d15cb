//! Reading the snapshot Merkle tree: find the entry at a path, and walk a
//! subtree depth first in name order. Works through [`TreeStore`], so it
//! knows nothing about packs or the index.

use crate::error::{Error, Result};
use crate::format::tree::{Entry, Node, Tree};
use std::collections::HashSet;

use crate::id::{ChunkId, TreeId};
use crate::names;

/// Anything that can load directory nodes by id.
pub trait TreeStore: Sync {
    /// Loads and validates one node.
    fn load_tree(&self, id: &TreeId) -> Result<Tree>;
}

impl TreeStore for crate::repo::Repository {
    fn load_tree(&self, id: &TreeId) -> Result<Tree> {
        crate::repo::Repository::load_tree(self, id)
    }
}

/// Called with the path (names from the root) and entry of each visited entry.
pub type Visitor<'a> = dyn FnMut(&[Vec<u8>], &Entry) -> Result<()> + 'a;

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

/// Calls `visit(path, entry)` for every entry below `tree`, parents before
/// children, siblings in name order. `prefix` is the path of `tree`.
pub fn walk(
    store: &dyn TreeStore,
    tree: TreeId,
    prefix: &mut Vec<Vec<u8>>,
    visit: &mut Visitor<'_>,
) -> Result<()> {
    for entry in store.load_tree(&tree)?.entries {
        prefix.push(entry.name.clone());
        visit(prefix, &entry)?;
        if let Node::Dir { tree } = entry.node {
            walk(store, tree, prefix, visit)?;
        }
        prefix.pop();
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
        match store.load_tree(&id) {
            Ok(tree) => {
                out.trees.insert(id);
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
