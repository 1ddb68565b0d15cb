//! `snap restore`: snapshot -> plan -> what already exists at each planned
//! path (`overwrite`) -> if anything is replaced, a safety snapshot of it
//! (`safety`) -> directories -> files created empty (0600) -> contents,
//! grouped by pack so each needed pack region is read once and each blob
//! decoded once, written in parallel, each file's metadata applied by the
//! write that completes it -> hardlinks, special files, symlinks -> their
//! metadata, then the directories', deepest first. `--verify` re-reads what was written and
//! checks every chunk against its id. A dry run stops after the plan.
//!
//! The snapshot is treated as hostile: every name was validated when its
//! tree was decoded (one component, not `.`/`..`, no `/`), an existing
//! non-directory where a directory is needed stops the restore before any
//! file is read or written, files are opened with `O_NOFOLLOW`, and symlinks
//! are created last, so nothing is ever written through a link. A file whose
//! data is missing or corrupt is removed and named; the rest is restored.

mod contents;
mod overwrite;
mod safety;

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use rayon::prelude::*;
use serde::Serialize;

pub use overwrite::{Action, Change, Overwrite};
pub use safety::{SAFETY_TAGS, SafetySnapshot};

use super::{Warning, WarningKind, Warnings};
use crate::error::{Error, IoContext, Result};
use crate::format::pack::PackEntry;
use crate::format::snapshot::Snapshot;
use crate::format::tree::{Metadata, Node};
use crate::id::{ChunkId, PackId, SnapshotId};
use crate::names;
use crate::progress::Progress;
use crate::repo::Repository;
use crate::tree::{self, Found};
use contents::{locate_chunks, verify_files, write_contents};

/// What to restore, and where.
#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// Directory to restore into (created if missing).
    pub target: PathBuf,
    /// Only this path of the snapshot (and what is below it).
    pub include: Option<PathBuf>,
    /// Re-read and check every file written.
    pub verify: bool,
    /// The repository directory, when local: never restored into.
    pub repository_dir: Option<PathBuf>,
    /// What happens to a non-directory already where the snapshot puts something.
    pub overwrite: Overwrite,
    /// Decide everything and write nothing: the report lists the changes.
    pub dry_run: bool,
    /// Back up what the restore would replace before writing; `None`: don't.
    pub safety: Option<SafetySnapshot>,
}

/// The outcome of a restore (or what a dry run would do).
#[derive(Clone, Debug, Default, Serialize)]
pub struct RestoreReport {
    /// Regular files (every hardlink name counts) holding the snapshot's contents.
    pub files: u64,
    pub dirs: u64,
    /// Symlinks, fifos and devices in place.
    pub others: u64,
    /// File bytes written.
    pub bytes: u64,
    /// Files whose contents were checked after writing.
    pub verified_files: u64,
    /// Non-directories created or replaced.
    pub written: u64,
    /// Existing ones that already matched the snapshot: left alone, metadata applied.
    pub unchanged: u64,
    /// Existing ones left untouched by [`Overwrite::Never`].
    pub skipped: u64,
    /// Whether safety snapshots were asked for and the restore replaces something.
    pub safety_snapshot_needed: bool,
    /// The safety snapshot taken before anything was written.
    pub safety_snapshot: Option<SnapshotId>,
    /// A dry run's list: every path it would create, replace, leave alone or skip.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<Vec<Change>>,
    /// Per-path trouble.
    pub warnings: Vec<Warning>,
    /// True when something could not be restored.
    pub incomplete: bool,
}

struct PlannedDir {
    path: PathBuf,
    meta: Metadata,
    /// Not there yet: the restore creates it.
    new: bool,
}

#[derive(Clone)]
struct PlannedFile {
    path: PathBuf,
    size: u64,
    chunks: Vec<ChunkId>,
    meta: Metadata,
    action: Action,
}

/// Another name of a file restored earlier in the plan.
struct PlannedLink {
    leader: usize,
    path: PathBuf,
    action: Action,
}

/// A symlink, fifo or device.
struct PlannedOther {
    path: PathBuf,
    node: Node,
    meta: Metadata,
    action: Action,
}

#[derive(Default)]
struct Plan {
    dirs: Vec<PlannedDir>,
    files: Vec<PlannedFile>,
    hardlinks: Vec<PlannedLink>,
    others: Vec<PlannedOther>,
}

