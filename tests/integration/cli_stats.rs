//! `snap stats` and `snap status`: sizes, dedup and compression figures
//! checked against the files backed up, per snapshot and for the whole
//! repository; last-backup ages per host and paths with `--max-age` and its
//! exit code 5; the lock state while another process holds the lock.

use crate::common;

use std::fs;
use std::path::Path;

use common::*;
use serde_json::Value;
use snap::Repository;
use snap::backend::LockMode;

/// Exit code of `status --max-age` when a backup is overdue.
const EXIT_STALE: i32 = 5;
const MIB: usize = 1 << 20;

fn u(v: &Value, field: &str) -> u64 {
    v[field].as_u64().unwrap_or_else(|| panic!("{field} missing or not a number in {v:#}"))
}

fn f(v: &Value, field: &str) -> f64 {
    v[field].as_f64().unwrap_or_else(|| panic!("{field} missing or not a number in {v:#}"))
}

/// Two identical 1 MiB random files and compressible text; returns the text's length.
fn write_dedup_tree(src: &Path) -> usize {
    let mut rng = Rng::new(7);
    let random = rng.bytes(MIB);
    fs::write(src.join("a.bin"), &random).unwrap();
    fs::create_dir(src.join("copy")).unwrap();
    fs::write(src.join("copy/a-again.bin"), &random).unwrap();
    let text: String =
        (0..6000).map(|i| format!("line {i}: the quick brown fox jumps over the lazy dog\n")).collect();
    fs::write(src.join("notes.txt"), &text).unwrap();
    text.len()
}

fn open_repo(r: &TempRepo, mode: LockMode) -> Repository {
    Repository::open(Box::new(r.local_backend()), mode).expect("open the repository through the library")
}

#[test]
fn stats_of_an_empty_repository() {
    let r = TempRepo::init();
    let st = r.json(["stats"]);
    assert_eq!(st["scope"], "repository");
    for field in [
        "snapshots",
        "files",
        "directories",
        "logical_bytes",
        "chunks",
        "unique_bytes",
        "stored_bytes",
        "trees",
    ] {
        assert_eq!(u(&st, field), 0, "{field} in {st:#}");
    }
    assert!(st["dedup_ratio"].is_null() && st["compression_ratio"].is_null(), "{st:#}");
    assert_eq!(u(&st["repository"], "packs"), 0);
    let text = r.snap(["stats"]);
    text.assert_clean();
    assert!(text.stdout.contains("dedup ratio"), "{}", text.stdout);
}

#[test]
fn stats_count_logical_unique_and_stored_bytes() {
    let r = TempRepo::init();
    let text_len = write_dedup_tree(&r.src);
    r.backup(&[]);
    let st = r.json(["stats"]);

    assert_eq!(u(&st, "snapshots"), 1);
    assert_eq!(u(&st, "files"), 3);
    // As restored: every file's full size, the duplicate included.
    assert_eq!(u(&st, "logical_bytes"), dir_size(&r.src));
    assert_eq!(u(&st, "logical_bytes"), (2 * MIB + text_len) as u64);
    // The copy is stored once.
    assert_eq!(u(&st, "unique_bytes"), (MIB + text_len) as u64);
    assert!(f(&st, "dedup_ratio") > 1.5, "{st:#}");
    assert_eq!(f(&st, "dedup_ratio"), (2 * MIB + text_len) as f64 / (MIB + text_len) as f64);

    // Random data is stored raw (DESIGN.md 13); what is left is the text, compressed.
    let chunk_stored = u(&st, "chunk_stored_bytes");
    assert!(chunk_stored >= MIB as u64, "{st:#}");
    assert!((chunk_stored - MIB as u64) * 10 < text_len as u64, "the text must compress well: {st:#}");
    assert!(f(&st, "compression_ratio") > 1.0, "{st:#}");
    assert_eq!(u(&st, "stored_bytes"), chunk_stored + u(&st, "tree_stored_bytes"));
    assert!(u(&st, "tree_stored_bytes") > 0 && u(&st, "trees") > 0);

    // Pack figures agree with the files on disk.
    let on_disk: u64 = pack_files(&r.repo).values().map(|p| fs::metadata(p).unwrap().len()).sum();
    assert_eq!(u(&st["repository"], "pack_bytes"), on_disk);
    assert_eq!(u(&st["repository"], "packs"), pack_files(&r.repo).len() as u64);
    assert_eq!(u(&st, "packs_used_bytes"), on_disk);
    assert!(u(&st, "stored_bytes") < on_disk);

    let text = r.snap(["stats"]);
    text.assert_clean();
    for label in ["logical size", "unique data", "stored size", "dedup ratio", "compression ratio", "packs"] {
        assert!(text.stdout.contains(label), "{label} missing:\n{}", text.stdout);
    }
}

