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
use crate::format::pack::{PACK_MAGIC, PackEntry};
use crate::format::tree::Node;
use crate::format::{DecodeError, HEADER_LEN, read_header};
use crate::hash;
use crate::id::{BlobId, ChunkId, PackId, SnapshotId, TreeId};
use crate::names;
use crate::progress::Progress;
use crate::repo::Repository;
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

/// Problems found while reading one pack, each with the blob it concerns
/// (`None`: the pack as a whole).
type PackErrors = Vec<(Option<BlobId>, Error)>;

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
    for chunk in &chunks {
        let blob = BlobId::Chunk(*chunk);
        if !repo.with_index(|i| i.contains(&blob))? {
            let damaged = repo.with_index(|i| i.damaged_copies(&blob))?;
            let detail = match damaged.first() {
                Some(pack) => format!("no intact copy: pack {pack} holds one found damaged"),
                None => "not in any pack".to_owned(),
            };
            found.absent.push((*chunk, detail));
        }
    }
    check_missing_packs(repo, &chunks, &mut found)?;
    let packs = repo.with_index(|i| i.packs())?;
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
        by_index.into_par_iter().map(|(id, size, e)| (id, size, read_by_index(repo, &id, size, e))).collect()
    });
    progress.begin("verify", Some(selected.iter().map(|(_, s)| s).sum()));
    let read_results: Vec<(PackId, u64, PackRead)> = repo.in_io_pool(|| {
        selected
            .par_iter()
            .map(|(id, size)| {
                let read = read_pack(repo, id, *size);
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
                Some(b) => (!repo.with_index(|i| i.contains(&b))?).then_some(b),
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
    for pack in repo.with_index(|i| i.missing_packs())? {
        let entries = repo.with_index(|i| i.pack_entries(&pack))?;
        let mut needed = Vec::new();
        for blob in entries.iter().map(|e| e.blob) {
            let used = match blob {
                BlobId::Chunk(c) => chunks.contains(&c),
                BlobId::Tree(_) => found.bad.contains(&blob),
            };
            if used && !repo.with_index(|i| i.contains(&blob))? {
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
    let indexed = repo.with_index(|i| i.pack_entries(id))?;
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

/// What reading a pack in full found: its trailer (or why the pack could
/// not be read, which makes all of it suspect), and each other problem with
/// the blob it concerns.
struct PackRead {
    trailer: Result<Vec<PackEntry>>,
    errors: PackErrors,
    /// Whether every indexed blob was opened and checked on its own (so a
    /// trailer that failed takes no blob with it).
    blobs_checked: bool,
    /// Whether the padding envelope was opened and proved damaged.
    padding_damaged: bool,
}

impl PackRead {
    /// A read that stopped before the blobs could all be checked.
    fn unchecked(trailer: Error, errors: PackErrors) -> Self {
        PackRead { trailer: Err(trailer), errors, blobs_checked: false, padding_damaged: false }
    }
}

/// Reads one pack in full and opens every blob in it. The trailer comes
/// first, to know where the blobs lie; then the bytes before it are read
/// front to back in one stream, each byte hashed once and only the blob at
/// hand held.
fn read_pack(repo: &Repository, id: &PackId, size: u64) -> PackRead {
    let (entries, tail) = match repo.read_pack_tail(id, size) {
        Ok(t) => t,
        Err(e) if e.proves_damage() => return read_by_index(repo, id, size, e),
        Err(e) => return PackRead::unchecked(e, Vec::new()),
    };
    let mut errors = Vec::new();
    let (actual, padding) =
        match read_blobs(repo, id, (size - tail.len() as u64, &tail), &entries, &mut errors) {
            Ok(read) => read,
            Err(e) => return PackRead::unchecked(e, errors),
        };
    // The trailer is whole, so what lies between the last blob and it is
    // format 3's padding envelope, which must open like any other (a pack
    // renamed to the hash of altered padding is still found).
    let padding = if repo.keys().hides_sizes() { repo.open_padding(id, &padding) } else { Ok(()) };
    let padding_damaged = padding.is_err();
    errors.extend(padding.err().map(|e| (None, e)));
    if actual != *id {
        errors.push((None, Error::corrupt(format!("pack {id}"), "contents do not match the pack's name")));
    } else if errors.is_empty() {
        // Every byte is as written: whatever was marked damaged in it
        // before (a pack since put back, an index row that was wrong) is not.
        if let Err(e) = repo.with_index(|i| i.clear_damaged(id, None)) {
            errors.push((None, e));
        }
    }
    PackRead { trailer: Ok(entries), errors, blobs_checked: true, padding_damaged }
}

/// Reads a pack whose trailer (its table of contents) is damaged: the
/// blobs are where the index says, so each is opened and checked on its
/// own, and only those that fail are lost. The pack as a whole cannot
/// match its name any more (its trailer changed), which the trailer's
/// error already says.
fn read_by_index(repo: &Repository, id: &PackId, size: u64, trailer: Error) -> PackRead {
    let indexed = match repo.with_index(|i| i.pack_entries(id)) {
        Ok(entries) => entries,
        Err(e) => return PackRead::unchecked(trailer, vec![(None, e)]),
    };
    let mut errors = Vec::new();
    // What follows the last blob is not known to be padding: the trailer
    // that says where the padding ends is damaged.
    if let Err(e) = read_blobs(repo, id, (size, &[]), &indexed, &mut errors) {
        errors.push((None, e));
        return PackRead::unchecked(trailer, errors);
    }
    errors.retain(|(blob, _)| blob.is_some());
    // Proved damaged while its blobs are indexed: `repair packs` rewrites it.
    if let Err(e) = repo.with_index(|i| i.set_trailer_damaged(id, true)) {
        errors.push((None, e));
    }
    let detail = format!(
        "{}; each of its {} blob(s) was checked where the index places it",
        trailer.detail(),
        indexed.len()
    );
    let trailer = Err(Error::corrupt(format!("pack {id}"), detail));
    PackRead { trailer, errors, blobs_checked: true, padding_damaged: false }
}

/// Reads the pack up to `end`, where its `tail` (trailer and footer, read
/// before) starts: checks the header, opens every blob (noting each failure
/// in `errors`), and returns the id of the whole pack as read and the bytes
/// between the last blob and `end`.
fn read_blobs(
    repo: &Repository,
    id: &PackId,
    (end, tail): (u64, &[u8]),
    entries: &[PackEntry],
    errors: &mut PackErrors,
) -> Result<(PackId, Vec<u8>)> {
    let mut hasher = hash::PackIdHasher::default();
    let mut reader = repo.stream_pack_range(id, 0, end)?;
    let mut bytes = Vec::new();
    reader.read_to(HEADER_LEN as u64, |s| {
        hasher.update(s);
        bytes.extend_from_slice(s);
    })?;
    if let Err(e) = read_header(&bytes, PACK_MAGIC, repo.keys().scheme()) {
        let object = format!("pack {id}");
        errors.push((
            None,
            match e {
                DecodeError::NewerVersion(_) => Error::decode(object, e),
                damage => Error::corrupt(object, format!("header: {damage}")),
            },
        ));
    }
    for entry in entries {
        reader.read_stored(entry, &mut bytes, |s| hasher.update(s))?;
        if let Err(e) = repo.open_blob(id, entry, &bytes) {
            errors.push((Some(entry.blob), e));
        }
    }
    bytes.clear();
    reader.read_to(end, |s| {
        hasher.update(s);
        bytes.extend_from_slice(s);
    })?;
    hasher.update(tail);
    Ok((hasher.finish(), bytes))
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
        let used = repo.with_index(|i| i.pack_entries(id))?.iter().any(|e| match e.blob {
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
