//! File names and paths as bytes: Unix names need not be UTF-8, so snap never
//! converts them to strings except to show them, and then escapes.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// Shows name bytes readably and unambiguously: valid UTF-8 is kept, except
/// that `\` and control characters are escaped; other bytes become `\xNN`.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// The names of an optional path inside a snapshot; none is the root.
pub fn split_optional_path(path: Option<&Path>) -> Result<Vec<Vec<u8>>> {
    path.map(split_snapshot_path).transpose().map(Option::unwrap_or_default)
}

/// Joins components into a displayable absolute path.
pub fn display_components(components: &[Vec<u8>]) -> String {
    let mut out = String::new();
    for c in components {
        out.push('/');
        out.push_str(&escape(c));
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// Splits a path given by the user (inside a snapshot) into its names;
/// `/a/b`, `a/b/` and `a//b` all give `[a, b]`. `.` and `..` are refused.
pub fn split_snapshot_path(path: &Path) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(name) => out.push(name.as_bytes().to_vec()),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::InvalidInput(format!("path {} may not contain `..`", path.display())));
            }
        }
    }
    Ok(out)
}

/// The path `base/c1/c2/...` for validated names.
pub fn join(base: &Path, components: &[Vec<u8>]) -> PathBuf {
    let mut p = base.to_path_buf();
    for c in components {
        p.push(OsStr::from_bytes(c));
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_is_readable_and_unambiguous() {
        assert_eq!(escape(b"plain.txt"), "plain.txt");
        assert_eq!(escape(b"new\nline"), "new\\nline");
        assert_eq!(escape(b"bad\xffbyte"), "bad\\xffbyte");
        assert_eq!(escape("ü\\".as_bytes()), "ü\\\\");
    }

    #[test]
    fn split_refuses_parent() {
        assert_eq!(split_snapshot_path(Path::new("/a//b/")).unwrap(), vec![b"a".to_vec(), b"b".to_vec()]);
        assert!(split_snapshot_path(Path::new("a/../b")).is_err());
    }
}
