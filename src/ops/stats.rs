//! `snap stats` and `snap status`.
//!
//! Stats: how much the chosen snapshots (or all of them) hold as files, how
//! much distinct data that is, and what it costs in packs. Each distinct
//! tree is loaded once, whatever number of snapshots share it: every tree's
//! totals (files, directories, bytes, with everything below it) are computed
//! once from its children's, so an unchanged directory costs one lookup in
//! the second snapshot, not a second walk.
//!
//! Status: when each (host, source paths) group was last backed up, whether
//! another snap process holds the repository lock, and what opening the
//! index found. It never waits for the lock: it looks at who holds it
//! without taking it (`Backend::lock_holders`: an exclusive probe would make
//! other hosts' backups fail), then holds the
//! shared lock only while it reads the index and snapshots (a prune starting
//! in that moment fails at once, as with any reader); while an exclusive
//! operation (prune, repair) holds the lock it still reads the snapshot
//! files (they are immutable), but leaves the index alone.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Local};
use rayon::prelude::*;
use serde::Serialize;

use crate::backend::{Backend, LockMode};
use crate::error::Result;
use crate::format::snapshot::Snapshot;
use crate::format::tree::Node;
use crate::id::{BlobId, ChunkId, PackId, SnapshotId, TreeId};
use crate::index::IndexCounts;
use crate::ops::policy::Span;
use crate::ops::snapshots::SnapshotInfo;
use crate::progress::Progress;
use crate::repo::{PasswordFn, Repository, SnapshotList, Unreadable, read_snapshots};

// ---------------------------------------------------------------------------
// stats
// ---------------------------------------------------------------------------

/// What the figures cover.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Every snapshot in the repository.
    Repository,
    /// The snapshots named on the command line.
    Snapshots,
}

/// The whole repository's storage, whatever the scope.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RepositoryTotals {
    /// Pack files present.
    pub packs: u64,
    /// Their bytes on disk.
    pub pack_bytes: u64,
    /// Everything the index holds, used by a snapshot or not.
    pub index: IndexCounts,
}

/// Sizes, counts and ratios.
#[derive(Clone, Debug, Serialize)]
pub struct StatsReport {
    pub scope: Scope,
    /// The snapshots counted (full ids, oldest first).
    pub snapshot_ids: Vec<String>,
    pub snapshots: u64,
    /// Regular files, summed over the snapshots.
    pub files: u64,
    /// Directories below the snapshot roots, summed over the snapshots.
    pub directories: u64,
    /// Symlinks, fifos, devices and sockets, summed over the snapshots.
    pub other_entries: u64,
    /// Sum of the file sizes as restored, summed over the snapshots (a
    /// hardlinked file counts once per name).
    pub logical_bytes: u64,
    /// Distinct chunks the snapshots use.
    pub chunks: u64,
    /// Raw bytes of those chunks: the unique data.
    pub unique_bytes: u64,
    /// Their stored (compressed) bytes in packs.
    pub chunk_stored_bytes: u64,
    /// Distinct directory nodes the snapshots use.
    pub trees: u64,
    /// Their stored bytes in packs.
    pub tree_stored_bytes: u64,
    /// `chunk_stored_bytes + tree_stored_bytes`.
    pub stored_bytes: u64,
    /// `logical_bytes / unique_bytes`; `None` when there is no data.
    pub dedup_ratio: Option<f64>,
    /// `unique_bytes / chunk_stored_bytes`; `None` when there is no data.
    pub compression_ratio: Option<f64>,
    /// Packs holding some of that data, and their size.
    pub packs_used: u64,
    pub packs_used_bytes: u64,
    pub repository: RepositoryTotals,
    /// Chunks the snapshots name that no present pack holds (left out of
    /// the byte figures; `snap verify` says more).
    pub missing_chunks: u64,
    /// Trees that could not be loaded (what is below them is not counted).
    pub unreadable_trees: Vec<Unreadable>,
    /// Snapshot files that could not be read (whole-repository scope).
    pub damaged_snapshots: Vec<Unreadable>,
}

impl StatsReport {
    /// Whether every figure is complete.
    pub fn complete(&self) -> bool {
        self.missing_chunks == 0 && self.unreadable_trees.is_empty() && self.damaged_snapshots.is_empty()
    }
}

