//! `snap ls`: the entries of a snapshot below a path, with their metadata.

use std::path::Path;

use serde::Serialize;

use crate::error::Result;
use crate::format::snapshot::Snapshot;
use crate::format::tree::Node;
use crate::names;
use crate::repo::Repository;
use crate::tree;

/// One listed entry.
#[derive(Clone, Debug, Serialize)]
pub struct LsEntry {
    /// Absolute path inside the snapshot, escaped.
    pub path: String,
    /// `-`, `d`, `l`, `p`, `c`, `b` or `s`.
    #[serde(rename = "type")]
    pub kind: char,
    /// Permission bits.
    pub mode: u32,
    /// Owner ids.
    pub uid: u32,
    pub gid: u32,
    /// File size (0 for non-files).
    pub size: u64,
    /// Modification time, seconds and nanoseconds.
    pub mtime: i64,
    pub mtime_nanos: u32,
    /// Symlink target, escaped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// Lists everything at and below `path` (the whole snapshot when `None`).
pub fn ls(repo: &Repository, snap: &Snapshot, path: Option<&Path>) -> Result<Vec<LsEntry>> {
    let components = match path {
        Some(p) => names::split_snapshot_path(p)?,
        None => Vec::new(),
    };
    let mut out = Vec::new();
    tree::walk_path(repo, snap.tree, &components, &mut |path, entry| {
        out.push(LsEntry {
            path: names::display_components(path),
            kind: entry.node.type_char(),
            mode: entry.meta.mode,
            uid: entry.meta.uid,
            gid: entry.meta.gid,
            size: match entry.node {
                Node::File { size, .. } => size,
                _ => 0,
            },
            mtime: entry.meta.mtime.secs,
            mtime_nanos: entry.meta.mtime.nanos,
            target: match &entry.node {
                Node::Symlink { target } => Some(names::escape(target)),
                _ => None,
            },
        });
        Ok(())
    })?;
    Ok(out)
}
