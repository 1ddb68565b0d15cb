//! `snap find` and `snap log`: which snapshots hold paths matching a
//! pattern, and the history of one path across snapshots.
//!
//! Find walks every chosen snapshot, but the matches below a directory node
//! are computed once per distinct tree id (and, for a pattern on the whole
//! path, per position in the tree), then reused: a snapshot of an unchanged
//! tree costs one cache lookup, and a snapshot in which one file changed
//! loads only the directories on the way to it.
//!
//! Log looks the path up in every snapshot, again caching each lookup by
//! tree id, and compares what it finds with the version before it: the
//! previous snapshot of the same host and source paths, or, for the first
//! snapshot of such a group, the newest earlier snapshot holding the path.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::rc::Rc;

use globset::{GlobBuilder, GlobMatcher};
use serde::Serialize;

use super::EntryInfo;
use crate::error::{Error, Result};
use crate::format::snapshot::Snapshot;
use crate::format::tree::{Entry, Node};
use crate::id::{SnapshotId, TreeId};
use crate::names;
use crate::progress::Progress;
use crate::repo::{Repository, SnapshotList, Unreadable};
use crate::tree::{Guard, TreeStore};

// ---------------------------------------------------------------------------
// Shared pieces
// ---------------------------------------------------------------------------

/// The snapshot a match or a version was found in.
#[derive(Clone, Debug, Serialize)]
pub struct SnapshotRef {
    /// Full id.
    pub snapshot: String,
    /// First 8 hex digits.
    pub short_id: String,
    /// Local time, RFC 3339.
    pub time: String,
    /// Seconds since the epoch.
    pub unix_time: i64,
    /// Host the snapshot was made on.
    pub hostname: String,
}

impl SnapshotRef {
    /// Describes one snapshot.
    pub fn new(id: &SnapshotId, s: &Snapshot) -> Self {
        let time = super::local_time(s.time);
        SnapshotRef {
            snapshot: id.to_hex(),
            short_id: id.short(),
            time: time.to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
            unix_time: s.time.secs,
            hostname: s.hostname.clone(),
        }
    }
}

/// A directory node that could not be read, and where a snapshot has it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UnreadableDir {
    /// Short id of the snapshot.
    pub snapshot: String,
    /// The directory's path, escaped.
    pub path: String,
    /// What went wrong.
    pub error: String,
}

// ---------------------------------------------------------------------------
// find
// ---------------------------------------------------------------------------

/// A glob, matched against a name or against a whole path.
#[derive(Clone, Debug)]
pub struct Pattern {
    matcher: GlobMatcher,
    whole_path: bool,
    dirs_only: bool,
}

impl Pattern {
    /// Parses a pattern. Without a `/` it is matched against the escaped
    /// file name alone (like `find -name`). With one, against the escaped
    /// absolute path inside the snapshot, where `*` and `?` stay within one
    /// name and `**` spans directories; a pattern that does not start with
    /// `/` may match at any depth (`app/*.rs` is `**/app/*.rs`). A trailing
    /// `/` matches directories only.
    pub fn new(pattern: &str, ignore_case: bool) -> Result<Self> {
        let invalid = |why: &str| Error::InvalidInput(format!("invalid pattern {pattern:?}: {why}"));
        let trimmed = pattern.trim_end_matches('/');
        let dirs_only = trimmed.len() < pattern.len() && !trimmed.is_empty();
        if trimmed.is_empty() {
            return Err(invalid("it matches nothing (give a name, or a path below /)"));
        }
        let whole_path = trimmed.contains('/');
        let glob = if whole_path && !trimmed.starts_with('/') && !trimmed.starts_with("**") {
            format!("**/{trimmed}")
        } else {
            trimmed.to_owned()
        };
        let matcher = GlobBuilder::new(&glob)
            .literal_separator(true)
            .backslash_escape(true)
            .case_insensitive(ignore_case)
            .build()
            .map_err(|e| invalid(&e.kind().to_string()))?
            .compile_matcher();
        Ok(Pattern { matcher, whole_path, dirs_only })
    }

