//! `snap copy`: snapshots from one repository into another, storing only
//! what the destination lacks. When both repositories name blobs the same
//! way (both unencrypted), blobs move as they are and a subtree the
//! destination already holds is skipped whole. Otherwise (either side
//! encrypted, so ids are keyed differently) every file is re-read from the
//! source and cut with the destination's own chunker, so it deduplicates
//! against the destination's own backups. Either way nothing is visible in
//! the destination until every blob is durable, and then each snapshot file
//! is written: the same commit order as a backup.

use std::collections::{HashMap, HashSet};

use std::sync::Mutex;

use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::snapshot::Snapshot;
use crate::format::tree::{Node, Tree};
use crate::hash::BlobHasher;
use crate::id::{BlobId, SnapshotId, TreeId};
use crate::progress::Progress;
use crate::repo::ReadError;
use crate::repo::{BlobWriter, Repository};

/// The `extra` key naming the original snapshot a copy descends from (kept
/// through copies of copies, so any two copies of one backup are known to
/// be the same, whichever way they travelled).
pub const COPIED_FROM: &str = "copied_from";

/// One snapshot copied.
#[derive(Clone, Debug, Serialize)]
pub struct Copied {
    /// In the source.
    pub source: SnapshotId,
    /// The new snapshot in the destination.
    pub target: SnapshotId,
}

/// One snapshot the destination already had.
#[derive(Clone, Debug, Serialize)]
pub struct AlreadyThere {
    /// In the source.
    pub source: SnapshotId,
    /// Its copy (or original) in the destination.
    pub target: SnapshotId,
}

/// One snapshot that could not be copied: part of it is damaged or
/// missing in the source (a copy would not be whole).
#[derive(Clone, Debug, Serialize)]
pub struct NotCopied {
    /// In the source.
    pub source: SnapshotId,
    /// What is damaged.
    pub error: String,
}

/// What a copy did.
#[derive(Clone, Debug, Serialize)]
pub struct CopyReport {
    /// Snapshots written to the destination.
    pub copied: Vec<Copied>,
    /// Snapshots skipped because the destination has them.
    pub already_there: Vec<AlreadyThere>,
    /// Snapshots left in the source because part of them is damaged.
    pub not_copied: Vec<NotCopied>,
    /// Whether file contents were re-chunked (the repositories name blobs differently).
    pub rechunked: bool,
    /// Blobs new to the destination.
    pub new_blobs: u64,
    /// Their raw bytes.
    pub new_bytes: u64,
    /// Their stored bytes.
    pub new_stored_bytes: u64,
    /// Packs written to the destination.
    pub packs_written: u64,
}

struct Ctx<'a> {
    src: &'a Repository,
    writer: &'a BlobWriter<'a>,
    rechunk: bool,
    /// Source tree id -> destination tree id, for subtrees shared between
    /// the snapshots of one run.
    done: Mutex<HashMap<TreeId, TreeId>>,
    progress: &'a dyn Progress,
}

