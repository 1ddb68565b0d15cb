//! One module per command. Each takes options and returns a report that
//! serializes to JSON; none prints, none reads the environment.

pub mod backup;
pub mod copy;
pub mod diff;
pub mod dump;
pub mod find;
pub mod ls;
pub mod policy;
pub mod prune;
pub mod repair;
pub mod restore;
pub mod snapshots;
pub mod stats;
pub mod verify;

use serde::Serialize;

use crate::format::tree::{Entry, Node};
use crate::names;

/// What an entry is, as shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EntryInfo {
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
    /// SHA-256 of a file's contents in hex, when recorded (`backup --sha256`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

impl EntryInfo {
    /// Describes one tree entry.
    pub fn new(entry: &Entry) -> Self {
        EntryInfo {
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
            sha256: entry.sha256.map(hex::encode),
        }
    }
}

/// A stored time in the local time zone (the epoch if it cannot be shown).
pub(crate) fn local_time(t: crate::format::Timestamp) -> chrono::DateTime<chrono::Local> {
    use chrono::TimeZone;
    chrono::Local.timestamp_opt(t.secs, t.nanos).earliest().unwrap_or_default()
}

/// Something a command could not do for one path, without failing as a whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// The path concerned, escaped for display.
    pub path: String,
    /// What kind of trouble it was.
    pub kind: WarningKind,
    /// The reason, in words.
    pub message: String,
}

/// Classes of per-path trouble.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// Could not be read or written; the result lacks it.
    Failed,
    /// Changed while it was read; what was read was stored consistently.
    Changed,
    /// Left out on purpose (e.g. the repository itself).
    Skipped,
    /// Extended attributes or ownership could not be handled.
    Metadata,
}

/// Collects warnings from many threads.
#[derive(Debug, Default)]
pub(crate) struct Warnings(std::sync::Mutex<Vec<Warning>>);

impl Warning {
    /// A warning about `path`, escaped for display.
    pub(crate) fn new(path: &std::path::Path, kind: WarningKind, message: impl ToString) -> Self {
        let path = crate::names::escape(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()));
        Warning { path, kind, message: message.to_string() }
    }
}

/// The warning naming a directory a walk could not enter (its node is
/// damaged or missing), at its place below `base`: nothing in it was
/// `done` ("restored", "listed", ...).
pub(crate) fn hole_warning(hole: &crate::tree::Hole, base: &std::path::Path, done: &str) -> Warning {
    let lost = match hole.entries() {
        None => format!("damaged directory, nothing in it is {done}"),
        Some(entries) => format!("damaged page of this large directory, its {entries} are not {done}"),
    };
    let why = format!("{lost}: {}", hole.error);
    Warning::new(&crate::names::join(base, &hole.path), WarningKind::Failed, why)
}

impl Warnings {
    pub(crate) fn push(&self, path: &std::path::Path, kind: WarningKind, message: impl ToString) {
        self.push_warning(Warning::new(path, kind, message));
    }

    pub(crate) fn push_warning(&self, warning: Warning) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(warning);
    }

    /// Whether something could not be backed up or restored at all.
    pub(crate) fn any_failed(&self) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).iter().any(|w| w.kind == WarningKind::Failed)
    }

    pub(crate) fn into_vec(self) -> Vec<Warning> {
        let mut v = self.0.into_inner().unwrap_or_else(|p| p.into_inner());
        v.sort_by(|a, b| a.path.cmp(&b.path));
        v
    }
}
