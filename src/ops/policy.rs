//! Retention policy: which snapshots `prune` keeps, and why. Pure: works on
//! snapshot times and tags only, so every rule is tested with synthetic
//! timestamps. The rules follow restic's documented semantics: snapshots are
//! grouped by host and source paths; within a group, newest first, each
//! `--keep-<period> N` rule keeps the newest snapshot of each of the last N
//! periods that have a snapshot; `--keep N` keeps the newest N;
//! `--keep-within D` keeps everything less than D older than the group's
//! newest snapshot; `--keep-tag T` keeps every snapshot tagged T. A snapshot
//! is kept if any rule keeps it.

use chrono::{DateTime, Datelike, Days, Local, Months, Timelike};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::snapshot::Snapshot;
use crate::id::SnapshotId;

/// A calendar span for `--keep-within`, e.g. `1y6m`, `30d`, `12h`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub years: u32,
    pub months: u32,
    pub days: u32,
    pub hours: u32,
}

impl Span {
    /// Parses one or more `<number><unit>` pairs, unit one of y, m, w, d, h.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || Error::InvalidInput(format!("{s:?}: expected a span like 30d, 2w, 6m, 1y or 1y6m"));
        let mut span = Span::default();
        let mut digits = String::new();
        for c in s.chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let n: u32 = digits.parse().map_err(|_| bad())?;
            digits.clear();
            match c {
                'y' => span.years += n,
                'm' => span.months += n,
                'w' => span.days += 7 * n,
                'd' => span.days += n,
                'h' => span.hours += n,
                _ => return Err(bad()),
            }
        }
        if !digits.is_empty() || span == Span::default() {
            return Err(bad());
        }
        Ok(span)
    }

    /// The time this span before `t` (`None` if out of range).
    pub(crate) fn before(&self, t: DateTime<Local>) -> Option<DateTime<Local>> {
        t.checked_sub_months(Months::new(self.years.saturating_mul(12).saturating_add(self.months)))?
            .checked_sub_days(Days::new(self.days.into()))?
            .checked_sub_signed(chrono::Duration::hours(self.hours.into()))
    }
}

/// What to keep. Empty means "keep everything".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeepPolicy {
    pub last: u32,
    pub hourly: u32,
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
    pub yearly: u32,
    pub within: Option<Span>,
    pub tags: Vec<String>,
}

impl KeepPolicy {
    /// Whether no rule is set.
    pub fn is_empty(&self) -> bool {
        *self == KeepPolicy::default()
    }
}

/// The verdict on one snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub id: SnapshotId,
    pub keep: bool,
    /// Why it is kept (`last`, `daily`, `within 30d`, `tag x`, ...); empty when removed.
    pub reasons: Vec<String>,
}

type Bucket = fn(DateTime<Local>) -> i64;

fn hour(t: DateTime<Local>) -> i64 {
    day(t) * 100 + i64::from(t.hour())
}
fn day(t: DateTime<Local>) -> i64 {
    month(t) * 100 + i64::from(t.day())
}
fn week(t: DateTime<Local>) -> i64 {
    let w = t.iso_week();
    i64::from(w.year()) * 100 + i64::from(w.week())
}
fn month(t: DateTime<Local>) -> i64 {
    year(t) * 100 + i64::from(t.month())
}
fn year(t: DateTime<Local>) -> i64 {
    i64::from(t.year())
}

/// How far past this machine's clock a snapshot may be dated before the
/// rules refuse to count it: a day covers time zones and ordinary skew.
pub const FUTURE_SLACK_SECS: i64 = 86_400;

/// The first snapshot dated more than [`FUTURE_SLACK_SECS`] after `now`
/// (Unix seconds). Keep rules count such a snapshot as its group's newest:
/// `--keep 1` would keep it alone and `--keep-within` would measure from
/// it, so a host with a wrong clock, or a planted file, would cost every
/// real snapshot its place.
pub fn future_dated(snapshots: &[(SnapshotId, Snapshot)], now: i64) -> Option<&(SnapshotId, Snapshot)> {
    snapshots.iter().find(|(_, s)| s.time.secs > now.saturating_add(FUTURE_SLACK_SECS))
}

/// Decides for every snapshot; the result is newest first.
pub fn apply(policy: &KeepPolicy, snapshots: &[(SnapshotId, Snapshot)]) -> Vec<Decision> {
    let mut groups: Vec<(&Snapshot, Vec<&(SnapshotId, Snapshot)>)> = Vec::new();
    for item in snapshots {
        match groups.iter_mut().find(|(first, _)| same_group(first, &item.1)) {
            Some((_, members)) => members.push(item),
            None => groups.push((&item.1, vec![item])),
        }
    }
    let mut out: Vec<(i64, Decision)> = Vec::new();
    for (_, mut members) in groups {
        members.sort_by_key(|(id, s)| std::cmp::Reverse((s.time, *id)));
        out.extend(apply_group(policy, &members));
    }
    out.sort_by_key(|(time, _)| std::cmp::Reverse(*time));
    out.into_iter().map(|(_, d)| d).collect()
}

