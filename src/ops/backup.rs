//! `snap backup`: walk the sources, reuse unchanged files from the parent
//! snapshot, chunk/hash/compress the rest in parallel, build the tree bottom
//! up, then commit: packs and index first (`BlobWriter::write`), the
//! snapshot file last.
//!
//! Trouble with one source path (vanished, unreadable, changed while read)
//! becomes a warning and the snapshot records what could be read; trouble
//! with the repository (a failed write, a full disk) aborts before the
//! snapshot is written, so nothing refers to data that is not there.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use super::{Warning, WarningKind, Warnings};
use crate::dirfd::Dir;
use crate::error::{Error, IoContext, Result};
use crate::format::Timestamp;
use crate::format::snapshot::{Snapshot, Summary};
use crate::format::tree::{Entry, Metadata, Node, Tree};
use crate::id::{BlobId, ChunkId, SnapshotId, TreeId};
use crate::progress::Progress;
use crate::repo::{BlobWriter, Contents, ReadError, Repository};
use crate::walk::{self, GitIgnores, Place, SourceKind, Stat};

/// Which snapshot unchanged files may be taken from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ParentChoice {
    /// The newest snapshot of the same host and paths.
    #[default]
    Auto,
    /// None: read every file.
    Ignore,
    /// This one.
    Id(SnapshotId),
}

/// What to back up and how to describe it.
#[derive(Clone, Debug, Default)]
pub struct BackupOptions {
    /// Source paths (files or directories).
    pub paths: Vec<PathBuf>,
    /// Tags for the snapshot.
    pub tags: Vec<String>,
    /// A message for the snapshot.
    pub message: Option<String>,
    /// Where unchanged files come from.
    pub parent: ParentChoice,
    /// The repository directory, when local: never backed up into itself.
    pub repository_dir: Option<PathBuf>,
    /// Host name to record.
    pub hostname: String,
    /// User name to record.
    pub username: String,
    /// What to leave out.
    pub selection: walk::Selection,
    /// Write no snapshot when the sources are exactly as in the parent.
    pub skip_if_unchanged: bool,
    /// Further facts to record with the snapshot (e.g. git state).
    pub extra: BTreeMap<String, String>,
    /// Record each file's SHA-256 (computed while its data is read anyway).
    pub sha256: bool,
}

/// The outcome of a backup.
#[derive(Clone, Debug, Serialize)]
pub struct BackupReport {
    /// The new snapshot; `None` when `skip_if_unchanged` found nothing new.
    pub snapshot: Option<SnapshotId>,
    /// The parent it reused files from.
    pub parent: Option<SnapshotId>,
    /// Counters, as stored in the snapshot.
    pub summary: Summary,
    /// Packs written.
    pub packs_written: u64,
    /// Per-path trouble.
    pub warnings: Vec<Warning>,
    /// True when some source data could not be read.
    pub incomplete: bool,
}

#[derive(Default)]
struct Counters {
    files: AtomicU64,
    dirs: AtomicU64,
    others: AtomicU64,
    bytes: AtomicU64,
    files_read: AtomicU64,
    bytes_read: AtomicU64,
}

struct Ctx<'a> {
    repo: &'a Repository,
    writer: &'a BlobWriter<'a>,
    counters: Counters,
    warnings: Warnings,
    progress: &'a dyn Progress,
    /// Whether files get a SHA-256.
    sha256: bool,
    /// (dev, inode) of directories never to enter.
    skip: Option<(u64, u64)>,
    /// What the user left out.
    filter: walk::Filter,
    /// Devices of the sources, for `one_file_system`.
    source_devices: Vec<u64>,
    /// Parent entries changed (ctime) before this have their extended
    /// attributes reused; `None`: always read them.
    xattrs_reusable_before: Option<Timestamp>,
    /// With `skip_if_unchanged` and a parent: the nodes of the directories
    /// above the sources, held back until it is known whether a snapshot
    /// will be written (their times change whenever anything beside the
    /// sources does, so storing them first left a pack no snapshot used).
    above_sources: Option<Mutex<Vec<Tree>>>,
    /// Whether some source's entry differs from the parent's.
    source_changed: AtomicBool,
}

/// The source paths arranged as a tree from `/`.
enum Trie {
    Source(PathBuf),
    Inner(BTreeMap<Vec<u8>, Trie>),
}

