//! `snap repair snapshots`: rewrite every snapshot that depends on missing or
//! damaged data so that it is whole again, dropping only what is really lost:
//! a file with a bad chunk is left out, a directory whose node is lost
//! becomes empty (keeping its metadata), everything else stays. The new
//! snapshot is committed before the old one is removed, so a crash leaves one
//! or the other. Each repaired snapshot is tagged `repaired` and records the
//! id it replaces.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::tree::{Node, Tree};
use crate::id::{BlobId, PackId, SnapshotId, TreeId};
use crate::names;
use crate::ops::verify::VerifyReport;
use crate::progress::Progress;
use crate::repo::{BlobWriter, Repository, Unreadable};
use crate::tree;

/// What `repair packs` did (or would do, when `dry_run`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct PackRepairReport {
    pub dry_run: bool,
    /// Packs holding a copy proved damaged, or whose padding envelope or
    /// trailer was:
    /// their intact blobs moved out, then the packs deleted.
    pub packs: Vec<String>,
    /// Intact blobs moved into new packs.
    pub blobs_moved: u64,
    /// Damaged blobs with no intact copy anywhere: lost with the pack
    /// (`repair snapshots` then drops what uses them).
    pub blobs_lost: Vec<String>,
}

/// Moves every intact blob out of the packs where a copy, the padding
/// envelope or the trailer was proved damaged (by verify, restore or prune), then deletes
/// those packs; `repo` must be open exclusively. A blob found damaged only now is marked and
/// stops the run before anything is deleted; the next run leaves it behind.
pub fn repair_packs(repo: &Repository, dry_run: bool, progress: &dyn Progress) -> Result<PackRepairReport> {
    let mut packs = Vec::new();
    for pack in repo.damaged_packs()? {
        if repo.recheck_damaged(&pack)? {
            packs.push(pack);
        }
    }
    let names = packs.iter().map(PackId::to_hex).collect();
    let mut report = PackRepairReport { dry_run, packs: names, ..Default::default() };
    // Every blob is tried, a copy marked damaged too: the pack may hold
    // another copy of it, which only a read of its trailer shows. Those
    // with no intact copy indexed anywhere may be lost with the pack.
    let (mut salvage, mut may_lose) = (HashSet::new(), HashSet::new());
    for pack in &packs {
        let damaged = repo.damaged_in(pack)?;
        for entry in repo.pack_entries(pack)? {
            salvage.insert(entry.blob);
            if !damaged.contains(&entry.blob) {
                report.blobs_moved += 1;
            } else if !repo.contains(&entry.blob)? {
                may_lose.insert(entry.blob);
            }
        }
    }
    if dry_run || packs.is_empty() {
        report.blobs_lost = sorted_names(&may_lose);
        return Ok(report);
    }
    let replaced = repo.replace_packs(&packs, &salvage, &may_lose, progress)?;
    report.blobs_moved = replaced.saved;
    report.blobs_lost = sorted_names(&replaced.lost);
    Ok(report)
}

fn sorted_names(blobs: &HashSet<BlobId>) -> Vec<String> {
    let mut names: Vec<String> = blobs.iter().map(BlobId::to_string).collect();
    names.sort();
    names
}

/// Tag given to snapshots this command rewrote.
pub const REPAIRED_TAG: &str = "repaired";

/// One rewritten snapshot.
#[derive(Clone, Debug, Serialize)]
pub struct Repaired {
    /// The damaged snapshot, now removed.
    pub old: SnapshotId,
    /// Its replacement (none in a dry run, which writes nothing).
    pub new: Option<SnapshotId>,
    /// Paths left out (files) or emptied (directories).
    pub lost: Vec<String>,
}

/// What `repair snapshots` did (or would do, when `dry_run`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct RepairReport {
    pub dry_run: bool,
    pub repaired: Vec<Repaired>,
    /// Snapshot files that do not match their name or do not decode (a torn
    /// write, bit rot), removed: nothing in them can be trusted.
    pub removed_corrupt: Vec<Unreadable>,
}

