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
//! file is read or written, and symlinks are created last. So is the
//! target, when others can write into it: every entry is reached through
//! its directory's descriptor (`dirfd`), never by its full path, so a
//! directory swapped for a symlink while the restore runs is refused, not
//! followed, and no write, mode or owner change lands outside the target
//! (and paths longer than `PATH_MAX` restore as well). A file whose data is
//! missing or corrupt is removed and named; the rest is restored.

mod contents;
mod metadata;
mod overwrite;
mod safety;
mod target;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::ErrorKind;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use serde::Serialize;

pub use overwrite::{Change, Overwrite};
pub use safety::{SAFETY_TAGS, SafetySnapshot};

use super::{Warning, WarningKind, Warnings};
use crate::dirfd::{Dir, identity};
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
use metadata::apply_all_metadata;
use target::{
    At, Owned, below, is_dir, is_full, is_root, make_device, make_node, not_a_directory, prepare_target,
    record_made, target_full,
};

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
    /// Directories in place: made or merged into (not those that could not be made).
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

/// What a restore does (or would do) at one path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Nothing is there: create it.
    #[default]
    New,
    /// Something is there: replace it.
    Replace,
    /// It already matches the snapshot: leave it, apply the metadata.
    Unchanged,
    /// Leave it untouched ([`Overwrite::Never`]).
    Skip,
}

impl Action {
    /// `+`, `M`, `=` or `s`, as a dry run shows it.
    pub fn marker(self) -> char {
        match self {
            Action::New => '+',
            Action::Replace => 'M',
            Action::Unchanged => '=',
            Action::Skip => 's',
        }
    }

    /// Whether the restore writes the path.
    pub fn writes(self) -> bool {
        matches!(self, Action::New | Action::Replace)
    }
}

struct PlannedDir {
    at: At,
    /// The directory itself, for what goes inside it and its own metadata.
    dir: Arc<Dir>,
    meta: Metadata,
    /// Not there yet: the restore creates it.
    new: bool,
}

#[derive(Clone)]
struct PlannedFile {
    at: At,
    size: u64,
    chunks: Vec<ChunkId>,
    meta: Metadata,
    action: Action,
    /// For [`Action::Unchanged`]: the identity of the existing file whose
    /// contents were found to match. Its metadata is applied to that file
    /// only, never to one put at its path since.
    found: Option<Owned>,
}

/// Another name of a file restored earlier in the plan.
struct PlannedLink {
    leader: usize,
    at: At,
    action: Action,
}

/// A symlink, fifo or device.
struct PlannedOther {
    at: At,
    node: Node,
    meta: Metadata,
    action: Action,
    /// The identity of what is at its path for this restore: the node it
    /// made (checked to be owned by the restoring user), or the existing one
    /// found to match. Metadata is applied to that only.
    made: OnceLock<Owned>,
}

#[derive(Default)]
struct Plan {
    dirs: Vec<PlannedDir>,
    files: Vec<PlannedFile>,
    hardlinks: Vec<PlannedLink>,
    others: Vec<PlannedOther>,
    /// Directories whose node is damaged or missing: neither they nor
    /// anything below them is restored, and each is named.
    damaged: Vec<Warning>,
}

/// Where each needed chunk is stored; chunks the index lacks are absent.
type Located = HashMap<ChunkId, (PackId, PackEntry)>;