/// Runs a backup and commits its snapshot.
pub fn backup(repo: &Repository, opts: &BackupOptions, progress: &dyn Progress) -> Result<BackupReport> {
    let started = Instant::now();
    let time = Timestamp::now();
    let sources = absolute_sources(&opts.paths)?;
    let skip = repository_guard(&sources, opts.repository_dir.as_deref())?;
    let filter = walk::Filter::new(&opts.selection)?;
    let source_devices =
        sources.iter().map(|s| walk::lstat(s).map(|st| st.meta.dev)).collect::<Result<_>>()?;
    let parent = find_parent(repo, opts, &sources)?;
    // A damaged parent only costs speed: everything is read again.
    let parent_tree = parent.as_ref().and_then(|(_, p)| Some((p.tree, repo.load_tree(&p.tree).ok()?)));
    let xattrs_reusable_before = parent.as_ref().and_then(|(_, p)| xattrs_reusable_before(p, opts));
    let parent = parent.map(|(id, p)| (id, p.tree));
    progress.begin("backup", None);
    let ((root, must_commit, counters, warnings), written, durable) = BlobWriter::write(repo, |writer| {
        let ctx = Ctx {
            repo,
            writer,
            counters: Counters::default(),
            warnings: Warnings::default(),
            progress,
            sha256: opts.sha256,
            skip,
            filter,
            source_devices,
            xattrs_reusable_before,
            above_sources: (opts.skip_if_unchanged && parent.is_some()).then(Mutex::default),
            source_changed: AtomicBool::new(false),
        };
        let parent_root = parent_tree.as_ref().map(|(id, _)| *id);
        let root = match build_trie(&sources) {
            Trie::Source(path) => {
                let dir = Dir::open_root(&path, false).at(&path);
                let root = backup_dir(&ctx, dir, &path, parent_tree, &source_ignores(&ctx, &path))?;
                ctx.source_changed.fetch_or(Some(root) != parent_root, Ordering::Relaxed);
                root
            }
            Trie::Inner(children) => store_inner(&ctx, Path::new("/"), &children, parent_tree)?,
        };
        // An incomplete run writes its snapshot even when nothing changed,
        // so the held nodes are stored whenever a snapshot will be written.
        let changed = ctx.source_changed.load(Ordering::Relaxed) || ctx.warnings.any_failed();
        if let Some(held) = &ctx.above_sources
            && changed
        {
            for tree in held.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                writer.save_tree(tree)?;
            }
        }
        Ok((root, changed, ctx.counters, ctx.warnings))
    })?;
    progress.end();
    let warnings = warnings.into_vec();
    let parent_id = parent.map(|(id, _)| id);
    let summary = Summary {
        files: counters.files.into_inner(),
        dirs: counters.dirs.into_inner(),
        others: counters.others.into_inner(),
        bytes: counters.bytes.into_inner(),
        files_read: counters.files_read.into_inner(),
        bytes_read: counters.bytes_read.into_inner(),
        new_blobs: written.blobs,
        new_bytes: written.raw_bytes,
        new_stored_bytes: written.stored_bytes,
        duration_ms: started.elapsed().as_millis() as u64,
    };
    let snapshot = Snapshot {
        time,
        tree: root,
        paths: sources.iter().map(|p| serde_bytes::ByteBuf::from(p.as_os_str().as_bytes())).collect(),
        hostname: opts.hostname.clone(),
        username: opts.username.clone(),
        os: os_description(),
        program_version: env!("CARGO_PKG_VERSION").to_owned(),
        tags: opts.tags.clone(),
        message: opts.message.clone(),
        parent: parent_id,
        summary,
        extra: opts.extra.clone(),
    };
    let incomplete = warnings.iter().any(|w| w.kind == WarningKind::Failed);
    let unchanged = opts.skip_if_unchanged && parent.is_some() && !must_commit;
    let id = if unchanged {
        None
    } else {
        crate::crash::point("backup-before-snapshot");
        let id = durable.save_snapshot(&snapshot)?;
        crate::crash::point("backup-after-snapshot");
        Some(id)
    };
    Ok(BackupReport {
        snapshot: id,
        parent: parent_id,
        summary,
        packs_written: written.packs.len() as u64,
        warnings,
        incomplete,
    })
}

