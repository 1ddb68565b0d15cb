//! `snap copy --to REPO`: snapshots arrive whole and restore byte-exact,
//! only what the destination lacks is stored, a second run copies nothing,
//! and it works between repositories with different chunker settings and
//! between encrypted and unencrypted repositories in both directions.

use crate::common;

use std::fs;

use common::*;
use serde_json::Value;

const PASSWORD: &str = "destination password";

fn with_two_snapshots() -> TempRepo {
    let r = TempRepo::init();
    write_random_tree(&r.src, 31, 30, 300_000);
    let mut rng = Rng::new(32);
    write_random(&r.src.join("big.bin"), &mut rng, 6 << 20);
    r.backup(&[]);
    fs::write(r.src.join("later.txt"), b"one more file\n").unwrap();
    r.backup(&[]);
    r
}

/// `snap --json copy --to DEST ARGS`, with DEST's password when it has one.
fn copy_to(src: &TempRepo, dst: &TempRepo, args: &[&str]) -> Value {
    let mut cmd = src.command();
    if let Some(p) = &dst.password {
        cmd.env("SNAP_TO_PASSWORD", p);
    }
    let mut all = vec!["--json", "copy", "--to", s(&dst.repo)];
    all.extend_from_slice(args);
    let run = run_command(cmd, all);
    run.assert_ok();
    run.json()
}

fn count(report: &Value, field: &str) -> usize {
    report[field].as_array().unwrap_or_else(|| panic!("{field} in {report}")).len()
}

/// Restores the latest snapshot of `dst` and compares it with `src`'s tree.
fn assert_latest_restores(src: &TempRepo, dst: &TempRepo) {
    let target = dst.root.join("restored");
    dst.snap(["restore", "latest", "--target", s(&target)]).assert_clean();
    assert_trees_equal(&src.src, &dst.restored(&target, &src.src));
    dst.snap(["verify", "--read-data"]).assert_clean();
    fs::remove_dir_all(&target).unwrap();
}

#[test]
fn plain_to_plain_copies_everything_once_then_only_what_is_new() {
    let src = with_two_snapshots();
    let dst = TempRepo::init();
    let first = copy_to(&src, &dst, &[]);
    assert_eq!(count(&first, "copied"), 2, "{first}");
    assert_eq!(first["rechunked"], false);
    assert_latest_restores(&src, &dst);
    let theirs: Vec<Value> = src.snapshots();
    let ours: Vec<Value> = dst.snapshots();
    for (a, b) in theirs.iter().zip(&ours) {
        for field in ["time", "hostname", "paths", "tags", "summary"] {
            assert_eq!(a[field], b[field], "{field}");
        }
    }

    let again = copy_to(&src, &dst, &[]);
    assert_eq!(count(&again, "copied"), 0, "{again}");
    assert_eq!(count(&again, "already_there"), 2);
    assert_eq!(again["new_blobs"], 0);
    assert_eq!(again["packs_written"], 0);

    // One more backup: only its new file and the changed directories move.
    fs::write(src.src.join("third.txt"), b"third\n").unwrap();
    src.backup(&[]);
    let third = copy_to(&src, &dst, &[]);
    assert_eq!(count(&third, "copied"), 1);
    assert!(third["new_bytes"].as_u64().unwrap() < 100_000, "{third}");
    assert_latest_restores(&src, &dst);
}

#[test]
fn named_snapshots_only() {
    let src = with_two_snapshots();
    let dst = TempRepo::init();
    let report = copy_to(&src, &dst, &["latest~1"]);
    assert_eq!(count(&report, "copied"), 1);
    assert_eq!(dst.snapshots().len(), 1);
    assert_eq!(dst.snapshots()[0]["time"], src.snapshots()[0]["time"]);
}

#[test]
fn different_chunker_settings_on_each_side() {
    let src = with_two_snapshots();
    let dst = TempRepo::new();
    dst.snap(["init"]).assert_clean();
    let path = dst.repo.join("config");
    let mut config: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    config["chunker"]["min_size"] = (64 << 10).into();
    config["chunker"]["avg_size"] = (256 << 10).into();
    config["chunker"]["max_size"] = (1 << 20).into();
    fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    copy_to(&src, &dst, &[]);
    assert_latest_restores(&src, &dst);
}

