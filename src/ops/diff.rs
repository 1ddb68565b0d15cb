//! `snap diff A B`: what changed between two snapshots. Two trees are walked
//! side by side in name order, and a subtree whose id is the same on both
//! sides is skipped without being loaded, so the cost follows the size of
//! the change, not the size of the snapshots.

use std::collections::HashSet;
use std::path::Path;

use serde::Serialize;

use super::Warning;
use crate::error::Result;
use crate::format::tree::{Entry, Metadata, Node, Tree};
use crate::id::{BlobId, ChunkId, TreeId};
use crate::names;
use crate::repo::Repository;
use crate::tree::{self, Found, Guard};

/// How one path changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// `+`: only in the second snapshot.
    Added,
    /// `-`: only in the first.
    Removed,
    /// `M`: contents (or symlink target, or device number) differ.
    Modified,
    /// `T`: the type differs (file became a symlink, ...).
    TypeChanged,
    /// `m`: only metadata differs (mode, owner, mtime, xattrs, link count).
    Metadata,
}

impl Change {
    /// The one-character marker shown before the path.
    pub fn marker(self) -> char {
        match self {
            Change::Added => '+',
            Change::Removed => '-',
            Change::Modified => 'M',
            Change::TypeChanged => 'T',
            Change::Metadata => 'm',
        }
    }
}

/// One changed path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DiffLine {
    /// What happened.
    pub change: Change,
    /// Path inside the snapshots, escaped; directories end in `/`.
    pub path: String,
}

/// Totals of a diff.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DiffSummary {
    pub added: u64,
    pub removed: u64,
    pub modified: u64,
    pub type_changed: u64,
    pub metadata: u64,
    /// Bytes of file data only in the second snapshot (new chunks).
    pub bytes_added: u64,
    /// Bytes of file data only in the first snapshot.
    pub bytes_removed: u64,
}

/// The changes in path order, and their totals.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DiffReport {
    pub changes: Vec<DiffLine>,
    pub summary: DiffSummary,
    /// Directories whose node is damaged or missing on either side:
    /// nothing below them is compared.
    pub warnings: Vec<Warning>,
}

struct Differ<'a> {
    repo: &'a Repository,
    report: DiffReport,
    guard: Guard,
}

/// Two directories being merged by name: the entries of each side and the
/// position in each.
struct Frame {
    a: Vec<Entry>,
    b: Vec<Entry>,
    i: usize,
    j: usize,
}

/// The two subtrees (either may be absent) a changed entry leads into.
type Below = Option<(Option<TreeId>, Option<TreeId>)>;

/// Compares two root trees, optionally only below `path`.
pub fn diff(repo: &Repository, a: TreeId, b: TreeId, path: Option<&Path>) -> Result<DiffReport> {
    let mut d = Differ { repo, report: DiffReport::default(), guard: Guard::new() };
    let prefix = names::split_optional_path(path)?;
    let left = find_optional(repo, a, &prefix)?;
    let right = find_optional(repo, b, &prefix)?;
    match (left, right) {
        (Some(Found::Root(x)), Some(Found::Root(y))) => {
            d.run(&mut prefix.clone(), Some((Some(x), Some(y))))?
        }
        (l, r) => {
            let below = d.entries(&prefix, as_entry(l).as_ref(), as_entry(r).as_ref())?;
            d.run(&mut prefix.clone(), below)?
        }
    }
    Ok(d.report)
}