    /// Whether an entry matches, given its escaped name and escaped full path.
    pub fn is_match(&self, name: &str, path: &str, is_dir: bool) -> bool {
        if self.dirs_only && !is_dir {
            return false;
        }
        self.matcher.is_match(if self.whole_path { path } else { name })
    }
}

/// What to search.
#[derive(Clone, Debug, Default)]
pub struct FindOptions {
    /// The glob (see [`Pattern::new`]).
    pub pattern: String,
    /// Match regardless of case.
    pub ignore_case: bool,
    /// Snapshot names to search; empty means all.
    pub snapshots: Vec<String>,
}

/// One matching path in one snapshot.
#[derive(Clone, Debug, Serialize)]
pub struct FindMatch {
    #[serde(flatten)]
    pub snapshot: SnapshotRef,
    /// Absolute path inside the snapshot, escaped.
    pub path: String,
    #[serde(flatten)]
    pub entry: EntryInfo,
}

/// What `find` found.
#[derive(Clone, Debug, Serialize)]
pub struct FindReport {
    /// The pattern as given.
    pub pattern: String,
    /// Snapshots searched.
    pub snapshots_searched: u64,
    /// Snapshots with at least one match.
    pub snapshots_matched: u64,
    /// Matches, by snapshot (oldest first), then in path order.
    pub matches: Vec<FindMatch>,
    /// Directories that could not be read (what is below them was not searched).
    pub unreadable: Vec<UnreadableDir>,
    /// Snapshot files that could not be read.
    pub damaged_snapshots: Vec<Unreadable>,
}

impl FindReport {
    /// Whether everything was searched.
    pub fn complete(&self) -> bool {
        self.unreadable.is_empty() && self.damaged_snapshots.is_empty()
    }
}

/// Searches the chosen snapshots for entries matching the pattern.
pub fn find(repo: &Repository, opts: &FindOptions, progress: &dyn Progress) -> Result<FindReport> {
    let pattern = Pattern::new(&opts.pattern, opts.ignore_case)?;
    let SnapshotList { snapshots: chosen, damaged: damaged_snapshots } = repo.choose(&opts.snapshots)?;
    progress.begin("searching snapshots", None);
    let mut search = Search::new(repo, &pattern);
    let mut report = FindReport {
        pattern: opts.pattern.clone(),
        snapshots_searched: chosen.len() as u64,
        snapshots_matched: 0,
        matches: Vec::new(),
        unreadable: Vec::new(),
        damaged_snapshots,
    };
    for (id, snap) in &chosen {
        let at = SnapshotRef::new(id, snap);
        let before = report.matches.len();
        search.snapshot(snap.tree, &at, &mut report.matches, &mut report.unreadable)?;
        if report.matches.len() > before {
            report.snapshots_matched += 1;
        }
        progress.advance(1, 0);
    }
    progress.end();
    Ok(report)
}

/// One item of a directory's cached search result, in tree order.
#[derive(Debug)]
enum Item {
    /// An entry of this directory that matches (escaped name).
    Hit(String, EntryInfo),
    /// A subdirectory with matches or unreadable parts below it.
    Below(String, Rc<Found>),
}

/// The search result of one directory node.
#[derive(Debug, Default)]
struct Found {
    items: Vec<Item>,
    /// The node itself could not be loaded.
    error: Option<String>,
}

impl Found {
    fn is_empty(&self) -> bool {
        self.items.is_empty() && self.error.is_none()
    }
}

/// The walk with its cache of results per directory node. For a pattern on
/// names alone a node's result does not depend on where it is, so the key
/// is its id; for a pattern on the whole path it is the id and the path.
struct Search<'a> {
    store: &'a dyn TreeStore,
    pattern: &'a Pattern,
    cache: HashMap<(TreeId, Option<String>), Rc<Found>>,
}