#[test]
fn stats_of_one_snapshot_against_the_whole_repository() {
    let r = TempRepo::init();
    let text_len = write_dedup_tree(&r.src);
    let first = r.backup(&[])["snapshot"].as_str().unwrap().to_owned();
    let before = r.json(["stats"]);
    let mut rng = Rng::new(99);
    let extra = 700 * 1024;
    fs::write(r.src.join("new.bin"), rng.bytes(extra)).unwrap();
    let second = r.backup(&[])["snapshot"].as_str().unwrap().to_owned();

    let one = r.json(["stats", &first[..10]]);
    assert_eq!(one["scope"], "snapshots");
    assert_eq!(one["snapshot_ids"], serde_json::json!([first]));
    for field in ["files", "directories", "logical_bytes", "unique_bytes", "chunks", "trees", "stored_bytes"]
    {
        assert_eq!(
            one[field], before[field],
            "{field}: the first snapshot alone must equal the repository before"
        );
    }

    let latest = r.json(["stats", "latest"]);
    assert_eq!(latest["snapshot_ids"], serde_json::json!([second]));
    assert_eq!(u(&latest, "files"), 4);
    assert_eq!(u(&latest, "logical_bytes"), (2 * MIB + text_len + extra) as u64);
    assert_eq!(u(&latest, "unique_bytes"), (MIB + text_len + extra) as u64);

    let all = r.json(["stats"]);
    assert_eq!(u(&all, "snapshots"), 2);
    // Logical sizes and counts add up over snapshots; unique data does not.
    assert_eq!(u(&all, "logical_bytes"), u(&one, "logical_bytes") + u(&latest, "logical_bytes"));
    assert_eq!(u(&all, "files"), u(&one, "files") + u(&latest, "files"));
    assert_eq!(u(&all, "unique_bytes"), u(&latest, "unique_bytes"));
    assert_eq!(u(&all, "chunks"), u(&latest, "chunks"));
    assert!(f(&all, "dedup_ratio") > f(&latest, "dedup_ratio"));
    // Unchanged directories are shared, changed ones are not.
    assert!(
        u(&all, "trees") > u(&latest, "trees") && u(&all, "trees") < u(&one, "trees") + u(&latest, "trees")
    );

    // Both named equal the whole repository; a snapshot named twice counts once.
    let both = r.json(["stats", &second, "latest~1"]);
    for field in ["snapshots", "files", "logical_bytes", "unique_bytes", "stored_bytes", "trees"] {
        assert_eq!(both[field], all[field], "{field}");
    }
    assert_eq!(both["snapshot_ids"], serde_json::json!([first, second]), "oldest first");
    assert_eq!(r.json(["stats", "latest", &second[..8]])["snapshots"], 1);

    let err = r.snap(["stats", "0123456789abcdef"]);
    assert!(err.assert_one_line_error().contains("not found"), "{}", err.stderr);
    assert!(err.stdout.is_empty());
}

#[test]
fn status_lists_each_group_with_its_newest_snapshot() {
    let r = TempRepo::init();
    fs::write(r.src.join("f"), "one").unwrap();
    r.backup(&[]);
    fs::write(r.src.join("f"), "two").unwrap();
    let newest = r.backup(&[])["snapshot"].as_str().unwrap().to_owned();

    let st = r.json(["status"]);
    assert_eq!(st["repository"], s(&r.repo));
    assert_eq!(st["format_version"], 1);
    assert_eq!(st["encryption"], "none");
    assert_eq!(st["lock"], "free");
    assert_eq!(st["snapshots"], 2);
    assert_eq!(st["stale"], false);
    let groups = st["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{st:#}");
    assert_eq!(groups[0]["latest"]["id"], newest.as_str());
    assert_eq!(groups[0]["snapshots"], 2);
    assert_eq!(groups[0]["paths"], serde_json::json!([s(&r.src)]));
    assert!(groups[0]["stale"].is_null());
    let index = &st["index"];
    assert_eq!(index["packs_missing"], serde_json::json!([]));
    assert_eq!(index["packs_unreadable"], serde_json::json!([]));
    assert_eq!(u(&index["counts"], "packs"), pack_files(&r.repo).len() as u64);

    let text = r.snap(["status", "--max-age", "1h"]);
    text.assert_clean();
    assert!(text.stdout.contains(&newest[..8]), "{}", text.stdout);
    assert!(text.stdout.contains(" ago"), "{}", text.stdout);
    assert!(text.stdout.contains("encryption none"), "{}", text.stdout);
    assert!(text.stdout.contains("no other snap process"), "{}", text.stdout);
    let j = r.json(["status", "--max-age", "25h"]);
    assert_eq!(j["stale"], false);
    assert_eq!(j["max_age"], "25h");
    assert_eq!(j["groups"][0]["stale"], false);
}