struct Ctx<'a> {
    repo: &'a Repository,
    plan: Plan,
    /// Per planned file, the chunks not yet written: the write that takes
    /// it to zero completes the file and applies its metadata.
    unwritten: Vec<AtomicUsize>,
    /// Per planned file, the identity (device, inode) of the file this
    /// restore created: only that file is written, removed when it is not
    /// whole, or counted whole. One that appeared at its path since the
    /// plan (creating it failed), or replaced it since, is not.
    created: Vec<OnceLock<(u64, u64)>>,
    /// Directories that could not be created: nothing below them is restored.
    unmade: HashSet<PathBuf>,
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
    let (target, root) = prepare_target(&opts.target, opts.repository_dir.as_deref(), opts.dry_run)?;
    let mut plan = make_plan(repo, snap, &target, root, opts.include.as_deref())?;
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
    mut plan: Plan,
    target: &Path,
    located: &Located,
    verify: bool,
    progress: &dyn Progress,
) -> Result<RestoreReport> {
    let warnings = Warnings::default();
    for damaged in &plan.damaged {
        warnings.push_warning(damaged.clone());
    }
    let unmade = create_dirs(&plan, &warnings)?;
    crate::crash::pause("restore-after-dirs");
    // A file in a directory that could not be made keeps its other names:
    // one of them becomes the file, the others link to it.
    plan.adopt_orphans(|at| below(&unmade, &at.path));
    // Files in a directory that could not be made are not begun; the
    // directory's warning names them all.
    let failed = (0..plan.files.len()).filter(|i| below(&unmade, &plan.files[*i].at.path)).collect();
    let ctx = Ctx {
        repo,
        unwritten: plan.files.iter().map(|f| AtomicUsize::new(f.chunks.len())).collect(),
        created: plan.files.iter().map(|_| OnceLock::new()).collect(),
        plan,
        unmade,
        warnings,
        failed: Mutex::new(failed),
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
    crate::crash::pause("restore-before-links");
    let (links, others) = create_others(&ctx);
    crate::crash::pause("restore-before-metadata");
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
    let Ctx { plan, warnings, failed, bytes, unmade, .. } = ctx;
    let failed = failed.into_inner().unwrap_or_else(|p| p.into_inner()).len() as u64;
    let warnings = warnings.into_vec();
    let files_made = plan.files.iter().filter(|f| f.action.writes()).count() as u64 - failed;
    let dirs_made = plan.dirs.iter().filter(|d| !unmade.contains(&d.at.path)).count() as u64;
    Ok(RestoreReport {
        bytes: bytes.into_inner(),
        verified_files: verified,
        incomplete: warnings.iter().any(|w| w.kind == WarningKind::Failed),
        warnings,
        ..counts(&plan, dirs_made, files_made + links, others)
    })
}

/// Ends a restore whose target is full: every file it began and did not
/// write whole is removed (a partial file must not look like a good one),
/// files it never reached are left as they were, and one error says how
/// far it got, counting the `made` links, symlinks and nodes with the files.
fn stopped_full(ctx: &Ctx, path: &Path, error: &std::io::Error, made: u64) -> Error {
    let (mut whole, mut left) = (0, 0);
    for (i, _) in ctx.plan.files.iter().enumerate().filter(|(_, f)| f.action.writes()) {
        let created = ctx.created[i].get().is_some();
        if created && ctx.unwritten[i].load(Ordering::Acquire) == 0 && !ctx.is_failed(i) {
            whole += 1;
            continue;
        }
        ctx.remove_created(i);
        left += 1;
    }
    let links = ctx.plan.hardlinks.iter().filter(|l| l.action.writes()).count();
    let others = ctx.plan.others.iter().filter(|o| o.action.writes()).count();
    let planned = (links + others) as u64;
    target_full(path, error, whole + made, left + planned.saturating_sub(made))
}

/// What a restore would do, from its plan alone.
fn dry_run_report(plan: &Plan, safety_snapshot_needed: bool) -> RestoreReport {
    let (files, others) = plan.count(Action::writes);
    RestoreReport {
        bytes: plan.files.iter().filter(|f| f.action.writes()).map(|f| f.size).sum(),
        safety_snapshot_needed,
        changes: Some(overwrite::changes(plan)),
        incomplete: !plan.damaged.is_empty(),
        warnings: plan.damaged.clone(),
        ..counts(plan, plan.dirs.len() as u64, files, others)
    }
}

/// The counters of a report: directories restored, files (with hardlink
/// names) and others written, plus what the plan left unchanged or skipped.
fn counts(plan: &Plan, dirs: u64, written_files: u64, written_others: u64) -> RestoreReport {
    let (unchanged_files, unchanged_others) = plan.count(|a| a == Action::Unchanged);
    let (skipped_files, skipped_others) = plan.count(|a| a == Action::Skip);
    RestoreReport {
        files: written_files + unchanged_files,
        dirs,
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
        let files = self.files.iter().map(|f| (&f.at, f.action));
        let links = self.hardlinks.iter().map(|l| (&l.at, l.action));
        let others = self.others.iter().map(|o| (&o.at, o.action));
        files
            .chain(links)
            .chain(others)
            .filter(|(_, a)| *a == Action::Replace)
            .map(|(at, _)| at.path.as_path())
    }

    /// Gives each link to be written whose leader is not (the plan leaves
    /// it as it is, or it is `lost`: in a directory that could not be
    /// made) a leader that is: the group's first such name, restored as a
    /// file, which the rest link to. A link that is `lost` itself is left.
    fn adopt_orphans(&mut self, lost: impl Fn(&At) -> bool) {
        let Plan { files, hardlinks, .. } = self;
        let mut adopted: HashMap<usize, usize> = HashMap::new();
        hardlinks.retain_mut(|link| {
            let leader = &files[link.leader];
            if !link.action.writes() || lost(&link.at) || (leader.action.writes() && !lost(&leader.at)) {
                return true;
            }
            if let Some(&file) = adopted.get(&link.leader) {
                link.leader = file;
                return true;
            }
            adopted.insert(link.leader, files.len());
            let file =
                PlannedFile { at: link.at.clone(), action: link.action, found: None, ..leader.clone() };
            files.push(file);
            false
        });
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

/// The plan's directories by depth, from the target down to the directory
/// the walk is in: what the next entry is placed in. The walk is depth
/// first, so an entry's directory is always the last one at its depth.
struct Placer {
    root: Arc<Dir>,
    open: Vec<(Arc<Dir>, PathBuf)>,
}

impl Placer {
    /// Where the entry at `dest` (`depth` components below the snapshot's root) goes.
    fn at(&mut self, depth: usize, dest: PathBuf) -> At {
        self.open.truncate(depth.saturating_sub(1));
        let (parent, parent_path) = self.open.last().map_or((&self.root, None), |(d, p)| (d, Some(p)));
        debug_assert!(parent_path.is_none_or(|p| dest.parent() == Some(p.as_path())), "{dest:?}");
        At { parent: parent.clone(), path: dest }
    }

    /// Plans the directory at `at`, which is what entries one deeper go into.
    fn enter(&mut self, at: At, meta: Metadata) -> PlannedDir {
        let dir = at.parent.child(at.name(), None);
        self.open.push((dir.clone(), at.path.clone()));
        PlannedDir { at, dir, meta, new: true }
    }
}

fn make_plan(
    repo: &Repository,
    snap: &Snapshot,
    target: &Path,
    root: Arc<Dir>,
    include: Option<&Path>,
) -> Result<Plan> {
    let include = names::split_optional_path(include)?;
    let mut plan = Plan::default();
    let mut placer = Placer { root, open: Vec::new() };
    // The directories leading to an included path are restored with their own metadata.
    for depth in 1..include.len() {
        if let Found::Entry(e) = tree::find(repo, snap.tree, &include[..depth])? {
            let at = placer.at(depth, names::join(target, &include[..depth]));
            plan.dirs.push(placer.enter(at, e.meta));
        }
    }
    let mut leaders: HashMap<(u64, u64), usize> = HashMap::new();
    let store = tree::WithHoles::new(repo);
    tree::walk_path(&store, snap.tree, &include, &mut |path, entry| {
        let at = placer.at(path.len(), names::join(target, path));
        match &entry.node {
            Node::Dir { .. } => plan.dirs.push(placer.enter(at, entry.meta.clone())),
            Node::File { size, chunks } => {
                let key = (entry.meta.dev, entry.meta.inode);
                match leaders.get(&key) {
                    Some(&leader) if entry.meta.nlink > 1 => {
                        plan.hardlinks.push(PlannedLink { leader, at, action: Action::New });
                    }
                    _ => {
                        if entry.meta.nlink > 1 {
                            leaders.insert(key, plan.files.len());
                        }
                        plan.files.push(PlannedFile {
                            at,
                            size: *size,
                            chunks: chunks.clone(),
                            meta: entry.meta.clone(),
                            action: Action::New,
                            found: None,
                        });
                    }
                }
            }
            // Sockets are recreated by the programs that own them.
            Node::Socket => {}
            other => plan.others.push(PlannedOther {
                at,
                node: other.clone(),
                meta: entry.meta.clone(),
                action: Action::New,
                made: OnceLock::new(),
            }),
        }
        Ok(())
    })?;
    for hole in store.into_holes() {
        // A directory whose node is lost is not made; one that lost a page
        // is, with the entries of its other pages.
        if hole.page.is_none() {
            let dest = names::join(target, &hole.path);
            plan.dirs.retain(|d| d.at.path != dest);
        }
        plan.damaged.push(super::hole_warning(&hole, target, "restored"));
    }
    Ok(plan)
}

/// Creates the directories (private until their metadata is applied),
/// each recording the identity of the one it made (see [`Dir::make`]). An
/// existing symlink or file where a directory belongs would let later
/// writes escape the target, so it stops the restore here; so does a full
/// target. A directory that cannot be made for another reason (a name the
/// target's file system does not take) is one warning, and nothing below
/// it is restored: those are returned.
fn create_dirs(plan: &Plan, warnings: &Warnings) -> Result<HashSet<PathBuf>> {
    let mut unmade = HashSet::new();
    for PlannedDir { at, dir, .. } in &plan.dirs {
        if below(&unmade, &at.path) {
            unmade.insert(at.path.clone());
            continue;
        }
        match dir.make(0o700) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                if !is_dir(&at.stat().at(&at.path)?) {
                    return Err(not_a_directory(&at.path));
                }
            }
            Err(e) if is_full(&e) => {
                let (files, others) = plan.count(Action::writes);
                return Err(target_full(&at.path, &e, 0, files + others));
            }
            Err(e) => {
                let why = format!("cannot create the directory: {e}; nothing below it is restored");
                warnings.push(&at.path, WarningKind::Failed, why);
                unmade.insert(at.path.clone());
            }
        }
    }
    Ok(unmade)
}

impl Ctx<'_> {
    /// A file that could not be written: one warning, unless the target is
    /// full, which stops the restore instead.
    fn write_failed(&self, file: usize, error: std::io::Error) {
        if !is_full(&error) {
            return self.fail(file, error);
        }
        self.failed.lock().unwrap_or_else(|p| p.into_inner()).insert(file);
        self.stop_full(&self.plan.files[file].at.path, error);
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
            self.warnings.push(&self.plan.files[file].at.path, WarningKind::Failed, why);
        }
    }

    /// Whether `at` lies in a directory that could not be created.
    fn unmade(&self, at: &At) -> bool {
        below(&self.unmade, &at.path)
    }

    fn is_failed(&self, file: usize) -> bool {
        self.failed.lock().unwrap_or_else(|p| p.into_inner()).contains(&file)
    }

    /// Opens planned file `file` for writing, if it is still the file this
    /// restore created (not another one put in its place since).
    fn open_created(&self, file: usize) -> std::io::Result<fs::File> {
        let at = &self.plan.files[file].at;
        let f = at.parent.open(at.name(), rustix::fs::OFlags::WRONLY, 0)?;
        // Not completed yet (its owner is set by the write that completes
        // it), so still this process's: an inode number used again by a
        // file someone else made in its place is not taken for it.
        let st = rustix::fs::fstat(&f)?;
        match self.created[file].get() {
            Some(made) if *made == identity(&st) && st.st_uid == rustix::process::geteuid().as_raw() => Ok(f),
            _ => Err(std::io::Error::other("replaced by another file while being restored")),
        }
    }

    /// Removes planned file `file` if it is the one this restore created.
    fn remove_created(&self, file: usize) {
        let at = &self.plan.files[file].at;
        let Some(made) = self.created[file].get() else { return };
        if at.stat().is_ok_and(|st| identity(&st) == *made) {
            let _ = at.parent.remove(at.name());
        }
    }
}

