//! `snap verify`: prove the repository is whole, without changing it.
//!
//! Structure: every snapshot file decodes and matches its name; every tree
//! reachable from a snapshot loads (each distinct tree once) and every chunk
//! it names is indexed; every pack's own trailer agrees with the index.
//! Data (`--read-data`, or a subset): each selected pack is read once, front
//! to back in pieces after its trailer, checked against its name, and every
//! blob in it decompressed and re-hashed. Whatever is damaged is then traced
//! back to the snapshots and paths that use it.

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::pack::PackEntry;
use crate::format::tree::Node;
use crate::id::{BlobId, ChunkId, PackId, SnapshotId, TreeId};
use crate::names;
use crate::progress::Progress;
use crate::repo::{PackRead, Repository};
use crate::tree;

/// Which packs to read in full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadData {
    /// Structure only.
    #[default]
    None,
    /// Every pack.
    All,
    /// A random share of the packs, in percent (1..=100).
    Percent(u32),
    /// Part `n` of `m` (1-based): running 1/m .. m/m reads every pack once.
    Part { n: u32, m: u32 },
}

/// One thing found wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The damaged object (`pack <id>`, `chunk <id>`, `snapshot <id>`, ...).
    pub object: String,
    /// What is wrong with it.
    pub detail: String,
}

/// A snapshot path that depends on damaged data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Affected {
    pub snapshot: String,
    pub path: String,
    /// For a damaged page of a large directory: which of its entries are
    /// lost ("N entries from A to B"); absent when the whole path is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entries: Option<String>,
}

/// The outcome of a verify run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct VerifyReport {
    pub snapshots: u64,
    pub trees: u64,
    pub chunks: u64,
    pub packs: u64,
    /// Packs read in full.
    pub packs_read: u64,
    /// Bytes of packs read in full.
    pub bytes_read: u64,
    /// Everything proved wrong: bytes read that do not decode or match
    /// their id, objects the listing shows missing.
    pub problems: Vec<Problem>,
    /// Objects that could not be checked (an I/O or storage error, a newer
    /// format): nothing about them is proved, so the verdict is open.
    pub unverified: Vec<Problem>,
    /// Snapshots and paths that cannot be restored whole.
    pub affected: Vec<Affected>,
    /// Packs no snapshot uses (left by an interrupted backup or by forget;
    /// harmless, removed by prune).
    pub unused_packs: Vec<String>,
    /// Format 3 packs whose padding envelope was proved damaged: no data
    /// is lost with it, and `repair packs` rewrites them from their blobs.
    pub damaged_padding: Vec<String>,
    /// Every blob proved missing or damaged (what `repair snapshots` drops).
    #[serde(skip)]
    pub damaged: HashSet<BlobId>,
}

impl VerifyReport {
    /// Whether the repository was proved whole.
    pub fn ok(&self) -> bool {
        self.problems.is_empty() && self.unverified.is_empty()
    }

    /// Whether every object was checked, so that [`VerifyReport::damaged`]
    /// is all there is to act on.
    pub fn complete(&self) -> bool {
        self.unverified.is_empty()
    }
}

#[derive(Default)]
struct Findings {
    problems: Vec<Problem>,
    unverified: Vec<Problem>,
    /// Blobs proved missing or damaged.
    bad: HashSet<BlobId>,
    /// Chunks the index has no intact copy of, with why; proved missing
    /// only if the index agrees with every trailer read.
    absent: Vec<(ChunkId, String)>,
    /// Whether the index disagrees with some pack's own trailer.
    index_disagrees: bool,
}

impl Findings {
    fn add(&mut self, object: String, detail: impl ToString) {
        self.problems.push(Problem { object, detail: detail.to_string() });
    }

    /// Notes that `object` failed with `error`: damage, taking `blobs`
    /// with it, only if the error proves it; otherwise an open question.
    fn failed(&mut self, object: String, error: &Error, blobs: impl IntoIterator<Item = BlobId>) {
        self.note(object, error.detail(), error.proves_damage(), blobs)
    }

