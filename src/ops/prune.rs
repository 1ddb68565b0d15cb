//! `snap forget` and `snap prune`: drop snapshots, then give their space
//! back. Prune runs under the exclusive lock, refuses to touch a repository
//! it cannot fully read, and orders its steps so a crash at any point loses
//! nothing that a kept snapshot needs:
//!
//! 1. decide (policy) and check: every kept snapshot's trees load and every
//!    chunk they name is indexed, or prune stops before changing anything;
//! 2. sweep staging files left by interrupted writes, and remove the
//!    forgotten snapshot files (their data is now garbage);
//! 3. delete the packs no kept snapshot uses (and forget the records of
//!    packs that vanished from storage);
//! 4. copy the live blobs out of mostly-unused packs into new packs, made
//!    durable and indexed before anything old goes, then delete the old.
//!
//! Space is given back before anything is written, so prune can run on a
//! full disk: steps 2 and 3 only delete, and a pack's file goes before its
//! index rows (the index needs room to write). A crash between the two
//! leaves rows of a vanished pack, which the next open marks missing and the
//! next prune forgets; none of them held a blob a kept snapshot needs.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::policy::{self, Decision, KeepPolicy};
use crate::error::{Error, Result};
use crate::format::pack::PackEntry;
use crate::id::{BlobId, PackId, SnapshotId};
use crate::progress::Progress;
use crate::repo::Repository;
use crate::tree;

/// Default share of unused bytes above which a pack is repacked.
pub const DEFAULT_REPACK_PERCENT: u8 = 50;

/// What prune should do.
#[derive(Clone, Debug)]
pub struct PruneOptions {
    /// Which snapshots to keep (empty: all).
    pub policy: KeepPolicy,
    /// Only report what would happen.
    pub dry_run: bool,
    /// Repack packs with at least this share (percent) of unused bytes.
    pub repack_percent: u8,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions { policy: KeepPolicy::default(), dry_run: false, repack_percent: DEFAULT_REPACK_PERCENT }
    }
}

/// What prune did (or, with `dry_run`, would do).
#[derive(Clone, Debug, Default, Serialize)]
pub struct PruneReport {
    pub dry_run: bool,
    /// The verdict on every snapshot, newest first.
    pub decisions: Vec<Decision>,
    pub snapshots_removed: u64,
    /// Packs with no used blob, deleted.
    pub packs_deleted: u64,
    /// Mostly unused packs whose live blobs were moved, then deleted.
    pub packs_repacked: u64,
    /// New packs written by repacking.
    pub packs_written: u64,
    /// Bytes of packs before and after.
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// Staging files of interrupted runs removed.
    pub leftovers_removed: u64,
    /// Index records of packs that had vanished from storage, removed.
    pub missing_packs_forgotten: u64,
}

impl PruneReport {
    /// Bytes given back.
    pub fn bytes_freed(&self) -> u64 {
        self.bytes_before.saturating_sub(self.bytes_after)
    }
}

/// How each pack is treated.
struct PackPlan {
    delete: Vec<PackId>,
    repack: Vec<PackId>,
    /// Sizes of all packs.
    sizes: HashMap<PackId, u64>,
}

/// Applies the policy and frees space. `repo` must be open exclusively.
pub fn prune(repo: &Repository, opts: &PruneOptions, progress: &dyn Progress) -> Result<PruneReport> {
    let list = repo.snapshots()?;
    if let Some(d) = list.damaged.first() {
        return Err(refuse(format!("snapshot {} cannot be read ({})", d.name, d.error), d.damaged));
    }
    let decisions = policy::apply(&opts.policy, &list.snapshots);
    let keep: HashSet<SnapshotId> = decisions.iter().filter(|d| d.keep).map(|d| d.id).collect();
    if keep.len() < decisions.len() {
        refuse_future_dated(&list.snapshots)?;
    }
    let kept_roots = list.snapshots.iter().filter(|(id, _)| keep.contains(id)).map(|(_, s)| s.tree);
    let live = live_blobs(repo, kept_roots)?;
    let plan = plan_packs(repo, &live, opts.repack_percent)?;
    let mut report = PruneReport {
        dry_run: opts.dry_run,
        snapshots_removed: (decisions.len() - keep.len()) as u64,
        packs_deleted: plan.delete.len() as u64,
        packs_repacked: plan.repack.len() as u64,
        bytes_before: plan.sizes.values().sum(),
        decisions,
        ..PruneReport::default()
    };
    let gone: u64 = plan.delete.iter().chain(&plan.repack).map(|p| plan.sizes[p]).sum();
    report.bytes_after = report.bytes_before - gone;
    if opts.dry_run {
        return Ok(report);
    }
    repo.check_lock()?;
    report.leftovers_removed = repo.sync_report().leftovers_removed + repo.remove_leftovers()?;
    let forgotten: Vec<SnapshotId> = report.decisions.iter().filter(|d| !d.keep).map(|d| d.id).collect();
    repo.forget(&forgotten)?;
    crate::crash::point("prune-after-forget");
    // Records of packs gone from storage go too (with any truncated file
    // left under their name): the checks above proved nothing needs them.
    let missing = repo.missing_packs()?;
    report.missing_packs_forgotten = missing.len() as u64;
    let unused: Vec<PackId> = plan.delete.iter().chain(&missing).copied().collect();
    repo.drop_packs(&unused, &live)?;
    let written = repo.replace_packs(&plan.repack, &live, progress)?;
    report.packs_written = written.len() as u64;
    report.bytes_after += written.iter().map(|(_, size)| size).sum::<u64>();
    Ok(report)
}

