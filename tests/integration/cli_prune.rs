//! `snap forget` and `snap prune`: the retention rules on real snapshots,
//! `--dry-run`, freeing a 40 MiB file, repacking, sweeping repo/tmp, and
//! refusing to prune a repository whose kept snapshots lack data. After
//! every prune the kept snapshots restore byte-exact and verify passes.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

const MIB: u64 = 1 << 20;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Snapshot ids, oldest first.
fn ids(r: &TempRepo) -> Vec<String> {
    r.snapshots().iter().map(|s| s["id"].as_str().unwrap().to_owned()).collect()
}

/// `snap --json prune ARGS`, asserting success.
#[track_caller]
fn prune(r: &TempRepo, args: &[&str]) -> Value {
    let mut all = vec!["prune"];
    all.extend_from_slice(args);
    r.json(all)
}

/// What a tree holds, for a byte-exact comparison of contents.
#[derive(Debug, PartialEq, Eq)]
enum Content {
    Dir,
    File(Vec<u8>),
    Link(PathBuf),
}

fn contents(root: &Path) -> BTreeMap<PathBuf, Content> {
    list_tree(root)
        .into_iter()
        .map(|rel| {
            let path = root.join(&rel);
            let meta = fs::symlink_metadata(&path).unwrap();
            let c = if meta.is_dir() {
                Content::Dir
            } else if meta.file_type().is_symlink() {
                Content::Link(fs::read_link(&path).unwrap())
            } else {
                Content::File(fs::read(&path).unwrap())
            };
            (rel, c)
        })
        .collect()
}

/// Restores `snapshot` into a fresh directory and asserts that its copy of
/// src holds exactly `expected`.
#[track_caller]
fn assert_restores(r: &TempRepo, snapshot: &str, expected: &BTreeMap<PathBuf, Content>) {
    let target = r.root.join(format!("restore-{}", &snapshot[..12]));
    r.snap(["restore", snapshot, "--target", s(&target)]).assert_ok();
    let got = contents(&r.restored(&target, &r.src));
    if &got != expected {
        let keys = |m: &BTreeMap<PathBuf, Content>| m.keys().cloned().collect::<BTreeSet<_>>();
        panic!(
            "snapshot {snapshot} does not restore what was backed up\nexpected paths {:?}\nrestored paths {:?}",
            keys(expected),
            keys(&got)
        );
    }
    fs::remove_dir_all(&target).unwrap();
}

#[track_caller]
fn assert_verifies(r: &TempRepo) {
    let run = r.snap(["--json", "verify", "--read-data"]);
    assert_eq!(run.code, Some(0), "verify --read-data after prune:\n{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json()["ok"], true);
}

fn report_num(report: &Value, field: &str) -> u64 {
    report["report"][field].as_u64().unwrap_or_else(|| panic!("report.{field} missing: {report:#}"))
}

/// Decisions by snapshot id: (keep, reasons).
fn decisions(report: &Value) -> BTreeMap<String, (bool, Vec<String>)> {
    report["report"]["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let reasons =
                d["reasons"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_owned()).collect();
            (d["id"].as_str().unwrap().to_owned(), (d["keep"].as_bool().unwrap(), reasons))
        })
        .collect()
}

