//! What a restore does where something already exists: `Overwrite` says
//! whether an existing non-directory is replaced, compared first, or left
//! alone; directories are always merged into. The same decisions are the
//! list a dry run shows.

use std::collections::HashSet;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use rustix::fs::{FileType, Stat};

use rayon::prelude::*;
use serde::Serialize;

use super::contents::verify_file;
use super::target::{At, Owned, is_dir, is_root, not_a_directory, owned_identity};
use super::{Action, Located, Plan, PlannedFile};
use crate::dirfd::identity;
use crate::error::Result;
use crate::format::tree::Node;
use crate::hash::BlobHasher;
use crate::names;

/// What happens to a file, symlink or other non-directory that already
/// exists where the snapshot puts something.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Overwrite {
    /// Replace it.
    #[default]
    Always,
    /// Replace it unless it already holds what the snapshot holds; its
    /// metadata is applied either way.
    IfChanged,
    /// Leave it untouched.
    Never,
}

/// One path of a dry run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Where, under the target; escaped for display.
    pub path: String,
    /// What the snapshot has there: `-`, `d`, `l`, `p`, `c` or `b`.
    #[serde(rename = "type")]
    pub kind: char,
    pub action: Action,
}

/// Decides what happens at every planned path. A non-directory where a
/// directory belongs stops the restore here, before anything below it is
/// read or written.
pub(super) fn decide(plan: &mut Plan, mode: Overwrite, hasher: &BlobHasher, located: &Located) -> Result<()> {
    let mut new_dirs = HashSet::new();
    for dir in &mut plan.dirs {
        // Below a directory that does not exist, nothing does.
        dir.new = new_dirs_contain(&new_dirs, &dir.at)
            || match dir.at.stat() {
                Ok(m) if is_dir(&m) => false,
                Ok(_) => return Err(not_a_directory(&dir.at.path)),
                Err(_) => true,
            };
        if dir.new {
            new_dirs.insert(dir.at.path.clone());
        }
    }
    // Nothing can be inside a directory that did not exist: what goes there
    // is new without a look (and creating it fails if something appeared).
    let in_new_dir = |at: &At| new_dirs_contain(&new_dirs, at);
    plan.files.par_iter_mut().filter(|f| !in_new_dir(&f.at)).for_each(|f| {
        (f.action, f.found) = file_action(f, mode, hasher, located);
    });
    decide_links(plan, mode, &in_new_dir);
    for o in plan.others.iter_mut().filter(|o| !in_new_dir(&o.at)) {
        let mut found = None;
        o.action = action(&o.at, mode, |existing| {
            found = Some(owned_identity(existing));
            same_node(&o.at, &o.node, existing)
        });
        if o.action == Action::Unchanged
            && let Some(found) = found
        {
            let _ = o.made.set(found);
        }
    }
    Ok(())
}

fn new_dirs_contain(new_dirs: &HashSet<PathBuf>, at: &At) -> bool {
    at.path.parent().is_some_and(|p| new_dirs.contains(p))
}

/// New when nothing is at `at`; otherwise what `mode` says, `same`
/// telling whether what is there already matches the snapshot.
fn action(at: &At, mode: Overwrite, same: impl FnOnce(&Stat) -> bool) -> Action {
    let Ok(existing) = at.stat() else { return Action::New };
    match mode {
        Overwrite::Always => Action::Replace,
        Overwrite::Never => Action::Skip,
        Overwrite::IfChanged if same(&existing) => Action::Unchanged,
        Overwrite::IfChanged => Action::Replace,
    }
}

/// The size is compared first, so only a file that may match is read.
/// Returns, for a file left unchanged, the identity of the one read.
///
/// Run as root, a file that is not already the snapshot's owner's is not
/// left "unchanged": giving it that owner (and the snapshot's mode, setuid
/// bits included) would hand root's name to a file someone else made and
/// may still hold open for writing. It is written anew instead.
fn file_action(
    f: &PlannedFile,
    mode: Overwrite,
    hasher: &BlobHasher,
    located: &Located,
) -> (Action, Option<Owned>) {
    let mut found = None;
    let action = action(&f.at, mode, |existing| {
        let owned = !is_root() || (existing.st_uid == f.meta.uid && existing.st_gid == f.meta.gid);
        FileType::from_raw_mode(existing.st_mode as _) == FileType::RegularFile
            && owned
            && existing.st_size as u64 == f.size
            && verify_file(hasher, &f.at, &f.chunks, located).is_ok_and(|read| {
                found = Some(read);
                true
            })
    });
    (action, found.filter(|_| action == Action::Unchanged))
}

/// Hardlinks are made only to files this restore writes. So an unchanged
/// file keeps its other names only if they already are that very file;
/// otherwise the whole group is written again. And where `Never` skips the
/// first name of a group, the first new name takes its place.
fn decide_links(plan: &mut Plan, mode: Overwrite, in_new_dir: &dyn Fn(&At) -> bool) {
    let split: Vec<usize> = plan
        .hardlinks
        .iter()
        .filter(|l| plan.files[l.leader].action == Action::Unchanged)
        .filter(|l| !same_file(&plan.files[l.leader].at, &l.at))
        .map(|l| l.leader)
        .collect();
    for leader in split {
        plan.files[leader].action = Action::Replace;
    }
    for link in plan.hardlinks.iter_mut().filter(|l| !in_new_dir(&l.at)) {
        let leader_unchanged = plan.files[link.leader].action == Action::Unchanged;
        link.action = action(&link.at, mode, |_| leader_unchanged);
    }
    // Nothing is known to be unmade yet: no directory was made.
    plan.adopt_orphans(|_| false);
}

/// Whether two places are names of one inode.
fn same_file(a: &At, b: &At) -> bool {
    match (a.stat(), b.stat()) {
        (Ok(a), Ok(b)) => identity(&a) == identity(&b),
        _ => false,
    }
}

/// Whether an existing symlink, fifo or device is what the snapshot has.
#[allow(clippy::unnecessary_cast)] // st_rdev's type differs between architectures
fn same_node(at: &At, node: &Node, existing: &Stat) -> bool {
    let t = FileType::from_raw_mode(existing.st_mode as _);
    let rdev = existing.st_rdev as u64;
    match node {
        Node::Symlink { target } => {
            t == FileType::Symlink && at.parent.read_link(at.name()).is_ok_and(|l| l == *target)
        }
        Node::Fifo => t == FileType::Fifo,
        Node::CharDevice { rdev: want } => t == FileType::CharacterDevice && rdev == *want,
        Node::BlockDevice { rdev: want } => t == FileType::BlockDevice && rdev == *want,
        _ => false,
    }
}

/// Every path the restore creates, replaces, leaves alone or skips, in
/// path order. Directories that exist already are merged into, not listed.
pub(super) fn changes(plan: &Plan) -> Vec<Change> {
    let dirs = plan.dirs.iter().filter(|d| d.new).map(|d| (&d.at.path, 'd', Action::New));
    let files = plan.files.iter().map(|f| (&f.at.path, '-', f.action));
    let links = plan.hardlinks.iter().map(|l| (&l.at.path, '-', l.action));
    let others = plan.others.iter().map(|o| (&o.at.path, o.node.type_char(), o.action));
    let mut all: Vec<_> = dirs.chain(files).chain(links).chain(others).collect();
    all.sort_by(|a, b| a.0.cmp(b.0));
    all.into_iter()
        .map(|(path, kind, action)| Change { path: names::escape(path.as_os_str().as_bytes()), kind, action })
        .collect()
}
