//! `snap ls`: the entries of a snapshot below a path, with their metadata.

use std::path::Path;

use serde::Serialize;

use super::EntryInfo;

use crate::error::Result;
use crate::format::snapshot::Snapshot;
use crate::names;
use crate::repo::Repository;
use crate::tree;

/// One listed entry.
#[derive(Clone, Debug, Serialize)]
pub struct LsEntry {
    /// Absolute path inside the snapshot, escaped.
    pub path: String,
    /// What the entry is (its fields appear beside `path` in JSON).
    #[serde(flatten)]
    pub entry: EntryInfo,
}

/// Lists everything at and below `path` (the whole snapshot when `None`).
pub fn ls(repo: &Repository, snap: &Snapshot, path: Option<&Path>) -> Result<Vec<LsEntry>> {
    let components = match path {
        Some(p) => names::split_snapshot_path(p)?,
        None => Vec::new(),
    };
    let mut out = Vec::new();
    tree::walk_path(repo, snap.tree, &components, &mut |path, entry| {
        out.push(LsEntry { path: names::display_components(path), entry: EntryInfo::new(entry) });
        Ok(())
    })?;
    Ok(out)
}
