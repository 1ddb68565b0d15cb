//! The SQLite index is a cache: deleting it loses nothing (it is rebuilt
//! from the packs on open), and a corrupt one is named with the command
//! that fixes it, after which everything is restorable again.

use crate::common;

use std::fs;

use common::*;

/// A repository with two snapshots of a tree with every kind of entry.
fn fixture() -> TempRepo {
    let r = TempRepo::init();
    write_random_tree(&r.src, 81, 30, 128 << 10);
    write_random(&r.src.join("two-mib.bin"), &mut Rng::new(82), 2 << 20);
    write_special_entries(&r.src);
    write_name_cases(&r.src);
    stamp_times(&r.src, 83);
    r.backup(&[]);
    fs::write(r.src.join("later.txt"), b"added for the second snapshot").unwrap();
    stamp_times(&r.src, 84);
    r.backup(&[]);
    r
}

fn remove_index(r: &TempRepo) {
    let index = r.index_file();
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", index.display());
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => panic!("remove {path}: {e}"),
            _ => {}
        }
    }
}

/// Restores `spec` into a fresh target and compares it with the source.
#[track_caller]
fn assert_restores_exactly(r: &TempRepo, spec: &str, name: &str) {
    let target = r.root.join(name);
    let run = r.snap(["restore", spec, "--target", s(&target), "--verify"]);
    run.assert_ok();
    assert_trees_equal(&r.src, &r.restored(&target, &r.src));
}

#[test]
fn deleted_index_is_rebuilt_on_open_and_restore_is_exact() {
    let r = fixture();
    let snapshots_before = r.snapshots();
    let index = r.index_file();
    remove_index(&r);
    assert_restores_exactly(&r, "latest", "t1");
    assert!(index.is_file(), "the index should be rebuilt");
    assert_eq!(r.snapshots(), snapshots_before);

    // The older snapshot is intact too (it lacks later.txt).
    let t = r.root.join("t-old");
    r.snap(["restore", "latest~1", "--target", s(&t), "--verify"]).assert_ok();
    let old = r.restored(&t, &r.src);
    assert!(!old.join("later.txt").exists());
    assert_eq!(fs::read(old.join("two-mib.bin")).unwrap(), fs::read(r.src.join("two-mib.bin")).unwrap());

    // A rebuilt index still knows every chunk: an unchanged backup reads nothing.
    remove_index(&r);
    let report = r.backup(&[]);
    assert_eq!(summary(&report, "files_read"), 0, "{report:#}");
    assert!(summary(&report, "new_bytes") < 4096, "{report:#}");
}

#[test]
fn corrupt_index_names_repair_and_repair_makes_restore_exact_again() {
    let r = fixture();
    let index = r.index_file();
    remove_index(&r);
    fs::write(index, Rng::new(85).bytes(8192)).unwrap();
    let target = r.root.join("t-fail");
    for args in [
        vec!["snapshots"],
        vec!["ls", "latest"],
        vec!["restore", "latest", "--target", s(&target)],
        vec!["backup", s(&r.src)],
    ] {
        let run = r.snap(&args);
        let line = run.assert_one_line_error();
        assert!(line.contains("snap repair index"), "{args:?}: the error should name the fix: {line}");
    }

    let run = r.snap(["--json", "repair", "index"]);
    run.assert_clean();
    let report = run.json();
    assert!(report["packs_indexed"].as_u64().unwrap_or(0) > 0, "{report:#}");
    assert_restores_exactly(&r, "latest", "t-repaired");
    assert_eq!(r.snapshots().len(), 2);

    // Repair on a healthy index is harmless.
    r.snap(["repair", "index"]).assert_clean();
    assert_restores_exactly(&r, "latest", "t-again");
}

#[test]
fn truncated_index_is_rebuilt_or_reported() {
    let r = fixture();
    let index = r.index_file();
    let len = fs::metadata(&index).unwrap().len();
    let f = fs::OpenOptions::new().write(true).open(&index).unwrap();
    f.set_len(len / 2).unwrap();
    drop(f);
    let target = r.root.join("t-trunc");
    let run = r.snap(["restore", "latest", "--target", s(&target), "--verify"]);
    if run.code == Some(0) {
        eprintln!("note: the truncated index was usable or rebuilt");
        assert_trees_equal(&r.src, &r.restored(&target, &r.src));
    } else {
        let line = run.assert_one_line_error();
        eprintln!("note: the truncated index was reported: {line}");
        assert!(line.contains("snap repair index"), "{line}");
        r.snap(["repair", "index"]).assert_clean();
        assert_restores_exactly(&r, "latest", "t-after-repair");
    }
}