/// Where each needed chunk is stored; chunks the index lacks are absent.
type Located = HashMap<ChunkId, (PackId, PackEntry)>;

struct Ctx<'a> {
    repo: &'a Repository,
    plan: Plan,
    /// Per planned file, the chunks not yet written: the write that takes
    /// it to zero completes the file and applies its metadata.
    unwritten: Vec<AtomicUsize>,
    /// Per planned file, whether this restore created it: only such a file
    /// may be removed when it is not whole, or counted whole. One that
    /// appeared at its path since the plan (creating it failed) is not.
    created: Vec<std::sync::atomic::AtomicBool>,
    warnings: Warnings,
    failed: Mutex<HashSet<usize>>,
    /// Set by the first write that found the target full: every later
    /// write would fail the same way, so the restore stops there.
    full: OnceLock<(PathBuf, std::io::Error)>,
    progress: &'a dyn Progress,
    bytes: AtomicU64,
    /// Entries whose setuid or setgid bit was left off (not root).
    special_dropped: AtomicU64,
}

/// Restores `snap` (or the part named by `include`) into the target.
pub fn restore(
    repo: &Repository,
    snap: &Snapshot,
    opts: &RestoreOptions,
    progress: &dyn Progress,
) -> Result<RestoreReport> {
    let target = prepare_target(&opts.target, opts.repository_dir.as_deref(), opts.dry_run)?;
    let mut plan = make_plan(repo, snap, &target, opts.include.as_deref())?;
    let located = locate_chunks(repo, &plan)?;
    overwrite::decide(&mut plan, opts.overwrite, repo.keys().hasher(), &located)?;
    let safety_needed = opts.safety.is_some() && plan.replaced().next().is_some();
    if opts.dry_run {
        return Ok(dry_run_report(&plan, safety_needed));
    }
    let safety = match &opts.safety {
        Some(s) if safety_needed => {
            let roots = safety::roots(plan.replaced());
            Some(safety::take(repo, roots, s, opts.repository_dir.as_deref(), progress)?)
        }
        _ => None,
    };
    create_dirs(&plan)?;
    let mut report = write_plan(repo, plan, &target, &located, opts.verify, progress)?;
    report.safety_snapshot_needed = safety_needed;
    if let Some((id, warnings)) = safety {
        report.safety_snapshot = Some(id);
        report.warnings.extend(warnings);
    }
    Ok(report)
}

/// Writes what the plan says to write into the created directories, then
/// applies the metadata, then verifies if asked.
fn write_plan(
    repo: &Repository,
    plan: Plan,
    target: &Path,
    located: &Located,
    verify: bool,
    progress: &dyn Progress,
) -> Result<RestoreReport> {
    let ctx = Ctx {
        repo,
        unwritten: plan.files.iter().map(|f| AtomicUsize::new(f.chunks.len())).collect(),
        created: plan.files.iter().map(|_| Default::default()).collect(),
        plan,
        warnings: Warnings::default(),
        failed: Mutex::new(HashSet::new()),
        full: OnceLock::new(),
        progress,
        bytes: AtomicU64::new(0),
        special_dropped: AtomicU64::new(0),
    };
    repo.in_io_pool(|| write_contents(&ctx, located));
    if let Some((path, error)) = ctx.full.get() {
        return Err(stopped_full(&ctx, path, error, 0));
    }
    remove_failed(&ctx);
    let (links, others) = create_others(&ctx);
    apply_all_metadata(&ctx);
    if let Some((path, error)) = ctx.full.get() {
        return Err(stopped_full(&ctx, path, error, links + others));
    }
    let dropped = ctx.special_dropped.load(Ordering::Relaxed);
    if dropped > 0 {
        let why = format!(
            "setuid and setgid bits left off {dropped} file(s): without root their owners cannot be set, and \
             they would run as the restoring user"
        );
        ctx.warnings.push(target, WarningKind::Metadata, why);
    }
    let verified = if verify { verify_files(&ctx, located) } else { 0 };
    let Ctx { plan, warnings, failed, bytes, .. } = ctx;
    let failed = failed.into_inner().unwrap_or_else(|p| p.into_inner()).len() as u64;
    let warnings = warnings.into_vec();
    let files_made = plan.files.iter().filter(|f| f.action.writes()).count() as u64 - failed;
    Ok(RestoreReport {
        bytes: bytes.into_inner(),
        verified_files: verified,
        incomplete: warnings.iter().any(|w| w.kind == WarningKind::Failed),
        warnings,
        ..counts(&plan, files_made + links, others)
    })
}

