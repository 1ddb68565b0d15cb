//! `snap diff A B [-- PATH]`: every marker (+ - M T m), hardlinks, xattrs,
//! a file that became a directory, the summary, symmetry and subtrees.
//!
//! Every diff is run twice, as text and as `--json`, and the two must agree.
//! Directory mtimes are pinned before each backup, so a directory shows up
//! only when something about it that a user can see really changed.

use crate::common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;
use filetime::FileTime;
use serde_json::Value;

/// One diff: path -> marker, and the JSON summary.
#[derive(Debug)]
struct Diff {
    changes: BTreeMap<String, char>,
    summary: Value,
}

fn marker_of(change: &str) -> char {
    match change {
        "added" => '+',
        "removed" => '-',
        "modified" => 'M',
        "type_changed" => 'T',
        "metadata" => 'm',
        other => panic!("unknown change kind {other:?}"),
    }
}

/// Runs `snap diff A B [-- PATH]` as text and as JSON, checks that both say
/// the same and that the summary counts match the lines.
#[track_caller]
fn diff(r: &TempRepo, a: &str, b: &str, path: Option<&Path>) -> Diff {
    let mut args = vec!["diff".to_owned(), a.to_owned(), b.to_owned()];
    if let Some(p) = path {
        args.push("--".into());
        args.push(s(p).to_owned());
    }
    let json = r.json(&args);
    let mut changes = BTreeMap::new();
    for c in json["changes"].as_array().unwrap_or_else(|| panic!("no changes array: {json:#}")) {
        let path = c["path"].as_str().unwrap().to_owned();
        let marker = marker_of(c["change"].as_str().unwrap());
        assert!(changes.insert(path.clone(), marker).is_none(), "{path} listed twice: {json:#}");
    }
    let summary = json["summary"].clone();
    let count = |m: char| changes.values().filter(|&&x| x == m).count() as u64;
    for (field, m) in
        [("added", '+'), ("removed", '-'), ("modified", 'M'), ("type_changed", 'T'), ("metadata", 'm')]
    {
        assert_eq!(summary[field].as_u64(), Some(count(m)), "summary.{field} vs the lines: {json:#}");
    }

    let run = r.snap(&args);
    run.assert_clean();
    let lines: Vec<&str> = run.stdout.lines().collect();
    let (summary_line, change_lines) = lines.split_last().expect("diff prints at least a summary line");
    assert!(summary_line.contains("added") && summary_line.contains("removed"), "{}", run.stdout);
    let mut text = BTreeMap::new();
    for line in change_lines {
        let mut chars = line.chars();
        let m = chars.next().unwrap();
        let rest = chars.as_str();
        let path = rest.strip_prefix("  ").unwrap_or_else(|| panic!("bad diff line {line:?}"));
        assert!("+-MTm".contains(m), "bad marker in {line:?}");
        text.insert(path.to_owned(), m);
    }
    assert_eq!(text, changes, "text and JSON diffs disagree:\n{}", run.stdout);
    Diff { changes, summary }
}

/// Gives `root` and every directory below it the same fixed mtime.
fn pin_dir_times(root: &Path) {
    let t = FileTime::from_unix_time(1_600_000_000, 0);
    let mut dirs = vec![root.to_path_buf()];
    dirs.extend(
        list_tree(root)
            .into_iter()
            .map(|rel| root.join(rel))
            .filter(|p| fs::symlink_metadata(p).unwrap().is_dir()),
    );
    for d in dirs {
        filetime::set_symlink_file_times(&d, t, t).unwrap();
    }
}

/// Backs up what `before` writes into src, applies `change`, backs up again.
fn two_snapshots(r: &TempRepo, before: impl FnOnce(&Path), change: impl FnOnce(&Path)) {
    before(&r.src);
    pin_dir_times(&r.src);
    r.backup(&[]);
    change(&r.src);
    pin_dir_times(&r.src);
    r.backup(&[]);
}

