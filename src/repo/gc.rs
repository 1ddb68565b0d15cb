//! Garbage collection, the one way stored data is deleted: snapshot files
//! forgotten, packs dropped once the last-copy guard agrees, and packs
//! replaced by repacking their live blobs, in the crash-safe order DESIGN.md
//! section 11 gives. Prune decides what goes (policy and plan) and repair
//! what is damaged; both come through here, so what an error means and what
//! may be deleted is decided in one place.

use std::collections::HashSet;

use super::{BlobWriter, Repository};
use crate::backend::FileKind;
use crate::error::{Error, Result};
use crate::format::pack::{PackEntry, decode_pack_contents};
use crate::id::{BlobId, PackId, SnapshotId};
use crate::progress::Progress;

/// How many pack deletes may pass between two full lock checks (each a
/// listing of the locks on S3); the lease is checked before every one.
const LOOK_EVERY: usize = 64;

impl Repository {
    /// Removes the named snapshots; their space is freed by the next prune.
    /// The repository must be open exclusively.
    pub fn forget(&self, ids: &[SnapshotId]) -> Result<()> {
        self.check_lock()?;
        for id in ids {
            self.backend().remove(FileKind::Snapshot, &id.to_hex())?;
        }
        Ok(())
    }

    /// Removes what interrupted writes left behind (staging files); returns
    /// how many. The repository must be open exclusively.
    pub(crate) fn remove_leftovers(&self) -> Result<u64> {
        self.check_lock()?;
        self.backend().remove_leftovers()
    }

    /// Removes a snapshot file that does not match its name or does not
    /// decode, read a second time here; one that merely fails to read (an
    /// I/O error) or is of a newer format is kept. Whether it was (with
    /// `dry_run`, would be) removed.
    pub(crate) fn remove_corrupt_snapshot(&self, name: &str, dry_run: bool) -> Result<bool> {
        let Ok(id) = SnapshotId::from_hex(name) else { return Ok(false) };
        if !self.load_snapshot(&id).is_err_and(|e| e.proves_damage()) {
            return Ok(false);
        }
        if !dry_run {
            self.check_lock()?;
            self.backend().remove(FileKind::Snapshot, name)?;
        }
        Ok(true)
    }

    /// Deletes packs, files first and then their index rows (but for their
    /// damage marks), once it is certain no live blob is only there. `fresh` are packs this process
    /// has just written from blobs it checked.
    pub(crate) fn drop_packs(
        &self,
        doomed: &[PackId],
        live: &HashSet<BlobId>,
        fresh: &HashSet<PackId>,
    ) -> Result<()> {
        self.ensure_copies_elsewhere(doomed, live, fresh)?;
        for (n, id) in doomed.iter().enumerate() {
            // Each delete is checked: a prune paused in this loop must not go
            // on once a backup may have taken its lock for stale. The lease
            // (a local clock) shows that at once; the store is asked every
            // LOOK_EVERY deletes, so that on S3 a prune of 10,000 packs lists
            // the locks 157 times, not 10,000.
            if n % LOOK_EVERY == 0 {
                self.check_lock()?;
            } else {
                self.check_lease()?;
            }
            self.backend().remove(FileKind::Pack, &id.to_hex())?;
        }
        crate::crash::point("prune-after-pack-delete");
        self.check_lock()?;
        for id in doomed {
            self.with_index(|i| i.forget_pack(id))?;
        }
        crate::crash::point("prune-after-index-update");
        Ok(())
    }

    /// The last guard before anything is un-indexed or deleted: every live
    /// blob of a pack about to go must have a copy in a pack that stays,
    /// read and checked now unless that pack is `fresh` (an index row says
    /// only that a copy was once written: a redundant pack deleted beside a
    /// damaged copy no verify had read yet was the last good one).
    /// Whatever the plan got wrong, prune then stops instead of losing data.
    fn ensure_copies_elsewhere(
        &self,
        doomed: &[PackId],
        live: &HashSet<BlobId>,
        fresh: &HashSet<PackId>,
    ) -> Result<()> {
        let doomed_set: HashSet<PackId> = doomed.iter().copied().collect();
        for id in doomed {
            let entries = self.with_index(|i| i.pack_entries(id))?;
            for entry in entries.iter().filter(|e| live.contains(&e.blob)) {
                let mut stays = self.with_index(|i| i.packs_holding(&entry.blob))?;
                stays.retain(|p| !doomed_set.contains(p));
                if !stays.iter().any(|p| fresh.contains(p)) {
                    self.read_a_copy(&entry.blob, &stays, id)?;
                }
            }
        }
        Ok(())
    }