/// Ends a restore whose target is full: every file it began and did not
/// write whole is removed (a partial file must not look like a good one),
/// files it never reached are left as they were, and one error says how
/// far it got, counting the `made` links, symlinks and nodes with the files.
fn stopped_full(ctx: &Ctx, path: &Path, error: &std::io::Error, made: u64) -> Error {
    let (mut whole, mut left) = (0, 0);
    for (i, file) in ctx.plan.files.iter().enumerate().filter(|(_, f)| f.action.writes()) {
        let created = ctx.created[i].load(Ordering::Acquire);
        if created && ctx.unwritten[i].load(Ordering::Acquire) == 0 && !ctx.is_failed(i) {
            whole += 1;
            continue;
        }
        if created {
            let _ = fs::remove_file(&file.path);
        }
        left += 1;
    }
    let links = ctx.plan.hardlinks.iter().filter(|l| l.action.writes()).count();
    let others = ctx.plan.others.iter().filter(|o| o.action.writes()).count();
    let planned = (links + others) as u64;
    target_full(path, error, whole + made, left + planned.saturating_sub(made))
}

fn target_full(path: &Path, error: &std::io::Error, whole: u64, left: u64) -> Error {
    Error::TargetFull { path: path.to_path_buf(), detail: error.to_string(), whole, left }
}

/// Whether an error says the target file system has no room (space,
/// inodes or quota): every later write would fail the same way.
fn is_full(error: &std::io::Error) -> bool {
    [rustix::io::Errno::NOSPC, rustix::io::Errno::DQUOT]
        .iter()
        .any(|e| error.raw_os_error() == Some(e.raw_os_error()))
}

/// What a restore would do, from its plan alone.
fn dry_run_report(plan: &Plan, safety_snapshot_needed: bool) -> RestoreReport {
    let (files, others) = plan.count(Action::writes);
    RestoreReport {
        bytes: plan.files.iter().filter(|f| f.action.writes()).map(|f| f.size).sum(),
        safety_snapshot_needed,
        changes: Some(overwrite::changes(plan)),
        ..counts(plan, files, others)
    }
}

/// The counters of a report: files (with hardlink names) and others
/// written, plus what the plan left unchanged or skipped.
fn counts(plan: &Plan, written_files: u64, written_others: u64) -> RestoreReport {
    let (unchanged_files, unchanged_others) = plan.count(|a| a == Action::Unchanged);
    let (skipped_files, skipped_others) = plan.count(|a| a == Action::Skip);
    RestoreReport {
        files: written_files + unchanged_files,
        dirs: plan.dirs.len() as u64,
        others: written_others + unchanged_others,
        written: written_files + written_others,
        unchanged: unchanged_files + unchanged_others,
        skipped: skipped_files + skipped_others,
        ..Default::default()
    }
}

impl Plan {
    /// Where something that exists is replaced.
    fn replaced(&self) -> impl Iterator<Item = &Path> {
        let files = self.files.iter().map(|f| (&f.path, f.action));
        let links = self.hardlinks.iter().map(|l| (&l.path, l.action));
        let others = self.others.iter().map(|o| (&o.path, o.action));
        files.chain(links).chain(others).filter(|(_, a)| *a == Action::Replace).map(|(p, _)| p.as_path())
    }

    /// How many files (every hardlink name counts) and others have an
    /// action `wanted` accepts.
    fn count(&self, wanted: impl Fn(Action) -> bool) -> (u64, u64) {
        let files = self.files.iter().filter(|f| wanted(f.action)).count()
            + self.hardlinks.iter().filter(|l| wanted(l.action)).count();
        let others = self.others.iter().filter(|o| wanted(o.action)).count();
        (files as u64, others as u64)
    }
}