/// `diff latest~1 latest -- SRC`, keyed by path relative to src (`./` for
/// src itself).
#[track_caller]
fn diff_of_src(r: &TempRepo) -> (BTreeMap<String, char>, Value) {
    let d = diff(r, "latest~1", "latest", Some(&r.src));
    let prefix = format!("{}/", s(&r.src));
    let rel = d
        .changes
        .into_iter()
        .map(|(p, m)| match p.strip_prefix(&prefix) {
            Some("") => ("./".to_owned(), m),
            Some(rest) => (rest.to_owned(), m),
            None => panic!("{p} is outside {prefix}, though the diff was limited to it"),
        })
        .collect();
    (rel, d.summary)
}

fn expect(list: &[(&str, char)]) -> BTreeMap<String, char> {
    list.iter().map(|(p, m)| ((*p).to_owned(), *m)).collect()
}

fn write_base(src: &Path) {
    fs::write(src.join("keep.txt"), b"never changes").unwrap();
    fs::create_dir_all(src.join("deep/unchanged")).unwrap();
    fs::write(src.join("deep/unchanged/a.txt"), b"a").unwrap();
    fs::write(src.join("deep/b.txt"), b"b").unwrap();
}

#[test]
fn diff_marks_added_removed_and_modified_files_and_leaves_unchanged_ones_out() {
    let r = TempRepo::init();
    two_snapshots(
        &r,
        |src| {
            write_base(src);
            fs::write(src.join("removed.txt"), b"going away").unwrap();
            fs::write(src.join("modified.txt"), b"old contents").unwrap();
            fs::write(src.join("deep/unchanged/edited.txt"), b"version 1").unwrap();
        },
        |src| {
            fs::remove_file(src.join("removed.txt")).unwrap();
            fs::write(src.join("modified.txt"), b"new and longer contents").unwrap();
            fs::write(src.join("deep/unchanged/edited.txt"), b"version 2").unwrap();
            fs::write(src.join("added.txt"), Rng::new(1).bytes(1000)).unwrap();
        },
    );
    let (changes, _) = diff_of_src(&r);
    assert_eq!(
        changes,
        expect(&[
            ("added.txt", '+'),
            ("deep/unchanged/edited.txt", 'M'),
            ("modified.txt", 'M'),
            ("removed.txt", '-'),
        ])
    );
}

#[test]
fn diff_marks_a_file_that_became_a_symlink_or_a_directory_as_type_changed() {
    let r = TempRepo::init();
    two_snapshots(
        &r,
        |src| {
            write_base(src);
            fs::create_dir(src.join("box")).unwrap();
            fs::write(src.join("box/to_symlink"), b"a file first").unwrap();
            fs::write(src.join("box/to_dir"), b"a file first, then a directory").unwrap();
            fs::write(src.join("box/symlink_to_file"), b"x").unwrap();
            std::os::unix::fs::symlink("keep.txt", src.join("was_symlink")).unwrap();
        },
        |src| {
            fs::remove_file(src.join("box/to_symlink")).unwrap();
            std::os::unix::fs::symlink("../keep.txt", src.join("box/to_symlink")).unwrap();
            fs::remove_file(src.join("box/to_dir")).unwrap();
            fs::create_dir_all(src.join("box/to_dir/sub")).unwrap();
            fs::write(src.join("box/to_dir/child.txt"), b"child").unwrap();
            fs::write(src.join("box/to_dir/sub/inner.txt"), b"inner").unwrap();
            fs::remove_file(src.join("was_symlink")).unwrap();
            fs::write(src.join("was_symlink"), b"now a file").unwrap();
        },
    );
    let (mut changes, _) = diff_of_src(&r);
    // box/ gained a subdirectory, so its link count changed: that is a
    // metadata change of box/ itself, if it is shown at all.
    if let Some(m) = changes.remove("box/") {
        assert_eq!(m, 'm', "box/ only changed its link count");
    }
    assert_eq!(
        changes,
        expect(&[
            ("box/to_dir/", 'T'),
            ("box/to_dir/child.txt", '+'),
            ("box/to_dir/sub/", '+'),
            ("box/to_dir/sub/inner.txt", '+'),
            ("box/to_symlink", 'T'),
            ("was_symlink", 'T'),
        ])
    );
}

