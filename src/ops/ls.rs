//! `snap ls`: the entries of a snapshot below a path, with their metadata.

use std::path::Path;

use serde::Serialize;

use super::{EntryInfo, Warning};

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
    /// What the entry is (its fields appear beside `path` in JSON).
    #[serde(flatten)]
    pub entry: EntryInfo,
}

/// What `ls` found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Listing {
    pub entries: Vec<LsEntry>,
    /// Directories whose node is damaged or missing: listed themselves,
    /// nothing in them is.
    pub warnings: Vec<Warning>,
}

/// Lists everything at and below `path` (the whole snapshot when `None`).
pub fn ls(repo: &Repository, snap: &Snapshot, path: Option<&Path>) -> Result<Listing> {
    let components = names::split_optional_path(path)?;
    let mut entries = Vec::new();
    let store = tree::WithHoles::new(repo);
    tree::walk_path(&store, snap.tree, &components, &mut |path, entry| {
        entries.push(LsEntry { path: names::display_components(path), entry: EntryInfo::new(entry) });
        Ok(())
    })?;
    let holes = store.into_holes();
    let warnings = holes.iter().map(|h| super::hole_warning(h, Path::new("/"), "listed")).collect();
    Ok(Listing { entries, warnings })
}

/// `sha256sum` lines for the files at and below a path.
#[derive(Clone, Debug, Default)]
pub struct Checksums {
    /// One line per file with a recorded SHA-256, newline included, in the
    /// format `sha256sum -c` reads; paths are relative (as restored under a
    /// target directory), raw bytes.
    pub lines: Vec<Vec<u8>>,
    /// Files without a recorded SHA-256 (backed up without `--sha256`).
    pub missing: u64,
}

/// The checksum lines of everything at and below `path`.
pub fn sha256_lines(repo: &Repository, snap: &Snapshot, path: Option<&Path>) -> Result<Checksums> {
    let components = names::split_optional_path(path)?;
    let mut out = Checksums::default();
    tree::walk_path(repo, snap.tree, &components, &mut |path, entry| {
        match (&entry.node, entry.sha256) {
            (Node::File { .. }, Some(sum)) => out.lines.push(sha256sum_line(&sum, path)),
            (Node::File { .. }, None) => out.missing += 1,
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

/// GNU `sha256sum` text: `HEX  PATH`; a path with a backslash, newline or
/// carriage return has those escaped and the line starts with `\`.
fn sha256sum_line(sum: &[u8; 32], components: &[Vec<u8>]) -> Vec<u8> {
    let path = components.join(&b'/');
    let special = path.iter().any(|b| matches!(b, b'\\' | b'\n' | b'\r'));
    let mut line = Vec::with_capacity(path.len() + 68);
    if special {
        line.push(b'\\');
    }
    line.extend_from_slice(hex::encode(sum).as_bytes());
    line.extend_from_slice(b"  ");
    for &b in &path {
        match b {
            b'\\' => line.extend_from_slice(b"\\\\"),
            b'\n' => line.extend_from_slice(b"\\n"),
            b'\r' => line.extend_from_slice(b"\\r"),
            b => line.push(b),
        }
    }
    line.push(b'\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_follow_gnu_sha256sum() {
        let sum = [0xab; 32];
        let hex = "ab".repeat(32);
        let plain = sha256sum_line(&sum, &[b"home".to_vec(), b"f.txt".to_vec()]);
        assert_eq!(plain, format!("{hex}  home/f.txt\n").into_bytes());
        let odd = sha256sum_line(&sum, &[b"a\\b\nc".to_vec()]);
        assert_eq!(odd, format!("\\{hex}  a\\\\b\\nc\n").into_bytes());
    }
}