/// Copies the `wanted` snapshots (all when empty) of `src` into `dst`.
pub fn copy(
    src: &Repository,
    dst: &Repository,
    wanted: &[SnapshotId],
    progress: &dyn Progress,
) -> Result<CopyReport> {
    if src.config().id == dst.config().id {
        return Err(Error::InvalidInput("source and destination are the same repository".into()));
    }
    let source = src.snapshots()?;
    if let Some(bad) = source.damaged.first() {
        let object = format!("snapshot {}", bad.name);
        return Err(if bad.damaged {
            Error::corrupt(object, &bad.error)
        } else {
            Error::CannotTell(format!("{object} of the source could not be read ({})", bad.error))
        });
    }
    let existing = dst.snapshots()?.snapshots;
    let mut todo = Vec::new();
    let mut already_there = Vec::new();
    for (id, snap) in source.snapshots {
        if !wanted.is_empty() && !wanted.contains(&id) {
            continue;
        }
        match find_copy(&existing, &id, &snap) {
            Some(target) => already_there.push(AlreadyThere { source: id, target }),
            None => todo.push((id, snap)),
        }
    }
    let rechunk =
        !matches!((src.keys().hasher(), dst.keys().hasher()), (BlobHasher::Plain, BlobHasher::Plain));
    progress.begin("copy", None);
    let ((prepared, not_copied), written, durable) = BlobWriter::write(dst, |writer| {
        let ctx = Ctx { src, writer, rechunk, done: Mutex::new(HashMap::new()), progress };
        let mut prepared = Vec::with_capacity(todo.len());
        let mut not_copied = Vec::new();
        let mut seen = HashSet::new();
        for (id, snap) in todo {
            let tree = match copy_tree(&ctx, &mut seen, snap.tree) {
                Ok(tree) => tree,
                // Proved damage leaves this snapshot out, named; the others
                // are copied. Trees it began but did not finish are not
                // seen, so a later snapshot sharing one copies it itself.
                Err(e) if e.proves_damage() => {
                    seen.retain(|t| lock(&ctx.done).contains_key(t));
                    not_copied.push(NotCopied { source: id, error: e.to_string() });
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut copy = Snapshot { tree, parent: None, ..snap };
            copy.extra.entry(COPIED_FROM.to_owned()).or_insert_with(|| id.to_hex());
            prepared.push((id, copy));
        }
        Ok((prepared, not_copied))
    })?;
    progress.end();
    // Every blob is durable and indexed: now the snapshots may name them.
    let mut copied = Vec::with_capacity(prepared.len());
    for (source, snap) in prepared {
        copied.push(Copied { source, target: durable.save_snapshot(&snap)? });
    }
    Ok(CopyReport {
        copied,
        already_there,
        not_copied,
        rechunked: rechunk,
        new_blobs: written.blobs,
        new_bytes: written.raw_bytes,
        new_stored_bytes: written.stored_bytes,
        packs_written: written.packs.len() as u64,
    })
}

/// The original a snapshot descends from: itself, unless it is a copy.
fn origin(id: &SnapshotId, snap: &Snapshot) -> String {
    snap.extra.get(COPIED_FROM).cloned().unwrap_or_else(|| id.to_hex())
}

/// The destination snapshot that is `id` already: one with the same origin.
fn find_copy(existing: &[(SnapshotId, Snapshot)], id: &SnapshotId, snap: &Snapshot) -> Option<SnapshotId> {
    let wanted = origin(id, snap);
    existing.iter().find(|(d, s)| origin(d, s) == wanted).map(|(d, _)| *d)
}

/// Copies every tree at and below `root` not in `seen` (trees of earlier
/// snapshots of this run), children before parents, and returns the
/// destination id of `root`. The walk is iterative (no depth overflows the
/// stack) and handles each distinct tree once, so a DAG costs its size;
/// the entries of one node are copied in parallel.
fn copy_tree(ctx: &Ctx, seen: &mut HashSet<TreeId>, root: TreeId) -> Result<TreeId> {
    let store = Keeping { src: ctx.src, raw: Mutex::default() };
    crate::tree::post_order(&store, root, seen, &mut |id, tree| {
        let new = if ctx.rechunk {
            rechunk_tree(ctx, tree)?
        } else {
            let raw = lock(&store.raw)
                .remove(&id)
                .ok_or_else(|| Error::NotFound { kind: "tree bytes", id: id.to_hex() })?;
            move_tree(ctx, id, &tree, &raw)?
        };
        lock(&ctx.done).insert(id, new);
        Ok(())
    })?;
    copied(ctx, &root)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The destination id of a source tree already copied.
fn copied(ctx: &Ctx, id: &TreeId) -> Result<TreeId> {
    lock(&ctx.done).get(id).copied().ok_or_else(|| Error::NotFound { kind: "copied tree", id: id.to_hex() })
}

/// The source, keeping the exact bytes of each tree loaded until it is
/// copied (its pages, then its node): blobs move as they were stored,
/// never re-encoded.
struct Keeping<'a> {
    src: &'a Repository,
    raw: Mutex<HashMap<TreeId, Vec<Blob>>>,
}

/// A tree blob as read: its id and its exact bytes.
type Blob = (TreeId, Vec<u8>);

impl crate::tree::TreeStore for Keeping<'_> {
    fn load_node(&self, id: &TreeId) -> Result<(Tree, Vec<TreeId>)> {
        let mut blobs = Vec::new();
        let tree = self.src.load_tree_parts(id, &mut |part, bytes| blobs.push((part, bytes)))?;
        let pages = blobs[..blobs.len() - 1].iter().map(|(page, _)| *page).collect();
        lock(&self.raw).insert(*id, blobs);
        Ok((tree, pages))
    }
}

/// Same ids on both sides: blobs move as they are. A tree the destination
/// has is walked all the same: trees and chunks live in different packs,
/// so a lost pack or a failed backup can leave a tree without its chunks,
/// and only the index (cheap to ask) knows which are there.
fn move_tree(ctx: &Ctx, id: TreeId, tree: &Tree, blobs: &[Blob]) -> Result<TreeId> {
    tree.entries.par_iter().try_for_each(|entry| -> Result<()> {
        match &entry.node {
            Node::File { size, chunks } => {
                for chunk in chunks {
                    let blob = BlobId::Chunk(*chunk);
                    if !ctx.writer.is_known(&blob)? {
                        ctx.writer.save(blob, &ctx.src.read_blob(&blob)?)?;
                    }
                }
                ctx.progress.advance(1, *size);
                Ok(())
            }
            // Copied before this node (children first).
            _ => Ok(()),
        }
    })?;
    // Pages before the node that names them.
    for (part, raw) in blobs {
        ctx.writer.save(BlobId::Tree(*part), raw)?;
    }
    Ok(id)
}

/// Different ids: every file is re-read and re-cut, every node rebuilt.
fn rechunk_tree(ctx: &Ctx, tree: Tree) -> Result<TreeId> {
    let entries = tree
        .entries
        .into_par_iter()
        .map(|mut entry| {
            entry.node = match entry.node {
                Node::File { size, chunks } => {
                    // The reader checks that the chunks add up to `size`.
                    let mut reader = ctx.src.file_reader(&chunks, size);
                    let stored =
                        ctx.writer.store_contents(&mut reader, size, false).map_err(|e| match e {
                            ReadError::Repo(e) => e,
                            ReadError::Source(io) => reader.take_error().unwrap_or_else(|| {
                                Error::InvalidInput(format!(
                                    "copy: reading a file from the source repository: {io}"
                                ))
                            }),
                        })?;
                    ctx.progress.advance(1, size);
                    Node::File { size, chunks: stored.chunks }
                }
                Node::Dir { tree } => Node::Dir { tree: copied(ctx, &tree)? },
                other => other,
            };
            Ok(entry)
        })
        .collect::<Result<Vec<_>>>()?;
    ctx.writer.save_tree(&Tree { entries })
}
