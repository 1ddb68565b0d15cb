//! Bad input gets one clear line on stderr and a non-zero exit, never a
//! panic; and the repository is never backed up or restored into itself.

use crate::common;

use std::fs;
use std::path::Path;

use common::*;

/// Every path below `dir`, with a digest of each file's contents.
fn snapshot_of_dir(dir: &Path) -> Vec<(String, Option<u64>)> {
    use std::hash::{Hash, Hasher};
    list_tree(dir)
        .into_iter()
        .map(|rel| {
            let p = dir.join(&rel);
            let digest = (!p.is_dir()).then(|| {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                fs::read(&p).unwrap().hash(&mut h);
                h.finish()
            });
            (rel.display().to_string(), digest)
        })
        .collect()
}

/// A repository with one snapshot of a small tree.
fn with_snapshot() -> TempRepo {
    let r = TempRepo::init();
    fs::write(r.src.join("file.txt"), b"some data").unwrap();
    r.backup(&[]);
    r
}

#[test]
fn backup_of_a_missing_path_fails_with_one_line() {
    let r = TempRepo::init();
    let missing = r.root.join("no/such/path");
    let run = r.snap(["backup", s(&missing)]);
    let line = run.assert_one_line_error();
    assert!(line.contains("no/such/path"), "the error should name the path: {line}");
    // One missing path among good ones still fails, and no snapshot is made.
    let run = r.snap(["backup", s(&r.src), s(&missing)]);
    run.assert_one_line_error();
    assert!(r.snapshots().is_empty());
}

#[test]
fn commands_on_a_missing_repository_fail_with_one_line_and_create_nothing() {
    let r = TempRepo::new();
    fs::write(r.src.join("f"), b"x").unwrap();
    let nowhere = r.root.join("nowhere");
    let target = r.root.join("restore-here");
    let commands: Vec<Vec<&str>> = vec![
        vec!["snapshots"],
        vec!["snapshots", "--tree"],
        vec!["ls", "latest"],
        vec!["restore", "latest", "--target", s(&target)],
        vec!["backup", s(&r.src)],
        vec!["repair", "index"],
    ];
    for cmd in commands {
        for json in [false, true] {
            let mut args = vec!["--repo", s(&nowhere)];
            if json {
                args.push("--json");
            }
            args.extend(&cmd);
            let run = r.snap(&args);
            let line = run.assert_one_line_error();
            assert!(line.contains("nowhere"), "the error should name the location: {line}");
            if json {
                assert!(run.stdout.is_empty(), "nothing on stdout after an error: {}", run.stdout);
            }
            assert!(!nowhere.exists(), "`snap {args:?}` created {}", nowhere.display());
        }
    }
    // Through SNAP_REPO as well.
    let run = r.snap(["snapshots"]);
    run.assert_one_line_error();
    assert!(!r.repo.exists());
}

const RESTIC_LIKE_CONFIG: &str = r#"{"version":1,"id":"5956a3f67a6230d4a92cefb29529f10196c7d92582ec305fd71ff6d331d6271b","chunker_polynomial":"25b468838dcb75"}"#;

fn foreign_configs() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("random bytes", Rng::new(7).bytes(300)),
        ("restic-like JSON", RESTIC_LIKE_CONFIG.as_bytes().to_vec()),
        ("empty", Vec::new()),
        ("JSON that is not an object", b"[1, 2, 3]".to_vec()),
    ]
}

#[test]
fn commands_on_a_foreign_directory_fail_with_one_line() {
    let r = TempRepo::new();
    fs::write(r.src.join("f"), b"x").unwrap();
    for (what, config) in foreign_configs() {
        let foreign = r.root.join("foreign");
        let _ = fs::remove_dir_all(&foreign);
        fs::create_dir(&foreign).unwrap();
        fs::write(foreign.join("config"), &config).unwrap();
        let target = r.root.join("restore-here");
        let commands: Vec<Vec<&str>> = vec![
            vec!["snapshots"],
            vec!["ls", "latest"],
            vec!["restore", "latest", "--target", s(&target)],
            vec!["backup", s(&r.src)],
            vec!["init"],
        ];
        for cmd in commands {
            let mut args = vec!["--repo", s(&foreign)];
            args.extend(&cmd);
            let run = r.snap(&args);
            let line = run.assert_one_line_error();
            if cmd[0] == "init" {
                assert!(line.contains("exists"), "{what}: init over a foreign config: {line}");
            } else {
                assert!(line.contains("not a snap repository"), "{what}: {args:?}: {line}");
            }
            assert_eq!(fs::read(foreign.join("config")).unwrap(), config, "{what}: config was modified");
        }
    }
}