/// Removes files that could not be restored whole: a partial file must not
/// look like a good one.
fn remove_failed(ctx: &Ctx) {
    for &i in ctx.failed.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        ctx.remove_created(i);
    }
}

/// Hardlinks, then fifos and devices, then symlinks last of all. Returns
/// how many links and how many others were made.
fn create_others(ctx: &Ctx) -> (u64, u64) {
    let mut links = 0;
    let made_here = |at: &At| !ctx.unmade(at);
    for PlannedLink { leader, at, .. } in
        ctx.plan.hardlinks.iter().filter(|l| l.action.writes() && made_here(&l.at))
    {
        if ctx.stopped() {
            return (links, 0);
        }
        if ctx.is_failed(*leader) {
            ctx.warnings.push(&at.path, WarningKind::Failed, "its hardlinked file could not be restored");
            continue;
        }
        match at.clear().and_then(|()| link_to_created(ctx, *leader, at)) {
            Ok(()) => links += 1,
            Err(e) => ctx.make_failed(&at.path, e),
        }
    }
    let mut made = 0;
    let mut symlinks = Vec::new();
    for PlannedOther { at, node, made: made_id, .. } in
        ctx.plan.others.iter().filter(|o| o.action.writes() && made_here(&o.at))
    {
        let result = match node {
            Node::Symlink { target } => {
                symlinks.push((at, target, made_id));
                continue;
            }
            _ if ctx.stopped() => return (links, made),
            Node::Fifo => make_node(at, rustix::fs::FileType::Fifo, 0),
            Node::CharDevice { rdev } => make_device(at, rustix::fs::FileType::CharacterDevice, *rdev),
            Node::BlockDevice { rdev } => make_device(at, rustix::fs::FileType::BlockDevice, *rdev),
            _ => continue, // only symlinks, fifos and devices are planned as others
        };
        match result {
            Ok(()) => {
                record_made(at, made_id);
                made += 1;
            }
            Err(e) => ctx.make_failed(&at.path, e),
        }
    }
    for (at, target, made_id) in symlinks.into_iter().take_while(|_| !ctx.stopped()) {
        match at.clear().and_then(|()| at.parent.symlink(target, at.name())) {
            Ok(()) => {
                record_made(at, made_id);
                made += 1;
            }
            Err(e) => ctx.make_failed(&at.path, e),
        }
    }
    (links, made)
}

/// Makes `at` another name of the file planned as `leader`, if what is at
/// the leader's path is still the file this restore created there: linking
/// by name would link whatever was put there since (a symlink, or a file
/// of whoever can write into the leader's directory) into a directory
/// they may not be able to write into.
fn link_to_created(ctx: &Ctx, leader: usize, at: &At) -> std::io::Result<()> {
    let from = &ctx.plan.files[leader].at;
    let fd = from.parent.open_path(from.name())?;
    let st = rustix::fs::fstat(&fd)?;
    // Complete, so owned by the snapshot's owner (when root) by now.
    let owner = if is_root() { ctx.plan.files[leader].meta.uid } else { rustix::process::geteuid().as_raw() };
    match ctx.created[leader].get() {
        Some(made) if *made == identity(&st) && st.st_uid == owner => {
            at.parent.hard_link_fd(at.name(), fd.as_fd())
        }
        _ => Err(std::io::Error::other(
            "its hardlinked file was replaced by another while being restored; not linked",
        )),
    }
}
