//! Snapshot files: the commit point of a backup, and how users name them.

use chrono::{Local, NaiveDate, TimeZone};

use super::{Durable, Repository, Unreadable};
use crate::backend::{Backend, FileKind};
use crate::crypto::Keys;
use crate::error::{Error, Result};
use crate::format::snapshot::Snapshot;
use crate::hash;
use crate::id::SnapshotId;

/// Every readable snapshot, oldest first, and the ones that could not be read.
#[derive(Debug, Default)]
pub struct SnapshotList {
    /// Snapshots sorted by time, then id.
    pub snapshots: Vec<(SnapshotId, Snapshot)>,
    /// Snapshot files that failed to load (proved damaged or not, as each says).
    pub damaged: Vec<Unreadable>,
}

impl Durable<'_> {
    /// Writes a snapshot file naming blobs the write that gave this token
    /// saved, or blobs committed before it; when this returns the snapshot
    /// is committed. A writer that may have lost its lock does not commit.
    pub fn save_snapshot(&self, snap: &Snapshot) -> Result<SnapshotId> {
        let repo = self.repo;
        let bytes = snap.encode(repo.keys())?;
        let id = hash::snapshot_id(&bytes);
        repo.check_lock()?;
        repo.backend().put(FileKind::Snapshot, &id.to_hex(), bytes.into())?;
        Ok(id)
    }
}

impl Repository {
    /// Loads one snapshot, checking its bytes against its name.
    pub fn load_snapshot(&self, id: &SnapshotId) -> Result<Snapshot> {
        load_snapshot(self.backend(), self.keys(), id)
    }

    /// All snapshots, oldest first.
    pub fn snapshots(&self) -> Result<SnapshotList> {
        read_snapshots(self.backend(), self.keys())
    }

    /// Finds the snapshot a user means: `latest`, `latest~N`, a date
    /// `YYYY-MM-DD` (the newest snapshot on or before that local day), or
    /// a prefix of its hex id.
    pub fn resolve(&self, spec: &str) -> Result<(SnapshotId, Snapshot)> {
        resolve_in(&self.snapshots()?.snapshots, spec).cloned()
    }

    /// Each of several names resolved, in the order given; the snapshot
    /// files are read once for all of them.
    pub fn resolve_all(&self, specs: &[String]) -> Result<Vec<(SnapshotId, Snapshot)>> {
        let list = self.snapshots()?.snapshots;
        specs.iter().map(|spec| resolve_in(&list, spec).cloned()).collect()
    }

    /// The snapshots a command works on: all of them when no name is
    /// given, else the ones named (each once), oldest first.
    pub fn choose(&self, specs: &[String]) -> Result<SnapshotList> {
        if specs.is_empty() {
            return self.snapshots();
        }
        let mut chosen: Vec<(SnapshotId, Snapshot)> = Vec::new();
        for found in self.resolve_all(specs)? {
            if !chosen.iter().any(|(c, _)| *c == found.0) {
                chosen.push(found);
            }
        }
        chosen.sort_by_key(|(id, s)| (s.time, *id));
        Ok(SnapshotList { snapshots: chosen, damaged: Vec::new() })
    }
}

fn load_snapshot(backend: &dyn Backend, keys: &Keys, id: &SnapshotId) -> Result<Snapshot> {
    let bytes =
        backend.get_capped(FileKind::Snapshot, &id.to_hex(), crate::format::snapshot::MAX_SNAPSHOT_LEN)?;
    let object = || format!("snapshot {id}");
    if hash::snapshot_id(&bytes) != *id {
        return Err(Error::corrupt(object(), "contents do not match the name"));
    }
    Snapshot::decode(&bytes, keys).map_err(|e| Error::decode(object(), e))
}

/// Every snapshot file in storage, oldest first. Snapshot files are
/// immutable, so this needs no lock: one removed meanwhile (by forget or
/// repair) is simply left out.
pub fn read_snapshots(backend: &dyn Backend, keys: &Keys) -> Result<SnapshotList> {
    let mut list = SnapshotList::default();
    for (name, _) in backend.list(FileKind::Snapshot)? {
        let loaded = SnapshotId::from_hex(&name).and_then(|id| Ok((id, load_snapshot(backend, keys, &id)?)));
        match loaded {
            Ok(pair) => list.snapshots.push(pair),
            Err(Error::NotFound { .. }) => {}
            Err(e) => list.damaged.push(Unreadable::new(name, &e)),
        }
    }
    list.snapshots.sort_by_key(|(id, s)| (s.time, *id));
    Ok(list)
}