#[test]
fn foreign_directory_is_left_untouched() {
    let r = TempRepo::new();
    fs::write(r.src.join("f"), b"x").unwrap();
    let target = r.root.join("restore-here");
    let commands: Vec<Vec<&str>> = vec![
        vec!["snapshots"],
        vec!["ls", "latest"],
        vec!["restore", "latest", "--target", s(&target)],
        vec!["backup", s(&r.src)],
        vec!["repair", "index"],
        vec!["init"],
    ];
    let mut offenders = Vec::new();
    for (i, cmd) in commands.iter().enumerate() {
        // A fresh foreign directory for each command, holding files whose
        // names snap also uses.
        let foreign = r.root.join(format!("foreign-{i}"));
        fs::create_dir_all(foreign.join("data")).unwrap();
        fs::write(foreign.join("config"), RESTIC_LIKE_CONFIG).unwrap();
        fs::write(foreign.join("data/keep"), b"theirs").unwrap();
        fs::write(foreign.join("index.sqlite"), b"their own file, not a database of ours").unwrap();
        let before = snapshot_of_dir(&foreign);
        let mut args = vec!["--repo", s(&foreign)];
        args.extend(cmd);
        r.snap(&args).assert_one_line_error();
        let after = snapshot_of_dir(&foreign);
        let added: Vec<&String> = after.iter().filter(|e| !before.contains(e)).map(|(p, _)| p).collect();
        let lost: Vec<&String> = before.iter().filter(|e| !after.contains(e)).map(|(p, _)| p).collect();
        if !added.is_empty() || !lost.is_empty() {
            offenders
                .push(format!("snap {cmd:?}: created or changed {added:?}, removed or changed {lost:?}"));
        }
    }
    assert!(
        offenders.is_empty(),
        "commands wrote into a directory that is not ours:\n  {}",
        offenders.join("\n  ")
    );
}

#[test]
fn init_twice_fails_and_keeps_the_repository() {
    let r = with_snapshot();
    let config = fs::read(r.repo.join("config")).unwrap();
    let line = r.snap(["init"]).assert_one_line_error().to_owned();
    assert!(line.contains("already exists"), "{line}");
    let line = r.snap(["--json", "init"]).assert_one_line_error().to_owned();
    assert!(line.contains("already exists"), "{line}");
    assert_eq!(fs::read(r.repo.join("config")).unwrap(), config);
    assert_eq!(r.snapshots().len(), 1);
}

#[test]
fn unknown_or_malformed_snapshot_names_fail_with_one_line() {
    let r = with_snapshot();
    let target = r.root.join("t");
    for spec in
        ["deadbeef", "0000000000", "latest~1", "latest~x", "not-a-name", "1999-01-01", "2026-13-45", ""]
    {
        for cmd in [vec!["ls", spec], vec!["restore", spec, "--target", s(&target)]] {
            let run = r.snap(&cmd);
            run.assert_one_line_error();
        }
        let run = r.snap(["backup", s(&r.src), "--parent", spec]);
        run.assert_one_line_error();
    }
    assert!(!target.exists() || list_tree(&target).is_empty(), "nothing may be restored");
    assert_eq!(r.snapshots().len(), 1, "failed backups must not add snapshots");
}

#[test]
fn ambiguous_snapshot_prefix_fails_with_one_line() {
    let r = TempRepo::init();
    fs::write(r.src.join("f"), b"x").unwrap();
    // 17 snapshots: two must share their first hex digit.
    let mut prefix = None;
    for _ in 0..17 {
        r.backup(&["--force"]);
        let ids: Vec<String> = r.snapshots().iter().map(|s| s["id"].as_str().unwrap().to_owned()).collect();
        prefix = ids
            .iter()
            .map(|id| &id[..1])
            .find(|p| ids.iter().filter(|id| id.starts_with(p)).count() > 1)
            .map(str::to_owned);
        if prefix.is_some() {
            break;
        }
    }
    let prefix = prefix.expect("17 snapshots share a first hex digit");
    let line = r.snap(["ls", &prefix]).assert_one_line_error().to_owned();
    assert!(line.contains("ambiguous"), "{line}");
    let line = r.snap(["restore", &prefix, "--target", s(&r.target)]).assert_one_line_error().to_owned();
    assert!(line.contains("ambiguous"), "{line}");
}