#[test]
fn plain_to_encrypted_and_back_and_copies_of_copies_are_recognised() {
    let src = with_two_snapshots();
    let enc = TempRepo::init_encrypted(PASSWORD);
    let report = copy_to(&src, &enc, &[]);
    assert_eq!(count(&report, "copied"), 2);
    assert_eq!(report["rechunked"], true);
    assert_latest_restores(&src, &enc);
    assert_eq!(count(&copy_to(&src, &enc, &[]), "copied"), 0, "second run copies nothing");

    // Encrypted to plain, then the original source to the same place: the
    // snapshots are recognised as the same backups.
    let back = TempRepo::init();
    let mut cmd = enc.command();
    cmd.args(["--json", "copy", "--to", s(&back.repo)]);
    let run = run_command(cmd, Vec::<&str>::new());
    run.assert_ok();
    assert_eq!(count(&run.json(), "copied"), 2);
    assert_latest_restores(&src, &back);
    let direct = copy_to(&src, &back, &[]);
    assert_eq!(count(&direct, "copied"), 0, "{direct}");
    assert_eq!(count(&direct, "already_there"), 2);
}

#[test]
fn into_an_encrypted_repository_only_missing_chunks_are_stored() {
    let src = with_two_snapshots();
    // The destination backed up the same files itself first.
    let mut dst = TempRepo::init_encrypted(PASSWORD);
    fs::remove_dir(&dst.src).unwrap();
    dst.src = src.src.clone();
    dst.backup(&[]);
    let report = copy_to(&src, &dst, &[]);
    assert_eq!(count(&report, "copied"), 2);
    let data = dir_size(&src.src);
    assert!(
        report["new_bytes"].as_u64().unwrap() < data / 10,
        "file chunks should deduplicate against the destination's own backup: {report}"
    );
}

#[test]
fn errors_are_one_line() {
    let src = with_two_snapshots();
    let missing = src.root.join("nowhere");
    let line = src.snap(["copy", "--to", s(&missing)]).assert_one_line_error().to_owned();
    assert!(line.contains("no snap repository"), "{line}");
    let line = src.snap(["copy", "--to", s(&src.repo)]).assert_one_line_error().to_owned();
    assert!(line.contains("same repository"), "{line}");
    let enc = TempRepo::init_encrypted(PASSWORD);
    let mut cmd = src.command();
    cmd.env("SNAP_TO_PASSWORD", "wrong");
    let run = run_command(cmd, ["copy", "--to", s(&enc.repo)]);
    assert!(run.assert_one_line_error().contains("wrong password"), "{}", run.stderr);
    assert_eq!(run.code, Some(12));
    let line = src.snap(["copy", "--to", s(&enc.repo), "nosuchsnapshot"]).assert_one_line_error().to_owned();
    assert!(line.contains("nosuchsnapshot"), "{line}");
}

/// Trees and chunks are stored in different packs, so a destination that
/// has a tree may lack its chunks (a lost pack, a failed backup): copy
/// checks every subtree and stores what is missing, instead of writing a
/// snapshot that restores nothing.
#[test]
fn a_tree_the_destination_has_without_its_chunks_is_completed() {
    let src = TempRepo::init();
    write_random_tree(&src.src, 33, 4, 200_000);
    src.backup(&[]);
    let dst = TempRepo::init();
    copy_to(&src, &dst, &[]);
    fs::remove_file(largest_pack(&dst.repo)).unwrap();
    dst.snap(["forget", "latest"]).assert_ok();
    let again = copy_to(&src, &dst, &[]);
    assert_eq!(count(&again, "copied"), 1, "{again}");
    assert!(again["new_blobs"].as_u64().unwrap() >= 4, "{again}");
    assert_latest_restores(&src, &dst);
}
