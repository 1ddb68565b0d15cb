//! `snap forget` and `snap prune`: drop snapshots, then give their space
//! back. Prune runs under the exclusive lock, refuses to touch a repository
//! it cannot fully read, and orders its steps so a crash at any point loses
//! nothing that a kept snapshot needs:
//!
//! 1. decide (policy) and check: every kept snapshot's trees load and every
//!    chunk they name is indexed, or prune stops before changing anything;
//! 2. sweep staging files left by interrupted writes, and remove the
//!    forgotten snapshot files (their data is now garbage);
//! 3. delete the packs no kept snapshot uses, and those whose every live
//!    blob has a good copy in another pack that stays (and forget the
//!    records of packs that vanished from storage);
//! 4. copy the live blobs out of mostly-unused packs into new packs (those
//!    with no good copy elsewhere), made durable and indexed before
//!    anything old goes, then delete the old.
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
    /// Of those, packs still holding live blobs, each with a good copy in
    /// another pack that stays (what a prune killed after repacking leaves).
    pub packs_redundant: u64,
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
    /// How many of `delete` hold live blobs kept elsewhere.
    redundant: u64,
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
        packs_redundant: plan.redundant,
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
    // A pack kept only for its damage marks has nothing more to forget.
    let mut missing = repo.missing_packs()?;
    missing.retain(|p| {
        let rows = repo.pack_entries(p).map(|e| e.len());
        let marks = repo.damaged_in(p).map(|d| d.len());
        !matches!((rows, marks), (Ok(rows), Ok(marks)) if rows == marks)
    });
    report.missing_packs_forgotten = missing.len() as u64;
    let unused: Vec<PackId> = plan.delete.iter().chain(&missing).copied().collect();
    repo.drop_packs(&unused, &live, &HashSet::new())?;
    let written = repo.replace_packs(&plan.repack, &live, &HashSet::new(), progress)?.written;
    report.packs_written = written.len() as u64;
    report.bytes_after += written.iter().map(|(_, size)| size).sum::<u64>();
    Ok(report)
}