#[test]
fn repository_of_a_newer_format_asks_to_upgrade() {
    let r = with_snapshot();
    let path = r.repo.join("config");
    let mut config: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(config["version"], 1, "{config:#}");
    config["version"] = (snap::format::FORMAT_VERSION + 1).into();
    config["a_field_from_the_future"] = true.into();
    fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    let target = r.root.join("t");
    for args in [
        vec!["snapshots"],
        vec!["ls", "latest"],
        vec!["restore", "latest", "--target", s(&target)],
        vec!["backup", s(&r.src)],
    ] {
        let line = r.snap(&args).assert_one_line_error().to_owned();
        assert!(line.contains("upgrade"), "{args:?}: {line}");
    }
    let line = r.snap(["repair", "index"]).assert_one_line_error().to_owned();
    assert!(line.contains("upgrade"), "repair index: {line}");
}

#[test]
fn restore_into_the_repository_is_refused_and_writes_nothing_there() {
    let r = with_snapshot();
    let before = list_tree(&r.repo);
    for inside in
        [r.repo.clone(), r.repo.join("restored"), r.repo.join("data/new/deeper"), r.repo.join("snapshots")]
    {
        let run = r.snap(["restore", "latest", "--target", s(&inside)]);
        let line = run.assert_one_line_error();
        assert!(line.contains("repository"), "{line}");
        assert_eq!(
            list_tree(&r.repo),
            before,
            "restore --target {} left something in the repository",
            inside.display()
        );
    }
    // A path that reaches the repository through a symlink is refused too.
    let link = r.root.join("link-to-repo");
    std::os::unix::fs::symlink(&r.repo, &link).unwrap();
    let run = r.snap(["restore", "latest", "--target", s(&link.join("x"))]);
    run.assert_one_line_error();
    assert!(!r.repo.join("x").exists());
}

#[test]
fn backup_of_a_source_inside_the_repository_is_refused() {
    let r = with_snapshot();
    for inside in [r.repo.clone(), r.repo.join("data"), r.repo.join("config")] {
        let line = r.snap(["backup", s(&inside)]).assert_one_line_error().to_owned();
        assert!(line.contains("repository"), "{line}");
    }
    assert_eq!(r.snapshots().len(), 1);
}