#[test]
fn diff_marks_chmod_mtime_and_xattr_only_changes_as_metadata() {
    let r = TempRepo::init();
    let xattrs = xattrs_supported(&r.src);
    two_snapshots(
        &r,
        |src| {
            write_base(src);
            fs::write(src.join("chmod.txt"), b"same contents").unwrap();
            fs::set_permissions(src.join("chmod.txt"), fs::Permissions::from_mode(0o644)).unwrap();
            fs::write(src.join("mtime.txt"), b"same contents too").unwrap();
            let t = FileTime::from_unix_time(1_500_000_000, 0);
            filetime::set_file_times(src.join("mtime.txt"), t, t).unwrap();
            fs::write(src.join("xattr.txt"), b"contents stay").unwrap();
            fs::create_dir(src.join("chmod_dir")).unwrap();
            fs::write(src.join("chmod_dir/inside.txt"), b"inside").unwrap();
        },
        |src| {
            fs::set_permissions(src.join("chmod.txt"), fs::Permissions::from_mode(0o600)).unwrap();
            let t = FileTime::from_unix_time(1_500_000_100, 5);
            filetime::set_file_times(src.join("mtime.txt"), t, t).unwrap();
            if xattrs {
                xattr::set(src.join("xattr.txt"), "user.note", b"added later").unwrap();
            }
            fs::set_permissions(src.join("chmod_dir"), fs::Permissions::from_mode(0o700)).unwrap();
        },
    );
    let (changes, summary) = diff_of_src(&r);
    let mut want = vec![("chmod.txt", 'm'), ("chmod_dir/", 'm'), ("mtime.txt", 'm')];
    if xattrs {
        want.push(("xattr.txt", 'm'));
    }
    assert_eq!(changes, expect(&want));
    assert_eq!(summary["bytes_added"], 0, "{summary:#}");
    assert_eq!(summary["bytes_removed"], 0, "{summary:#}");
}

#[test]
fn diff_marks_a_new_hardlink_as_added_and_its_old_path_as_metadata() {
    let r = TempRepo::init();
    two_snapshots(
        &r,
        |src| {
            write_base(src);
            fs::write(src.join("original.txt"), b"linked contents").unwrap();
        },
        |src| {
            fs::hard_link(src.join("original.txt"), src.join("deep/alias.txt")).unwrap();
        },
    );
    let (changes, _) = diff_of_src(&r);
    assert_eq!(changes, expect(&[("deep/alias.txt", '+'), ("original.txt", 'm')]));
}

#[test]
fn diff_summary_counts_changes_and_bytes_added_and_removed() {
    let r = TempRepo::init();
    let mut rng = Rng::new(7);
    let (old, before, after, new) = (rng.bytes(700), rng.bytes(500), rng.bytes(800), rng.bytes(1000));
    two_snapshots(
        &r,
        |src| {
            write_base(src);
            fs::write(src.join("old.bin"), &old).unwrap();
            fs::write(src.join("changing.bin"), &before).unwrap();
            fs::write(src.join("mode.bin"), b"mode").unwrap();
        },
        |src| {
            fs::remove_file(src.join("old.bin")).unwrap();
            fs::write(src.join("changing.bin"), &after).unwrap();
            fs::write(src.join("new.bin"), &new).unwrap();
            fs::set_permissions(src.join("mode.bin"), fs::Permissions::from_mode(0o600)).unwrap();
        },
    );
    let (changes, summary) = diff_of_src(&r);
    assert_eq!(
        changes,
        expect(&[("changing.bin", 'M'), ("mode.bin", 'm'), ("new.bin", '+'), ("old.bin", '-')])
    );
    let want = serde_json::json!({
        "added": 1, "removed": 1, "modified": 1, "type_changed": 0, "metadata": 1,
        // The new file's 1000 bytes plus the modified file's new 800.
        "bytes_added": 1800,
        // The removed file's 700 bytes plus the modified file's old 500.
        "bytes_removed": 1200,
    });
    assert_eq!(summary, want);

    // The text summary line says the same.
    let run = r.snap(["diff", "latest~1", "latest", "--", s(&r.src)]);
    run.assert_clean();
    let last = run.stdout.lines().last().unwrap().to_owned();
    for needle in ["1 added", "1 removed", "1 modified", "0 type changed", "1 metadata"] {
        assert!(last.contains(needle), "summary line {last:?} lacks {needle:?}");
    }
}