/// Four snapshots of a changing small tree; returns their ids.
fn four_snapshots(r: &TempRepo) -> Vec<String> {
    for i in 0..4 {
        fs::write(r.src.join(format!("file-{i}.txt")), format!("generation {i}")).unwrap();
        fs::write(r.src.join("changing.txt"), Rng::new(i).bytes(2000)).unwrap();
        r.backup(&[]);
    }
    let list = ids(r);
    assert_eq!(list.len(), 4);
    list
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn prune_dry_run_changes_nothing_and_gives_the_reasons_for_what_it_keeps() {
    let r = TempRepo::init();
    fs::write(r.src.join("base.txt"), b"base").unwrap();
    r.backup(&["--tag", "old"]);
    fs::write(r.src.join("temporary.bin"), Rng::new(5).bytes(100_000)).unwrap();
    r.backup(&[]);
    fs::remove_file(r.src.join("temporary.bin")).unwrap();
    r.backup(&[]);
    let list = ids(&r);
    let before = repo_files(&r.repo);

    let report = prune(&r, &["--keep", "1", "--keep-tag", "old", "--dry-run"]);
    assert_eq!(report["report"]["dry_run"], true);
    assert_eq!(report_num(&report, "snapshots_removed"), 1);
    let d = decisions(&report);
    assert_eq!(d.len(), 3, "{report:#}");
    let (keep_new, why_new) = &d[&list[2]];
    assert!(*keep_new && why_new.iter().any(|w| w.contains("last")), "newest: {why_new:?}");
    let (keep_old, why_old) = &d[&list[0]];
    assert!(*keep_old && why_old.iter().any(|w| w.contains("old")), "tagged: {why_old:?}");
    let (keep_mid, why_mid) = &d[&list[1]];
    assert!(!keep_mid && why_mid.is_empty(), "middle: {why_mid:?}");
    assert!(report["bytes_freed"].as_u64().unwrap() >= 100_000, "temporary.bin would be freed: {report:#}");
    assert!(report_num(&report, "packs_deleted") + report_num(&report, "packs_repacked") >= 1, "{report:#}");

    // The text form too; and neither run changed anything.
    let run = r.snap(["prune", "--keep", "1", "--keep-tag", "old", "--dry-run"]);
    run.assert_ok();
    assert!(run.stdout.contains("would"), "{}", run.stdout);
    assert!(run.stdout.contains(&list[1][..8]), "{}", run.stdout);
    assert_eq!(repo_files(&r.repo), before, "--dry-run changed the repository");
    assert_eq!(ids(&r), list);
}

#[test]
fn prune_keep_2_removes_the_two_oldest_of_four_snapshots() {
    let r = TempRepo::init();
    let list = four_snapshots(&r);
    let report = prune(&r, &["--keep", "2"]);
    assert_eq!(report["report"]["dry_run"], false);
    assert_eq!(report_num(&report, "snapshots_removed"), 2);
    let d = decisions(&report);
    for (i, id) in list.iter().enumerate() {
        assert_eq!(d[id].0, i >= 2, "snapshot {i}: {:?}", d[id]);
    }
    assert_eq!(ids(&r), list[2..].to_vec());
    for gone in &list[..2] {
        assert!(!r.repo.join("snapshots").join(gone).exists());
    }
    assert_verifies(&r);
}

#[test]
fn prune_frees_a_40_mib_file_no_kept_snapshot_uses_and_kept_snapshots_stay_whole() {
    let r = TempRepo::init();
    let mut rng = Rng::new(40);
    fs::create_dir(r.src.join("small")).unwrap();
    fs::write(r.src.join("small/a.txt"), b"small and kept").unwrap();
    fs::write(r.src.join("small/b.bin"), rng.bytes(2000)).unwrap();
    write_random(&r.src.join("big.bin"), &mut rng, 40 * MIB as usize);
    r.backup(&[]);

    fs::remove_file(r.src.join("big.bin")).unwrap();
    fs::write(r.src.join("c.txt"), b"added in the second snapshot").unwrap();
    r.backup(&[]);
    let second = contents(&r.src);

    fs::write(r.src.join("small/a.txt"), b"changed in the third snapshot").unwrap();
    std::os::unix::fs::symlink("small/a.txt", r.src.join("link")).unwrap();
    r.backup(&[]);
    let third = contents(&r.src);
    let list = ids(&r);

    let size_before = dir_size(&r.repo);
    let report = prune(&r, &["--keep", "2"]);
    let size_after = dir_size(&r.repo);
    assert_eq!(report_num(&report, "snapshots_removed"), 1);
    assert!(
        size_before >= size_after + 38 * MIB,
        "repository went from {size_before} to {size_after} bytes: {report:#}"
    );
    assert!(report["bytes_freed"].as_u64().unwrap() >= 38 * MIB, "{report:#}");
    assert_eq!(
        report["bytes_freed"].as_u64().unwrap(),
        report_num(&report, "bytes_before") - report_num(&report, "bytes_after")
    );
    let pack_bytes: u64 = pack_files(&r.repo).values().map(|p| fs::metadata(p).unwrap().len()).sum();
    assert_eq!(pack_bytes, report_num(&report, "bytes_after"), "bytes_after is what the packs now take");

    assert_eq!(ids(&r), list[1..].to_vec());
    assert_restores(&r, &list[1], &second);
    assert_restores(&r, &list[2], &third);
    assert_verifies(&r);

    // A second prune has nothing left to do.
    let again = prune(&r, &["--keep", "2"]);
    assert_eq!(again["bytes_freed"], 0, "{again:#}");
    assert_eq!(report_num(&again, "snapshots_removed"), 0);
}

#[test]
fn prune_repacks_a_partly_used_pack_and_keeps_its_live_data() {
    let r = TempRepo::init();
    let mut rng = Rng::new(14);
    write_random(&r.src.join("ten.bin"), &mut rng, 10 * MIB as usize);
    write_random(&r.src.join("four.bin"), &mut rng, 4 * MIB as usize);
    r.backup(&[]);
    fs::remove_file(r.src.join("ten.bin")).unwrap();
    r.backup(&[]);
    let kept = contents(&r.src);
    let newest = ids(&r)[1].clone();

    let report = prune(&r, &["--keep", "1"]);
    assert_eq!(report_num(&report, "snapshots_removed"), 1);
    assert!(report_num(&report, "packs_repacked") >= 1, "{report:#}");
    assert!(report_num(&report, "packs_written") >= 1, "{report:#}");
    assert!(report["bytes_freed"].as_u64().unwrap() >= 9 * MIB, "{report:#}");
    let pack_bytes: u64 = pack_files(&r.repo).values().map(|p| fs::metadata(p).unwrap().len()).sum();
    assert!(pack_bytes < 5 * MIB, "only four.bin and the trees are left: {pack_bytes} bytes");

    assert_eq!(ids(&r), vec![newest.clone()]);
    assert_restores(&r, &newest, &kept);
    assert_verifies(&r);
}

#[test]
fn forget_latest_1_removes_exactly_that_snapshot_and_no_data() {
    let r = TempRepo::init();
    for i in 0..3 {
        fs::write(r.src.join(format!("f{i}")), format!("file {i}")).unwrap();
        r.backup(&[]);
    }
    let list = ids(&r);
    let packs_before = pack_files(&r.repo);

    let out = r.json(["forget", "latest~1"]);
    assert_eq!(out["forgotten"], serde_json::json!([list[1]]));
    assert_eq!(ids(&r), vec![list[0].clone(), list[2].clone()]);
    assert!(!r.repo.join("snapshots").join(&list[1]).exists());
    assert_eq!(pack_files(&r.repo), packs_before, "forget leaves the data to prune");
    assert_verifies(&r);

    // An unknown snapshot is an error and removes nothing.
    let run = r.snap(["forget", "ffffffffffff"]);
    assert!(matches!(run.code, Some(c) if c != 0 && c != 101), "{run:?}");
    assert_eq!(ids(&r), vec![list[0].clone(), list[2].clone()]);
}

#[test]
fn prune_keep_tag_keeps_an_old_tagged_snapshot() {
    let r = TempRepo::init();
    fs::write(r.src.join("a"), b"first").unwrap();
    r.backup(&["--tag", "keepme"]);
    let first = contents(&r.src);
    for i in 0..3 {
        fs::write(r.src.join("a"), format!("later {i}")).unwrap();
        r.backup(&["--tag", "other"]);
    }
    let list = ids(&r);

    let report = prune(&r, &["--keep", "1", "--keep-tag", "keepme"]);
    assert_eq!(report_num(&report, "snapshots_removed"), 2);
    let d = decisions(&report);
    assert!(d[&list[0]].0 && d[&list[0]].1.iter().any(|w| w.contains("keepme")), "{:?}", d[&list[0]]);
    assert_eq!(ids(&r), vec![list[0].clone(), list[3].clone()]);
    assert_restores(&r, &list[0], &first);
    assert_verifies(&r);
}

#[test]
fn prune_removes_leftover_files_in_repo_tmp() {
    let r = TempRepo::init();
    fs::write(r.src.join("a"), Rng::new(9).bytes(100_000)).unwrap();
    r.backup(&[]);
    let tmp = r.repo.join("tmp");
    fs::create_dir_all(&tmp).unwrap();
    // Staging files as puts name them (`<pid>-<n>.tmp`), left by a crash.
    fs::write(tmp.join("4242-0.tmp"), Rng::new(1).bytes(5000)).unwrap();
    fs::write(tmp.join("4242-17.tmp"), b"x").unwrap();
    let list = ids(&r);

    let report = prune(&r, &["--keep", "5"]);
    assert_eq!(report_num(&report, "leftovers_removed"), 2, "{report:#}");
    assert_eq!(fs::read_dir(&tmp).unwrap().count(), 0, "repo/tmp is empty after prune");
    assert_eq!(ids(&r), list);
    assert_verifies(&r);
}

#[test]
fn prune_refuses_and_changes_nothing_when_a_kept_snapshot_lacks_data() {
    let r = TempRepo::init();
    fs::write(r.src.join("a.bin"), Rng::new(1).bytes(3000)).unwrap();
    r.backup(&[]);
    let packs_first = pack_files(&r.repo);
    fs::write(r.src.join("b.bin"), Rng::new(2).bytes(50_000)).unwrap();
    r.backup(&[]);
    // The biggest new pack of the second backup holds b.bin's data.
    let (_, b_pack) = pack_files(&r.repo)
        .into_iter()
        .filter(|(id, _)| !packs_first.contains_key(id))
        .max_by_key(|(_, p)| fs::metadata(p).unwrap().len())
        .unwrap();
    assert!(fs::metadata(&b_pack).unwrap().len() > 40_000);
    fs::remove_file(&b_pack).unwrap();
    let list = ids(&r);
    let before = repo_files(&r.repo);

    for args in [&["prune", "--keep", "1"][..], &["prune", "--keep", "1", "--dry-run"][..]] {
        let run = r.snap(args);
        assert!(!run.stderr.contains("panicked"), "{run:?}");
        assert!(matches!(run.code, Some(c) if c != 0 && c != 101), "{args:?} must refuse: {run:?}");
        assert!(run.stderr.contains("snap: "), "{run:?}");
        assert_eq!(repo_files(&r.repo), before, "{args:?} changed the repository");
    }
    assert_eq!(ids(&r), list, "no snapshot was removed");
}

#[test]
fn prune_keeps_the_data_of_small_packs_whose_blobs_are_all_still_used() {
    // Small backups (a config folder) make small packs, mostly header and
    // trailer. Every blob in them is still used, so pruning must keep them
    // (or move their blobs), never lose them.
    let r = TempRepo::init();
    for (i, text) in ["alpha", "beta", "gamma"].iter().enumerate() {
        fs::write(r.src.join(format!("config-{i}.toml")), text).unwrap();
        r.backup(&[]);
    }
    let kept = contents(&r.src);
    let list = ids(&r);

    prune(&r, &["--keep", "3"]);
    assert_eq!(ids(&r), list);
    assert_verifies(&r);
    assert_restores(&r, &list[2], &kept);

    prune(&r, &["--keep", "1"]);
    assert_eq!(ids(&r), vec![list[2].clone()]);
    assert_verifies(&r);
    assert_restores(&r, &list[2], &kept);
}

#[test]
fn prune_refuses_to_count_a_snapshot_dated_past_the_clock_as_the_newest() {
    let r = TempRepo::init();
    let real = four_snapshots(&r);
    // A host with its clock ten years fast backs up the same paths.
    let repo =
        snap::repo::Repository::open(Box::new(r.local_backend()), snap::backend::LockMode::Shared).unwrap();
    let (_, mut skewed) = repo.resolve("latest").unwrap();
    skewed.time.secs += 10 * 365 * 86_400;
    let planted = crate::common::save_snapshot(&repo, &skewed).to_hex();
    drop(repo);

    for args in [&["prune", "--keep", "1"][..], &["prune", "--keep-within", "1d", "--dry-run"]] {
        let run = r.snap(args);
        assert_eq!(run.code, Some(1), "{}", run.describe());
        assert!(run.stderr.contains("more than a day after this machine's clock"), "{}", run.describe());
        assert!(run.stderr.contains(&format!("snap forget {}", &planted[..8])), "{}", run.describe());
    }
    let mut all = real.clone();
    all.push(planted.clone());
    assert_eq!(ids(&r).into_iter().collect::<BTreeSet<_>>(), all.into_iter().collect(), "nothing forgotten");

    // A policy that forgets nothing has nothing to refuse; once the
    // skewed snapshot is forgotten by id, the rules apply to the rest.
    prune(&r, &["--keep-within", "100y"]);
    r.json(["forget", &planted]);
    let report = prune(&r, &["--keep", "1"]);
    assert_eq!(report_num(&report, "snapshots_removed"), 3);
    assert_eq!(ids(&r), vec![real[3].clone()]);
    assert_verifies(&r);
}