#[test]
fn backup_of_a_directory_containing_the_repository_skips_it() {
    let r = TempRepo::new();
    let outer = r.root.join("outer");
    fs::create_dir(&outer).unwrap();
    fs::write(outer.join("data.txt"), b"next to the repository").unwrap();
    let repo = outer.join("repo");
    let with_repo = |args: &[&str]| {
        let mut all = vec!["--repo", s(&repo)];
        all.extend(args);
        r.snap(&all)
    };
    with_repo(&["init"]).assert_clean();
    let run = with_repo(&["backup", s(&outer)]);
    run.assert_ok();
    let listed = with_repo(&["--json", "ls", "latest"]);
    listed.assert_ok();
    let paths: Vec<String> = listed.json()["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_owned())
        .collect();
    assert!(paths.contains(&s(&outer.join("data.txt")).to_owned()), "{paths:?}");
    assert!(!paths.iter().any(|p| p.starts_with(s(&repo))), "the repository was backed up: {paths:?}");
    with_repo(&["restore", "latest", "--target", s(&r.target)]).assert_clean();
    let restored = r.restored(&r.target, &outer);
    assert_eq!(sorted_names(&restored), vec![std::ffi::OsString::from("data.txt")]);
    assert_eq!(fs::read(restored.join("data.txt")).unwrap(), b"next to the repository");
}

#[test]
fn usage_errors_exit_2_without_panicking() {
    let r = TempRepo::init();
    for args in [
        vec!["backup"],
        vec!["restore", "latest"],
        vec!["restore"],
        vec!["ls"],
        vec!["repair"],
        vec!["no-such-command"],
        vec!["snapshots", "--no-such-flag"],
        vec!["backup", s(&r.src), "--force", "--parent", "latest"],
    ] {
        let run = r.snap(&args);
        assert_eq!(run.code, Some(2), "snap {args:?}: {run:?}");
        assert!(!run.stderr.contains("panicked"), "{run:?}");
        assert!(run.stdout.is_empty(), "usage errors go to stderr: {run:?}");
    }
    assert!(r.snapshots().is_empty());
}

#[test]
fn restore_include_outside_the_snapshot_fails_with_one_line() {
    let r = with_snapshot();
    for include in ["../etc", "/no/such/path/in/the/snapshot", "a/../../b"] {
        let run = r.snap(["restore", "latest", "--target", s(&r.target), "--include", include]);
        run.assert_one_line_error();
    }
    assert!(!r.target.exists() || list_tree(&r.target).is_empty());
    let run = r.snap(["ls", "latest", "/no/such/path"]);
    run.assert_one_line_error();
}

/// Links planted inside a local repository are never followed: with `tmp`
/// a link to another directory, prune deleted every file in it; with
/// `index.sqlite` a link, SQLite made a database at its target. A link
/// where snap reads or writes now ends the command with one clear error;
/// one where older versions kept the index is removed (only the link);
/// nothing outside changes.
#[test]
fn links_planted_inside_a_local_repository_are_not_followed() {
    let r = TempRepo::init();
    fs::write(r.src.join("f"), "data").unwrap();
    r.backup(&[]);
    let victim = r.root.join("victim");
    fs::create_dir(&victim).unwrap();
    fs::write(victim.join("precious"), "mine").unwrap();

    let tmp = r.repo.join("tmp");
    fs::remove_dir(&tmp).unwrap();
    std::os::unix::fs::symlink(&victim, &tmp).unwrap();
    for args in [&["prune"][..], &["backup", s(&r.src)], &["snapshots"]] {
        let run = r.snap(args);
        assert!(run.assert_one_line_error().contains("symbolic link"), "{}", run.describe());
    }
    assert_eq!(fs::read_to_string(victim.join("precious")).unwrap(), "mine");
    assert_eq!(fs::read_dir(&victim).unwrap().count(), 1);
    fs::remove_file(&tmp).unwrap();
    fs::create_dir(&tmp).unwrap();
    // Leftover sweeping takes only the names puts make.
    fs::write(tmp.join("notes.txt"), "not snap's").unwrap();
    fs::write(tmp.join("123-4.tmp"), "snap's").unwrap();
    r.snap(["prune"]).assert_ok();
    assert!(tmp.join("notes.txt").exists() && !tmp.join("123-4.tmp").exists());

    let index = r.repo.join("index.sqlite");
    let elsewhere = r.root.join("elsewhere.sqlite");
    for suffix in ["", "-wal", "-shm"] {
        let _ = fs::remove_file(format!("{}{suffix}", index.display()));
    }
    std::os::unix::fs::symlink(&elsewhere, &index).unwrap();
    fs::write(&elsewhere, "someone else's").unwrap();
    r.snap(["snapshots"]).assert_ok();
    assert_eq!(fs::read_to_string(&elsewhere).unwrap(), "someone else's");
    assert!(fs::symlink_metadata(&index).is_err(), "the planted link should be gone");

    // A pack directory that is a link: nothing is deleted through it, and
    // its packs do not pass for missing.
    r.snap(["forget", "latest"]).assert_ok();
    let (name, pack) = pack_files(&r.repo).into_iter().next().unwrap();
    let sub = pack.parent().unwrap().to_path_buf();
    let moved = r.root.join("moved-pack-dir");
    fs::rename(&sub, &moved).unwrap();
    std::os::unix::fs::symlink(&moved, &sub).unwrap();
    for args in [["prune"], ["verify"]] {
        let run = r.snap(args);
        assert!(run.assert_one_line_error().contains("symbolic link"), "{}", run.describe());
    }
    assert!(moved.join(&name).exists(), "a pack was deleted through a link");
}