/// Safety snapshots (taken by restore) form groups of their own, so they
/// never take a `--keep` place from the backups of the same paths.
fn same_group(a: &Snapshot, b: &Snapshot) -> bool {
    let safety = |s: &Snapshot| s.tags.iter().any(|t| t == crate::repo::SAFETY_TAG);
    a.hostname == b.hostname && a.paths == b.paths && safety(a) == safety(b)
}

/// `members` sorted newest first.
fn apply_group(policy: &KeepPolicy, members: &[&(SnapshotId, Snapshot)]) -> Vec<(i64, Decision)> {
    if policy.is_empty() {
        return members
            .iter()
            .map(|(id, s)| (s.time.secs, Decision { id: *id, keep: true, reasons: vec!["no policy".into()] }))
            .collect();
    }
    let rules: [(&str, u32, Bucket); 5] = [
        ("hourly", policy.hourly, hour),
        ("daily", policy.daily, day),
        ("weekly", policy.weekly, week),
        ("monthly", policy.monthly, month),
        ("yearly", policy.yearly, year),
    ];
    let mut left: Vec<u32> = rules.iter().map(|r| r.1).collect();
    let mut last_bucket: Vec<Option<i64>> = vec![None; rules.len()];
    let cutoff =
        members.first().and_then(|(_, s)| policy.within.and_then(|w| w.before(super::local_time(s.time))));
    let mut out = Vec::new();
    for (n, (id, snap)) in members.iter().enumerate() {
        let t = super::local_time(snap.time);
        let mut reasons = Vec::new();
        if (n as u64) < u64::from(policy.last) {
            reasons.push("last".to_owned());
        }
        for (i, (name, _, bucket)) in rules.iter().enumerate() {
            let b = bucket(t);
            if left[i] > 0 && last_bucket[i] != Some(b) {
                left[i] -= 1;
                last_bucket[i] = Some(b);
                reasons.push((*name).to_owned());
            }
        }
        if cutoff.is_some_and(|c| t > c) {
            reasons.push("within".to_owned());
        }
        reasons
            .extend(snap.tags.iter().filter(|tag| policy.tags.contains(tag)).map(|tag| format!("tag {tag}")));
        out.push((snap.time.secs, Decision { id: *id, keep: !reasons.is_empty(), reasons }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Timestamp;
    use crate::id::TreeId;
    use chrono::TimeZone;

    fn snap(t: DateTime<Local>, tags: &[&str]) -> Snapshot {
        let mut s = Snapshot::new(Timestamp { secs: t.timestamp(), nanos: 0 }, TreeId::from_bytes([0; 32]));
        s.paths = vec![serde_bytes::ByteBuf::from(b"/data".to_vec())];
        s.hostname = "h".into();
        s.tags = tags.iter().map(|t| t.to_string()).collect();
        s
    }

    fn at(y: i32, mo: u32, d: u32, h: u32) -> DateTime<Local> {
        Local.with_ymd_and_hms(y, mo, d, h, 0, 0).unwrap()
    }

    /// Snapshots every 6 hours over 2026-01-01 .. 2026-03-31, ids numbered
    /// in time order.
    fn history() -> Vec<(SnapshotId, Snapshot)> {
        let mut out = Vec::new();
        let mut t = at(2026, 1, 1, 0);
        let mut n = 0u32;
        while t < at(2026, 4, 1, 0) {
            let mut id = [0u8; 32];
            id[..4].copy_from_slice(&n.to_be_bytes());
            out.push((SnapshotId::from_bytes(id), snap(t, &[])));
            t += chrono::Duration::hours(6);
            n += 1;
        }
        out
    }

    fn kept(policy: &KeepPolicy, list: &[(SnapshotId, Snapshot)]) -> Vec<DateTime<Local>> {
        let times: std::collections::HashMap<_, _> =
            list.iter().map(|(id, s)| (*id, crate::ops::local_time(s.time))).collect();
        apply(policy, list).into_iter().filter(|d| d.keep).map(|d| times[&d.id]).collect()
    }

    #[test]
    fn empty_policy_keeps_everything() {
        let list = history();
        assert_eq!(kept(&KeepPolicy::default(), &list).len(), list.len());
    }

    #[test]
    fn keep_last() {
        let k = kept(&KeepPolicy { last: 3, ..Default::default() }, &history());
        assert_eq!(k, [at(2026, 3, 31, 18), at(2026, 3, 31, 12), at(2026, 3, 31, 6)]);
    }

    #[test]
    fn keep_hourly_counts_hours_that_have_snapshots() {
        let k = kept(&KeepPolicy { hourly: 2, ..Default::default() }, &history());
        assert_eq!(k, [at(2026, 3, 31, 18), at(2026, 3, 31, 12)]);
    }

    #[test]
    fn keep_daily_takes_the_newest_of_each_day() {
        let k = kept(&KeepPolicy { daily: 3, ..Default::default() }, &history());
        assert_eq!(k, [at(2026, 3, 31, 18), at(2026, 3, 30, 18), at(2026, 3, 29, 18)]);
    }

    #[test]
    fn keep_weekly_uses_iso_weeks() {
        // 2026-03-29 is a Sunday: the end of ISO week 13.
        let k = kept(&KeepPolicy { weekly: 2, ..Default::default() }, &history());
        assert_eq!(k, [at(2026, 3, 31, 18), at(2026, 3, 29, 18)]);
    }

    #[test]
    fn keep_monthly_and_yearly() {
        let k = kept(&KeepPolicy { monthly: 5, ..Default::default() }, &history());
        assert_eq!(k, [at(2026, 3, 31, 18), at(2026, 2, 28, 18), at(2026, 1, 31, 18)]);
        let k = kept(&KeepPolicy { yearly: 5, ..Default::default() }, &history());
        assert_eq!(k, [at(2026, 3, 31, 18)]);
    }

    #[test]
    fn only_snapshots_beyond_a_day_of_slack_are_future_dated() {
        let now = 1_700_000_000;
        let dated = |secs| {
            let mut s = snap(Local::now(), &[]);
            s.time.secs = secs;
            (SnapshotId::from_bytes([0; 32]), s)
        };
        let mut list = vec![dated(now - 10), dated(now + FUTURE_SLACK_SECS)];
        assert!(future_dated(&list, now).is_none(), "a day ahead is still the clock's slack");
        list.push(dated(i64::MAX));
        assert_eq!(future_dated(&list, now).map(|(_, s)| s.time.secs), Some(i64::MAX));
        assert!(future_dated(&list, i64::MAX).is_none(), "no overflow at the end of time");
    }

    #[test]
    fn keep_within_is_relative_to_the_newest_snapshot() {
        let k =
            kept(&KeepPolicy { within: Some(Span::parse("1d").unwrap()), ..Default::default() }, &history());
        assert_eq!(k, [at(2026, 3, 31, 18), at(2026, 3, 31, 12), at(2026, 3, 31, 6), at(2026, 3, 31, 0)]);
    }

    #[test]
    fn keep_tag_and_rules_combine_as_union() {
        let mut list = history();
        list[0].1.tags = vec!["release".into()];
        let policy = KeepPolicy { last: 1, daily: 2, tags: vec!["release".into()], ..Default::default() };
        let decisions = apply(&policy, &list);
        let reasons: Vec<_> = decisions.iter().filter(|d| d.keep).map(|d| d.reasons.join("+")).collect();
        assert_eq!(reasons, ["last+daily", "daily", "tag release"]);
        assert_eq!(kept(&policy, &list), [at(2026, 3, 31, 18), at(2026, 3, 30, 18), at(2026, 1, 1, 0)]);
    }

    #[test]
    fn groups_by_host_and_paths() {
        let mut list = history();
        list[0].1.hostname = "other".into();
        let k = kept(&KeepPolicy { last: 1, ..Default::default() }, &list);
        assert_eq!(k, [at(2026, 3, 31, 18), at(2026, 1, 1, 0)]);
    }

    #[test]
    fn safety_snapshots_never_take_a_place_of_the_backups() {
        let mut list = history();
        let newest = list.len() - 1;
        list[newest].1.tags.push(crate::repo::SAFETY_TAG.into());
        let k = kept(&KeepPolicy { last: 1, ..Default::default() }, &list);
        assert_eq!(k.len(), 2, "the newest backup and the safety snapshot, each first in its group");
        assert!(k.contains(&crate::ops::local_time(list[newest].1.time)));
        assert!(k.contains(&crate::ops::local_time(list[newest - 1].1.time)));
    }

    #[test]
    fn restic_documented_example() {
        // restic's docs: with --keep-daily 7, a snapshot per day for 10 days
        // keeps the last 7 days; adding --keep-weekly 2 also keeps the
        // newest snapshot of the week before.
        let list: Vec<_> = (1..=10u32)
            .map(|d| (SnapshotId::from_bytes([d as u8; 32]), snap(at(2026, 11, d, 12), &[])))
            .collect();
        let k = kept(&KeepPolicy { daily: 7, ..Default::default() }, &list);
        assert_eq!(k.len(), 7);
        assert_eq!(*k.last().unwrap(), at(2026, 11, 4, 12));
        // 2026-11-01 is a Sunday (ISO week 44); 11-02..11-08 is week 45; 11-09..10 week 46.
        let k = kept(&KeepPolicy { daily: 7, weekly: 3, ..Default::default() }, &list);
        assert_eq!(k.len(), 8);
        assert!(k.contains(&at(2026, 11, 1, 12)));
    }

    #[test]
    fn spans_parse() {
        assert_eq!(Span::parse("1y6m").unwrap(), Span { years: 1, months: 6, days: 0, hours: 0 });
        assert_eq!(Span::parse("2w3h").unwrap(), Span { years: 0, months: 0, days: 14, hours: 3 });
        for bad in ["", "30", "d", "3x", "1d2"] {
            assert!(Span::parse(bad).is_err(), "{bad}");
        }
    }
}