impl<'a> Search<'a> {
    fn new(store: &'a dyn TreeStore, pattern: &'a Pattern) -> Self {
        Search { store, pattern, cache: HashMap::new() }
    }

    /// Appends the matches of the snapshot with root `root`. An error only
    /// for a tree refused as hostile (too deep, or too shared to expand).
    fn snapshot(
        &mut self,
        root: TreeId,
        at: &SnapshotRef,
        matches: &mut Vec<FindMatch>,
        unreadable: &mut Vec<UnreadableDir>,
    ) -> Result<()> {
        let found = self.node(root)?;
        if let Some(error) = &found.error {
            unreadable.push(UnreadableDir {
                snapshot: at.short_id.clone(),
                path: "/".into(),
                error: error.clone(),
            });
        }
        expand(&found, at, matches, unreadable)
    }

    /// A node's search frame: loaded, or its error kept as its result.
    fn open(&self, id: TreeId, path: &str, guard: &mut Guard) -> Frame {
        let key = (id, self.pattern.whole_path.then(|| path.to_owned()));
        let mut found = Found::default();
        let entries = match self.store.load_tree(&id) {
            Ok(tree) => tree.entries,
            Err(e) => {
                found.error = Some(e.to_string());
                Vec::new()
            }
        };
        guard.loaded(&id, entries.len());
        Frame { key, entries: entries.into_iter(), found, path_len: path.len(), name: String::new() }
    }

    /// The result of the snapshot root `root`, each node's computed once
    /// per cache key. Iterative (a frame per directory on the way down),
    /// with the depth limit and visit budget of [`Guard`].
    fn node(&mut self, root: TreeId) -> Result<Rc<Found>> {
        if let Some(found) = self.cache.get(&(root, self.pattern.whole_path.then(String::new))) {
            return Ok(Rc::clone(found));
        }
        let mut guard = Guard::new();
        let mut path = String::new();
        // Raw names of the directories on the stack, for error messages.
        let mut names: Vec<Vec<u8>> = Vec::new();
        let mut stack = vec![self.open(root, &path, &mut guard)];
        while let Some(frame) = stack.last_mut() {
            let Some(entry) = frame.entries.next() else {
                let Some(done) = stack.pop() else { break };
                let found = Rc::new(done.found);
                self.cache.insert(done.key, Rc::clone(&found));
                path.truncate(done.path_len);
                names.pop();
                match stack.last_mut() {
                    Some(parent) if !found.is_empty() => {
                        parent.found.items.push(Item::Below(done.name, found))
                    }
                    Some(_) => {}
                    None => return Ok(found),
                }
                continue;
            };
            guard.visit(&names)?;
            let name = names::escape(&entry.name);
            let len = path.len();
            path.push('/');
            path.push_str(&name);
            let is_dir = matches!(entry.node, Node::Dir { .. });
            if self.pattern.is_match(&name, &path, is_dir) {
                frame.found.items.push(Item::Hit(name.clone(), EntryInfo::new(&entry)));
            }
            let Node::Dir { tree } = entry.node else {
                path.truncate(len);
                continue;
            };
            let key = (tree, self.pattern.whole_path.then(|| path.clone()));
            if let Some(below) = self.cache.get(&key) {
                if !below.is_empty() {
                    frame.found.items.push(Item::Below(name, Rc::clone(below)));
                }
                path.truncate(len);
                continue;
            }
            names.push(entry.name);
            guard.descend(stack.len(), &names)?;
            let mut below = self.open(tree, &path, &mut guard);
            below.path_len = len;
            below.name = name;
            stack.push(below);
        }
        Ok(Rc::new(Found::default()))
    }
}

/// A directory being searched.
struct Frame {
    key: (TreeId, Option<String>),
    entries: std::vec::IntoIter<Entry>,
    found: Found,
    /// Length of the escaped path before this directory's name.
    path_len: usize,
    /// Its escaped name (empty for the root).
    name: String,
}

