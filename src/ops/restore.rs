//! `snap restore`: snapshot -> plan -> directories -> files created empty
//! (0600) -> contents, grouped by pack so each needed pack region is read
//! once and each blob decoded once, written in parallel -> hardlinks,
//! special files, symlinks -> metadata, deepest first. `--verify` re-reads
//! what was written and checks every chunk against its id.
//!
//! The snapshot is treated as hostile: every name was validated when its
//! tree was decoded (one component, not `.`/`..`, no `/`), an existing
//! non-directory where a directory is needed stops the restore before any
//! file is written, files are opened with `O_NOFOLLOW`, and symlinks are
//! created last, so nothing is ever written through a link. A file whose
//! data is missing or corrupt is removed and named; the rest is restored.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use serde::Serialize;

use super::{Warning, WarningKind, Warnings};
use crate::backend::FileKind;
use crate::error::{Error, IoContext, Result};
use crate::format::pack::PackEntry;
use crate::format::snapshot::Snapshot;
use crate::format::tree::{Metadata, Node};
use crate::hash::BlobHasher;
use crate::id::{BlobId, ChunkId, PackId};
use crate::names;
use crate::pack;
use crate::progress::Progress;
use crate::repo::Repository;
use crate::tree::{self, Found};

/// Pack regions closer than this are read in one request.
const COALESCE_GAP: u64 = 256 << 10;
/// Largest single read from a pack.
const MAX_READ: u64 = 32 << 20;

/// What to restore, and where.
#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// Directory to restore into (created if missing).
    pub target: PathBuf,
    /// Only this path of the snapshot (and what is below it).
    pub include: Option<PathBuf>,
    /// Re-read and check every restored file.
    pub verify: bool,
    /// The repository directory, when local: never restored into.
    pub repository_dir: Option<PathBuf>,
}

/// The outcome of a restore.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RestoreReport {
    pub files: u64,
    pub dirs: u64,
    /// Symlinks, fifos and devices.
    pub others: u64,
    /// File bytes restored.
    pub bytes: u64,
    /// Files whose contents were checked after writing.
    pub verified_files: u64,
    /// Per-path trouble.
    pub warnings: Vec<Warning>,
    /// True when something could not be restored.
    pub incomplete: bool,
}

struct PlannedFile {
    path: PathBuf,
    chunks: Vec<ChunkId>,
    meta: Metadata,
}

#[derive(Default)]
struct Plan {
    dirs: Vec<(PathBuf, Metadata)>,
    files: Vec<PlannedFile>,
    /// (existing leader file index, new link path)
    hardlinks: Vec<(usize, PathBuf)>,
    /// Symlinks, fifos, devices and sockets.
    others: Vec<(PathBuf, Node, Metadata)>,
}

/// A needed blob and the (file, offset) places its bytes go.
struct Need {
    entry: PackEntry,
    places: Vec<(usize, u64)>,
}

struct Ctx<'a> {
    repo: &'a Repository,
    plan: Plan,
    warnings: Warnings,
    failed: Mutex<HashSet<usize>>,
    progress: &'a dyn Progress,
    bytes: AtomicU64,
}

/// Restores `snap` (or the part named by `include`) into the target.
pub fn restore(
    repo: &Repository,
    snap: &Snapshot,
    opts: &RestoreOptions,
    progress: &dyn Progress,
) -> Result<RestoreReport> {
    let target = prepare_target(&opts.target, opts.repository_dir.as_deref())?;
    let plan = make_plan(repo, snap, &target, opts.include.as_deref())?;
    create_dirs(&plan)?;
    let ctx = Ctx {
        repo,
        plan,
        warnings: Warnings::default(),
        failed: Mutex::new(HashSet::new()),
        progress,
        bytes: AtomicU64::new(0),
    };
    let lengths = write_contents(&ctx)?;
    remove_failed(&ctx);
    let others = create_others(&ctx);
    apply_all_metadata(&ctx);
    let verified = if opts.verify { verify_files(&ctx, &lengths) } else { 0 };
    let Ctx { plan, warnings, failed, bytes, .. } = ctx;
    let failed = failed.into_inner().unwrap_or_else(|p| p.into_inner()).len();
    let warnings = warnings.into_vec();
    Ok(RestoreReport {
        files: (plan.files.len() - failed + plan.hardlinks.len()) as u64,
        dirs: plan.dirs.len() as u64,
        others,
        bytes: bytes.into_inner(),
        verified_files: verified,
        incomplete: warnings.iter().any(|w| w.kind == WarningKind::Failed),
        warnings,
    })
}