#[test]
fn status_max_age_with_no_snapshot_exits_5() {
    let r = TempRepo::init();
    r.snap(["status"]).assert_clean();
    let run = r.snap(["status", "--max-age", "1d"]);
    assert_eq!(run.code, Some(EXIT_STALE), "{run:?}");
    assert!(run.stderr.starts_with("snap: ") && run.stderr.contains("no snapshot"), "{}", run.stderr);
    let run = r.snap(["--json", "status", "--max-age", "1d"]);
    assert_eq!(run.code, Some(EXIT_STALE));
    let j = run.json();
    assert_eq!(j["stale"], true);
    assert_eq!(j["groups"], serde_json::json!([]));
}

#[test]
fn status_max_age_flags_any_group_whose_newest_snapshot_is_too_old() {
    let r = TempRepo::init();
    fs::write(r.src.join("f"), "data").unwrap();
    let fresh = r.backup(&[])["snapshot"].as_str().unwrap().to_owned();
    // A second group (another host) whose newest snapshot is three days old.
    let old = {
        let repo = open_repo(&r, LockMode::Shared);
        let (_, mut snap) = repo.resolve("latest").unwrap();
        snap.hostname = "old-host".into();
        snap.time.secs -= 3 * 86400;
        crate::common::save_snapshot(&repo, &snap)
    };

    let run = r.snap(["status", "--max-age", "2d"]);
    assert_eq!(run.code, Some(EXIT_STALE), "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("old-host") && run.stderr.contains("3d ago"), "{}", run.stderr);
    assert!(run.stdout.contains("OVERDUE"), "{}", run.stdout);

    let run = r.snap(["--json", "status", "--max-age", "2d"]);
    assert_eq!(run.code, Some(EXIT_STALE));
    let j = run.json();
    assert_eq!(j["stale"], true);
    let groups = j["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{j:#}");
    let by_host =
        |h: &str| groups.iter().find(|g| g["hostname"] == h).unwrap_or_else(|| panic!("{h} in {j:#}"));
    let old_group = by_host("old-host");
    assert_eq!(old_group["latest"]["id"], old.to_hex().as_str());
    assert_eq!(old_group["stale"], true);
    assert!(u(old_group, "age_seconds") >= 3 * 86400);
    let fresh_group = groups.iter().find(|g| g["hostname"] != "old-host").unwrap();
    assert_eq!(fresh_group["latest"]["id"], fresh.as_str());
    assert_eq!(fresh_group["stale"], false);

    // Within the limit, every group is fine.
    r.snap(["status", "--max-age", "4d"]).assert_clean();
    r.snap(["status", "--max-age", "1w"]).assert_clean();
}

#[test]
fn status_shows_the_lock_held_by_another_process() {
    let r = TempRepo::init();
    fs::write(r.src.join("f"), "data").unwrap();
    let id = r.backup(&[])["snapshot"].as_str().unwrap().to_owned();

    {
        let _holder = open_repo(&r, LockMode::Exclusive);
        let j = r.json(["status", "--max-age", "1h"]);
        assert_eq!(j["lock"], "exclusive");
        // The snapshot files are still read; the index is left alone.
        assert_eq!(j["groups"][0]["latest"]["id"], id.as_str());
        assert!(j["index"].is_null(), "{j:#}");
        assert_eq!(j["stale"], false);
        let text = r.snap(["status"]);
        text.assert_clean();
        assert!(text.stdout.contains("in use by another snap process"), "{}", text.stdout);
    }
    {
        let _reader = open_repo(&r, LockMode::Shared);
        let j = r.json(["status"]);
        assert_eq!(j["lock"], "shared");
        assert!(j["index"]["counts"]["packs"].as_u64().unwrap() > 0, "{j:#}");
        assert!(r.snap(["status"]).stdout.contains("in use by another snap process"));
    }
    assert_eq!(r.json(["status"])["lock"], "free");
    // The probe is released: an exclusive lock can be taken right after.
    drop(open_repo(&r, LockMode::Exclusive));
}

#[test]
fn errors_are_one_line() {
    let r = TempRepo::init();
    let run = r.snap(["status", "--max-age", "3x"]);
    assert!(run.assert_one_line_error().contains("3x"), "{}", run.stderr);
    assert!(run.stdout.is_empty());

    // A directory that is not a repository is named, and left as it was.
    let not_repo = r.root.join("not-a-repo");
    fs::create_dir(&not_repo).unwrap();
    for args in [&["status"][..], &["stats"][..]] {
        let mut all = vec!["--repo", s(&not_repo)];
        all.extend_from_slice(args);
        let run = r.snap(&all);
        assert!(run.assert_one_line_error().contains("no snap repository"), "{}", run.stderr);
        assert!(run.stdout.is_empty());
    }
    assert_eq!(fs::read_dir(&not_repo).unwrap().count(), 0, "status must not create a lock file there");

    let run = r.snap(["stats", "latest"]);
    assert!(run.assert_one_line_error().contains("not found"), "{}", run.stderr);
}