/// Files, directories and bytes below one tree, everything included.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Totals {
    files: u64,
    dirs: u64,
    others: u64,
    bytes: u64,
}

impl std::ops::AddAssign for Totals {
    fn add_assign(&mut self, o: Totals) {
        // Saturating: a hostile DAG can name 2^64 files with 128 entries.
        self.files = self.files.saturating_add(o.files);
        self.dirs = self.dirs.saturating_add(o.dirs);
        self.others = self.others.saturating_add(o.others);
        self.bytes = self.bytes.saturating_add(o.bytes);
    }
}

/// Figures for the given snapshots, or for every snapshot when `specs` is
/// empty. Names are resolved as everywhere (`latest`, id prefix, date); a
/// snapshot named twice counts once.
pub fn stats(repo: &Repository, specs: &[String], progress: &dyn Progress) -> Result<StatsReport> {
    let scope = if specs.is_empty() { Scope::Repository } else { Scope::Snapshots };
    let SnapshotList { snapshots: chosen, damaged: damaged_snapshots } = repo.choose(specs)?;

    progress.begin("stats", None);
    let (summaries, unreadable) = load_trees(repo, chosen.iter().map(|(_, s)| s.tree), progress);
    progress.end();
    let mut memo = HashMap::new();
    let mut total = Totals::default();
    for (_, snap) in &chosen {
        total += totals(snap.tree, &summaries, &mut memo);
    }

    let chunks: HashSet<ChunkId> = summaries.values().flat_map(|s| s.chunks.iter().copied()).collect();
    let mut report = StatsReport {
        scope,
        snapshot_ids: chosen.iter().map(|(id, _)| id.to_hex()).collect(),
        snapshots: chosen.len() as u64,
        files: total.files,
        directories: total.dirs,
        other_entries: total.others,
        logical_bytes: total.bytes,
        chunks: chunks.len() as u64,
        unique_bytes: 0,
        chunk_stored_bytes: 0,
        trees: summaries.len() as u64,
        tree_stored_bytes: 0,
        stored_bytes: 0,
        dedup_ratio: None,
        compression_ratio: None,
        packs_used: 0,
        packs_used_bytes: 0,
        repository: RepositoryTotals::default(),
        missing_chunks: 0,
        unreadable_trees: unreadable,
        damaged_snapshots,
    };

    let packs = repo.packs()?;
    let mut used: HashSet<PackId> = HashSet::new();
    let located = repo.locate_many(chunks.iter().map(|c| BlobId::Chunk(*c)))?;
    report.missing_chunks = (chunks.len() - located.len()) as u64;
    for loc in located.values() {
        report.unique_bytes += u64::from(loc.entry.raw_len);
        report.chunk_stored_bytes += u64::from(loc.entry.stored_len);
        used.insert(loc.pack);
    }
    // Pages are shared between versions of a directory: each once. A tree
    // that loaded was found through the index.
    let pages = summaries.values().flat_map(|loaded| &loaded.pages);
    let trees = summaries.keys().chain(pages).map(|t| BlobId::Tree(*t));
    for loc in repo.locate_many(trees)?.values() {
        report.tree_stored_bytes += u64::from(loc.entry.stored_len);
        used.insert(loc.pack);
    }
    report.stored_bytes = report.chunk_stored_bytes + report.tree_stored_bytes;
    report.dedup_ratio = ratio(report.logical_bytes, report.unique_bytes);
    report.compression_ratio = ratio(report.unique_bytes, report.chunk_stored_bytes);
    report.packs_used = used.len() as u64;
    report.packs_used_bytes = used.iter().filter_map(|p| packs.get(p)).sum();
    report.repository = RepositoryTotals {
        packs: packs.len() as u64,
        pack_bytes: packs.values().sum(),
        index: repo.index_counts()?,
    };
    Ok(report)
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (a > 0 && b > 0).then(|| a as f64 / b as f64)
}

/// One loaded tree as stats needs it.
struct Loaded {
    /// Totals of its own entries.
    own: Totals,
    /// Its subdirectories.
    children: Vec<TreeId>,
    /// The chunks of its files.
    chunks: Vec<ChunkId>,
    /// The pages it is stored in besides its node (none unless paged).
    pages: Vec<TreeId>,
}