/// Checks the target before creating anything: a target inside the
/// repository is refused without leaving a trace there.
fn prepare_target(target: &Path, repo_dir: Option<&Path>) -> Result<PathBuf> {
    if let Some(dir) = repo_dir {
        let repo = dir.canonicalize().at(dir)?;
        let resolved = resolve_existing_prefix(target)?;
        if resolved.starts_with(&repo) {
            return Err(Error::InvalidInput(format!(
                "cannot restore into {}: it lies inside the repository",
                target.display()
            )));
        }
    }
    fs::DirBuilder::new().recursive(true).mode(0o700).create(target).at(target)?;
    target.canonicalize().at(target)
}

/// `path` made absolute, with its longest existing prefix resolved through
/// symlinks and the rest appended as given.
fn resolve_existing_prefix(path: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(path).at(path)?;
    let mut rest = Vec::new();
    let mut base = abs.as_path();
    loop {
        match base.canonicalize() {
            Ok(real) => return Ok(rest.iter().rev().fold(real, |p, c| p.join(c))),
            Err(_) => match (base.parent(), base.file_name()) {
                (Some(parent), Some(name)) => {
                    rest.push(name.to_owned());
                    base = parent;
                }
                _ => return Ok(abs),
            },
        }
    }
}

fn make_plan(repo: &Repository, snap: &Snapshot, target: &Path, include: Option<&Path>) -> Result<Plan> {
    let include = include.map(names::split_snapshot_path).transpose()?.unwrap_or_default();
    let mut plan = Plan::default();
    // The directories leading to an included path are restored with their own metadata.
    for depth in 1..include.len() {
        if let Found::Entry(e) = tree::find(repo, snap.tree, &include[..depth])? {
            plan.dirs.push((names::join(target, &include[..depth]), e.meta));
        }
    }
    let mut leaders: HashMap<(u64, u64), usize> = HashMap::new();
    tree::walk_path(repo, snap.tree, &include, &mut |path, entry| {
        let dest = names::join(target, path);
        match &entry.node {
            Node::Dir { .. } => plan.dirs.push((dest, entry.meta.clone())),
            Node::File { chunks, .. } => {
                let key = (entry.meta.dev, entry.meta.inode);
                match leaders.get(&key) {
                    Some(&leader) if entry.meta.nlink > 1 => plan.hardlinks.push((leader, dest)),
                    _ => {
                        if entry.meta.nlink > 1 {
                            leaders.insert(key, plan.files.len());
                        }
                        plan.files.push(PlannedFile {
                            path: dest,
                            chunks: chunks.clone(),
                            meta: entry.meta.clone(),
                        });
                    }
                }
            }
            other => plan.others.push((dest, other.clone(), entry.meta.clone())),
        }
        Ok(())
    })?;
    Ok(plan)
}

/// Creates the directories (private until their metadata is applied). An
/// existing symlink or file where a directory belongs would let later
/// writes escape the target, so it stops the restore here.
fn create_dirs(plan: &Plan) -> Result<()> {
    for (path, _) in &plan.dirs {
        match fs::DirBuilder::new().mode(0o700).create(path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                if !fs::symlink_metadata(path).at(path)?.is_dir() {
                    return Err(Error::InvalidInput(format!(
                        "cannot restore: {} exists and is not a directory",
                        path.display()
                    )));
                }
            }
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    Ok(())
}

/// Removes whatever non-directory is at `path`, so a new file, link or
/// node can be created there without following anything.
fn clear(path: &Path) -> std::io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn create_empty(path: &Path, len: u64) -> std::io::Result<()> {
    clear(path)?;
    let flags = rustix::fs::OFlags::NOFOLLOW.bits() as i32;
    let f = OpenOptions::new().write(true).create_new(true).mode(0o600).custom_flags(flags).open(path)?;
    // Setting the length first leaves never-written (all-zero) chunks as holes.
    f.set_len(len)
}

impl Ctx<'_> {
    fn fail(&self, file: usize, why: impl ToString) {
        if self.failed.lock().unwrap_or_else(|p| p.into_inner()).insert(file) {
            self.warnings.push(&self.plan.files[file].path, WarningKind::Failed, why);
        }
    }

    fn is_failed(&self, file: usize) -> bool {
        self.failed.lock().unwrap_or_else(|p| p.into_inner()).contains(&file)
    }
}

