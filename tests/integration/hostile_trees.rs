//! Repositories whose trees are shaped to hurt: a chain of nodes deeper than
//! any stack of recursive calls, and a DAG naming one subtree twice per
//! level (2^64 paths from 128 entries). Every command ends, with a result
//! or a clear error, never a stack overflow, a panic or a walk that runs
//! for ever (issue 15, item 7).

use crate::common;

use std::process::Stdio;

use common::{Run, TempRepo, run_command, s};
use snap::backend::LockMode;
use snap::format::Timestamp;
use snap::format::snapshot::Snapshot;
use snap::format::tree::{Entry, Metadata, Node, Tree};
use snap::id::TreeId;
use snap::repo::{BlobWriter, Repository};

pub(crate) fn meta() -> Metadata {
    Metadata { mode: 0o755, ..Metadata::default() }
}

pub(crate) fn dir(name: &str, tree: TreeId) -> Entry {
    Entry { name: name.into(), node: Node::Dir { tree }, meta: meta(), sha256: None }
}

pub(crate) fn empty_file(name: &str) -> Entry {
    Entry { name: name.into(), node: Node::File { size: 0, chunks: vec![] }, meta: meta(), sha256: None }
}

/// Stores the trees `build` makes (bottom up) and a snapshot of the root it
/// returns, through the library as a hostile writer could.
pub(crate) fn plant(r: &TempRepo, build: impl FnOnce(&BlobWriter) -> snap::Result<TreeId>) {
    let repo = Repository::open(Box::new(r.local_backend()), LockMode::Shared).unwrap();
    let (root, _, durable) = BlobWriter::write(&repo, build).unwrap();
    let mut snap = Snapshot::new(Timestamp::now(), root);
    snap.paths = vec![serde_bytes::ByteBuf::from(b"/hostile".to_vec())];
    durable.save_snapshot(&snap).unwrap();
}

/// A chain of `levels` directories named `d`, a file at the bottom.
fn chain(levels: usize) -> impl FnOnce(&BlobWriter) -> snap::Result<TreeId> {
    move |w| {
        let mut id = w.save_tree(&Tree { entries: vec![empty_file("bottom")] })?;
        for _ in 0..levels {
            id = w.save_tree(&Tree { entries: vec![dir("d", id)] })?;
        }
        Ok(id)
    }
}

/// `levels` nodes, each naming the one below twice (`a` and `b`).
fn dag(levels: usize) -> impl FnOnce(&BlobWriter) -> snap::Result<TreeId> {
    move |w| {
        let mut id = w.save_tree(&Tree { entries: vec![empty_file("leaf")] })?;
        for _ in 0..levels {
            id = w.save_tree(&Tree { entries: vec![dir("a", id), dir("b", id)] })?;
        }
        Ok(id)
    }
}

/// Stack of every thread of a run: 512 KiB, so that a chain of
/// [`CHAIN`] levels would overflow any walk spending more than about 90
/// bytes of stack per level, that is, any recursive one.
const STACK_KIB: usize = 512;

/// Deep enough to overflow [`STACK_KIB`] under recursion, shallow enough
/// that listing it (quadratic in depth: every path spells all its
/// parents) stays quick.
const CHAIN: usize = 6_000;

/// Runs `snap ARGS` on a small stack, with stdout thrown away, keeping
/// stderr. The main thread's stack is set by `ulimit -s` before exec, the
/// others' by `RUST_MIN_STACK`.
fn run_quiet(r: &TempRepo, args: &[&str]) -> Run {
    let mut cmd = r.command_through(&["sh", "-c", &format!("ulimit -s {STACK_KIB} && exec \"$0\" \"$@\"")]);
    cmd.env("RUST_MIN_STACK", (STACK_KIB * 1024).to_string()).stdout(Stdio::null());
    run_command(cmd, args)
}

#[track_caller]
fn assert_ended(run: &Run) {
    for bad in ["overflow", "panicked", "SIGSEGV"] {
        assert!(!run.stderr.contains(bad), "{bad}:\n{}", run.describe());
    }
    assert!(run.code.is_some(), "killed by a signal:\n{}", run.describe());
    assert_ne!(run.code, Some(101), "panicked:\n{}", run.describe());
}

/// A second snapshot with an empty root, to diff against.
fn plant_empty(r: &TempRepo) {
    plant(r, |w| w.save_tree(&Tree::default()));
}

/// Every command that walks trees, as (args, whether it must succeed).
fn commands<'a>(r: &'a TempRepo, dst: &'a TempRepo) -> Vec<Vec<String>> {
    let target = r.root.join("restored");
    let dump = r.root.join("dump.tar");
    [
        vec!["ls", "latest~1"],
        vec!["find", "nothing-has-this-name"],
        vec!["find", "leaf"],
        vec!["restore", "latest~1", "--target", s(&target)],
        vec!["dump", "latest~1", "--format", "tar", "--output", s(&dump)],
        vec!["diff", "latest", "latest~1"],
        vec!["stats"],
        vec!["verify"],
        vec!["repair", "snapshots"],
        vec!["copy", "--to", s(&dst.repo)],
    ]
    .into_iter()
    .map(|a| a.into_iter().map(str::to_owned).collect())
    .collect()
}

