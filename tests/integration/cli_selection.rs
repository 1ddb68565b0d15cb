//! What a backup leaves out, and only when asked: exclude patterns and
//! files, presets, size limit, cache directories, other file systems,
//! .gitignore files, and skipping a snapshot when nothing changed.

use crate::common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::{TempRepo, s};

/// The paths of the latest snapshot below `src`, relative to it.
fn listed(r: &TempRepo) -> Vec<String> {
    let ls = r.json(["ls", "latest", s(&r.src)]);
    let prefix = format!("{}/", s(&r.src));
    let mut out: Vec<String> = ls["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["path"].as_str().unwrap().strip_prefix(&prefix).map(str::to_owned))
        .collect();
    out.sort();
    out
}

fn write(path: &Path, len: usize) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, vec![b'x'; len]).unwrap();
}

#[test]
fn nothing_is_excluded_unless_asked() {
    let r = TempRepo::init();
    for p in ["a.pyc", "node_modules/m.js", "target/t.o", "big"] {
        write(&r.src.join(p), 10);
    }
    r.backup(&[]);
    assert_eq!(listed(&r), ["a.pyc", "big", "node_modules", "node_modules/m.js", "target", "target/t.o"]);
}

#[test]
fn exclude_patterns_files_and_presets_follow_gitignore_rules() {
    let r = TempRepo::init();
    for p in [
        "keep.txt",
        "a.log",
        "sub/b.log",
        "sub/important.log",
        "build/out",
        "docs/build",
        "x.pyc",
        "node_modules/m.js",
    ] {
        write(&r.src.join(p), 10);
    }
    let file = r.root.join("excludes");
    fs::write(&file, "# logs, except one\n*.log\n!important.log\n").unwrap();
    let anchored = format!("{}/docs", s(&r.src));
    r.backup(&[
        "--exclude",
        "build/",
        "--exclude-file",
        s(&file),
        "--exclude",
        &anchored,
        "--exclude-preset",
        "dev",
    ]);
    // `build/` matches only directories, so docs/build (a file) would stay,
    // but the anchored pattern removes docs altogether.
    assert_eq!(listed(&r), ["keep.txt", "sub", "sub/important.log"]);
}

#[test]
fn a_source_named_explicitly_is_kept_even_if_a_pattern_matches_it() {
    let r = TempRepo::init();
    write(&r.src.join("f.log"), 10);
    r.backup(&["--exclude", "src"]);
    assert_eq!(listed(&r), ["f.log"]);
}

#[test]
fn exclude_larger_than_and_bad_sizes() {
    let r = TempRepo::init();
    write(&r.src.join("small"), 1000);
    write(&r.src.join("exact"), 1024);
    write(&r.src.join("large"), 1025);
    r.backup(&["--exclude-larger-than", "1K"]);
    assert_eq!(listed(&r), ["exact", "small"]);
    let run = r.snap(["backup", s(&r.src), "--exclude-larger-than", "1Q"]);
    assert!(run.assert_one_line_error().contains("not a size"));
    let run = r.snap(["backup", s(&r.src), "--exclude-preset", "nope"]);
    assert!(run.assert_one_line_error().contains("unknown exclude preset"));
}

#[test]
fn exclude_caches_keeps_only_the_tag_of_a_tagged_directory() {
    let r = TempRepo::init();
    fs::create_dir_all(r.src.join("cache/deep")).unwrap();
    fs::write(r.src.join("cache/CACHEDIR.TAG"), "Signature: 8a477f597d28d172789f06886806bc55\n").unwrap();
    write(&r.src.join("cache/deep/blob"), 10);
    fs::create_dir_all(r.src.join("fake")).unwrap();
    fs::write(r.src.join("fake/CACHEDIR.TAG"), "no signature here").unwrap();
    write(&r.src.join("fake/kept"), 10);
    r.backup(&["--exclude-caches"]);
    assert_eq!(listed(&r), ["cache", "cache/CACHEDIR.TAG", "fake", "fake/CACHEDIR.TAG", "fake/kept"]);
}

#[test]
fn one_file_system_keeps_the_mount_point_but_not_what_is_mounted() {
    let r = TempRepo::init();
    let mnt = r.src.join("mnt");
    fs::create_dir(&mnt).unwrap();
    write(&r.src.join("here"), 10);
    let mounted =
        Command::new("mount").args(["-t", "tmpfs", "-o", "size=1m", "none", s(&mnt)]).status().unwrap();
    assert!(mounted.success(), "mounting a tmpfs needs root, as CI runs");
    write(&mnt.join("elsewhere"), 10);
    let with = r.backup(&[]);
    let without = r.backup(&["--one-file-system"]);
    let umount = Command::new("umount").arg(&mnt).status().unwrap();
    assert!(umount.success());
    assert_eq!(common::summary(&with, "files"), 2);
    assert_eq!(common::summary(&without, "files"), 1);
    assert_eq!(listed(&r), ["here", "mnt"]);
}