/// Prune's refusal to go on: damage proved needs the user (`verify`, then
/// `repair`); anything else may be gone on the next try.
fn refuse(why: String, proved: bool) -> Error {
    if proved {
        Error::DamageFound { command: "prune", why }
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
    Err(Error::Refused {
        command: "prune",
        why: format!(
            "snapshot {} is dated {when}, more than a day after this machine's clock ({}), and keep rules \
             would count it as the newest of its group; correct whichever clock is wrong, or forget that \
             snapshot by id (`snap forget {}`)",
            id.short(),
            now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            id.short()
        ),
    })
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
    let damaged: HashSet<PackId> = repo.damaged_packs()?.into_iter().collect();
    let mut packs = Vec::new();
    for (id, size) in &sizes {
        let entries = repo.pack_entries(id)?;
        // A pack always holds a blob: one without rows was dropped from the
        // index, not emptied, and what it holds is unknown.
        if entries.is_empty() {
            continue;
        }
        let live_blobs: Vec<BlobId> = entries.iter().map(|e| e.blob).filter(|b| live.contains(b)).collect();
        // Only the bytes of unused blobs count: header and trailer are not
        // garbage, and a pack without unused blobs would repack to itself.
        let unused: u64 =
            entries.iter().filter(|e| !live.contains(&e.blob)).map(|e| u64::from(e.stored_len)).sum();
        packs.push(PackUse { id: *id, size: *size, live: live_blobs, unused, damaged: damaged.contains(id) });
    }
    let mut plan = classify(packs, repack_percent);
    plan.sizes = sizes;
    Ok(plan)
}

/// What the plan needs to know of one indexed pack.
struct PackUse {
    id: PackId,
    size: u64,
    /// Its blobs that kept snapshots need.
    live: Vec<BlobId>,
    /// Stored bytes of its other blobs.
    unused: u64,
    /// Whether any of it (a copy, its padding, its trailer) is marked damaged.
    damaged: bool,
}

/// Sorts packs into deleted, repacked and kept. A pack whose every live
/// blob has a good copy in another pack that stays is deleted, not
/// repacked: in an encrypted repository a repack never seals to the name
/// of an earlier one (fresh nonces), so a prune killed after repacking
/// leaves the old pack beside its replacement, and repacking it once more
/// would only make a third copy. A good copy is one in a present pack with
/// nothing marked damaged that is neither deleted nor repacked now: those
/// are what certainly stays as it is.
fn classify(mut packs: Vec<PackUse>, repack_percent: u8) -> PackPlan {
    let mut plan = PackPlan { delete: Vec::new(), repack: Vec::new(), redundant: 0, sizes: HashMap::new() };
    let mut repack = HashSet::new();
    for p in &packs {
        if p.live.is_empty() {
            plan.delete.push(p.id);
        } else if p.unused > 0 && p.unused * 100 >= p.size * u64::from(repack_percent) {
            repack.insert(p.id);
        }
    }
    let mut good_copies: HashMap<BlobId, usize> = HashMap::new();
    for p in packs.iter().filter(|p| !p.damaged && !p.live.is_empty() && !repack.contains(&p.id)) {
        for blob in &p.live {
            *good_copies.entry(*blob).or_default() += 1;
        }
    }
    // Of two packs holding the same live blobs, the one with more garbage
    // goes; between equals the choice only has to be the same every time.
    packs.sort_by(|a, b| b.unused.cmp(&a.unused).then(b.size.cmp(&a.size)).then(a.id.cmp(&b.id)));
    for p in packs.iter().filter(|p| !p.live.is_empty()) {
        let counted = !p.damaged && !repack.contains(&p.id);
        let own = usize::from(counted);
        if !p.live.iter().all(|b| good_copies.get(b).copied().unwrap_or(0) > own) {
            continue;
        }
        if counted {
            for blob in &p.live {
                *good_copies.get_mut(blob).expect("counted above") -= 1;
            }
        }
        repack.remove(&p.id);
        plan.delete.push(p.id);
        plan.redundant += 1;
    }
    plan.repack = repack.into_iter().collect();
    plan.delete.sort();
    plan.repack.sort();
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::{BlobKind, ID_LEN};

    fn pack(n: u8) -> PackId {
        PackId::from_bytes([n; ID_LEN])
    }

    fn blob(n: u8) -> BlobId {
        BlobId::new(BlobKind::Chunk, [n; ID_LEN])
    }

    fn uses(n: u8, live: &[u8], unused: u64, damaged: bool) -> PackUse {
        let live: Vec<BlobId> = live.iter().map(|b| blob(*b)).collect();
        PackUse { id: pack(n), size: unused + 100 * live.len() as u64, live, unused, damaged }
    }

    #[test]
    fn the_old_pack_a_killed_repack_left_is_deleted_not_repacked_again() {
        // 1 is the old pack (live 1 and 2, garbage), 2 its replacement.
        let plan = classify(vec![uses(1, &[1, 2], 300, false), uses(2, &[1, 2], 0, false)], 1);
        assert_eq!(plan.delete, [pack(1)]);
        assert!(plan.repack.is_empty());
        assert_eq!(plan.redundant, 1);
    }

    #[test]
    fn of_two_whole_copies_one_goes() {
        let plan = classify(vec![uses(1, &[1, 2], 0, false), uses(2, &[1, 2], 0, false)], 1);
        assert_eq!(plan.delete.len(), 1, "{:?}", plan.delete);
        let plan = classify(vec![uses(2, &[1, 2], 0, false), uses(1, &[1, 2], 0, false)], 1);
        assert_eq!(plan.delete, [pack(1)], "the same pack whatever the order");
    }

    #[test]
    fn a_copy_in_a_damaged_or_repacked_pack_does_not_count() {
        let plan = classify(vec![uses(1, &[1], 300, false), uses(2, &[1], 0, true)], 1);
        assert!(plan.delete.is_empty());
        assert_eq!(plan.repack, [pack(1)]);
        // Both mostly garbage: both are repacked (into one copy), neither
        // deleted on the strength of the other.
        let plan = classify(vec![uses(1, &[1], 300, false), uses(2, &[1], 300, false)], 1);
        assert!(plan.delete.is_empty());
        assert_eq!(plan.repack, [pack(1), pack(2)]);
    }

    #[test]
    fn a_damaged_pack_whose_blobs_are_all_kept_elsewhere_goes() {
        let plan = classify(vec![uses(1, &[1], 0, true), uses(2, &[1], 0, false)], 50);
        assert_eq!(plan.delete, [pack(1)]);
    }

    #[test]
    fn a_pack_with_one_live_blob_kept_nowhere_else_stays() {
        let plan = classify(vec![uses(1, &[1, 2], 0, false), uses(2, &[1], 0, false)], 50);
        assert_eq!(plan.delete, [pack(2)]);
        let plan = classify(vec![uses(1, &[1, 2], 0, false), uses(2, &[1, 3], 0, false)], 50);
        assert!(plan.delete.is_empty());
        assert!(plan.repack.is_empty());
    }

    #[test]
    fn packs_without_live_blobs_are_deleted_as_before() {
        let plan = classify(vec![uses(1, &[], 300, false), uses(2, &[1], 10, false)], 50);
        assert_eq!(plan.delete, [pack(1)]);
        assert_eq!(plan.redundant, 0);
        assert!(plan.repack.is_empty());
    }
}