    /// Succeeds once one of the copies of `blob` in `packs` reads and
    /// matches its id (a copy proved damaged is marked on the way);
    /// otherwise the error says why `doomed` must stay.
    fn read_a_copy(&self, blob: &BlobId, packs: &[PackId], doomed: &PackId) -> Result<()> {
        let mut failed = None;
        for pack in packs {
            let Some(loc) = self.with_index(|i| i.lookup_in(pack, blob))? else { continue };
            match self.read_blob_in(pack, &loc.entry) {
                Ok(_) => return Ok(()),
                Err(e) => failed = Some(e),
            }
        }
        let stop = "prune stopped before removing anything";
        Err(match failed {
            None => Error::corrupt(
                format!("pack {doomed}"),
                format!("{blob} would be lost by removing it; {stop}"),
            ),
            Some(e) if e.proves_damage() => Error::DamageFound {
                command: "prune",
                why: format!("pack {doomed} holds the only intact copy of {blob} ({e})"),
            },
            Some(e) => Error::CannotTell(format!(
                "the copy of {blob} that would stay could not be read ({e}), so pack {doomed}, which holds \
                 another, was not removed"
            )),
        })
    }

    /// Moves the live blobs of `packs` into new packs, then deletes `packs`:
    /// all but one written again under its own name (the same blobs in the
    /// same order seal to the same bytes in an unencrypted repository), which
    /// is whole now and stays. A live blob none of whose copies opens, with
    /// no intact copy elsewhere, stops the run before anything is deleted
    /// unless it is one of `may_lose` (`repair packs` names the blobs proved
    /// damaged before it began, and drops them with their packs): then it is
    /// named in the answer.
    pub(crate) fn replace_packs(
        &self,
        packs: &[PackId],
        live: &HashSet<BlobId>,
        may_lose: &HashSet<BlobId>,
        progress: &dyn Progress,
    ) -> Result<Replaced> {
        let replaced = self.repack(packs, live, may_lose, progress)?;
        crate::crash::point("prune-after-repack");
        let doomed: Vec<PackId> =
            packs.iter().filter(|p| !replaced.written.iter().any(|(w, _)| w == *p)).copied().collect();
        let fresh: HashSet<PackId> = replaced.written.iter().map(|(id, _)| *id).collect();
        let kept: HashSet<BlobId> = live.difference(&replaced.lost).copied().collect();
        self.drop_packs(&doomed, &kept, &fresh)?;
        Ok(replaced)
    }

    /// The blobs of a pack read whole, from its trailer; for a pack whose
    /// trailer is marked damaged (its blobs indexed from salvaged rows), from
    /// the index, each blob checked when opened.
    fn pack_contents(&self, id: &PackId, bytes: &[u8]) -> Result<Vec<PackEntry>> {
        match decode_pack_contents(bytes, self.keys()) {
            Ok(contents) => Ok(contents.entries),
            Err(_) if self.with_index(|i| i.trailer_damaged(id))? => self.with_index(|i| i.pack_entries(id)),
            Err(e) => Err(Error::decode(format!("pack {id}"), e)),
        }
    }

    /// Moves the live blobs of `packs` into new packs, durable and indexed when
    /// this returns, with the live blobs no copy of which could be had. Every
    /// copy a pack's trailer lists is tried, not only the one the index
    /// points at (a pack may hold a blob twice, the first copy damaged). A
    /// copy proved damaged (marked before, or now) is left behind when an
    /// intact one is indexed elsewhere; a blob with none stops the run (the
    /// pack may still be the best copy there is) unless it is one of
    /// `may_lose`.
    fn repack(
        &self,
        packs: &[PackId],
        live: &HashSet<BlobId>,
        may_lose: &HashSet<BlobId>,
        progress: &dyn Progress,
    ) -> Result<Replaced> {
        if packs.is_empty() {
            return Ok(Replaced::default());
        }
        progress.begin("repack", None);
        // A blob with a good copy in a pack that stays is not copied again:
        // that would only add a copy (a prune killed after repacking left
        // the old pack beside the new one).
        let replaced: HashSet<PackId> = packs.iter().copied().collect();
        let damaged_packs: HashSet<PackId> = self.with_index(|i| i.damaged_packs())?.into_iter().collect();
        let kept_elsewhere = |blob: &BlobId| -> Result<bool> {
            let holders = self.with_index(|i| i.packs_holding(blob))?;
            Ok(holders.iter().any(|p| !replaced.contains(p) && !damaged_packs.contains(p)))
        };
        let (mut lost, mut saved) = (HashSet::new(), HashSet::new());
        let ((), stats) = BlobWriter::repack(self, |writer| {
            for id in packs {
                let bytes = self.backend().get(FileKind::Pack, &id.to_hex())?;
                // The padding is left unopened: it holds nothing to move, and
                // each blob is checked when opened, so a pack whose padding is
                // damaged can still be emptied (`repair packs`).
                let entries = self.pack_contents(id, &bytes)?;
                let damaged = self.with_index(|i| i.damaged_in(id))?;
                let mut failed = Vec::new();
                for entry in entries.iter().filter(|e| live.contains(&e.blob)) {
                    if saved.contains(&entry.blob) || kept_elsewhere(&entry.blob)? {
                        continue;
                    }
                    let intact_elsewhere = || self.with_index(|i| i.contains(&entry.blob));
                    if damaged.contains(&entry.blob) && intact_elsewhere()? {
                        continue;
                    }
                    match open_in(self, id, entry, &bytes) {
                        Ok(raw) => {
                            writer.save(entry.blob, &raw)?;
                            saved.insert(entry.blob);
                        }
                        Err(e) if e.proves_damage() => failed.push((entry.blob, e)),
                        Err(e) => return Err(e),
                    }
                }
                for (blob, e) in failed {
                    if saved.contains(&blob) || self.with_index(|i| i.contains(&blob))? {
                        continue;
                    }
                    if !may_lose.contains(&blob) {
                        return Err(e);
                    }
                    lost.insert(blob);
                }
                progress.advance(1, bytes.len() as u64);
            }
            Ok(())
        })?;
        progress.end();
        Ok(Replaced { written: stats.packs, saved: saved.len() as u64, lost })
    }