/// Checks the target before creating anything (a target inside the
/// repository is refused without leaving a trace there), then creates it
/// unless this is a dry run. Returns it resolved through symlinks.
fn prepare_target(target: &Path, repo_dir: Option<&Path>, dry_run: bool) -> Result<PathBuf> {
    let resolved = resolve_existing_prefix(target)?;
    if let Some(dir) = repo_dir {
        let repo = dir.canonicalize().at(dir)?;
        if resolved.starts_with(&repo) {
            return Err(Error::InvalidInput(format!(
                "cannot restore into {}: it lies inside the repository",
                target.display()
            )));
        }
    }
    if fs::metadata(&resolved).is_ok_and(|m| !m.is_dir()) {
        return Err(Error::InvalidInput(format!(
            "cannot restore into {}: it is not a directory",
            target.display()
        )));
    }
    if dry_run {
        return Ok(resolved);
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
    let include = names::split_optional_path(include)?;
    let mut plan = Plan::default();
    // The directories leading to an included path are restored with their own metadata.
    for depth in 1..include.len() {
        if let Found::Entry(e) = tree::find(repo, snap.tree, &include[..depth])? {
            plan.dirs.push(PlannedDir {
                path: names::join(target, &include[..depth]),
                meta: e.meta,
                new: true,
            });
        }
    }
    let mut leaders: HashMap<(u64, u64), usize> = HashMap::new();
    tree::walk_path(repo, snap.tree, &include, &mut |path, entry| {
        let dest = names::join(target, path);
        match &entry.node {
            Node::Dir { .. } => {
                plan.dirs.push(PlannedDir { path: dest, meta: entry.meta.clone(), new: true })
            }
            Node::File { size, chunks } => {
                let key = (entry.meta.dev, entry.meta.inode);
                match leaders.get(&key) {
                    Some(&leader) if entry.meta.nlink > 1 => {
                        plan.hardlinks.push(PlannedLink { leader, path: dest, action: Action::New });
                    }
                    _ => {
                        if entry.meta.nlink > 1 {
                            leaders.insert(key, plan.files.len());
                        }
                        plan.files.push(PlannedFile {
                            path: dest,
                            size: *size,
                            chunks: chunks.clone(),
                            meta: entry.meta.clone(),
                            action: Action::New,
                        });
                    }
                }
            }
            // Sockets are recreated by the programs that own them.
            Node::Socket => {}
            other => plan.others.push(PlannedOther {
                path: dest,
                node: other.clone(),
                meta: entry.meta.clone(),
                action: Action::New,
            }),
        }
        Ok(())
    })?;
    Ok(plan)
}

/// Creates the directories (private until their metadata is applied). An
/// existing symlink or file where a directory belongs would let later
/// writes escape the target, so it stops the restore here.
fn create_dirs(plan: &Plan) -> Result<()> {
    for PlannedDir { path, .. } in &plan.dirs {
        match fs::DirBuilder::new().mode(0o700).create(path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                if !fs::symlink_metadata(path).at(path)?.is_dir() {
                    return Err(not_a_directory(path));
                }
            }
            Err(e) if is_full(&e) => {
                let (files, others) = plan.count(Action::writes);
                return Err(target_full(path, &e, 0, files + others));
            }
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    Ok(())
}

/// The error that stops a restore finding a non-directory where a directory belongs.
fn not_a_directory(path: &Path) -> Error {
    Error::InvalidInput(format!("cannot restore: {} exists and is not a directory", path.display()))
}

/// Removes whatever non-directory is at `path`, so a new file, link or
/// node can be created there without following anything.
fn clear(path: &Path) -> std::io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Whether this process may set owners and make devices (asked once: a
/// restore would otherwise ask for every file).
fn is_root() -> bool {
    static ROOT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ROOT.get_or_init(|| rustix::process::geteuid().is_root())
}

/// Creates a file of `len` bytes in place of whatever was at `path` when
/// the plan says something is there. Setting the length first leaves
/// never-written (all-zero) chunks as holes.
fn create_sized(path: &Path, len: u64, action: Action) -> std::io::Result<fs::File> {
    // Where the plan found nothing, nothing is removed: if something has
    // appeared since, creating fails instead of replacing it.
    if action != Action::New {
        clear(path)?;
    }
    let flags = rustix::fs::OFlags::NOFOLLOW.bits() as i32;
    let f = OpenOptions::new().write(true).create_new(true).mode(0o600).custom_flags(flags).open(path)?;
    // Made here, so taken back here if it cannot get its length: the
    // caller only removes what it knows it created.
    f.set_len(len).inspect_err(|_| drop(fs::remove_file(path)))?;
    Ok(f)
}

impl Ctx<'_> {
    /// A file that could not be written: one warning, unless the target is
    /// full, which stops the restore instead.
    fn write_failed(&self, file: usize, error: std::io::Error) {
        if !is_full(&error) {
            return self.fail(file, error);
        }
        self.failed.lock().unwrap_or_else(|p| p.into_inner()).insert(file);
        self.stop_full(&self.plan.files[file].path, error);
    }

    /// Stops the restore: the target had no room for what goes at `path`.
    fn stop_full(&self, path: &Path, error: std::io::Error) {
        let _ = self.full.set((path.to_path_buf(), error));
    }

    /// A link, symlink or node that could not be made: one warning, unless
    /// the target is full, which stops the restore instead.
    fn make_failed(&self, path: &Path, error: std::io::Error) {
        if is_full(&error) {
            self.stop_full(path, error);
        } else {
            self.warnings.push(path, WarningKind::Failed, error);
        }
    }

    /// Whether the restore stopped (the target is full).
    fn stopped(&self) -> bool {
        self.full.get().is_some()
    }

    fn fail(&self, file: usize, why: impl ToString) {
        if self.failed.lock().unwrap_or_else(|p| p.into_inner()).insert(file) {
            self.warnings.push(&self.plan.files[file].path, WarningKind::Failed, why);
        }
    }

    fn is_failed(&self, file: usize) -> bool {
        self.failed.lock().unwrap_or_else(|p| p.into_inner()).contains(&file)
    }
}

/// Removes files that could not be restored whole: a partial file must not
/// look like a good one.
fn remove_failed(ctx: &Ctx) {
    for &i in ctx.failed.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        if ctx.created[i].load(Ordering::Acquire) {
            let _ = fs::remove_file(&ctx.plan.files[i].path);
        }
    }
}

/// Hardlinks, then fifos and devices, then symlinks last of all. Returns
/// how many links and how many others were made.
fn create_others(ctx: &Ctx) -> (u64, u64) {
    let mut links = 0;
    for PlannedLink { leader, path, .. } in ctx.plan.hardlinks.iter().filter(|l| l.action.writes()) {
        if ctx.stopped() {
            return (links, 0);
        }
        if ctx.is_failed(*leader) {
            ctx.warnings.push(path, WarningKind::Failed, "its hardlinked file could not be restored");
            continue;
        }
        match clear(path).and_then(|()| fs::hard_link(&ctx.plan.files[*leader].path, path)) {
            Ok(()) => links += 1,
            Err(e) => ctx.make_failed(path, e),
        }
    }
    let mut made = 0;
    let mut symlinks = Vec::new();
    for PlannedOther { path, node, .. } in ctx.plan.others.iter().filter(|o| o.action.writes()) {
        let result = match node {
            Node::Symlink { target } => {
                symlinks.push((path, target));
                continue;
            }
            _ if ctx.stopped() => return (links, made),
            Node::Fifo => make_node(path, rustix::fs::FileType::Fifo, 0),
            Node::CharDevice { rdev } => make_device(path, rustix::fs::FileType::CharacterDevice, *rdev),
            Node::BlockDevice { rdev } => make_device(path, rustix::fs::FileType::BlockDevice, *rdev),
            _ => continue, // only symlinks, fifos and devices are planned as others
        };
        match result {
            Ok(()) => made += 1,
            Err(e) => ctx.make_failed(path, e),
        }
    }
    for (path, target) in symlinks.into_iter().take_while(|_| !ctx.stopped()) {
        match clear(path).and_then(|()| std::os::unix::fs::symlink(OsStr::from_bytes(target), path)) {
            Ok(()) => made += 1,
            Err(e) => ctx.make_failed(path, e),
        }
    }
    (links, made)
}

fn make_device(path: &Path, kind: rustix::fs::FileType, rdev: u64) -> std::io::Result<()> {
    if !is_root() {
        return Err(std::io::Error::new(ErrorKind::PermissionDenied, "device files need root to restore"));
    }
    make_node(path, kind, rdev)
}

fn make_node(path: &Path, kind: rustix::fs::FileType, rdev: u64) -> std::io::Result<()> {
    clear(path)?;
    let mode = rustix::fs::Mode::from_raw_mode(0o600);
    rustix::fs::mknodat(rustix::fs::CWD, path, kind, mode, rdev).map_err(std::io::Error::from)
}

/// Applies metadata to what the restore did not write but leaves in place
/// (not to what was skipped), and to what it made besides file contents:
/// files and others first, in parallel, then directories deepest first
/// (creating children changes a directory's mtime). Written files have
/// theirs already.
fn apply_all_metadata(ctx: &Ctx) {
    let plan = &ctx.plan;
    let files = plan
        .files
        .iter()
        .enumerate()
        .filter(|(i, f)| f.action == Action::Unchanged && !ctx.is_failed(*i))
        .map(|(_, f)| (&f.path, &f.meta, false));
    let others = plan
        .others
        .iter()
        .filter(|o| o.action != Action::Skip && fs::symlink_metadata(&o.path).is_ok())
        .map(|o| (&o.path, &o.meta, matches!(o.node, Node::Symlink { .. })));
    let paths: Vec<_> = files.chain(others).collect();
    let apply = |path: &Path, meta, to| {
        if let Err(e) = apply_metadata(ctx, path, meta, to) {
            ctx.stop_full(path, e);
        }
    };
    paths
        .par_iter()
        .filter(|_| !ctx.stopped())
        .for_each(|(path, meta, is_link)| apply(path, meta, Applied::Path { is_link: *is_link }));
    for dir in plan.dirs.iter().rev().take_while(|_| !ctx.stopped()) {
        apply(&dir.path, &dir.meta, Applied::Dir);
    }
}

/// The mode bits to restore. Without root the owner cannot be set, so a
/// setuid or setgid file would run as the restoring user (or group): those
/// bits are left off and counted, as GNU tar does. A directory's setgid
/// bit only passes its group on, and stays.
fn restored_mode(ctx: &Ctx, mode: u32, to: Applied) -> u32 {
    const SPECIAL: u32 = 0o6000;
    if is_root() || mode & SPECIAL == 0 || matches!(to, Applied::Dir) {
        return mode;
    }
    ctx.special_dropped.fetch_add(1, Ordering::Relaxed);
    mode & !SPECIAL
}

/// What metadata is applied through: a file the restore has open, or the
/// path itself (a symlink at it is not followed).
#[derive(Clone, Copy)]
enum Applied<'a> {
    Open(&'a fs::File),
    Path {
        is_link: bool,
    },
    /// A directory, by its path.
    Dir,
}

/// xattrs (while the file is still writable), owner (root only, before the
/// mode because chown clears setuid), mode, then times, to what is at
/// `path`. Problems are warnings about `path`, except a target without
/// room for an xattr: that error is returned, to stop the restore.
fn apply_metadata(ctx: &Ctx, path: &Path, meta: &Metadata, to: Applied) -> std::io::Result<()> {
    let warn = |what: &str, e: &dyn std::fmt::Display| {
        ctx.warnings.push(path, WarningKind::Metadata, format!("{what}: {e}"));
    };
    for x in &meta.xattrs {
        let name = OsStr::from_bytes(&x.name);
        let set = match to {
            Applied::Open(f) => xattr::FileExt::set_xattr(f, name, &x.value),
            Applied::Path { .. } | Applied::Dir => xattr::set(path, name, &x.value),
        };
        match set {
            Err(e) if is_full(&e) => return Err(e),
            Err(e) => warn(&format!("xattr {}", names::escape(&x.name)), &e),
            Ok(()) => {}
        }
    }
    if is_root() {
        let (uid, gid) = (Some(meta.uid), Some(meta.gid));
        let chown = match to {
            Applied::Open(f) => std::os::unix::fs::fchown(f, uid, gid),
            Applied::Path { .. } | Applied::Dir => std::os::unix::fs::lchown(path, uid, gid),
        };
        if let Err(e) = chown {
            warn("owner", &e);
        }
    }
    let mode = fs::Permissions::from_mode(restored_mode(ctx, meta.mode, to));
    let chmod = match to {
        Applied::Open(f) => f.set_permissions(mode),
        Applied::Path { is_link: true } => Ok(()),
        Applied::Path { is_link: false } | Applied::Dir => fs::set_permissions(path, mode),
    };
    if let Err(e) = chmod {
        warn("mode", &e);
    }
    let mtime = filetime::FileTime::from_unix_time(meta.mtime.secs, meta.mtime.nanos);
    let times = match to {
        Applied::Open(f) => filetime::set_file_handle_times(f, Some(mtime), Some(mtime)),
        Applied::Path { .. } | Applied::Dir => filetime::set_symlink_file_times(path, mtime, mtime),
    };
    if let Err(e) = times {
        warn("times", &e);
    }
    Ok(())
}