/// A path below some tree, as names.
type RelPath = Vec<Vec<u8>>;

struct Rewriter<'a> {
    repo: &'a Repository,
    writer: &'a BlobWriter<'a>,
    bad: &'a HashSet<BlobId>,
    /// Compute ids only; store nothing.
    dry_run: bool,
    /// Trees already rewritten: old id -> new id (the same when nothing
    /// below was lost).
    done: HashMap<TreeId, TreeId>,
    /// Trees handled by [`tree::post_order`] so far, in every snapshot.
    seen: HashSet<TreeId>,
}

/// The repository, with every node proved damaged reading as empty: that
/// is what repair makes of it, and such a node cannot be loaded anyway.
struct Repairing<'a> {
    repo: &'a Repository,
    bad: &'a HashSet<BlobId>,
}

impl tree::TreeStore for Repairing<'_> {
    fn load_node(&self, id: &TreeId) -> Result<(Tree, Vec<TreeId>)> {
        if self.bad.contains(&BlobId::Tree(*id)) {
            return Ok(Default::default());
        }
        self.repo.load_node(id)
    }
}

/// Rewrites the snapshots that use any blob `found` proved damaged; `repo`
/// must be open exclusively. `found` comes from `verify` (structural or
/// with data) and must be complete: with anything left unchecked, what is
/// lost is not known, so nothing is changed.
pub fn repair_snapshots(repo: &Repository, found: &VerifyReport, dry_run: bool) -> Result<RepairReport> {
    if let Some(p) = found.unverified.first() {
        return Err(Error::CannotTell(format!(
            "{} object(s) could not be read, so what is lost is unknown (first: {}: {})",
            found.unverified.len(),
            p.object,
            p.detail
        )));
    }
    let bad = &found.damaged;
    let mut report = RepairReport { dry_run, ..RepairReport::default() };
    let list = repo.snapshots()?;
    report.removed_corrupt = remove_corrupt(repo, list.damaged, dry_run)?;
    let snapshots = list.snapshots;
    let (replacements, _, durable) = BlobWriter::write(repo, |writer| {
        let mut rw = Rewriter { repo, writer, bad, dry_run, done: HashMap::new(), seen: HashSet::new() };
        let mut replacements = Vec::new();
        for (id, snap) in snapshots {
            let (root, lost) = rw.tree(snap.tree)?;
            if lost.is_empty() {
                continue;
            }
            let mut new = snap.clone();
            new.tree = root;
            if !new.tags.iter().any(|t| t == REPAIRED_TAG) {
                new.tags.push(REPAIRED_TAG.to_owned());
            }
            new.extra.insert("repaired_from".to_owned(), id.to_hex());
            let lost = lost.iter().map(|p| names::display_components(p)).collect();
            replacements.push((id, new, lost));
        }
        Ok(replacements)
    })?;
    if dry_run {
        report.repaired =
            replacements.into_iter().map(|(old, _, lost)| Repaired { old, new: None, lost }).collect();
        return Ok(report);
    }
    for (old, mut new, lost) in replacements {
        recount(repo, &mut new)?;
        let new = durable.save_snapshot(&new)?;
        repo.forget(&[old])?;
        report.repaired.push(Repaired { old, new: Some(new), lost });
    }
    Ok(report)
}

/// Removes the snapshot files among `damaged` that are proved corrupt, on
/// a second reading too.
fn remove_corrupt(repo: &Repository, damaged: Vec<Unreadable>, dry_run: bool) -> Result<Vec<Unreadable>> {
    let mut removed = Vec::new();
    for d in damaged.into_iter().filter(|d| d.damaged) {
        if repo.remove_corrupt_snapshot(&d.name, dry_run)? {
            removed.push(d);
        }
    }
    Ok(removed)
}