    fn note(
        &mut self,
        object: String,
        detail: String,
        damaged: bool,
        blobs: impl IntoIterator<Item = BlobId>,
    ) {
        let problem = Problem { object, detail };
        if damaged {
            self.bad.extend(blobs);
            self.problems.push(problem);
        } else {
            self.unverified.push(problem);
        }
    }
}

/// Runs the checks; never writes to the repository.
pub fn verify(repo: &Repository, read: ReadData, progress: &dyn Progress) -> Result<VerifyReport> {
    repo.refetch_trees();
    let mut report = VerifyReport::default();
    let mut found = Findings::default();
    let sync = repo.sync_report();
    for u in &sync.unreadable {
        found.note(format!("pack {}", u.name), u.error.clone(), u.damaged, []);
    }
    let list = repo.snapshots()?;
    for d in &list.damaged {
        found.note(format!("snapshot {}", d.name), d.error.clone(), d.damaged, []);
    }
    report.snapshots = list.snapshots.len() as u64;
    let reach = tree::reachable(repo, list.snapshots.iter().map(|(_, s)| s.tree));
    for (id, e) in &reach.failed {
        found.failed(format!("tree {id}"), e, [BlobId::Tree(*id)]);
    }
    // Trees that did not load, or snapshots that did not, hide what they use.
    let walked_all = reach.failed.is_empty() && list.damaged.is_empty();
    let (trees, chunks) = (reach.trees, reach.chunks);
    report.trees = trees.len() as u64;
    report.chunks = chunks.len() as u64;
    let indexed = repo.contains_many(chunks.iter().map(|c| BlobId::Chunk(*c)))?;
    for chunk in &chunks {
        let blob = BlobId::Chunk(*chunk);
        if !indexed.contains(&blob) {
            let damaged = repo.damaged_copies(&blob)?;
            let detail = match damaged.first() {
                Some(pack) => format!("no intact copy: pack {pack} holds one found damaged"),
                None => "not in any pack".to_owned(),
            };
            found.absent.push((*chunk, detail));
        }
    }
    check_missing_packs(repo, &chunks, &mut found)?;
    let packs = repo.packs()?;
    report.packs = packs.len() as u64;
    // A pack read in full has its trailer judged from that read: no byte of
    // a pack is fetched twice.
    let (selected, unread): (Vec<_>, Vec<_>) =
        packs.iter().map(|(i, s)| (*i, *s)).partition(|(id, _)| selected(id, read));
    let trailers: Vec<(PackId, u64, Result<Vec<PackEntry>>)> = repo.in_io_pool(|| {
        unread.par_iter().map(|(id, size)| (*id, *size, repo.read_pack_entries(id, *size))).collect()
    });
    // A pack whose trailer is damaged is read in full after all: its blobs
    // are checked one by one where the index places them.
    let mut by_index = Vec::new();
    for (id, size, trailer) in trailers {
        match trailer {
            Err(e) if e.proves_damage() => by_index.push((id, size, e)),
            trailer => judge_trailer(repo, &id, trailer, false, &mut found)?,
        }
    }
    let rechecked: Vec<(PackId, u64, PackRead)> = repo.in_io_pool(|| {
        by_index
            .into_par_iter()
            .map(|(id, size, e)| (id, size, repo.check_pack_by_index(&id, size, e)))
            .collect()
    });
    progress.begin("verify", Some(selected.iter().map(|(_, s)| s).sum()));
    let read_results: Vec<(PackId, u64, PackRead)> = repo.in_io_pool(|| {
        selected
            .par_iter()
            .map(|(id, size)| {
                let read = repo.check_pack(id, *size);
                progress.advance(1, *size);
                (*id, *size, read)
            })
            .collect()
    });
    progress.end();
    for (id, size, PackRead { trailer, errors, blobs_checked, padding_damaged }) in
        read_results.into_iter().chain(rechecked)
    {
        report.packs_read += 1;
        report.bytes_read += size;
        if padding_damaged {
            report.damaged_padding.push(id.to_hex());
        }
        judge_trailer(repo, &id, trailer, blobs_checked, &mut found)?;
        for (blob, e) in errors {
            // A damaged copy costs nothing while an intact one is indexed.
            let lost = match blob {
                Some(b) => (!repo.contains(&b)?).then_some(b),
                None => None,
            };
            let object = blob.map_or_else(|| format!("pack {id}"), |b| format!("{b} in pack {id}"));
            found.failed(object, &e, lost);
        }
    }
    for (chunk, detail) in std::mem::take(&mut found.absent) {
        let proved = !found.index_disagrees && repo.unindexed_packs().is_empty();
        let object = format!("chunk {chunk}");
        found.note(object, detail, proved, [BlobId::Chunk(chunk)]);
    }
    // With something unread, what is used is not known either.
    if found.unverified.is_empty() && walked_all {
        report.unused_packs = unused_packs(repo, &packs, &trees, &chunks)?;
    }
    report.affected = trace(repo, &list.snapshots, &found.bad)?;
    report.problems = found.problems;
    report.unverified = found.unverified;
    report.damaged = found.bad;
    Ok(report)
}