#[test]
fn skip_if_unchanged_writes_no_snapshot_until_something_changes() {
    let r = TempRepo::init();
    write(&r.src.join("a"), 10);
    r.backup(&[]);
    let report = r.backup(&["--skip-if-unchanged"]);
    assert!(report["snapshot"].is_null(), "{report:#}");
    assert_eq!(r.snapshots().len(), 1);
    let text = r.snap(["backup", s(&r.src), "--skip-if-unchanged"]);
    text.assert_ok();
    assert!(text.stdout.contains("nothing changed"), "{}", text.stdout);
    // Metadata counts as a change, not only contents.
    fs::set_permissions(r.src.join("a"), std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let report = r.backup(&["--skip-if-unchanged"]);
    assert!(report["snapshot"].is_string(), "{report:#}");
    assert_eq!(r.snapshots().len(), 2);
}

/// The directories above a source change whenever anything beside it does;
/// a `--skip-if-unchanged` backup that writes no snapshot stores nothing
/// (it stored their new nodes, a pack no snapshot uses).
#[test]
fn skip_if_unchanged_stores_nothing_when_only_the_surroundings_changed() {
    let r = TempRepo::init();
    let source = r.src.join("kept");
    write(&source.join("a"), 10);
    r.backup(&[]);
    let packs = common::pack_files(&r.repo).len();
    write(&r.src.join("beside"), 10);
    let run = r.json(["backup", s(&source), "--skip-if-unchanged"]);
    assert!(run["snapshot"].is_string(), "another source set: {run:#}");
    let packs = common::pack_files(&r.repo).len().max(packs);
    fs::write(r.src.join("beside"), b"changed").unwrap();
    fs::remove_file(r.src.join("beside")).unwrap();
    let report = r.json(["backup", s(&source), "--skip-if-unchanged"]);
    assert!(report["snapshot"].is_null(), "{report:#}");
    assert_eq!(
        common::pack_files(&r.repo).len(),
        packs,
        "a backup without a snapshot left a pack: {report:#}"
    );
    assert_eq!(report["packs_written"], 0, "{report:#}");
    r.snap(["verify"]).assert_ok();
}

#[test]
fn git_ignore_follows_gitignore_files_like_git_does() {
    let r = TempRepo::init();
    let tree = r.src.join("proj");
    for p in
        ["keep.c", "a.o", "build/out", "sub/b.o", "sub/keep.o", "sub/x.tmp", "notes/secret.txt", "logs/l.log"]
    {
        write(&tree.join(p), 10);
    }
    fs::create_dir_all(tree.join(".git/info")).unwrap();
    fs::write(tree.join(".gitignore"), "*.o\nbuild/\nlogs\n").unwrap();
    fs::write(tree.join(".git/info/exclude"), "secret.txt\n").unwrap();
    fs::write(tree.join("sub/.gitignore"), "!keep.o\n*.tmp\n").unwrap();

    // Without the flag, nothing is left out.
    r.backup(&[]);
    assert!(listed(&r).contains(&"proj/a.o".to_owned()));

    r.backup(&["--git-ignore"]);
    let kept = listed(&r);
    for gone in
        ["proj/a.o", "proj/build", "proj/sub/b.o", "proj/sub/x.tmp", "proj/notes/secret.txt", "proj/logs"]
    {
        assert!(!kept.contains(&gone.to_owned()), "{gone} should be ignored: {kept:?}");
    }
    for here in
        ["proj/keep.c", "proj/sub/keep.o", "proj/.gitignore", "proj/sub/.gitignore", "proj/.git/info/exclude"]
    {
        assert!(kept.contains(&here.to_owned()), "{here} should be kept: {kept:?}");
    }

    // A source below the work tree root follows the root's .gitignore too.
    let sub = tree.join("sub");
    let report = r.json(["backup", "--git-ignore", s(&sub)]);
    let id = report["snapshot"].as_str().unwrap().to_owned();
    let ls = r.json(["ls", &id, s(&sub)]);
    let names: Vec<&str> =
        ls["entries"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert!(names.iter().any(|n| n.ends_with("/sub/keep.o")), "{names:?}");
    assert!(!names.iter().any(|n| n.ends_with("/sub/b.o")), "{names:?}");
}