/// Prune's refusal to go on: damage proved needs the user (`verify`, then
/// `repair`); anything else may be gone on the next try.
fn refuse(why: String, proved: bool) -> Error {
    if proved {
        Error::InvalidInput(format!("prune refused, nothing was changed: {why}; run `snap verify`"))
    } else {
        Error::CannotTell(format!("prune stopped: {why}"))
    }
}

/// Keep rules would count a snapshot dated in the future as the newest of
/// its group; forgetting by such a count could cost every real snapshot.
fn refuse_future_dated(snapshots: &[(SnapshotId, crate::format::snapshot::Snapshot)]) -> Result<()> {
    let now = chrono::Utc::now();
    let Some((id, s)) = policy::future_dated(snapshots, now.timestamp()) else { return Ok(()) };
    let when = chrono::DateTime::from_timestamp(s.time.secs, 0)
        .map_or_else(|| format!("{} seconds after 1970", s.time.secs), |t| t.to_rfc3339());
    Err(Error::InvalidInput(format!(
        "prune refused, nothing was changed: snapshot {} is dated {when}, more than a day after this \
         machine's clock ({}), and keep rules would count it as the newest of its group; correct whichever \
         clock is wrong, or forget that snapshot by id (`snap forget {}`)",
        id.short(),
        now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        id.short()
    )))
}

/// The blobs kept snapshots need; any gap stops prune.
fn live_blobs(
    repo: &Repository,
    roots: impl IntoIterator<Item = crate::id::TreeId>,
) -> Result<HashSet<BlobId>> {
    let reach = tree::reachable(repo, roots);
    if let Some((id, e)) = reach.failed.first() {
        return Err(refuse(format!("tree {id} cannot be read ({})", e.detail()), e.proves_damage()));
    }
    let chunks: Vec<BlobId> = reach.chunks.into_iter().map(BlobId::Chunk).collect();
    let indexed = repo.contains_many(chunks.iter().copied())?;
    if let Some(blob) = chunks.iter().find(|b| !indexed.contains(b)) {
        let proved = repo.absent(blob).proves_damage();
        return Err(refuse(format!("{blob} is missing"), proved));
    }
    let mut live: HashSet<BlobId> = reach.trees.into_iter().map(BlobId::Tree).collect();
    live.extend(chunks);
    Ok(live)
}

fn plan_packs(repo: &Repository, live: &HashSet<BlobId>, repack_percent: u8) -> Result<PackPlan> {
    let sizes = repo.packs()?;
    let mut plan = PackPlan { delete: Vec::new(), repack: Vec::new(), sizes };
    for (id, size) in &plan.sizes {
        let entries = repo.pack_entries(id)?;
        let (live_entries, dead_entries): (Vec<&PackEntry>, Vec<&PackEntry>) =
            entries.iter().partition(|e| live.contains(&e.blob));
        // Only the bytes of unused blobs count: header and trailer are not
        // garbage, and a pack without unused blobs would repack to itself.
        let unused: u64 = dead_entries.iter().map(|e| u64::from(e.stored_len)).sum();
        // A pack always holds a blob: one without rows was dropped from the
        // index, not emptied, and what it holds is unknown.
        if entries.is_empty() {
            continue;
        }
        if live_entries.is_empty() {
            plan.delete.push(*id);
        } else if unused > 0 && unused * 100 >= size * u64::from(repack_percent) {
            plan.repack.push(*id);
        }
    }
    plan.delete.sort();
    plan.repack.sort();
    Ok(plan)
}
