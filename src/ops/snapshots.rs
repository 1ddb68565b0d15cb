//! `snap snapshots`: the list, and the calendar view grouped by year,
//! month and ISO week.

use chrono::Datelike;
use serde::Serialize;

use crate::error::Result;
use crate::format::snapshot::{Snapshot, Summary};
use crate::id::SnapshotId;
use crate::names;
use crate::repo::{Repository, Unreadable};

/// A snapshot as shown to users.
#[derive(Clone, Debug, Serialize)]
pub struct SnapshotInfo {
    /// Full id.
    pub id: String,
    /// First 8 hex digits.
    pub short_id: String,
    /// Local time, RFC 3339.
    pub time: String,
    /// Seconds since the epoch.
    pub unix_time: i64,
    pub hostname: String,
    pub username: String,
    /// Source paths, escaped.
    pub paths: Vec<String>,
    pub tags: Vec<String>,
    pub message: Option<String>,
    pub parent: Option<String>,
    pub summary: Summary,
    /// Further recorded facts, such as the state of a git work tree.
    pub extra: std::collections::BTreeMap<String, String>,
}

impl SnapshotInfo {
    /// Describes one snapshot.
    pub fn new(id: &SnapshotId, s: &Snapshot) -> Self {
        SnapshotInfo {
            id: id.to_hex(),
            short_id: id.short(),
            time: super::local_time(s.time).to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
            unix_time: s.time.secs,
            hostname: s.hostname.clone(),
            username: s.username.clone(),
            paths: s.paths.iter().map(|p| names::escape(p)).collect(),
            tags: s.tags.clone(),
            message: s.message.clone(),
            parent: s.parent.map(|p| p.to_hex()),
            summary: s.summary,
            extra: s.extra.clone(),
        }
    }
}

/// Snapshots as shown, and the snapshot files that could not be read.
#[derive(Clone, Debug, Serialize)]
pub struct Listing {
    /// Oldest first.
    pub snapshots: Vec<SnapshotInfo>,
    /// Files that failed to load.
    pub damaged: Vec<Unreadable>,
}

/// Which snapshots to list; an empty list of a kind means "any".
#[derive(Clone, Debug, Default)]
pub struct SnapshotFilter {
    /// Snapshots with at least one of these tags.
    pub tags: Vec<String>,
    /// Snapshots made on one of these hosts.
    pub hosts: Vec<String>,
    /// Snapshots with a source path at or below one of these (absolute) paths.
    pub paths: Vec<std::path::PathBuf>,
}

impl SnapshotFilter {
    /// Whether `s` passes.
    pub fn matches(&self, s: &Snapshot) -> bool {
        use std::os::unix::ffi::OsStrExt;
        let any = |list_empty: bool, hit: bool| list_empty || hit;
        any(self.tags.is_empty(), s.tags.iter().any(|t| self.tags.contains(t)))
            && any(self.hosts.is_empty(), self.hosts.contains(&s.hostname))
            && any(
                self.paths.is_empty(),
                s.paths.iter().any(|p| {
                    let p = std::path::Path::new(std::ffi::OsStr::from_bytes(p));
                    self.paths.iter().any(|want| p.starts_with(want))
                }),
            )
    }
}

/// The snapshots that pass `filter`, oldest first.
pub fn list(repo: &Repository, filter: &SnapshotFilter) -> Result<Listing> {
    let list = repo.snapshots()?;
    Ok(Listing {
        snapshots: list
            .snapshots
            .iter()
            .filter(|(_, s)| filter.matches(s))
            .map(|(id, s)| SnapshotInfo::new(id, s))
            .collect(),
        damaged: list.damaged,
    })
}

/// A calendar year of snapshots.
#[derive(Clone, Debug, Serialize)]
pub struct Year {
    pub year: i32,
    pub months: Vec<Month>,
}

/// A month, e.g. `2026-11`.
#[derive(Clone, Debug, Serialize)]
pub struct Month {
    pub month: String,
    pub weeks: Vec<Week>,
}

/// An ISO week, e.g. `2026-W47`.
#[derive(Clone, Debug, Serialize)]
pub struct Week {
    pub week: String,
    pub snapshots: Vec<SnapshotInfo>,
}

/// Groups snapshots by year, month and ISO week, newest first at every level.
pub fn calendar(snapshots: &[SnapshotInfo]) -> Vec<Year> {
    let mut years: Vec<Year> = Vec::new();
    let mut sorted: Vec<&SnapshotInfo> = snapshots.iter().collect();
    sorted.sort_by(|a, b| b.unix_time.cmp(&a.unix_time).then_with(|| b.id.cmp(&a.id)));
    for s in sorted {
        let t = super::local_time(crate::format::Timestamp { secs: s.unix_time, nanos: 0 });
        let iso = t.iso_week();
        let month = format!("{:04}-{:02}", t.year(), t.month());
        let week = format!("{:04}-W{:02}", iso.year(), iso.week());
        if years.last().is_none_or(|y| y.year != t.year()) {
            years.push(Year { year: t.year(), months: Vec::new() });
        }
        let months = &mut years.last_mut().expect("pushed above").months;
        if months.last().is_none_or(|m| m.month != month) {
            months.push(Month { month, weeks: Vec::new() });
        }
        let weeks = &mut months.last_mut().expect("pushed above").weeks;
        if weeks.last().is_none_or(|w| w.week != week) {
            weeks.push(Week { week, snapshots: Vec::new() });
        }
        weeks.last_mut().expect("pushed above").snapshots.push(s.clone());
    }
    years
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Local, TimeZone};

    fn info(y: i32, m: u32, d: u32) -> SnapshotInfo {
        let t = Local.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap().timestamp();
        SnapshotInfo {
            id: format!("{t:064x}"),
            short_id: String::new(),
            time: String::new(),
            unix_time: t,
            hostname: String::new(),
            username: String::new(),
            paths: vec![],
            tags: vec![],
            message: None,
            parent: None,
            summary: Summary::default(),
            extra: Default::default(),
        }
    }

    #[test]
    fn groups_newest_first() {
        let list = [info(2025, 12, 30), info(2026, 11, 16), info(2026, 11, 20), info(2026, 11, 2)];
        let cal = calendar(&list);
        assert_eq!(cal.iter().map(|y| y.year).collect::<Vec<_>>(), [2026, 2025]);
        assert_eq!(cal[0].months[0].month, "2026-11");
        let weeks: Vec<_> =
            cal[0].months[0].weeks.iter().map(|w| (w.week.as_str(), w.snapshots.len())).collect();
        assert_eq!(weeks, [("2026-W47", 2), ("2026-W45", 1)]);
        // 2025-12-30 belongs to ISO week 1 of 2026.
        assert_eq!(cal[1].months[0].weeks[0].week, "2026-W01");
    }
}