    /// Reads a pack marked damaged again, whole, before anything is deleted on
    /// that finding: a mark may be stale (the pack was put back) or come from a
    /// wrong index row. Marks the pack's bytes no longer bear out are taken
    /// back, judged against the pack's own trailer; whether any remain is the
    /// answer. A pack matching its name is judged the same way, not trusted:
    /// one renamed to the hash of damaged bytes matches its name too.
    pub(crate) fn recheck_damaged(&self, pack: &PackId) -> Result<bool> {
        let bytes = self.backend().get(FileKind::Pack, &pack.to_hex())?;
        let Ok(contents) = crate::format::pack::decode_pack_contents(&bytes, self.keys()) else {
            // The trailer itself is damaged: the marks cannot be checked, and
            // stand as the readers that set them proved; the pack is rewritten
            // from its indexed blobs.
            return Ok(true);
        };
        // The trailer decodes (the pack was put back): its mark goes.
        self.with_index(|i| i.set_trailer_damaged(pack, false))?;
        let mut damaged = self.padding_still_damaged(pack, &bytes[contents.padding])?;
        for blob in self.with_index(|i| i.damaged_in(pack))? {
            let proved = contents.entries.iter().find(|e| e.blob == blob).is_some_and(|entry: &PackEntry| {
                let start = entry.offset as usize;
                let stored = bytes.get(start..start + entry.stored_len as usize);
                stored.is_none_or(|s| crate::pack::open(self.keys(), entry, s).is_err())
            });
            // A blob the trailer does not list was marked through a wrong row.
            if proved {
                damaged = true;
            } else {
                self.with_index(|i| i.clear_damaged(pack, Some(&blob)))?;
            }
        }
        Ok(damaged)
    }

    /// Whether the mark on `pack`'s padding envelope stands: the envelope is
    /// opened again (marking it once more if it fails), and a mark it no
    /// longer bears out is taken back.
    fn padding_still_damaged(&self, pack: &PackId, padding: &[u8]) -> Result<bool> {
        if !self.with_index(|i| i.padding_damaged(pack))? {
            return Ok(false);
        }
        if self.open_padding(pack, padding).is_err() {
            return Ok(true);
        }
        self.with_index(|i| i.set_padding_damaged(pack, false))?;
        Ok(false)
    }
}

/// What replacing packs wrote, and which live blobs it could not save.
#[derive(Default)]
pub(crate) struct Replaced {
    /// The packs written, with their sizes.
    pub written: Vec<(PackId, u64)>,
    /// How many blobs were written into them.
    pub saved: u64,
    /// Live blobs with no copy that opens, here or anywhere.
    pub lost: HashSet<BlobId>,
}

/// Opens the copy `entry` places in `bytes`, the whole of pack `id`.
fn open_in(repo: &Repository, id: &PackId, entry: &PackEntry, bytes: &[u8]) -> Result<Vec<u8>> {
    let end = entry.offset.checked_add(entry.stored_len);
    let Some(stored) = end.and_then(|end| bytes.get(entry.offset as usize..end as usize)) else {
        return Err(Error::corrupt(format!("pack {id}"), format!("{} lies past its end", entry.blob)));
    };
    repo.open_blob(id, entry, stored)
}