#[test]
fn diff_b_a_mirrors_diff_a_b() {
    let r = TempRepo::init();
    let xattrs = xattrs_supported(&r.src);
    two_snapshots(
        &r,
        |src| {
            write_base(src);
            fs::write(src.join("removed.txt"), b"going away").unwrap();
            fs::write(src.join("modified.txt"), Rng::new(3).bytes(300)).unwrap();
            fs::write(src.join("to_symlink"), b"file").unwrap();
            fs::write(src.join("to_dir"), b"file").unwrap();
            fs::write(src.join("chmod.txt"), b"chmod").unwrap();
            fs::write(src.join("xattr.txt"), b"xattr").unwrap();
            fs::write(src.join("linked.txt"), b"linked").unwrap();
            fs::create_dir(src.join("removed_dir")).unwrap();
            fs::write(src.join("removed_dir/file"), b"in a removed dir").unwrap();
        },
        |src| {
            fs::remove_file(src.join("removed.txt")).unwrap();
            fs::write(src.join("modified.txt"), Rng::new(4).bytes(450)).unwrap();
            fs::remove_file(src.join("to_symlink")).unwrap();
            std::os::unix::fs::symlink("keep.txt", src.join("to_symlink")).unwrap();
            fs::remove_file(src.join("to_dir")).unwrap();
            fs::create_dir(src.join("to_dir")).unwrap();
            fs::write(src.join("to_dir/child"), b"child").unwrap();
            fs::set_permissions(src.join("chmod.txt"), fs::Permissions::from_mode(0o700)).unwrap();
            if xattrs {
                xattr::set(src.join("xattr.txt"), "user.x", b"1").unwrap();
            }
            fs::hard_link(src.join("linked.txt"), src.join("alias.txt")).unwrap();
            fs::remove_file(src.join("removed_dir/file")).unwrap();
            fs::remove_dir(src.join("removed_dir")).unwrap();
            fs::write(src.join("added.txt"), b"new").unwrap();
        },
    );
    let forward = diff(&r, "latest~1", "latest", None);
    let backward = diff(&r, "latest", "latest~1", None);
    // Only what lies in this test's directory: /tmp itself may change
    // between the two backups because other tests create files there.
    let mine = |d: &Diff| -> BTreeMap<String, char> {
        let root = format!("{}/", s(&r.root));
        d.changes
            .iter()
            .filter(|(p, _)| p.starts_with(&root))
            // A type change is shown with the newer side's kind (a
            // directory ends in `/`), so compare paths without it.
            .map(|(p, m)| (p.trim_end_matches('/').to_owned(), *m))
            .collect()
    };
    let swapped: BTreeMap<String, char> = mine(&forward)
        .into_iter()
        .map(|(p, m)| {
            let m = match m {
                '+' => '-',
                '-' => '+',
                other => other,
            };
            (p, m)
        })
        .collect();
    assert_eq!(mine(&backward), swapped, "forward: {:#?}\nbackward: {:#?}", forward, backward);
    let src = s(&r.src);
    for (path, m) in
        [("removed_dir/", '-'), ("removed_dir/file", '-'), ("to_dir/", 'T'), ("to_dir/child", '+')]
    {
        assert_eq!(forward.changes.get(&format!("{src}/{path}")), Some(&m), "{path}: {forward:#?}");
    }
    // Make sure the scenario really had every marker.
    let markers: std::collections::BTreeSet<char> = mine(&forward).values().copied().collect();
    assert_eq!(markers, "+-MTm".chars().collect());

    // The summaries mirror each other too, when limited to src.
    let (f, b) = (diff(&r, "latest~1", "latest", Some(&r.src)), diff(&r, "latest", "latest~1", Some(&r.src)));
    for (x, y) in [("added", "removed"), ("bytes_added", "bytes_removed")] {
        assert_eq!(f.summary[x], b.summary[y], "{x} vs {y}: {:#} / {:#}", f.summary, b.summary);
        assert_eq!(f.summary[y], b.summary[x], "{y} vs {x}: {:#} / {:#}", f.summary, b.summary);
    }
    for same in ["modified", "type_changed", "metadata"] {
        assert_eq!(f.summary[same], b.summary[same], "{same}: {:#} / {:#}", f.summary, b.summary);
    }
}