/// Turns a cached result into matches with full paths. Cached results are
/// shared, so a DAG's results expand to as many paths as it has: counted
/// against a [`Guard`] (each distinct result's items once as stored).
fn expand(
    found: &Rc<Found>,
    at: &SnapshotRef,
    matches: &mut Vec<FindMatch>,
    unreadable: &mut Vec<UnreadableDir>,
) -> Result<()> {
    let mut guard = Guard::new();
    let mut distinct: HashSet<*const Found> = HashSet::new();
    let mut path = String::new();
    let mut names: Vec<Vec<u8>> = Vec::new();
    // (result, next item, path length before its name)
    let mut stack: Vec<(Rc<Found>, usize, usize)> = vec![(Rc::clone(found), 0, 0)];
    if distinct.insert(Rc::as_ptr(found)) {
        guard.stored(found.items.len());
    }
    while let Some((found, next, _)) = stack.last_mut() {
        let Some(item) = found.items.get(*next) else {
            if let Some((_, _, len)) = stack.pop() {
                path.truncate(len);
                names.pop();
            }
            continue;
        };
        *next += 1;
        guard.visit(&names)?;
        match item {
            Item::Hit(name, entry) => matches.push(FindMatch {
                snapshot: at.clone(),
                path: format!("{path}/{name}"),
                entry: entry.clone(),
            }),
            Item::Below(name, below) => {
                let below = Rc::clone(below);
                let len = path.len();
                path.push('/');
                path.push_str(name);
                names.push(name.clone().into_bytes());
                guard.descend(stack.len(), &names)?;
                if let Some(error) = &below.error {
                    unreadable.push(UnreadableDir {
                        snapshot: at.short_id.clone(),
                        path: path.clone(),
                        error: error.clone(),
                    });
                }
                if distinct.insert(Rc::as_ptr(&below)) {
                    guard.stored(below.items.len());
                }
                stack.push((below, 0, len));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// log
// ---------------------------------------------------------------------------

/// How a version compares with the one before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// First appearance, or back after it was removed.
    Added,
    /// Different contents: a file's chunks, a symlink's target, a
    /// directory's tree, a device number, or the type.
    Changed,
    /// Same contents (metadata may differ, see `metadata_changed`).
    Unchanged,
    /// The previous snapshot of the same host and source paths held it; this one does not.
    Removed,
}

impl Change {
    /// The word shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Changed => "changed",
            Change::Unchanged => "unchanged",
            Change::Removed => "removed",
        }
    }
}

/// One step in the history of a path.
#[derive(Clone, Debug, Serialize)]
pub struct LogEvent {
    #[serde(flatten)]
    pub snapshot: SnapshotRef,
    pub change: Change,
    /// The entry in this snapshot (none when removed).
    #[serde(flatten)]
    pub entry: Option<EntryInfo>,
    /// Short id of the snapshot this one was compared with.
    pub previous: Option<String>,
    /// Mode, owner, mtime or extended attributes differ from the previous version.
    pub metadata_changed: bool,
}

/// The history of one path.
#[derive(Clone, Debug, Serialize)]
pub struct LogReport {
    /// The path, escaped.
    pub path: String,
    /// Snapshots looked at.
    pub snapshots_searched: u64,
    /// Snapshots holding the path.
    pub versions: u64,
    /// Oldest first: every snapshot holding the path, and every snapshot
    /// that no longer holds it where the one before it (same host and paths) did.
    pub history: Vec<LogEvent>,
    /// The command restoring the newest version, when there is one.
    pub restore_command: Option<String>,
    /// Directories on the way to the path that could not be read (those
    /// snapshots are left out of the history).
    pub unreadable: Vec<UnreadableDir>,
    /// Snapshot files that could not be read.
    pub damaged_snapshots: Vec<Unreadable>,
}

impl LogReport {
    /// Whether every snapshot could be looked at.
    pub fn complete(&self) -> bool {
        self.unreadable.is_empty() && self.damaged_snapshots.is_empty()
    }
}

/// The history of `path` (absolute inside the snapshots) across all snapshots.
pub fn log(repo: &Repository, path: &Path, progress: &dyn Progress) -> Result<LogReport> {
    let components = names::split_snapshot_path(path)?;
    if components.is_empty() {
        return Err(Error::InvalidInput("give a path below / to show its history".into()));
    }
    let shown = names::display_components(&components);
    let SnapshotList { snapshots: list, damaged: damaged_snapshots } = repo.snapshots()?;
    progress.begin("searching snapshots", None);
    let mut lookup = Lookup { store: repo, components: &components, cache: HashMap::new() };
    let mut report = LogReport {
        path: shown.clone(),
        snapshots_searched: list.len() as u64,
        versions: 0,
        history: Vec::new(),
        restore_command: None,
        unreadable: Vec::new(),
        damaged_snapshots,
    };
    // What the last snapshot of each (host, paths) group held at the path.
    let mut groups: HashMap<Group<'_>, Option<Version>> = HashMap::new();
    // The newest version seen anywhere.
    let mut last: Option<Version> = None;
    for (id, snap) in &list {
        progress.advance(1, 0);
        let at = SnapshotRef::new(id, snap);
        let found = match lookup.at(snap.tree, 0) {
            Ok(found) => found,
            Err((depth, error)) => {
                report.unreadable.push(UnreadableDir {
                    snapshot: at.short_id,
                    path: names::display_components(&components[..depth]),
                    error,
                });
                continue;
            }
        };
        let group = (snap.hostname.as_str(), snap.paths.as_slice());
        let group_before = groups.get(&group).cloned();
        let event = match (found.as_ref(), group_before) {
            (Some(entry), before) => {
                // The group's previous snapshot decides; a new group continues the overall history.
                let previous = match before {
                    Some(b) => b,
                    None => last.clone(),
                };
                let (change, metadata_changed, previous) = match previous {
                    None => (Change::Added, false, None),
                    Some((prev_id, prev)) => {
                        let change =
                            if prev.node == entry.node { Change::Unchanged } else { Change::Changed };
                        (change, metadata_differs(&prev, entry), Some(prev_id))
                    }
                };
                Some(LogEvent {
                    snapshot: at.clone(),
                    change,
                    entry: Some(EntryInfo::new(entry)),
                    previous,
                    metadata_changed,
                })
            }
            (None, Some(Some((prev_id, _)))) => Some(LogEvent {
                snapshot: at.clone(),
                change: Change::Removed,
                entry: None,
                previous: Some(prev_id),
                metadata_changed: false,
            }),
            (None, _) => None,
        };
        let now = found.map(|e| (at.short_id.clone(), e));
        if now.is_some() {
            report.versions += 1;
            last.clone_from(&now);
        }
        groups.insert(group, now);
        report.history.extend(event);
    }
    progress.end();
    report.restore_command =
        last.map(|(short, _)| format!("snap restore {short} --target DIR --include {}", shell_quote(&shown)));
    Ok(report)
}

/// A snapshot's host and source paths: the snapshots of one backup job.
type Group<'a> = (&'a str, &'a [serde_bytes::ByteBuf]);

/// A version of the path: the short id of a snapshot holding it, and the entry there.
type Version = (String, Entry);

/// The entry at the path, if any; or the depth of a node that failed to load, and why.
type Looked = Result<Option<Entry>, (usize, String)>;

fn metadata_differs(a: &Entry, b: &Entry) -> bool {
    let (a, b) = (&a.meta, &b.meta);
    (a.mode, a.uid, a.gid, a.mtime, &a.xattrs) != (b.mode, b.uid, b.gid, b.mtime, &b.xattrs)
}

/// A word as a POSIX shell reads it back.
fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-+,:@%=".contains(&b)) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Looks one path up in many snapshots, caching by (node, depth): a
/// snapshot whose directories on the way are unchanged costs no load.
struct Lookup<'a> {
    store: &'a dyn TreeStore,
    components: &'a [Vec<u8>],
    cache: HashMap<(TreeId, usize), Looked>,
}