fn os_description() -> String {
    let u = rustix::system::uname();
    format!("{} {}", u.sysname().to_string_lossy(), u.release().to_string_lossy())
}

/// Makes each source absolute without following a symlink it names itself,
/// and checks that it exists. Sorted, without duplicates.
fn absolute_sources(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    if paths.is_empty() {
        return Err(Error::InvalidInput("nothing to back up: give at least one path".into()));
    }
    let mut out = Vec::new();
    for p in paths {
        std::fs::symlink_metadata(p)
            .map_err(|e| Error::InvalidInput(format!("cannot back up {}: {e}", p.display())))?;
        let abs = match (p.parent(), p.file_name()) {
            (Some(parent), Some(name)) => {
                let parent = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
                parent.canonicalize().at(parent)?.join(name)
            }
            _ => p.canonicalize().at(p)?,
        };
        out.push(abs);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Refuses sources inside the repository; returns the repository's
/// (dev, inode) so the walk can step around it when a source contains it.
fn repository_guard(sources: &[PathBuf], repo_dir: Option<&Path>) -> Result<Option<(u64, u64)>> {
    let Some(dir) = repo_dir else { return Ok(None) };
    let dir = dir.canonicalize().at(dir)?;
    if let Some(src) = sources.iter().find(|s| s.starts_with(&dir)) {
        return Err(Error::InvalidInput(format!(
            "cannot back up {}: it lies inside the repository {}",
            src.display(),
            dir.display()
        )));
    }
    let m = std::fs::metadata(&dir).at(&dir)?;
    Ok(Some((m.dev(), m.ino())))
}

/// The parent snapshot, if any.
fn find_parent(
    repo: &Repository,
    opts: &BackupOptions,
    sources: &[PathBuf],
) -> Result<Option<(SnapshotId, Snapshot)>> {
    let id = match opts.parent {
        ParentChoice::Ignore => return Ok(None),
        ParentChoice::Id(id) => Some(id),
        ParentChoice::Auto => {
            let wanted: Vec<&[u8]> = sources.iter().map(|p| p.as_os_str().as_bytes()).collect();
            repo.snapshots()?
                .snapshots
                .into_iter()
                .rev()
                .find(|(_, s)| {
                    s.hostname == opts.hostname
                        && s.paths.iter().map(|p| p.as_slice()).eq(wanted.iter().copied())
                })
                .map(|(id, _)| id)
        }
    };
    let Some(id) = id else { return Ok(None) };
    Ok(Some((id, repo.load_snapshot(&id)?)))
}

/// Until when the parent's extended attributes may stand for an entry whose
/// ctime has not changed: every change to an attribute sets the ctime, but
/// two changes within one tick of the file system's clock can leave it
/// equal, so only a ctime older than the parent's start counts. And another
/// user may not have seen every attribute (`trusted.*` needs root).
fn xattrs_reusable_before(parent: &Snapshot, opts: &BackupOptions) -> Option<Timestamp> {
    (parent.username == opts.username).then_some(parent.time)
}

fn build_trie(sources: &[PathBuf]) -> Trie {
    let mut root = Trie::Inner(BTreeMap::new());
    for src in sources {
        let names: Vec<Vec<u8>> = src.iter().skip(1).map(|c| c.as_bytes().to_vec()).collect();
        insert(&mut root, &names, src);
    }
    root
}

fn insert(node: &mut Trie, names: &[Vec<u8>], src: &Path) {
    let Trie::Inner(children) = node else { return }; // an ancestor is already backed up whole
    match names.split_first() {
        None => *node = Trie::Source(src.to_path_buf()),
        Some((first, rest)) => {
            let child = children.entry(first.clone()).or_insert_with(|| Trie::Inner(BTreeMap::new()));
            insert(child, rest, src);
        }
    }
}

/// Stores a directory on the way down to the sources: its own metadata, but
/// only the children that lead to a source.
fn store_inner(
    ctx: &Ctx,
    path: &Path,
    children: &BTreeMap<Vec<u8>, Trie>,
    parent: Option<(TreeId, Tree)>,
) -> Result<TreeId> {
    let entries = children
        .par_iter()
        .map(|(name, child)| {
            let parent_entry = parent.as_ref().and_then(|(_, t)| t.find(name));
            let child_path = path.join(std::ffi::OsStr::from_bytes(name));
            match child {
                Trie::Source(src) => {
                    let entry = backup_entry(
                        ctx,
                        Place::Named,
                        src,
                        walk::lstat(src),
                        name,
                        parent_entry,
                        true,
                        &source_ignores(ctx, src),
                        &HashSet::new(),
                    )?;
                    ctx.source_changed.fetch_or(entry.as_ref() != parent_entry, Ordering::Relaxed);
                    Ok(entry)
                }
                Trie::Inner(grand) => {
                    let mut stat = walk::lstat(&child_path)?;
                    stat.meta.xattrs = read_xattrs(ctx, Place::Named, name, &child_path);
                    let subtree = parent_subtree(ctx, parent_entry);
                    let tree = store_inner(ctx, &child_path, grand, subtree)?;
                    ctx.counters.dirs.fetch_add(1, Ordering::Relaxed);
                    let node = Node::Dir { tree };
                    Ok(Some(Entry { name: name.clone(), node, meta: stat.meta, sha256: None }))
                }
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let tree = Tree { entries: entries.into_iter().flatten().collect() };
    match &ctx.above_sources {
        Some(held) => {
            let id = crate::repo::tree_id(ctx.repo, &tree);
            held.lock().unwrap_or_else(|p| p.into_inner()).push(tree);
            Ok(id)
        }
        None => store_tree(ctx, tree, parent.map(|(id, _)| id)),
    }
}

/// The `.gitignore` files above a source, when they are honoured.
fn source_ignores(ctx: &Ctx, source: &Path) -> GitIgnores {
    if !ctx.filter.uses_git_ignore() {
        return GitIgnores::default();
    }
    let (ignores, problems) = GitIgnores::above_source(source);
    for p in problems {
        ctx.warnings.push(source, WarningKind::Skipped, format!("ignore file not fully read: {p}"));
    }
    ignores
}

/// The parent's version of a directory: its id and its node.
fn parent_subtree(ctx: &Ctx, parent: Option<&Entry>) -> Option<(TreeId, Tree)> {
    match parent {
        Some(Entry { node: Node::Dir { tree }, .. }) => Some((*tree, ctx.repo.load_tree(tree).ok()?)),
        _ => None,
    }
}

/// Stores a directory node; `parent` is the id of the parent's version,
/// which is known to be stored: a node equal to it needs no index lookup.
fn store_tree(ctx: &Ctx, tree: Tree, parent: Option<TreeId>) -> Result<TreeId> {
    ctx.writer.save_tree_known(&tree, parent)
}

/// Whether the parent's entry is this inode with its ctime unchanged since
/// before the parent ran (see [`xattrs_reusable_before`]): its extended
/// attributes then still hold and are not read again, so a backup with no
/// change makes one `fstatat` per entry, not two calls.
fn xattrs_unchanged(ctx: &Ctx, prev: &Metadata, now: &Metadata) -> bool {
    ctx.xattrs_reusable_before.is_some_and(|before| now.ctime < before)
        && prev.inode == now.inode
        && prev.dev == now.dev
        && prev.ctime == now.ctime
}

fn read_xattrs(ctx: &Ctx, place: Place, name: &[u8], path: &Path) -> Vec<crate::format::tree::Xattr> {
    place.xattrs(OsStr::from_bytes(name), path).unwrap_or_else(|e| {
        ctx.warnings.push(path, WarningKind::Metadata, format!("extended attributes: {}", e.detail()));
        Vec::new()
    })
}

/// Backs up one path of any kind, given what `lstat` said of it. `Ok(None)`:
/// it could not be read (a warning says why); `Err`: the repository failed
/// and the backup stops.
#[allow(clippy::too_many_arguments)]
fn backup_entry(
    ctx: &Ctx,
    place: Place,
    path: &Path,
    stat: Result<Stat>,
    name: &[u8],
    parent: Option<&Entry>,
    source: bool,
    ignores: &GitIgnores,
    indexed: &HashSet<ChunkId>,
) -> Result<Option<Entry>> {
    let mut stat = match stat {
        Ok(s) => s,
        Err(e) => {
            ctx.warnings.push(path, WarningKind::Failed, e.detail());
            return Ok(None);
        }
    };
    // A path the user named is backed up whatever the exclude rules say.
    if !source && (ctx.filter.excludes(path, &stat) || ignores.ignores(path, stat.kind == SourceKind::Dir)) {
        return Ok(None);
    }
    stat.meta.xattrs = match parent {
        Some(prev) if xattrs_unchanged(ctx, &prev.meta, &stat.meta) => prev.meta.xattrs.clone(),
        _ => read_xattrs(ctx, place, name, path),
    };
    let c = &ctx.counters;
    let mut sha256 = None;
    let node = match stat.kind {
        SourceKind::Dir => {
            if ctx.skip == Some((stat.meta.dev, stat.meta.inode)) {
                ctx.warnings.push(path, WarningKind::Skipped, "the repository is not backed up into itself");
                return Ok(None);
            }
            c.dirs.fetch_add(1, Ordering::Relaxed);
            let tree = if ctx.filter.enters_device(stat.meta.dev, &ctx.source_devices) {
                let dir = place.open_dir(OsStr::from_bytes(name), path, &stat);
                backup_dir(ctx, dir, path, parent_subtree(ctx, parent), ignores)?
            } else {
                store_tree(ctx, Tree::default(), None)? // a mount point: kept, not entered
            };
            Node::Dir { tree }
        }
        SourceKind::File => match backup_file(ctx, place, name, path, &stat, parent, indexed)? {
            Some((node, sum)) => {
                sha256 = sum;
                node
            }
            None => return Ok(None),
        },
        SourceKind::Symlink => match place.read_link(OsStr::from_bytes(name), path) {
            Ok(target) => Node::Symlink { target },
            Err(e) => {
                ctx.warnings.push(path, WarningKind::Failed, e.detail());
                return Ok(None);
            }
        },
        SourceKind::Fifo => Node::Fifo,
        SourceKind::CharDevice => Node::CharDevice { rdev: stat.rdev },
        SourceKind::BlockDevice => Node::BlockDevice { rdev: stat.rdev },
        SourceKind::Socket => Node::Socket,
    };
    match &node {
        Node::File { size, .. } => {
            c.files.fetch_add(1, Ordering::Relaxed);
            c.bytes.fetch_add(*size, Ordering::Relaxed);
        }
        Node::Dir { .. } => {}
        _ => drop(c.others.fetch_add(1, Ordering::Relaxed)),
    }
    Ok(Some(Entry { name: name.to_vec(), node, meta: stat.meta, sha256 }))
}

/// Backs up the directory `dir` (at `path`; the error if it could not be
/// opened), its entries reached through its descriptor.
fn backup_dir(
    ctx: &Ctx,
    dir: Result<Arc<Dir>>,
    path: &Path,
    parent_tree: Option<(TreeId, Tree)>,
    ignores: &GitIgnores,
) -> Result<TreeId> {
    let listed = dir.and_then(|dir| walk::list(&dir, path).map(|names| (dir, names)));
    let (dir, mut names) = match listed {
        Ok(listed) => listed,
        Err(e) => {
            ctx.warnings.push(path, WarningKind::Failed, format!("cannot list directory: {}", e.detail()));
            return store_tree(ctx, Tree::default(), None);
        }
    };
    let ignores = if ctx.filter.uses_git_ignore() {
        let (inner, problem) = ignores.enter(path, &dir);
        if let Some(p) = problem {
            ctx.warnings.push(path, WarningKind::Skipped, format!("ignore file not fully read: {p}"));
        }
        inner
    } else {
        ignores.clone()
    };
    if ctx.filter.is_excluded_cache(&dir) {
        names.retain(|n| n == walk::CACHEDIR_TAG);
    }
    // The chunks of the files the parent had here, looked up together: an
    // unchanged file is then reused without a lookup of its own.
    let indexed = match &parent_tree {
        Some((_, tree)) => ctx.writer.indexed_chunks(
            tree.entries
                .iter()
                .flat_map(|e| match &e.node {
                    Node::File { chunks, .. } => chunks.as_slice(),
                    _ => &[],
                })
                .copied(),
        )?,
        None => HashSet::new(),
    };
    // Every entry is looked at before any is entered, while the
    // directory's descriptor is surely open.
    let looked: Vec<(PathBuf, Result<Stat>)> = names
        .iter()
        .map(|name| {
            let path = path.join(name);
            let stat = Place::In(&dir).lstat(name, &path);
            (path, stat)
        })
        .collect();
    let entries = names
        .par_iter()
        .zip(looked)
        .map(|(name, (path, stat))| {
            let prev = parent_tree.as_ref().and_then(|(_, t)| t.find(name.as_bytes()));
            let place = Place::In(&dir);
            backup_entry(ctx, place, &path, stat, name.as_bytes(), prev, false, &ignores, &indexed)
        })
        .collect::<Result<Vec<_>>>()?;
    store_tree(ctx, Tree { entries: entries.into_iter().flatten().collect() }, parent_tree.map(|(id, _)| id))
}

/// A file's node: from the parent when size, mtime, ctime and inode match
/// and all its chunks are really stored; otherwise read.
/// With `--sha256`, a parent entry without a checksum does not count as
/// unchanged, so the checksum gets computed.
fn backup_file(
    ctx: &Ctx,
    place: Place,
    name: &[u8],
    path: &Path,
    stat: &Stat,
    parent: Option<&Entry>,
    indexed: &HashSet<ChunkId>,
) -> Result<Option<FileNode>> {
    if let Some(Entry { node: Node::File { size, chunks }, meta, sha256, .. }) = parent {
        let same = *size == stat.size
            && meta.mtime == stat.meta.mtime
            && meta.ctime == stat.meta.ctime
            && meta.inode == stat.meta.inode
            && (!ctx.sha256 || sha256.is_some());
        if same && all_known(ctx, chunks, indexed)? {
            ctx.progress.advance(1, 0);
            return Ok(Some((Node::File { size: *size, chunks: chunks.clone() }, *sha256)));
        }
    }
    read_file(ctx, place.open_file(OsStr::from_bytes(name), path), path, stat)
}

/// A file's node and, when known, the SHA-256 of its contents.
type FileNode = (Node, Option<[u8; 32]>);

fn all_known(ctx: &Ctx, chunks: &[ChunkId], indexed: &HashSet<ChunkId>) -> Result<bool> {
    for c in chunks {
        if !indexed.contains(c) && !ctx.writer.is_known(&BlobId::Chunk(*c))? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Reads the file `opened` (not following a symlink, not blocking on a
/// fifo: it may have been swapped for either since the `lstat`).
fn read_file(ctx: &Ctx, opened: std::io::Result<File>, path: &Path, stat: &Stat) -> Result<Option<FileNode>> {
    let file = match opened {
        Ok(f) => f,
        Err(e) => {
            ctx.warnings.push(path, WarningKind::Failed, e);
            return Ok(None);
        }
    };
    let opened = walk::fstat(&file);
    match opened {
        Ok(s)
            if s.kind == SourceKind::File
                && s.meta.inode == stat.meta.inode
                && s.meta.dev == stat.meta.dev => {}
        _ => {
            ctx.warnings.push(path, WarningKind::Failed, "replaced by something else while being backed up");
            return Ok(None);
        }
    }
    let Contents { len: size, chunks, sha256 } = match chunk_file(ctx, &file, stat.size) {
        Ok(done) => done,
        Err(ReadError::Source(e)) => {
            ctx.warnings.push(path, WarningKind::Failed, e);
            return Ok(None);
        }
        Err(ReadError::Repo(e)) => return Err(e),
    };
    let after = walk::fstat(&file);
    if !after.is_ok_and(|a| stat.unchanged_since(&a)) || size != stat.size {
        ctx.warnings.push(path, WarningKind::Changed, "changed while being read; stored what was read");
    }
    ctx.counters.files_read.fetch_add(1, Ordering::Relaxed);
    ctx.counters.bytes_read.fetch_add(size, Ordering::Relaxed);
    ctx.progress.advance(1, size);
    Ok(Some((Node::File { size, chunks }, sha256)))
}

/// Reads and stores a file's chunks; returns the bytes read and chunk ids.
fn chunk_file(ctx: &Ctx, file: &File, size_hint: u64) -> Result<Contents, ReadError> {
    ctx.writer.store_contents(file, size_hint, ctx.sha256)
}