#[test]
fn a_chain_deeper_than_any_stack_never_overflows_it() {
    let r = TempRepo::init();
    let dst = TempRepo::init();
    plant(&r, chain(CHAIN));
    plant_empty(&r);
    for args in commands(&r, &dst) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = run_quiet(&r, &args);
        assert_ended(&run);
        // Such a depth is legitimate (below the depth limit), and restore
        // reaches it through descriptors, past PATH_MAX.
        assert!(!run.stderr.contains("refused as hostile"), "{}", run.describe());
        assert_eq!(run.code, Some(0), "{}", run.describe());
    }
    // The copy is whole: verify in the destination walks the chain too.
    run_quiet(&dst, &["verify"]).assert_ok();
}

#[test]
fn a_chain_past_the_depth_limit_is_refused_by_name() {
    let r = TempRepo::init();
    let dst = TempRepo::init();
    plant(&r, chain(snap::tree::MAX_DEPTH + 10));
    plant_empty(&r);
    for cmd in [vec!["find", "nothing-has-this-name"], vec!["copy", "--to", s(&dst.repo)]] {
        let run = run_quiet(&r, &cmd);
        assert_ended(&run);
        assert_ne!(run.code, Some(0), "{}", run.describe());
        assert!(
            run.stderr.contains("tree deeper than 65536 levels: refused as hostile"),
            "{}",
            run.describe()
        );
        assert!(run.stderr.contains("/d/d/d/d/d/d/d/d/..."), "names the path: {}", run.describe());
    }
    let stats = run_quiet(&r, &["stats"]);
    assert_ended(&stats);
}

#[test]
fn a_dag_of_exponential_paths_ends_with_a_clear_error() {
    let r = TempRepo::init();
    let dst = TempRepo::init();
    plant(&r, dag(64));
    plant_empty(&r);
    for args in commands(&r, &dst) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = run_quiet(&r, &args);
        assert_ended(&run);
        // Commands that list paths cannot finish 2^64 of them: they stop
        // at the visit budget. Those that handle each distinct node once
        // (verify, copy, repair, stats, a find without matches) finish.
        let lists = ["ls", "restore", "dump", "diff"].contains(&args[0]) || args == ["find", "leaf"];
        if lists {
            assert_ne!(run.code, Some(0), "{}", run.describe());
            assert!(run.stderr.contains("visit budget exhausted"), "{}", run.describe());
        } else {
            assert_eq!(run.code, Some(0), "{}", run.describe());
        }
    }
    // Stats counts each distinct node once and saturates what overflows.
    let stats = r.json(["stats", "latest~1"]);
    assert_eq!(stats["files"], serde_json::json!(u64::MAX), "{stats}");
}

/// Snapshot times are whatever the file says: the extremes must not make
/// any command overflow (debug builds panic on it).
#[test]
fn snapshots_at_the_ends_of_time_break_no_command() {
    let r = TempRepo::init();
    for secs in [i64::MIN, i64::MAX, 0] {
        let repo = Repository::open(Box::new(r.local_backend()), LockMode::Shared).unwrap();
        let (root, _, durable) =
            BlobWriter::write(&repo, |w| w.save_tree(&Tree { entries: vec![empty_file("f")] })).unwrap();
        let mut snap = Snapshot::new(Timestamp { secs, nanos: 999_999_999 }, root);
        // One group each (host and paths): each is its group's newest, whose age status computes.
        snap.paths = vec![serde_bytes::ByteBuf::from(format!("/t{secs}").into_bytes())];
        durable.save_snapshot(&snap).unwrap();
    }
    let target = r.root.join("restored");
    for args in [
        vec!["snapshots"],
        vec!["--json", "snapshots"],
        vec!["snapshots", "--tree"],
        vec!["status"],
        vec!["--json", "status"],
        vec!["status", "--max-age", "1d"],
        vec!["stats"],
        vec!["ls", "latest"],
        vec!["find", "f"],
        vec!["log", "/f"],
        vec!["diff", "latest", "latest~2"],
        vec!["restore", "latest", "--target", s(&target)],
        vec!["prune", "--keep-within", "1d", "--dry-run"],
        vec![
            "prune",
            "--keep-daily",
            "1",
            "--keep-weekly",
            "1",
            "--keep-monthly",
            "1",
            "--keep-yearly",
            "1",
            "--dry-run",
        ],
        vec!["prune", "--keep-within", "4000000000y", "--dry-run"],
        vec!["verify"],
    ] {
        let run = r.snap(&args);
        assert_ended(&run);
        assert!(run.code == Some(0) || run.stderr.starts_with("snap: "), "{}", run.describe());
    }
}