/// Names each pack that vanished from storage (or shrank) while snapshots
/// still need blobs that only it held.
fn check_missing_packs(repo: &Repository, chunks: &HashSet<ChunkId>, found: &mut Findings) -> Result<()> {
    for pack in repo.missing_packs()? {
        let entries = repo.pack_entries(&pack)?;
        let mut needed = Vec::new();
        for blob in entries.iter().map(|e| e.blob) {
            let used = match blob {
                BlobId::Chunk(c) => chunks.contains(&c),
                BlobId::Tree(_) => found.bad.contains(&blob),
            };
            if used && !repo.contains(&blob)? {
                needed.push(blob);
            }
        }
        if !needed.is_empty() {
            found.add(
                format!("pack {pack}"),
                format!(
                    "missing from storage or truncated; {} blob(s) that snapshots use were only there",
                    needed.len()
                ),
            );
            found.bad.extend(needed);
        }
    }
    Ok(())
}

/// Compares a pack's own trailer with what the index says about it. A
/// pack whose trailer cannot be had makes every blob indexed in it
/// suspect, unless they were checked one by one (`blobs_checked`): then
/// only the trailer is named, and each blob stood on its own.
fn judge_trailer(
    repo: &Repository,
    id: &PackId,
    trailer: Result<Vec<PackEntry>>,
    blobs_checked: bool,
    found: &mut Findings,
) -> Result<()> {
    let indexed = repo.pack_entries(id)?;
    match trailer {
        Ok(mut entries) => {
            entries.sort_by_key(|e| e.offset);
            // The local index is wrong, not the pack; and what the index
            // lacks (a blob "not in any pack") is then not proved missing.
            if entries != indexed {
                found.index_disagrees = true;
                let detail = "the index disagrees with the pack's trailer; run `snap repair index`";
                found.note(format!("pack {id}"), detail.into(), false, []);
            }
        }
        Err(e) if blobs_checked => found.failed(format!("pack {id}"), &e, []),
        Err(e) => found.failed(format!("pack {id}"), &e, indexed.iter().map(|e| e.blob)),
    }
    Ok(())
}

fn selected(id: &PackId, read: ReadData) -> bool {
    let bucket = u32::from_be_bytes(id.as_bytes()[..4].try_into().expect("4 bytes"));
    match read {
        ReadData::None => false,
        ReadData::All => true,
        ReadData::Percent(p) => {
            // A fresh random window each run, so repeated runs cover all packs.
            static OFFSET: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
            let offset = *OFFSET.get_or_init(|| {
                let mut b = [0u8; 4];
                getrandom::fill(&mut b).map(|()| u32::from_be_bytes(b)).unwrap_or(0)
            });
            u64::from(bucket.wrapping_sub(offset)) * 100 < u64::from(p) << 32
        }
        ReadData::Part { n, m } => bucket % m == n - 1,
    }
}

