//! Metadata put on what restore wrote or left in place: xattrs, owner,
//! mode and times, each through a descriptor of the very entry checked to
//! be the one the restore made or found matching (never by a path a
//! racing user could swap), directories last and deepest first.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::Ordering;

use rayon::prelude::*;

use super::target::{At, Owned, is_full, is_root, owned_identity};
use super::{Action, Ctx, PlannedDir, WarningKind};
use crate::dirfd::fd_path;
use crate::format::tree::{Metadata, Node};
use crate::names;

/// Applies metadata to what the restore did not write but leaves in place
/// (not to what was skipped), and to what it made besides file contents:
/// files and others first, in parallel, then directories deepest first
/// (creating children changes a directory's mtime). Written files have
/// theirs already.
pub(super) fn apply_all_metadata(ctx: &Ctx) {
    let plan = &ctx.plan;
    let files = plan
        .files
        .iter()
        .enumerate()
        .filter(|(i, f)| f.action == Action::Unchanged && !ctx.is_failed(*i))
        .map(|(_, f)| (&f.at, &f.meta, false, f.found));
    let others = plan
        .others
        .iter()
        .filter(|o| o.action != Action::Skip && !ctx.unmade(&o.at) && o.at.stat().is_ok())
        .map(|o| (&o.at, &o.meta, matches!(o.node, Node::Symlink { .. }), o.made.get().copied()));
    let entries: Vec<_> = files.chain(others).collect();
    let apply = |path: &Path, result: std::io::Result<()>| {
        if let Err(e) = result {
            ctx.stop_full(path, e);
        }
    };
    entries.par_iter().filter(|_| !ctx.stopped()).for_each(|(at, meta, is_link, expected)| {
        apply(&at.path, apply_to_entry(ctx, at, meta, *is_link, *expected));
    });
    let made = plan.dirs.iter().rev().filter(|d| !ctx.unmade.contains(&d.at.path));
    for PlannedDir { at, dir, meta, .. } in made.take_while(|_| !ctx.stopped()) {
        // Checked by name from its parent, whose own check comes later
        // (deepest first) and the target's root is held: a directory moved
        // out of the target took what was restored into it along.
        if !at.stat().is_ok_and(|st| dir.is_still_at(&st)) {
            let why = "moved or replaced while being restored: what was restored into it is not at this path";
            ctx.warnings.push(&at.path, WarningKind::Failed, why);
            continue;
        }
        match dir.fd() {
            Ok(fd) => apply(
                &at.path,
                apply_metadata(ctx, &at.path, meta, Applied::Open { fd: fd.as_fd(), dir: true }),
            ),
            Err(e) => ctx.warnings.push(&at.path, WarningKind::Metadata, e),
        }
    }
}

/// Applies metadata to an entry the restore does not hold open, through
/// an `O_PATH` descriptor of the entry itself, checked to be the very
/// entry the restore made or found matching there (`expected`) and of the
/// kind planned: a name swapped since, for a symlink or for a file of
/// whoever can write into its directory, gets nothing (a root restore
/// would otherwise give that file the snapshot's owner and mode, setuid
/// bits included).
fn apply_to_entry(
    ctx: &Ctx,
    at: &At,
    meta: &Metadata,
    is_link: bool,
    expected: Option<Owned>,
) -> std::io::Result<()> {
    let replaced =
        || std::io::Error::other("replaced by something else while being restored; metadata not applied");
    let reached = at.parent.open_path(at.name()).and_then(|fd| {
        let st = rustix::fs::fstat(&fd)?;
        let kind = rustix::fs::FileType::from_raw_mode(st.st_mode as _);
        let is_symlink = kind == rustix::fs::FileType::Symlink;
        if expected != Some(owned_identity(&st))
            || is_symlink != is_link
            || kind == rustix::fs::FileType::Directory
        {
            return Err(replaced());
        }
        Ok((at.parent.fd()?, fd))
    });
    match reached {
        Ok((dir, fd)) if is_link => apply_metadata(
            ctx,
            &at.path,
            meta,
            Applied::Link { dir: dir.as_fd(), name: at.name(), fd: fd.as_fd() },
        ),
        Ok((_, fd)) => apply_metadata(ctx, &at.path, meta, Applied::Node(fd.as_fd())),
        Err(e) => {
            ctx.warnings.push(&at.path, WarningKind::Metadata, e);
            Ok(())
        }
    }
}