/// The tag of the snapshots restore takes of what it is about to replace.
/// `latest`, `latest~N` and dates pass over them, so that restoring
/// `latest` twice brings back the backup, not the safety copy; an id prefix
/// still names one.
pub const SAFETY_TAG: &str = "safety";

fn resolve_in<'a>(list: &'a [(SnapshotId, Snapshot)], spec: &str) -> Result<&'a (SnapshotId, Snapshot)> {
    let not_found = || Error::NotFound { kind: "snapshot", id: spec.to_owned() };
    let by_time = || list.iter().filter(|(_, s)| !s.tags.iter().any(|t| t == SAFETY_TAG));
    if let Some(back) = latest_offset(spec)? {
        return by_time().rev().nth(back).ok_or_else(not_found);
    }
    if let Ok(day) = NaiveDate::parse_from_str(spec, "%Y-%m-%d") {
        let next = day.succ_opt().and_then(|d| d.and_hms_opt(0, 0, 0)).ok_or_else(not_found)?;
        let cutoff = Local.from_local_datetime(&next).earliest().ok_or_else(not_found)?.timestamp();
        return by_time().rev().find(|(_, s)| s.time.secs < cutoff).ok_or_else(not_found);
    }
    let prefix = spec.to_ascii_lowercase();
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::InvalidInput(format!(
            "{spec:?} is not a snapshot name (use an id prefix, latest, latest~N or YYYY-MM-DD)"
        )));
    }
    let mut matches = list.iter().filter(|(id, _)| id.to_hex().starts_with(&prefix));
    match (matches.next(), matches.count()) {
        (None, _) => Err(not_found()),
        (Some(one), 0) => Ok(one),
        (Some(_), rest) => Err(Error::AmbiguousPrefix { prefix: spec.to_owned(), count: rest + 1 }),
    }
}

/// `latest` -> 0, `latest~N` -> N, anything else -> None.
fn latest_offset(spec: &str) -> Result<Option<usize>> {
    let Some(rest) = spec.strip_prefix("latest") else { return Ok(None) };
    if rest.is_empty() {
        return Ok(Some(0));
    }
    rest.strip_prefix('~')
        .and_then(|n| n.parse().ok())
        .map(Some)
        .ok_or_else(|| Error::InvalidInput(format!("{spec:?}: expected latest or latest~N")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Timestamp;
    use crate::id::TreeId;

    fn snap(secs: i64) -> Snapshot {
        Snapshot::new(Timestamp { secs, nanos: 0 }, TreeId::from_bytes([0; 32]))
    }

    fn list() -> Vec<(SnapshotId, Snapshot)> {
        let day = |d: u32| Local.with_ymd_and_hms(2026, 11, d, 12, 0, 0).unwrap().timestamp();
        vec![
            (SnapshotId::from_bytes([0xaa; 32]), snap(day(18))),
            (SnapshotId::from_bytes([0xab; 32]), snap(day(20))),
            (SnapshotId::from_bytes([0xcd; 32]), snap(day(21))),
        ]
    }

    #[test]
    fn names_resolve() {
        let list = list();
        let id = |spec| resolve_in(&list, spec).map(|(id, _)| id.as_bytes()[0]);
        assert_eq!(id("latest").unwrap(), 0xcd);
        assert_eq!(id("latest~2").unwrap(), 0xaa);
        assert!(matches!(id("latest~3"), Err(Error::NotFound { .. })));
        assert_eq!(id("2026-11-20").unwrap(), 0xab);
        assert_eq!(id("2026-11-19").unwrap(), 0xaa);
        assert!(id("2026-11-17").is_err());
        assert_eq!(id("CD").unwrap(), 0xcd);
        assert!(matches!(id("a"), Err(Error::AmbiguousPrefix { count: 2, .. })));
        assert!(matches!(id("latest~x"), Err(Error::InvalidInput(_))));
        assert!(matches!(id("nonsense"), Err(Error::InvalidInput(_))));
    }
}