/// Locates every chunk, creates the files, then fills them pack by pack.
/// Returns each chunk's length, for verification.
fn write_contents(ctx: &Ctx) -> Result<HashMap<ChunkId, PackEntry>> {
    let mut located: HashMap<ChunkId, (PackId, PackEntry)> = HashMap::new();
    let mut sizes = vec![0u64; ctx.plan.files.len()];
    for (i, file) in ctx.plan.files.iter().enumerate() {
        for chunk in &file.chunks {
            if !located.contains_key(chunk) {
                match ctx.repo.with_index(|i| i.lookup(&BlobId::Chunk(*chunk)))? {
                    Some(loc) => drop(located.insert(*chunk, (loc.pack, loc.entry))),
                    None => {
                        ctx.fail(i, format!("chunk {chunk} is missing from the repository"));
                        continue;
                    }
                }
            }
            sizes[i] += u64::from(located[chunk].1.raw_len);
        }
    }
    let total: u64 = sizes.iter().sum();
    ctx.progress.begin("restore", Some(total));
    sizes.par_iter().enumerate().for_each(|(i, len)| {
        if let Err(e) = create_empty(&ctx.plan.files[i].path, *len) {
            ctx.fail(i, e);
        }
    });
    let mut by_pack: HashMap<PackId, HashMap<ChunkId, Need>> = HashMap::new();
    for (i, file) in ctx.plan.files.iter().enumerate().filter(|(i, _)| !ctx.is_failed(*i)) {
        let mut offset = 0;
        for chunk in &file.chunks {
            let (pack, entry) = located[chunk];
            let need =
                by_pack.entry(pack).or_default().entry(*chunk).or_insert(Need { entry, places: vec![] });
            need.places.push((i, offset));
            offset += u64::from(entry.raw_len);
        }
    }
    by_pack.into_par_iter().for_each(|(pack, needs)| {
        let mut needs: Vec<Need> = needs.into_values().collect();
        needs.sort_by_key(|n| n.entry.offset);
        for group in coalesce(&needs) {
            restore_region(ctx, &pack, group);
        }
    });
    ctx.progress.end();
    Ok(located.into_iter().map(|(c, (_, e))| (c, e)).collect())
}

/// Splits offset-sorted needs into runs that are read with one request.
fn coalesce(needs: &[Need]) -> Vec<&[Need]> {
    let mut groups = Vec::new();
    let mut start = 0;
    for i in 1..=needs.len() {
        let split = i == needs.len() || {
            let first = &needs[start].entry;
            let prev = &needs[i - 1].entry;
            let next = &needs[i].entry;
            let prev_end = u64::from(prev.offset) + u64::from(prev.stored_len);
            u64::from(next.offset) > prev_end + COALESCE_GAP
                || u64::from(next.offset + next.stored_len) - u64::from(first.offset) > MAX_READ
        };
        if split {
            groups.push(&needs[start..i]);
            start = i;
        }
    }
    groups
}

fn restore_region(ctx: &Ctx, pack: &PackId, group: &[Need]) {
    let first = &group[0].entry;
    let last = &group[group.len() - 1].entry;
    let start = u64::from(first.offset);
    let len = (u64::from(last.offset) + u64::from(last.stored_len) - start) as usize;
    let bytes = match ctx.repo.backend().get_range(FileKind::Pack, &pack.to_hex(), start, len) {
        Ok(b) => b,
        Err(e) => {
            group.iter().flat_map(|n| &n.places).for_each(|(f, _)| ctx.fail(*f, format!("pack {pack}: {e}")));
            return;
        }
    };
    for need in group {
        let at = (u64::from(need.entry.offset) - start) as usize;
        let stored = &bytes[at..at + need.entry.stored_len as usize];
        match pack::open(ctx.repo.keys(), &need.entry, stored) {
            Ok(raw) => write_places(ctx, need, &raw),
            Err(e) => need.places.iter().for_each(|(f, _)| ctx.fail(*f, format!("in pack {pack}: {e}"))),
        }
    }
}