/// Loads every distinct tree reachable from `roots` once, a level at a time
/// and in parallel within a level.
fn load_trees(
    repo: &Repository,
    roots: impl IntoIterator<Item = TreeId>,
    progress: &dyn Progress,
) -> (HashMap<TreeId, Loaded>, Vec<Unreadable>) {
    let mut seen: HashSet<TreeId> = HashSet::new();
    let mut level: Vec<TreeId> = roots.into_iter().filter(|id| seen.insert(*id)).collect();
    let mut loaded = HashMap::new();
    let mut failed = Vec::new();
    while !level.is_empty() {
        let results: Vec<(TreeId, Result<Loaded>)> = level
            .par_iter()
            .map(|id| {
                let r = repo.load_node(id).map(|(tree, pages)| {
                    let (mut own, mut children, mut chunks) = (Totals::default(), Vec::new(), Vec::new());
                    for entry in tree.entries {
                        match entry.node {
                            Node::File { size, chunks: c } => {
                                own.files += 1;
                                own.bytes = own.bytes.saturating_add(size);
                                chunks.extend(c);
                            }
                            Node::Dir { tree } => {
                                own.dirs += 1;
                                children.push(tree);
                            }
                            _ => own.others += 1,
                        }
                    }
                    Loaded { own, children, chunks, pages }
                });
                progress.advance(1, 0);
                (*id, r)
            })
            .collect();
        let mut next = Vec::new();
        for (id, result) in results {
            match result {
                Ok(l) => {
                    next.extend(l.children.iter().copied().filter(|c| seen.insert(*c)));
                    loaded.insert(id, l);
                }
                Err(e) => failed.push(Unreadable::new(format!("tree {id}"), &e)),
            }
        }
        level = next;
    }
    (loaded, failed)
}

/// Totals of everything below `root`, each distinct tree summed once
/// (iteratively: a deep tree cannot overflow the stack). A tree that did
/// not load counts as empty.
fn totals(root: TreeId, trees: &HashMap<TreeId, Loaded>, memo: &mut HashMap<TreeId, Totals>) -> Totals {
    let mut stack = vec![(root, false)];
    while let Some((id, children_done)) = stack.pop() {
        if memo.contains_key(&id) {
            continue;
        }
        let Some(tree) = trees.get(&id) else {
            memo.insert(id, Totals::default());
            continue;
        };
        if children_done {
            let mut t = tree.own;
            for child in &tree.children {
                t += memo.get(child).copied().unwrap_or_default();
            }
            memo.insert(id, t);
        } else {
            stack.push((id, true));
            stack.extend(tree.children.iter().filter(|c| !memo.contains_key(c)).map(|c| (*c, false)));
        }
    }
    memo.get(&root).copied().unwrap_or_default()
}

// ---------------------------------------------------------------------------
// status
// ---------------------------------------------------------------------------

pub use crate::backend::LockState;

/// The snapshots of one host and set of source paths.
#[derive(Clone, Debug, Serialize)]
pub struct Group {
    pub hostname: String,
    /// Source paths, escaped.
    pub paths: Vec<String>,
    /// How many snapshots the group has.
    pub snapshots: u64,
    /// Its newest snapshot.
    pub latest: SnapshotInfo,
    /// Seconds from the newest snapshot to now (negative if it is in the future).
    pub age_seconds: i64,
    /// Whether the newest snapshot is older than `max_age` (`None` without one).
    pub stale: Option<bool>,
}

/// What opening the index found, and what it holds.
#[derive(Clone, Debug, Serialize)]
pub struct IndexHealth {
    /// Packs found in storage that the index did not know (now indexed).
    pub packs_added: Vec<String>,
    /// Indexed packs missing from storage or of the wrong size.
    pub packs_missing: Vec<String>,
    /// Packs whose trailer could not be read.
    pub packs_unreadable: Vec<Unreadable>,
    pub counts: IndexCounts,
}

impl IndexHealth {
    /// Whether every pack is present and readable.
    pub fn ok(&self) -> bool {
        self.packs_missing.is_empty() && self.packs_unreadable.is_empty()
    }
}

