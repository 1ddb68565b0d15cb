//! What the index says, asked through the repository: read-only queries
//! for the commands that plan (prune, verify, repair, stats, restore). The
//! index itself stays behind the repository's walls; what changes it
//! (packs stored, marks set, packs dropped) happens only where the
//! repository writes, checks or collects garbage. Questions about many
//! blobs are asked in one read transaction, not one lock per row.

use std::collections::{HashMap, HashSet};

use super::Repository;
use crate::error::Result;
use crate::format::pack::PackEntry;
use crate::id::{BlobId, PackId};
use crate::index::{BlobLocation, IndexCounts};

impl Repository {
    /// Every indexed pack present in storage, with its size.
    pub fn packs(&self) -> Result<HashMap<PackId, u64>> {
        self.with_index(|i| i.packs())
    }

    /// The blobs the index places in `pack`, by offset.
    pub fn pack_entries(&self, pack: &PackId) -> Result<Vec<PackEntry>> {
        self.with_index(|i| i.pack_entries(pack))
    }

    /// Whether an intact copy of `blob` is indexed.
    pub fn contains(&self, blob: &BlobId) -> Result<bool> {
        self.with_index(|i| i.contains(blob))
    }

    /// Which of `blobs` have an intact copy indexed.
    pub fn contains_many(&self, blobs: impl IntoIterator<Item = BlobId>) -> Result<HashSet<BlobId>> {
        self.with_index(|index| {
            index.in_read_transaction(|index| {
                let mut found = HashSet::new();
                for blob in blobs {
                    if index.contains(&blob)? {
                        found.insert(blob);
                    }
                }
                Ok(found)
            })
        })
    }

    /// Where an intact copy of each of `blobs` lies; blobs without one are
    /// left out (ask [`Repository::absent`] what that proves).
    pub fn locate_many(
        &self,
        blobs: impl IntoIterator<Item = BlobId>,
    ) -> Result<HashMap<BlobId, BlobLocation>> {
        self.with_index(|index| {
            index.in_read_transaction(|index| {
                let mut found = HashMap::new();
                for blob in blobs {
                    if found.contains_key(&blob) {
                        continue;
                    }
                    if let Some(loc) = index.lookup(&blob)? {
                        found.insert(blob, loc);
                    }
                }
                Ok(found)
            })
        })
    }

    /// Packs the index knows but storage no longer lists.
    pub fn missing_packs(&self) -> Result<Vec<PackId>> {
        self.with_index(|i| i.missing_packs())
    }

    /// Packs holding a copy, a padding envelope or a trailer proved damaged.
    pub fn damaged_packs(&self) -> Result<Vec<PackId>> {
        self.with_index(|i| i.damaged_packs())
    }

    /// The blobs whose copy in `pack` was proved damaged.
    pub fn damaged_in(&self, pack: &PackId) -> Result<HashSet<BlobId>> {
        self.with_index(|i| i.damaged_in(pack))
    }

    /// The packs holding a copy of `blob` proved damaged.
    pub fn damaged_copies(&self, blob: &BlobId) -> Result<Vec<PackId>> {
        self.with_index(|i| i.damaged_copies(blob))
    }

    /// How much the index holds.
    pub fn index_counts(&self) -> Result<IndexCounts> {
        self.with_index(|i| i.counts())
    }
}