/// The mode bits to restore. Without root the owner cannot be set, so a
/// setuid or setgid file would run as the restoring user (or group): those
/// bits are left off and counted, as GNU tar does. A directory's setgid
/// bit only passes its group on, and stays.
fn restored_mode(ctx: &Ctx, mode: u32, dir: bool) -> u32 {
    const SPECIAL: u32 = 0o6000;
    if is_root() || mode & SPECIAL == 0 || dir {
        return mode;
    }
    ctx.special_dropped.fetch_add(1, Ordering::Relaxed);
    mode & !SPECIAL
}

/// What metadata is applied through.
#[derive(Clone, Copy)]
pub(super) enum Applied<'a> {
    /// A file or directory the restore has open.
    Open { fd: BorrowedFd<'a>, dir: bool },
    /// An `O_PATH` descriptor of a fifo, device or unchanged file.
    Node(BorrowedFd<'a>),
    /// A symlink: its owner through its `O_PATH` descriptor, its times and
    /// xattrs by its name in its directory (not followed).
    Link { dir: BorrowedFd<'a>, name: &'a OsStr, fd: BorrowedFd<'a> },
}

impl Applied<'_> {
    fn set_xattr(self, name: &OsStr, value: &[u8]) -> std::io::Result<()> {
        use rustix::fs::XattrFlags;
        Ok(match self {
            Applied::Open { fd, .. } => rustix::fs::fsetxattr(fd, name, value, XattrFlags::empty()),
            // Through the descriptor's magic link, which leads to the node itself.
            Applied::Node(fd) => rustix::fs::setxattr(fd_path(fd), name, value, XattrFlags::empty()),
            Applied::Link { dir, name: link, .. } => {
                rustix::fs::lsetxattr(fd_path(dir).join(link), name, value, XattrFlags::empty())
            }
        }?)
    }

    fn chown(self, uid: u32, gid: u32) -> std::io::Result<()> {
        use rustix::fs::{AtFlags, Gid, Uid};
        let (uid, gid) = (Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)));
        Ok(match self {
            Applied::Open { fd, .. } => rustix::fs::fchown(fd, uid, gid),
            Applied::Node(fd) | Applied::Link { fd, .. } => {
                rustix::fs::chownat(fd, "", uid, gid, AtFlags::EMPTY_PATH)
            }
        }?)
    }

    /// A symlink has no mode of its own.
    fn chmod(self, mode: u32) -> std::io::Result<()> {
        let mode = rustix::fs::Mode::from_raw_mode(mode);
        Ok(match self {
            Applied::Open { fd, .. } => rustix::fs::fchmod(fd, mode),
            Applied::Node(fd) => rustix::fs::chmod(fd_path(fd), mode),
            Applied::Link { .. } => Ok(()),
        }?)
    }

    fn set_times(self, mtime: crate::format::Timestamp) -> std::io::Result<()> {
        use rustix::fs::{AtFlags, Timespec, Timestamps};
        let t = Timespec { tv_sec: mtime.secs, tv_nsec: mtime.nanos.into() };
        let times = Timestamps { last_access: t, last_modification: t };
        Ok(match self {
            Applied::Open { fd, .. } => rustix::fs::futimens(fd, &times),
            Applied::Node(fd) => {
                rustix::fs::utimensat(rustix::fs::CWD, fd_path(fd), &times, AtFlags::empty())
            }
            Applied::Link { dir, name, .. } => {
                rustix::fs::utimensat(dir, name, &times, AtFlags::SYMLINK_NOFOLLOW)
            }
        }?)
    }

    fn is_dir(self) -> bool {
        matches!(self, Applied::Open { dir: true, .. })
    }
}

/// xattrs (while the file is still writable), owner (root only, before the
/// mode because chown clears setuid), mode, then times. Problems are
/// warnings about `path`, except a target without room for an xattr: that
/// error is returned, to stop the restore.
pub(super) fn apply_metadata(ctx: &Ctx, path: &Path, meta: &Metadata, to: Applied) -> std::io::Result<()> {
    let warn = |what: &str, e: &dyn std::fmt::Display| {
        ctx.warnings.push(path, WarningKind::Metadata, format!("{what}: {e}"));
    };
    for x in &meta.xattrs {
        match to.set_xattr(OsStr::from_bytes(&x.name), &x.value) {
            Err(e) if is_full(&e) => return Err(e),
            Err(e) => warn(&format!("xattr {}", names::escape(&x.name)), &e),
            Ok(()) => {}
        }
    }
    if is_root()
        && let Err(e) = to.chown(meta.uid, meta.gid)
    {
        warn("owner", &e);
    }
    if let Err(e) = to.chmod(restored_mode(ctx, meta.mode, to.is_dir())) {
        warn("mode", &e);
    }
    if let Err(e) = to.set_times(meta.mtime) {
        warn("times", &e);
    }
    Ok(())
}