/// The repository at a glance.
#[derive(Clone, Debug, Serialize)]
pub struct StatusReport {
    /// Where the repository is.
    pub repository: String,
    /// Its random id.
    pub id: String,
    pub format_version: u32,
    pub encryption: String,
    pub lock: LockState,
    /// All readable snapshots.
    pub snapshots: u64,
    /// Sorted by host, then paths.
    pub groups: Vec<Group>,
    /// Snapshot files that could not be read.
    pub damaged_snapshots: Vec<Unreadable>,
    /// `None` while another process holds the lock exclusively.
    pub index: Option<IndexHealth>,
    /// The `--max-age` given, as given.
    pub max_age: Option<String>,
    /// With a max age: no snapshot at all, or some group's newest snapshot
    /// is older than it.
    pub stale: bool,
}

/// Options for [`status`].
#[derive(Clone, Debug, Default)]
pub struct StatusOptions {
    /// Flag groups whose newest snapshot is older than this; the text is
    /// echoed in the report.
    pub max_age: Option<(Span, String)>,
}

/// Looks at the repository without keeping any lock for long: probes the
/// lock, then opens it shared (or, while an exclusive operation runs,
/// reads only the snapshot files). `now` is the time ages are measured from.
pub fn status(
    backend: Box<dyn Backend>,
    password: PasswordFn<'_>,
    opts: &StatusOptions,
    now: DateTime<Local>,
) -> Result<StatusReport> {
    // The config first: a directory that is not a repository gets no lock file.
    let config = crate::repo::read_config(backend.as_ref())?;
    let lock = backend.lock_holders()?;
    let repository = backend.location();
    let (list, index) = if lock == LockState::Exclusive {
        let keys = crate::repo::read_keys(backend.as_ref(), password)?;
        (read_snapshots(backend.as_ref(), &keys)?, None)
    } else {
        let repo = Repository::open_with(backend, LockMode::Shared, password)?;
        let sync = repo.sync_report();
        let health = IndexHealth {
            packs_added: sync.added.iter().map(PackId::to_hex).collect(),
            packs_missing: repo.missing_packs()?.iter().map(PackId::to_hex).collect(),
            packs_unreadable: sync.unreadable.clone(),
            counts: repo.index_counts()?,
        };
        (repo.snapshots()?, Some(health))
    };
    let cutoff = opts.max_age.as_ref().map(|(span, _)| span.before(now));
    let groups = groups(&list.snapshots, now, cutoff);
    let stale = cutoff.is_some() && (groups.is_empty() || groups.iter().any(|g| g.stale == Some(true)));
    Ok(StatusReport {
        repository,
        id: config.id,
        format_version: config.version,
        encryption: config.encryption,
        lock,
        snapshots: list.snapshots.len() as u64,
        groups,
        damaged_snapshots: list.damaged,
        index,
        max_age: opts.max_age.as_ref().map(|(_, text)| text.clone()),
        stale,
    })
}