fn write_places(ctx: &Ctx, need: &Need, raw: &[u8]) {
    for &(file, offset) in &need.places {
        if ctx.is_failed(file) {
            continue;
        }
        if let Err(e) = write_nonzero(&ctx.plan.files[file].path, raw, offset) {
            ctx.fail(file, e);
            continue;
        }
        ctx.bytes.fetch_add(raw.len() as u64, Ordering::Relaxed);
        ctx.progress.advance(0, raw.len() as u64);
    }
}

/// Filesystem block size assumed for holes; a multiple of every common one.
const HOLE_BLOCK: u64 = 4096;

/// Writes `data` at `offset` except for block-aligned all-zero stretches:
/// the file already has its full length, so those stay holes and a sparse
/// file is restored sparse.
fn write_nonzero(path: &Path, data: &[u8], offset: u64) -> std::io::Result<()> {
    let runs = nonzero_runs(data, offset);
    if runs.is_empty() {
        return Ok(());
    }
    let flags = rustix::fs::OFlags::NOFOLLOW.bits() as i32;
    let f = OpenOptions::new().write(true).custom_flags(flags).open(path)?;
    for run in runs {
        f.write_all_at(&data[run.clone()], offset + run.start as u64)?;
    }
    Ok(())
}

/// The parts of `data` (which starts at file offset `offset`) that must be
/// written: maximal runs of blocks, aligned to file offsets, that are not
/// all zero.
fn nonzero_runs(data: &[u8], offset: u64) -> Vec<std::ops::Range<usize>> {
    let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
    let mut start = 0usize;
    while start < data.len() {
        let to_boundary = (HOLE_BLOCK - (offset + start as u64) % HOLE_BLOCK) as usize;
        let end = (start + to_boundary).min(data.len());
        if data[start..end].iter().any(|b| *b != 0) {
            match runs.last_mut() {
                Some(last) if last.end == start => last.end = end,
                _ => runs.push(start..end),
            }
        }
        start = end;
    }
    runs
}

/// Removes files that could not be restored whole: a partial file must not
/// look like a good one.
fn remove_failed(ctx: &Ctx) {
    for &i in ctx.failed.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        let _ = fs::remove_file(&ctx.plan.files[i].path);
    }
}

/// Hardlinks, then fifos and devices, then symlinks last of all.
fn create_others(ctx: &Ctx) -> u64 {
    let mut made = 0;
    for (leader, path) in &ctx.plan.hardlinks {
        if ctx.is_failed(*leader) {
            ctx.warnings.push(path, WarningKind::Failed, "its hardlinked file could not be restored");
            continue;
        }
        if let Err(e) = clear(path).and_then(|()| fs::hard_link(&ctx.plan.files[*leader].path, path)) {
            ctx.warnings.push(path, WarningKind::Failed, e);
        }
    }
    let mut symlinks = Vec::new();
    for (path, node, _) in &ctx.plan.others {
        let result = match node {
            Node::Symlink { target } => {
                symlinks.push((path, target));
                continue;
            }
            Node::Fifo => make_node(path, rustix::fs::FileType::Fifo, 0),
            Node::CharDevice { rdev } => make_device(path, rustix::fs::FileType::CharacterDevice, *rdev),
            Node::BlockDevice { rdev } => make_device(path, rustix::fs::FileType::BlockDevice, *rdev),
            _ => continue, // sockets are recreated by the programs that own them
        };
        match result {
            Ok(()) => made += 1,
            Err(e) => ctx.warnings.push(path, WarningKind::Failed, e),
        }
    }
    for (path, target) in symlinks {
        match clear(path).and_then(|()| std::os::unix::fs::symlink(OsStr::from_bytes(target), path)) {
            Ok(()) => made += 1,
            Err(e) => ctx.warnings.push(path, WarningKind::Failed, e),
        }
    }
    made
}

fn make_device(path: &Path, kind: rustix::fs::FileType, rdev: u64) -> std::io::Result<()> {
    if !rustix::process::geteuid().is_root() {
        return Err(std::io::Error::new(ErrorKind::PermissionDenied, "device files need root to restore"));
    }
    make_node(path, kind, rdev)
}

fn make_node(path: &Path, kind: rustix::fs::FileType, rdev: u64) -> std::io::Result<()> {
    clear(path)?;
    let mode = rustix::fs::Mode::from_raw_mode(0o600);
    rustix::fs::mknodat(rustix::fs::CWD, path, kind, mode, rdev).map_err(std::io::Error::from)
}