/// The entry at `path`, or `None` when one snapshot lacks it.
fn find_optional(repo: &Repository, root: TreeId, path: &[Vec<u8>]) -> Result<Option<Found>> {
    match tree::find(repo, root, path) {
        Ok(found) => Ok(Some(found)),
        Err(crate::Error::NotFound { kind: "path", .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

fn as_entry(found: Option<Found>) -> Option<Entry> {
    match found? {
        Found::Entry(e) => Some(e),
        Found::Root(tree) => Some(Entry {
            name: Vec::new(),
            node: Node::Dir { tree },
            meta: Metadata::default(),
            sha256: None,
        }),
    }
}

impl Differ<'_> {
    fn load(&self, id: Option<TreeId>) -> Result<Tree> {
        id.map_or_else(|| Ok(Tree::default()), |id| self.repo.load_tree(&id))
    }

    /// Loads the two sides of a pair of subtrees (at `path`) into a frame;
    /// `None` when they are the same tree (nothing below differs, nothing
    /// is loaded), or, below the diff's own root (`hole_ok`), when a side
    /// is damaged: that directory is named, and nothing below it compared
    /// (an empty side would show as all added or removed).
    fn open(
        &mut self,
        path: &[Vec<u8>],
        a: Option<TreeId>,
        b: Option<TreeId>,
        hole_ok: bool,
    ) -> Result<Option<Frame>> {
        if a == b {
            return Ok(None);
        }
        let (ta, tb) = match (self.load(a), self.load(b)) {
            (Ok(ta), Ok(tb)) => (ta, tb),
            (Err(e), _) | (_, Err(e)) if hole_ok && e.proves_damage() => {
                let hole = crate::tree::Hole { path: path.to_vec(), page: None, error: e };
                self.report.warnings.push(super::hole_warning(&hole, Path::new("/"), "compared"));
                return Ok(None);
            }
            (Err(e), _) | (_, Err(e)) => return Err(e),
        };
        for (id, t) in [(a, &ta), (b, &tb)] {
            if let Some(id) = id {
                self.guard.loaded(&id, t.entries.len());
            }
        }
        Ok(Some(Frame { a: ta.entries, b: tb.entries, i: 0, j: 0 }))
    }

    /// Merges the directories of `start` (and everything below them that
    /// differs) by name, depth first in path order. Iterative, one frame
    /// per directory level, with the limits of [`Guard`]; `path` is the
    /// path of `start`.
    fn run(&mut self, path: &mut Vec<Vec<u8>>, start: Below) -> Result<()> {
        let Some((a, b)) = start else { return Ok(()) };
        let mut stack: Vec<Frame> = self.open(path, a, b, false)?.into_iter().collect();
        while let Some(f) = stack.last_mut() {
            let (ea, eb) = (f.a.get(f.i), f.b.get(f.j));
            let order = match (ea, eb) {
                (Some(x), Some(y)) => x.name.cmp(&y.name),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => {
                    stack.pop();
                    if !stack.is_empty() {
                        path.pop();
                    }
                    continue;
                }
            };
            let (left, right) = match order {
                std::cmp::Ordering::Less => (ea.cloned(), None),
                std::cmp::Ordering::Greater => (None, eb.cloned()),
                std::cmp::Ordering::Equal => (ea.cloned(), eb.cloned()),
            };
            f.i += usize::from(left.is_some());
            f.j += usize::from(right.is_some());
            let name = left.as_ref().or(right.as_ref()).map(|e| e.name.clone()).unwrap_or_default();
            path.push(name);
            self.guard.visit(path)?;
            let below = self.entries(path, left.as_ref(), right.as_ref())?;
            let frame = match below {
                Some((x, y)) => {
                    self.guard.descend(stack.len(), path)?;
                    self.open(path, x, y, true)?
                }
                None => None,
            };
            match frame {
                Some(frame) => stack.push(frame),
                None => {
                    path.pop();
                }
            }
        }
        Ok(())
    }

    /// Reports how one path changed; returns the subtrees to merge below it.
    fn entries(&mut self, path: &[Vec<u8>], a: Option<&Entry>, b: Option<&Entry>) -> Result<Below> {
        match (a, b) {
            (None, None) => Ok(None),
            (Some(a), None) => Ok(self.whole(path, a, Change::Removed)),
            (None, Some(b)) => Ok(self.whole(path, b, Change::Added)),
            (Some(a), Some(b)) if a.node.type_char() != b.node.type_char() => {
                self.push(path, b, Change::TypeChanged);
                self.data_delta(a, b)?;
                // Types differ, so at most one side is a directory.
                Ok(children(a, Change::Removed).or_else(|| children(b, Change::Added)))
            }
            (Some(a), Some(b)) => {
                if content_differs(&a.node, &b.node) {
                    self.push(path, b, Change::Modified);
                    self.data_delta(a, b)?;
                } else if metadata_differs(&a.meta, &b.meta) {
                    self.push(path, b, Change::Metadata);
                }
                Ok(match (&a.node, &b.node) {
                    (Node::Dir { tree: x }, Node::Dir { tree: y }) => Some((Some(*x), Some(*y))),
                    _ => None,
                })
            }
        }
    }

    /// An entry that exists on one side only; everything below it follows.
    fn whole(&mut self, path: &[Vec<u8>], e: &Entry, change: Change) -> Below {
        self.push(path, e, change);
        if let Node::File { size, .. } = e.node {
            self.count_bytes(change, size);
        }
        children(e, change)
    }

    fn count_bytes(&mut self, change: Change, bytes: u64) {
        match change {
            Change::Added => {
                self.report.summary.bytes_added = self.report.summary.bytes_added.saturating_add(bytes)
            }
            _ => self.report.summary.bytes_removed = self.report.summary.bytes_removed.saturating_add(bytes),
        }
    }

    /// Bytes in chunks only one of two versions of a path has.
    fn data_delta(&mut self, a: &Entry, b: &Entry) -> Result<()> {
        let (ca, cb) = (chunks(&a.node), chunks(&b.node));
        let removed = self.chunk_bytes(ca.difference(&cb))?;
        let added = self.chunk_bytes(cb.difference(&ca))?;
        self.report.summary.bytes_removed += removed;
        self.report.summary.bytes_added += added;
        Ok(())
    }

    fn chunk_bytes<'c>(&self, ids: impl Iterator<Item = &'c ChunkId>) -> Result<u64> {
        let mut total = 0;
        for id in ids {
            total += self.repo.locate(&BlobId::Chunk(*id)).map_or(0, |loc| u64::from(loc.entry.raw_len));
        }
        Ok(total)
    }

    fn push(&mut self, path: &[Vec<u8>], e: &Entry, change: Change) {
        let mut shown = names::display_components(path);
        if matches!(e.node, Node::Dir { .. }) {
            shown.push('/');
        }
        let s = &mut self.report.summary;
        match change {
            Change::Added => s.added += 1,
            Change::Removed => s.removed += 1,
            Change::Modified => s.modified += 1,
            Change::TypeChanged => s.type_changed += 1,
            Change::Metadata => s.metadata += 1,
        }
        self.report.changes.push(DiffLine { change, path: shown });
    }
}

/// The subtree of a directory that is only on one side, as a pair.
fn children(e: &Entry, change: Change) -> Below {
    let Node::Dir { tree } = e.node else { return None };
    Some(if change == Change::Added { (None, Some(tree)) } else { (Some(tree), None) })
}

fn chunks(node: &Node) -> HashSet<ChunkId> {
    match node {
        Node::File { chunks, .. } => chunks.iter().copied().collect(),
        _ => HashSet::new(),
    }
}

fn content_differs(a: &Node, b: &Node) -> bool {
    match (a, b) {
        (Node::File { size: sa, chunks: ca }, Node::File { size: sb, chunks: cb }) => sa != sb || ca != cb,
        (Node::Dir { .. }, Node::Dir { .. }) => false,
        _ => a != b,
    }
}

/// Metadata a user can see and restore; ctime, inode and device are
/// bookkeeping for change detection and do not count.
fn metadata_differs(a: &Metadata, b: &Metadata) -> bool {
    (a.mode, a.uid, a.gid, a.mtime, a.nlink, &a.xattrs) != (b.mode, b.uid, b.gid, b.mtime, b.nlink, &b.xattrs)
}
