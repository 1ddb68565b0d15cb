//! A damaged directory node is a named hole, not a failed command (issue
//! 25): restore, ls, dump, diff and copy name the directory whose node
//! does not decode, leave out only what lies below it, handle everything
//! else, and exit 3.

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use snap::backend::LockMode;
use snap::format::tree::Node;
use snap::id::BlobId;
use snap::repo::Repository;
use snap::tree::{self, Found};

/// Five directories of files; `d3` changes between the two snapshots, and
/// the node of its second version is damaged. Returns the directory's
/// path in the snapshot.
fn damaged_d3(r: &TempRepo) -> PathBuf {
    for d in 1..=5 {
        let dir = r.src.join(format!("d{d}"));
        fs::create_dir_all(dir.join("inner")).unwrap();
        for f in 0..4 {
            fs::write(dir.join(format!("f{f}")), format!("{d}/{f}")).unwrap();
        }
        fs::write(dir.join("inner/deep"), format!("deep {d}")).unwrap();
    }
    r.backup(&[]);
    fs::write(r.src.join("d3/f0"), "changed").unwrap();
    r.backup(&[]);
    let d3 = r.src.join("d3");
    flip_tree_node(r, &d3);
    d3
}

/// Flips a byte inside the stored node of the directory at `path` in the
/// latest snapshot.
fn flip_tree_node(r: &TempRepo, path: &Path) {
    let repo = Repository::open(Box::new(r.local_backend()), LockMode::Shared).unwrap();
    let (_, snap) = repo.resolve("latest").unwrap();
    let names: Vec<Vec<u8>> = path.iter().skip(1).map(|c| c.as_encoded_bytes().to_vec()).collect();
    let Found::Entry(entry) = tree::find(&repo, snap.tree, &names).unwrap() else { panic!("not the root") };
    let Node::Dir { tree } = entry.node else { panic!("{path:?} is a directory") };
    let loc = repo.locate(&BlobId::Tree(tree)).expect("the node is indexed");
    drop(repo);
    let pack = &pack_files(&r.repo)[&loc.pack.to_hex()];
    flip_byte(pack, u64::from(loc.entry.offset) + u64::from(loc.entry.stored_len) / 2);
}

/// The warnings of a JSON report, as (path, message).
fn warnings(report: &serde_json::Value) -> Vec<(String, String)> {
    let list = report["warnings"].as_array().unwrap_or_else(|| panic!("warnings in {report:#}"));
    list.iter().map(|w| (w["path"].as_str().unwrap().into(), w["message"].as_str().unwrap().into())).collect()
}

#[track_caller]
fn assert_names_only(found: &[(String, String)], hole: &str) {
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].0.ends_with(hole), "{found:?}");
    assert!(found[0].1.contains("damaged directory"), "{found:?}");
}

#[test]
fn restore_leaves_out_only_the_damaged_directory() {
    let r = TempRepo::init();
    let d3 = damaged_d3(&r);
    let run = r.snap(["--json", "restore", "latest", "--target", s(&r.target)]);
    assert_eq!(run.code, Some(3), "{}", run.describe());
    assert_names_only(&warnings(&run.json()["report"]), s(&d3));
    let restored = r.restored(&r.target, &r.src);
    assert!(!restored.join("d3").exists(), "nothing of the damaged directory is written");
    // Everything else is as backed up (moving d3 aside changed only the
    // source directory's mtime, which is put back).
    let mtime = filetime::FileTime::from_last_modification_time(&fs::metadata(&r.src).unwrap());
    fs::rename(r.src.join("d3"), r.root.join("d3-aside")).unwrap();
    filetime::set_file_mtime(&r.src, mtime).unwrap();
    assert_trees_equal(&r.src, &restored);
}

#[test]
fn ls_dump_and_diff_name_the_hole_and_handle_the_rest() {
    let r = TempRepo::init();
    let d3 = damaged_d3(&r);

    let ls = r.snap(["--json", "ls", "latest"]);
    assert_eq!(ls.code, Some(3), "{}", ls.describe());
    let listing = ls.json();
    assert_names_only(&warnings(&listing), s(&d3));
    let paths: Vec<&str> =
        listing["entries"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert!(paths.iter().any(|p| p.ends_with("/d5/inner/deep")), "the rest is listed");
    assert!(paths.iter().any(|p| p.ends_with("/d3")), "the directory itself is listed");
    assert!(!paths.iter().any(|p| p.contains("/d3/")), "nothing below it is");

    let tar = r.root.join("out.tar");
    let dump = r.snap(["--json", "dump", "latest", "--format", "tar", "--output", s(&tar)]);
    assert_eq!(dump.code, Some(3), "{}", dump.describe());
    assert_names_only(&warnings(&dump.json()["report"]), s(&d3));
    let listed = std::process::Command::new("tar").arg("-tf").arg(&tar).output().unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.lines().any(|l| l.ends_with("d5/inner/deep")), "{listed}");
    assert!(!listed.lines().any(|l| l.contains("d3/f")), "{listed}");

    let diff = r.snap(["--json", "diff", "latest~1", "latest"]);
    assert_eq!(diff.code, Some(3), "{}", diff.describe());
    let report = diff.json();
    assert_names_only(&warnings(&report), s(&d3));
    // Nothing below the source is claimed changed (its ancestors' times are
    // other processes' to change: /tmp is shared).
    let src = format!("{}/", s(&r.src));
    let claimed: Vec<&serde_json::Value> = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !src.starts_with(c["path"].as_str().unwrap()))
        .collect();
    assert!(claimed.is_empty(), "nothing is claimed changed: {report:#}");
}

#[test]
fn copy_copies_every_snapshot_but_the_damaged_one() {
    let r = TempRepo::init();
    damaged_d3(&r);
    let dst = TempRepo::init();
    let run = r.snap(["--json", "copy", "--to", s(&dst.repo)]);
    assert_eq!(run.code, Some(3), "{}", run.describe());
    let report = run.json();
    assert_eq!(report["copied"].as_array().unwrap().len(), 1, "{report:#}");
    let not = report["not_copied"].as_array().unwrap();
    assert_eq!(not.len(), 1, "{report:#}");
    assert!(not[0]["error"].as_str().unwrap().contains("corrupt"), "{report:#}");
    dst.snap(["verify", "--read-data"]).assert_ok();
    dst.snap(["restore", "latest", "--target", s(&dst.target)]).assert_clean();
}