/// Applies metadata to everything restored: files and others first, then
/// directories deepest first (creating children changes a directory's mtime).
fn apply_all_metadata(ctx: &Ctx) {
    let plan = &ctx.plan;
    let files = plan
        .files
        .iter()
        .enumerate()
        .filter(|(i, _)| !ctx.is_failed(*i))
        .map(|(_, f)| (&f.path, &f.meta, false));
    let others = plan
        .others
        .iter()
        .filter(|(p, n, _)| !matches!(n, Node::Socket) && fs::symlink_metadata(p).is_ok())
        .map(|(p, n, m)| (p, m, matches!(n, Node::Symlink { .. })));
    for (path, meta, is_link) in files.chain(others) {
        apply_metadata(ctx, path, meta, is_link);
    }
    for (path, meta) in plan.dirs.iter().rev() {
        apply_metadata(ctx, path, meta, false);
    }
}

/// xattrs (while the file is still writable), owner (root only, before the
/// mode because chown clears setuid), mode, then times.
fn apply_metadata(ctx: &Ctx, path: &Path, meta: &Metadata, is_link: bool) {
    let warn = |what: &str, e: &dyn std::fmt::Display| {
        ctx.warnings.push(path, WarningKind::Metadata, format!("{what}: {e}"));
    };
    for x in &meta.xattrs {
        if let Err(e) = xattr::set(path, OsStr::from_bytes(&x.name), &x.value) {
            warn(&format!("xattr {}", names::escape(&x.name)), &e);
        }
    }
    if rustix::process::geteuid().is_root()
        && let Err(e) = std::os::unix::fs::lchown(path, Some(meta.uid), Some(meta.gid))
    {
        warn("owner", &e);
    }
    if !is_link && let Err(e) = fs::set_permissions(path, fs::Permissions::from_mode(meta.mode)) {
        warn("mode", &e);
    }
    let mtime = filetime::FileTime::from_unix_time(meta.mtime.secs, meta.mtime.nanos);
    if let Err(e) = filetime::set_symlink_file_times(path, mtime, mtime) {
        warn("times", &e);
    }
}

/// Re-reads every restored file and checks each chunk against its id.
fn verify_files(ctx: &Ctx, entries: &HashMap<ChunkId, PackEntry>) -> u64 {
    let checked = AtomicU64::new(0);
    ctx.plan.files.par_iter().enumerate().filter(|(i, _)| !ctx.is_failed(*i)).for_each(|(_, f)| {
        match verify_file(ctx.repo.keys().hasher(), &f.path, &f.chunks, entries) {
            Ok(()) => drop(checked.fetch_add(1, Ordering::Relaxed)),
            Err(e) => ctx.warnings.push(&f.path, WarningKind::Failed, format!("verification failed: {e}")),
        }
    });
    checked.into_inner()
}

fn verify_file(
    hasher: &BlobHasher,
    path: &Path,
    chunks: &[ChunkId],
    entries: &HashMap<ChunkId, PackEntry>,
) -> std::io::Result<()> {
    let mut f = File::open(path)?;
    let mut buf = Vec::new();
    for chunk in chunks {
        let len = entries.get(chunk).map_or(0, |e| e.raw_len as usize);
        buf.resize(len, 0);
        f.read_exact(&mut buf)?;
        if hasher.chunk_id(&buf) != *chunk {
            return Err(std::io::Error::other(format!("contents differ from chunk {chunk}")));
        }
    }
    if f.read(&mut [0u8; 1])? != 0 {
        return Err(std::io::Error::other("file is longer than in the snapshot"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::nonzero_runs;

    #[test]
    fn zero_blocks_are_skipped_at_file_alignment() {
        let mut data = vec![0u8; 3 * 4096];
        data[5000] = 1;
        // The chunk starts 100 bytes into a block, so blocks end at 3996, 8092, ...
        assert_eq!(nonzero_runs(&data, 100), vec![3996..8092]);
        assert!(nonzero_runs(&[0; 10], 0).is_empty());
        // Adjacent non-zero blocks merge into one write.
        assert_eq!(nonzero_runs(&[1; 10], 4090), vec![0..10]);
    }
}