/// Groups by host and paths; `cutoff`: with a max age, the time before
/// which a newest snapshot is stale (`Some(None)`: the span reaches before
/// any representable time, so nothing is stale).
fn groups(
    snapshots: &[(SnapshotId, Snapshot)],
    now: DateTime<Local>,
    cutoff: Option<Option<DateTime<Local>>>,
) -> Vec<Group> {
    type Key<'a> = (&'a str, &'a [serde_bytes::ByteBuf]);
    let mut by_key: HashMap<Key<'_>, Vec<&(SnapshotId, Snapshot)>> = HashMap::new();
    for item in snapshots {
        by_key.entry((item.1.hostname.as_str(), item.1.paths.as_slice())).or_default().push(item);
    }
    let mut out: Vec<Group> = by_key
        .into_values()
        .map(|members| {
            let (id, newest) =
                *members.iter().max_by_key(|(id, s)| (s.time, *id)).expect("groups are non-empty");
            let stale = cutoff.map(|c| c.is_some_and(|c| super::local_time(newest.time) < c));
            let latest = SnapshotInfo::new(id, newest);
            Group {
                hostname: newest.hostname.clone(),
                paths: latest.paths.clone(),
                snapshots: members.len() as u64,
                // Saturating: a snapshot's time is whatever its file says.
                age_seconds: now.timestamp().saturating_sub(newest.time.secs),
                latest,
                stale,
            }
        })
        .collect();
    out.sort_by(|a, b| (&a.hostname, &a.paths).cmp(&(&b.hostname, &b.paths)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Timestamp;
    use chrono::TimeZone;

    fn id(n: u8) -> TreeId {
        TreeId::from_bytes([n; 32])
    }

    fn tree(files: u64, bytes: u64, children: &[u8]) -> Loaded {
        Loaded {
            own: Totals { files, dirs: children.len() as u64, others: 0, bytes },
            children: children.iter().map(|c| id(*c)).collect(),
            chunks: Vec::new(),
            pages: Vec::new(),
        }
    }

    #[test]
    fn shared_subtrees_count_once_per_use() {
        // 1 -> {2, 3}, 2 -> {3}: tree 3 is below 1 twice.
        let trees: HashMap<TreeId, Loaded> =
            [(id(1), tree(1, 10, &[2, 3])), (id(2), tree(2, 100, &[3])), (id(3), tree(4, 1000, &[]))]
                .into_iter()
                .collect();
        let mut memo = HashMap::new();
        let t = totals(id(1), &trees, &mut memo);
        assert_eq!(t, Totals { files: 1 + 2 + 4 + 4, dirs: 2 + 1, others: 0, bytes: 10 + 100 + 2000 });
        // A missing tree counts as empty.
        assert_eq!(totals(id(9), &trees, &mut memo), Totals::default());
    }

    #[test]
    fn deep_trees_do_not_overflow_the_stack() {
        let depth = 200_000u32;
        let tid = |n: u32| {
            let mut b = [0u8; 32];
            b[..4].copy_from_slice(&n.to_be_bytes());
            TreeId::from_bytes(b)
        };
        let trees: HashMap<TreeId, Loaded> = (0..depth)
            .map(|n| {
                let children = if n + 1 < depth { vec![tid(n + 1)] } else { vec![] };
                let dirs = children.len() as u64;
                (
                    tid(n),
                    Loaded {
                        own: Totals { files: 1, dirs, others: 0, bytes: 1 },
                        children,
                        chunks: Vec::new(),
                        pages: Vec::new(),
                    },
                )
            })
            .collect();
        let t = totals(tid(0), &trees, &mut HashMap::new());
        assert_eq!((t.files, t.dirs, t.bytes), (u64::from(depth), u64::from(depth) - 1, u64::from(depth)));
    }

    fn snap(secs: i64, host: &str, path: &str) -> Snapshot {
        let mut s = Snapshot::new(Timestamp { secs, nanos: 0 }, id(0));
        s.hostname = host.into();
        s.paths = vec![serde_bytes::ByteBuf::from(path.as_bytes().to_vec())];
        s
    }

    #[test]
    fn groups_by_host_and_paths_and_flags_stale_ones() {
        let now = Local.timestamp_opt(1_000_000_000, 0).unwrap();
        let hour = 3600;
        let list = vec![
            (SnapshotId::from_bytes([1; 32]), snap(1_000_000_000 - 30 * hour, "a", "/x")),
            (SnapshotId::from_bytes([2; 32]), snap(1_000_000_000 - hour, "a", "/x")),
            (SnapshotId::from_bytes([3; 32]), snap(1_000_000_000 - 30 * hour, "b", "/x")),
            (SnapshotId::from_bytes([4; 32]), snap(1_000_000_000 - 2 * hour, "a", "/y")),
        ];
        let cutoff = Some(Span::parse("1d").unwrap().before(now));
        let g = groups(&list, now, cutoff);
        let seen: Vec<_> =
            g.iter().map(|g| (g.hostname.as_str(), g.paths[0].as_str(), g.snapshots, g.stale)).collect();
        assert_eq!(
            seen,
            [("a", "/x", 2, Some(false)), ("a", "/y", 1, Some(false)), ("b", "/x", 1, Some(true))]
        );
        assert_eq!(g[0].latest.id, SnapshotId::from_bytes([2; 32]).to_hex());
        assert_eq!(g[0].age_seconds, hour);
        assert!(groups(&list, now, None).iter().all(|g| g.stale.is_none()));
    }
}