/// Sets the snapshot's file, directory and byte counts to what its (new)
/// tree holds.
fn recount(repo: &Repository, snap: &mut crate::format::snapshot::Snapshot) -> Result<()> {
    let s = &mut snap.summary;
    (s.files, s.dirs, s.others, s.bytes) = (0, 0, 0, 0);
    tree::walk(repo, snap.tree, &mut Vec::new(), &mut |_, e| {
        match e.node {
            Node::File { size, .. } => {
                s.files += 1;
                s.bytes = s.bytes.saturating_add(size);
            }
            Node::Dir { .. } => s.dirs += 1,
            _ => s.others += 1,
        }
        Ok(())
    })
}

impl Rewriter<'_> {
    /// The repaired version of a tree and the paths (relative to it) lost.
    /// Each distinct tree is rewritten once, children first (iteratively:
    /// no depth overflows the stack); the lost paths are then found by a
    /// walk of the old tree that enters only the subtrees that changed,
    /// so a DAG naming a damaged subtree 2^64 times stops at the walk's
    /// visit budget instead of listing them all.
    fn tree(&mut self, id: TreeId) -> Result<(TreeId, Vec<RelPath>)> {
        let store = Repairing { repo: self.repo, bad: self.bad };
        let mut seen = std::mem::take(&mut self.seen);
        let rewritten = tree::post_order(&store, id, &mut seen, &mut |old, tree| {
            let new = self.rewrite(old, tree)?;
            self.done.insert(old, new);
            Ok(())
        });
        self.seen = seen;
        rewritten?;
        let new = self.mapped(&id)?;
        if self.bad.contains(&BlobId::Tree(id)) {
            return Ok((new, vec![vec![]]));
        }
        let mut lost = Vec::new();
        if new != id {
            let (bad, done) = (self.bad, &self.done);
            tree::walk_pruned(&store, id, &mut Vec::new(), &mut |path, entry| {
                Ok(match &entry.node {
                    Node::File { chunks, .. } if chunks.iter().any(|c| bad.contains(&BlobId::Chunk(*c))) => {
                        lost.push(path.to_vec());
                        false
                    }
                    Node::Dir { tree } if bad.contains(&BlobId::Tree(*tree)) => {
                        lost.push(path.to_vec());
                        false
                    }
                    Node::Dir { tree } => done.get(tree) != Some(tree),
                    _ => false,
                })
            })?;
        }
        Ok((new, lost))
    }

    /// The new id of a tree already rewritten.
    fn mapped(&self, id: &TreeId) -> Result<TreeId> {
        self.done.get(id).copied().ok_or_else(|| Error::NotFound { kind: "rewritten tree", id: id.to_hex() })
    }

    /// One node with its files that lost chunks left out and its
    /// subdirectories replaced by their rewritten versions (a damaged node
    /// reads as empty, see [`Repairing`]).
    fn rewrite(&self, id: TreeId, tree: Tree) -> Result<TreeId> {
        if self.bad.contains(&BlobId::Tree(id)) {
            return self.store(Tree::default());
        }
        let mut changed = false;
        let mut entries = Vec::with_capacity(tree.entries.len());
        for mut entry in tree.entries {
            match &mut entry.node {
                Node::File { chunks, .. } if chunks.iter().any(|c| self.bad.contains(&BlobId::Chunk(*c))) => {
                    changed = true;
                    continue;
                }
                Node::Dir { tree } => {
                    let new = self.mapped(tree)?;
                    changed |= new != *tree;
                    *tree = new;
                }
                _ => {}
            }
            entries.push(entry);
        }
        if changed { self.store(Tree { entries }) } else { Ok(id) }
    }

    fn store(&self, tree: Tree) -> Result<TreeId> {
        if self.dry_run {
            return Ok(crate::repo::tree_id(self.repo, &tree));
        }
        self.writer.save_tree(&tree)
    }
}
