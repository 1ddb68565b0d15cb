//! Reconciles the index with the packs really present. An indexed pack that
//! is gone or has the wrong size is marked missing: its rows stop serving
//! lookups, so a backup never deduplicates against data that is not there
//! (it stores it again instead), while `verify` can still name the pack.
//! Packs with no rows (a crash between pack write and index commit, another
//! host's backup, or a missing pack that came back) are read back from their
//! trailers; the damage marks of one that came back stay. Rebuilding the whole index is this same step run against an
//! empty database.

use std::collections::HashMap;

use rayon::prelude::*;

use super::{Repository, Unreadable};
use crate::backend::FileKind;
use crate::error::{Error, Result};
use crate::format::pack::{FOOTER_LEN, PackEntry, decode_footer, decode_trailer};
use crate::id::PackId;

/// What reconciling index and packs changed.
#[derive(Clone, Debug, Default)]
pub struct SyncReport {
    /// Packs found in storage and added to the index.
    pub added: Vec<PackId>,
    /// Indexed packs found missing from storage or of the wrong size, now
    /// marked missing.
    pub missing: Vec<PackId>,
    /// Packs whose trailer could not be read.
    pub unreadable: Vec<Unreadable>,
    /// Staging files of interrupted writes removed on an exclusive open.
    pub leftovers_removed: u64,
    /// Marks of damaged copies carried over by `repair index`.
    pub damage_marks_kept: u64,
    /// Packs whose trailer is damaged, indexed all the same by `repair
    /// index` from the old index's rows, each blob checked first.
    pub salvaged: Vec<Salvaged>,
}

/// A pack whose trailer is damaged, indexed from the old index's rows.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Salvaged {
    pub pack: String,
    /// Rows of the old index within the pack, all indexed again.
    pub rows: usize,
    /// Blobs that opened and matched their ids where the rows say.
    pub kept: usize,
    /// Blobs proved damaged there: indexed, marked damaged.
    pub damaged: usize,
    /// Blobs that could not be read (an I/O error): indexed unchecked.
    pub unchecked: usize,
}

impl Repository {
    /// Brings the index in line with storage. The index is read before
    /// storage is listed: a pack is written before its rows, so every pack
    /// indexed then is in the listing unless it is really gone, whereas a
    /// pack committed by another process between a listing and a later
    /// read of the index would look missing.
    pub fn sync_index(&self) -> Result<SyncReport> {
        let mut report = SyncReport::default();
        let indexed = self.with_index(|i| i.packs())?;
        let mut present: HashMap<PackId, u64> = HashMap::new();
        for (name, size) in self.backend().list(FileKind::Pack)? {
            match PackId::from_hex(&name) {
                Ok(id) => drop(present.insert(id, size)),
                Err(_) => report.unreadable.push(Unreadable {
                    name,
                    error: "not a pack name".into(),
                    damaged: true,
                    size: Some(size),
                }),
            }
        }
        if let Some(cache) = &self.tree_cache {
            cache.retain(|id| present.contains_key(id));
        }
        for (id, size) in &indexed {
            if present.get(id) != Some(size) {
                self.with_index(|i| i.mark_missing(id))?;
                report.missing.push(*id);
            }
        }
        // A fresh cache of a remote repository reads every trailer: in
        // parallel, then indexed one pack at a time.
        let new: Vec<(PackId, u64)> =
            present.into_iter().filter(|(id, size)| indexed.get(id) != Some(size)).collect();
        let read: Vec<_> = self.in_io_pool(|| {
            new.into_par_iter().map(|(id, size)| (id, size, self.read_pack_entries(&id, size))).collect()
        });
        for (id, size, entries) in read {
            match entries {
                Ok(entries) => {
                    // A pack that was marked missing and is back gets fresh
                    // rows, and keeps its marks.
                    self.with_index(|i| i.reindex_pack(&id, size, &entries))?;
                    report.added.push(id);
                }
                Err(e) => report
                    .unreadable
                    .push(Unreadable { size: Some(size), ..Unreadable::new(id.to_hex(), &e) }),
            }
        }
        Ok(report)
    }

    /// Reads a pack's own list of its contents (footer, then trailer).
    pub fn read_pack_entries(&self, id: &PackId, size: u64) -> Result<Vec<PackEntry>> {
        self.read_pack_tail(id, size).map(|(entries, _)| entries)
    }

    /// Reads a pack's own list of its contents (footer, then trailer), and
    /// returns the bytes read too: trailer and footer, the end of the pack.
    pub fn read_pack_tail(&self, id: &PackId, size: u64) -> Result<(Vec<PackEntry>, Vec<u8>)> {
        let name = id.to_hex();
        let object = || format!("pack {name}");
        if size < FOOTER_LEN as u64 {
            return Err(Error::corrupt(object(), format!("only {size} bytes")));
        }
        let footer_bytes = self.read_pack_range(id, size - FOOTER_LEN as u64, FOOTER_LEN)?;
        let footer = decode_footer(&footer_bytes, size).map_err(|e| Error::decode(object(), e))?;
        let start = size - FOOTER_LEN as u64 - u64::from(footer.trailer_len);
        let mut tail = self.read_pack_range(id, start, footer.trailer_len as usize)?;
        let entries = decode_trailer(&tail, &footer, self.keys()).map_err(|e| Error::decode(object(), e))?;
        tail.extend_from_slice(&footer_bytes);
        Ok((entries, tail))
    }
}