impl Lookup<'_> {
    /// The entry at `components[depth..]` below node `id`; an error names
    /// the depth of the node that failed to load.
    fn at(&mut self, id: TreeId, depth: usize) -> Looked {
        if let Some(hit) = self.cache.get(&(id, depth)) {
            return hit.clone();
        }
        let result = match self.store.load_tree(&id) {
            Err(e) => Err((depth, e.to_string())),
            Ok(tree) => match tree.find(&self.components[depth]) {
                None => Ok(None),
                Some(entry) if depth + 1 == self.components.len() => Ok(Some(entry.clone())),
                Some(Entry { node: Node::Dir { tree }, .. }) => self.at(*tree, depth + 1),
                Some(_) => Ok(None),
            },
        };
        self.cache.insert((id, depth), result.clone());
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::tree::{Metadata, Tree};
    use std::sync::Mutex;

    #[test]
    fn patterns() {
        let p = |pat: &str| Pattern::new(pat, false).unwrap();
        assert!(p("*.txt").is_match("a.txt", "/x/y/a.txt", false));
        assert!(!p("*.txt").is_match("a.rs", "/x/y/a.rs", false));
        // A name pattern never sees the directories above.
        assert!(!p("y*").is_match("a.txt", "/x/y/a.txt", false));
        // With a slash: the whole path; `*` stays within a name, `**` spans.
        assert!(p("/x/*/a.txt").is_match("a.txt", "/x/y/a.txt", false));
        assert!(!p("/x/*.txt").is_match("a.txt", "/x/y/a.txt", false));
        assert!(p("/x/**/a.txt").is_match("a.txt", "/x/y/z/a.txt", false));
        // Not anchored unless it starts with `/`.
        assert!(p("y/*.txt").is_match("a.txt", "/x/y/a.txt", false));
        assert!(!p("/y/*.txt").is_match("a.txt", "/x/y/a.txt", false));
        // Trailing slash: directories only.
        assert!(p("y/").is_match("y", "/x/y", true));
        assert!(!p("y/").is_match("y", "/x/y", false));
        // Case.
        assert!(!p("*.TXT").is_match("a.txt", "/a.txt", false));
        assert!(Pattern::new("*.TXT", true).unwrap().is_match("a.txt", "/a.txt", false));
        // Escaped names are matched as shown; a literal backslash is `\\`.
        assert!(p(r"bad\\xffname").is_match(r"bad\xffname", r"/bad\xffname", false));
        assert!(p("bad*name").is_match(r"bad\xffname", r"/bad\xffname", false));
        assert!(Pattern::new("/", false).is_err());
        assert!(Pattern::new("a[", false).is_err());
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("/home/me/a.txt"), "/home/me/a.txt");
        assert_eq!(shell_quote("/it's here"), r"'/it'\''s here'");
    }

    /// Trees in memory, counting loads.
    #[derive(Default)]
    struct Store {
        trees: HashMap<TreeId, Tree>,
        loads: Mutex<Vec<TreeId>>,
    }

    impl TreeStore for Store {
        fn load_node(&self, id: &TreeId) -> Result<(Tree, Vec<TreeId>)> {
            self.loads.lock().unwrap().push(*id);
            let tree =
                self.trees.get(id).cloned().ok_or(Error::NotFound { kind: "tree", id: id.to_hex() })?;
            Ok((tree, Vec::new()))
        }
    }

    fn file(name: &str, size: u64) -> Entry {
        let node = Node::File { size, chunks: vec![] };
        Entry { name: name.into(), node, meta: Metadata::default(), sha256: None }
    }

    fn dir(name: &str, tree: u8) -> Entry {
        Entry {
            name: name.into(),
            node: Node::Dir { tree: TreeId::from_bytes([tree; 32]) },
            meta: Metadata::default(),
            sha256: None,
        }
    }

    fn at(short: &str) -> SnapshotRef {
        SnapshotRef {
            snapshot: short.into(),
            short_id: short.into(),
            time: String::new(),
            unix_time: 0,
            hostname: String::new(),
        }
    }

    #[test]
    fn each_node_is_searched_once() {
        let mut store = Store::default();
        let mut add =
            |n: u8, entries: Vec<Entry>| store.trees.insert(TreeId::from_bytes([n; 32]), Tree { entries });
        // Root 1 and root 2 share the subtree 3 under different names; 4 is missing.
        add(3, vec![file("a.txt", 1), file("b.rs", 2)]);
        add(1, vec![dir("d", 3), file("top.txt", 3)]);
        add(2, vec![dir("d", 3), dir("e", 3), dir("lost", 4)]);
        let pattern = Pattern::new("*.txt", false).unwrap();
        let mut search = Search::new(&store, &pattern);
        let (mut matches, mut unreadable) = (Vec::new(), Vec::new());
        for (root, name) in [(1, "s1"), (1, "s2"), (2, "s3")] {
            search
                .snapshot(TreeId::from_bytes([root; 32]), &at(name), &mut matches, &mut unreadable)
                .unwrap();
        }
        let got: Vec<(String, String)> =
            matches.iter().map(|m| (m.snapshot.short_id.clone(), m.path.clone())).collect();
        let want = [
            ("s1", "/d/a.txt"),
            ("s1", "/top.txt"),
            ("s2", "/d/a.txt"),
            ("s2", "/top.txt"),
            ("s3", "/d/a.txt"),
            ("s3", "/e/a.txt"),
        ];
        assert_eq!(got, want.map(|(a, b)| (a.to_owned(), b.to_owned())));
        assert_eq!(unreadable.len(), 1);
        assert_eq!((unreadable[0].snapshot.as_str(), unreadable[0].path.as_str()), ("s3", "/lost"));
        let loads = store.loads.lock().unwrap();
        assert_eq!(loads.len(), 4, "each distinct node once: {loads:?}");

        // A pattern on the whole path caches per position: `d` and `e` differ.
        drop(loads);
        let pattern = Pattern::new("/e/*.txt", false).unwrap();
        let mut search = Search::new(&store, &pattern);
        let mut matches = Vec::new();
        search.snapshot(TreeId::from_bytes([2; 32]), &at("s3"), &mut matches, &mut Vec::new()).unwrap();
        assert_eq!(matches.iter().map(|m| m.path.as_str()).collect::<Vec<_>>(), ["/e/a.txt"]);
    }

    #[test]
    fn lookup_caches_by_node_and_depth() {
        let mut store = Store::default();
        store.trees.insert(TreeId::from_bytes([3; 32]), Tree { entries: vec![file("a.txt", 7)] });
        store.trees.insert(TreeId::from_bytes([1; 32]), Tree { entries: vec![dir("d", 3)] });
        store.trees.insert(TreeId::from_bytes([2; 32]), Tree { entries: vec![dir("d", 3), file("x", 1)] });
        let components = vec![b"d".to_vec(), b"a.txt".to_vec()];
        let mut lookup = Lookup { store: &store, components: &components, cache: HashMap::new() };
        for root in [1, 2, 1] {
            let found = lookup.at(TreeId::from_bytes([root; 32]), 0).unwrap().unwrap();
            assert!(matches!(found.node, Node::File { size: 7, .. }));
        }
        assert_eq!(store.loads.lock().unwrap().len(), 3);
        let components = vec![b"x".to_vec(), b"a.txt".to_vec()];
        let mut lookup = Lookup { store: &store, components: &components, cache: HashMap::new() };
        assert!(lookup.at(TreeId::from_bytes([2; 32]), 0).unwrap().is_none(), "a file is no directory");
        assert_eq!(lookup.at(TreeId::from_bytes([9; 32]), 0).unwrap_err().0, 0);
    }
}