#[test]
fn diff_with_a_path_reports_only_that_subtree() {
    let r = TempRepo::init();
    two_snapshots(
        &r,
        |src| {
            write_base(src);
            fs::create_dir_all(src.join("one/inner")).unwrap();
            fs::create_dir_all(src.join("two")).unwrap();
            fs::write(src.join("one/inner/a.txt"), b"a1").unwrap();
            fs::write(src.join("one/gone.txt"), b"gone").unwrap();
            fs::write(src.join("two/b.txt"), b"b1").unwrap();
        },
        |src| {
            fs::write(src.join("one/inner/a.txt"), b"a2 changed").unwrap();
            fs::remove_file(src.join("one/gone.txt")).unwrap();
            fs::write(src.join("one/new.txt"), b"new").unwrap();
            fs::write(src.join("two/b.txt"), b"b2 changed").unwrap();
            fs::write(src.join("top.txt"), b"top").unwrap();
        },
    );
    let one = r.src.join("one");
    let sub = diff(&r, "latest~1", "latest", Some(&one));
    let o = s(&one);
    let want = BTreeMap::from([
        (format!("{o}/gone.txt"), '-'),
        (format!("{o}/inner/a.txt"), 'M'),
        (format!("{o}/new.txt"), '+'),
    ]);
    assert_eq!(sub.changes, want);

    // The same lines as the full diff has below that path.
    let full = diff(&r, "latest~1", "latest", None);
    let below: BTreeMap<String, char> = full
        .changes
        .iter()
        .filter(|(p, _)| p.starts_with(&format!("{o}/")))
        .map(|(p, m)| (p.clone(), *m))
        .collect();
    assert_eq!(below, want);
    assert!(full.changes.contains_key(&format!("{}/two/b.txt", s(&r.src))), "{full:#?}");
    assert!(full.changes.contains_key(&format!("{}/top.txt", s(&r.src))), "{full:#?}");

    // A single file as the path.
    let file = one.join("inner/a.txt");
    let single = diff(&r, "latest~1", "latest", Some(&file));
    assert_eq!(single.changes, BTreeMap::from([(s(&file).to_owned(), 'M')]));
    // A path only the newer snapshot has.
    let new_file = one.join("new.txt");
    let added = diff(&r, "latest~1", "latest", Some(&new_file));
    assert_eq!(added.changes, BTreeMap::from([(s(&new_file).to_owned(), '+')]));
    assert_eq!(added.summary["bytes_added"], 3);
    // An unchanged subtree gives nothing.
    let quiet = diff(&r, "latest~1", "latest", Some(&r.src.join("deep")));
    assert!(quiet.changes.is_empty(), "{quiet:#?}");
}

#[test]
fn diff_of_identical_snapshots_prints_no_change_lines() {
    let r = TempRepo::init();
    write_base(&r.src);
    write_random_tree(&r.src.join("tree"), 11, 20, 3000);
    pin_dir_times(&r.src);
    r.backup(&[]);
    r.backup(&[]);

    // A snapshot against itself: nothing at all.
    let same = diff(&r, "latest", "latest", None);
    assert!(same.changes.is_empty(), "{same:#?}");
    let zero = serde_json::json!({
        "added": 0, "removed": 0, "modified": 0, "type_changed": 0, "metadata": 0,
        "bytes_added": 0, "bytes_removed": 0,
    });
    assert_eq!(same.summary, zero);
    let run = r.snap(["diff", "latest", "latest"]);
    run.assert_clean();
    assert_eq!(run.stdout.lines().count(), 1, "only the summary line:\n{}", run.stdout);

    // Two backups of an unchanged tree: nothing below this test's directory
    // (only /tmp, shared with other tests, may have changed in between).
    let d = diff(&r, "latest~1", "latest", Some(&r.root));
    assert!(d.changes.is_empty(), "{d:#?}");
    assert_eq!(d.summary, zero);
    let full = diff(&r, "latest~1", "latest", None);
    for (path, m) in &full.changes {
        assert!(
            *m == 'm' && path.ends_with('/') && s(&r.root).starts_with(path.as_str()),
            "unexpected change {m} {path} between two backups of an unchanged tree"
        );
    }
}