/// Packs holding no blob that any snapshot reaches.
fn unused_packs(
    repo: &Repository,
    packs: &HashMap<PackId, u64>,
    trees: &HashSet<TreeId>,
    chunks: &HashSet<ChunkId>,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for id in packs.keys() {
        let used = repo.pack_entries(id)?.iter().any(|e| match e.blob {
            BlobId::Chunk(c) => chunks.contains(&c),
            BlobId::Tree(t) => trees.contains(&t),
        });
        if !used {
            out.push(id.to_hex());
        }
    }
    out.sort();
    Ok(out)
}

/// Names the snapshot paths that depend on a bad blob: files with a bad
/// chunk, and directories whose node is bad (their contents are lost).
fn trace(
    repo: &Repository,
    snapshots: &[(SnapshotId, crate::format::snapshot::Snapshot)],
    bad: &HashSet<BlobId>,
) -> Result<Vec<Affected>> {
    let mut out = Vec::new();
    if bad.is_empty() {
        return Ok(out);
    }
    for (id, snap) in snapshots {
        let affected = |path: &[Vec<u8>], entries| Affected {
            snapshot: id.to_hex(),
            path: names::display_components(path),
            entries,
        };
        if bad.contains(&BlobId::Tree(snap.tree)) {
            out.push(affected(&[], None));
            continue;
        }
        let mut paths = Vec::new();
        let lost_pages =
            trace_tree(repo, snap.tree, &mut Vec::new(), bad, &mut |path| paths.push(path.to_vec()))?;
        out.extend(paths.iter().map(|p| affected(p, None)));
        out.extend(lost_pages.iter().map(|h| affected(&h.path, h.entries())));
    }
    Ok(out)
}

/// Calls `push` with each path below `tree` that needs a damaged blob, and
/// returns the pages of large directories that are proved damaged.
fn trace_tree(
    repo: &Repository,
    tree: TreeId,
    prefix: &mut Vec<Vec<u8>>,
    bad: &HashSet<BlobId>,
    push: &mut dyn FnMut(&[Vec<u8>]),
) -> Result<Vec<tree::Hole>> {
    // Through the shared walker (iterative, depth- and visit-bounded); a
    // node that does not load was reported already and is passed over, and
    // a directory that lost a page has its other pages walked.
    let lenient = tree::Lenient(repo);
    let store = tree::WithHoles::new(&lenient);
    tree::walk_pruned(&store, tree, prefix, &mut |path, entry| {
        Ok(match &entry.node {
            Node::File { chunks, .. } if chunks.iter().any(|c| bad.contains(&BlobId::Chunk(*c))) => {
                push(path);
                false
            }
            Node::Dir { tree } if bad.contains(&BlobId::Tree(*tree)) => {
                push(path);
                false
            }
            _ => true,
        })
    })?;
    Ok(store.into_holes())
}

/// Parses `10%` or `2/5` for `--read-data-subset`.
pub fn parse_subset(s: &str) -> Result<ReadData> {
    let bad = || Error::InvalidInput(format!("{s:?}: expected a percentage like 10% or a part like 2/5"));
    if let Some(p) = s.strip_suffix('%') {
        let p: u32 = p.trim().parse().map_err(|_| bad())?;
        return if (1..=100).contains(&p) { Ok(ReadData::Percent(p)) } else { Err(bad()) };
    }
    let (n, m) = s.split_once('/').ok_or_else(bad)?;
    let (n, m): (u32, u32) = (n.trim().parse().map_err(|_| bad())?, m.trim().parse().map_err(|_| bad())?);
    if m == 0 || n == 0 || n > m {
        return Err(bad());
    }
    Ok(ReadData::Part { n, m })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset_parsing() {
        assert_eq!(parse_subset("10%").unwrap(), ReadData::Percent(10));
        assert_eq!(parse_subset("2/5").unwrap(), ReadData::Part { n: 2, m: 5 });
        for bad in ["0%", "101%", "0/3", "4/3", "x", "1/0"] {
            assert!(parse_subset(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parts_cover_every_pack_exactly_once() {
        for b in 0..=255u8 {
            let id = PackId::from_bytes([b; 32]);
            let hits = (1..=3).filter(|n| selected(&id, ReadData::Part { n: *n, m: 3 })).count();
            assert_eq!(hits, 1);
        }
    }
}
