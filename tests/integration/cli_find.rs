//! `snap find PATTERN` and `snap log PATH`: which snapshots hold matching
//! paths, and the history of one path (added, changed, unchanged, removed)
//! with the command that restores a version. Text and `--json` are checked
//! against each other.

use crate::common;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use common::*;
use filetime::FileTime;
use serde_json::Value;

/// Short id of the snapshot a backup report names.
#[track_caller]
fn short(report: &Value) -> String {
    report["snapshot"].as_str().expect("backup report names its snapshot")[..8].to_owned()
}

/// `(short id, path)` of every match of `snap find ARGS`, checking that the
/// text output lists the same matches in the same order, then the count.
#[track_caller]
fn find(r: &TempRepo, args: &[&str]) -> Vec<(String, String)> {
    let mut all = vec!["find"];
    all.extend_from_slice(args);
    let json = r.json(&all);
    let matches: Vec<(String, String)> = json["matches"]
        .as_array()
        .unwrap_or_else(|| panic!("no matches array: {json:#}"))
        .iter()
        .map(|m| (m["short_id"].as_str().unwrap().to_owned(), m["path"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(json["snapshots_matched"].as_u64().unwrap() as usize, {
        let mut ids: Vec<&String> = matches.iter().map(|(id, _)| id).collect();
        ids.dedup();
        ids.len()
    });

    let run = r.snap(&all);
    run.assert_clean();
    let lines: Vec<&str> = run.stdout.lines().collect();
    let (count, rows) = lines.split_last().expect("find prints at least a count");
    assert!(count.starts_with(&format!("{} match", matches.len())), "count line: {}", run.stdout);
    let text: Vec<(String, String)> = rows
        .iter()
        .map(|line| {
            let id = line.split_whitespace().next().unwrap().to_owned();
            let path = line.rsplit("  ").next().unwrap();
            let path = path.split(" -> ").next().unwrap().to_owned();
            (id, path)
        })
        .collect();
    assert_eq!(text, matches, "text and JSON disagree:\n{}", run.stdout);
    matches
}

fn pairs(list: &[(&str, &Path)]) -> Vec<(String, String)> {
    list.iter().map(|(id, p)| ((*id).to_owned(), s(p).to_owned())).collect()
}

/// One history step: short id, change, size (None when removed).
type Step = (String, String, Option<u64>);

/// `snap --json log PATH` as steps, after checking that the text output says
/// the same and ends with the restore hint.
#[track_caller]
fn log(r: &TempRepo, path: &OsStr) -> (Vec<Step>, Value) {
    let json = r.json([OsStr::new("log"), path]);
    let steps: Vec<Step> = json["history"]
        .as_array()
        .unwrap_or_else(|| panic!("no history: {json:#}"))
        .iter()
        .map(|e| {
            (
                e["short_id"].as_str().unwrap().to_owned(),
                e["change"].as_str().unwrap().to_owned(),
                e["size"].as_u64(),
            )
        })
        .collect();

    let run = r.snap([OsStr::new("log"), path]);
    run.assert_clean();
    let lines: Vec<&str> = run.stdout.lines().collect();
    let (hint, rows) = lines.split_last().expect("log prints at least the hint");
    assert_eq!(
        *hint,
        format!("restore one version: {}", json["restore_command"].as_str().unwrap()),
        "{}",
        run.stdout
    );
    let text: Vec<(String, String)> = rows
        .iter()
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols[0].to_owned(), cols[3].to_owned())
        })
        .collect();
    let want: Vec<(String, String)> = steps.iter().map(|(id, c, _)| (id.clone(), c.clone())).collect();
    assert_eq!(text, want, "text and JSON disagree:\n{}", run.stdout);
    for (line, (_, change, size)) in rows.iter().zip(&steps) {
        if let Some(size) = size {
            assert!(
                line.split_whitespace().any(|c| c == size.to_string()),
                "size {size} missing in {line:?}"
            );
        } else {
            assert_eq!(change, "removed");
        }
    }
    (steps, json)
}

fn step(id: &str, change: &str, size: Option<u64>) -> Step {
    (id.to_owned(), change.to_owned(), size)
}

#[test]
fn log_shows_added_changed_unchanged_removed_and_restores_a_version() {
    let r = TempRepo::init();
    fs::write(r.src.join("other.txt"), b"always here").unwrap();
    let before = short(&r.backup(&[]));
    let f = r.src.join("notes.txt");
    fs::write(&f, b"first").unwrap();
    let added = short(&r.backup(&[]));
    fs::write(&f, b"second version").unwrap();
    let changed = short(&r.backup(&[]));
    // Same size, different bytes: still a change of contents.
    fs::write(&f, b"second VERSION").unwrap();
    let same_size = short(&r.backup(&[]));
    // Metadata only.
    fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).unwrap();
    filetime::set_file_mtime(&f, FileTime::from_unix_time(1_700_000_000, 0)).unwrap();
    let touched = short(&r.backup(&[]));
    // Nothing at all (the same tree again).
    let untouched = short(&r.backup(&[]));
    fs::remove_file(&f).unwrap();
    let removed = short(&r.backup(&[]));
    let still_gone = short(&r.backup(&[]));
    fs::write(&f, b"back again").unwrap();
    let back = short(&r.backup(&[]));

    let (steps, json) = log(&r, f.as_os_str());
    assert_eq!(
        steps,
        vec![
            step(&added, "added", Some(5)),
            step(&changed, "changed", Some(14)),
            step(&same_size, "changed", Some(14)),
            step(&touched, "unchanged", Some(14)),
            step(&untouched, "unchanged", Some(14)),
            step(&removed, "removed", None),
            step(&back, "added", Some(10)),
        ],
        "{json:#}"
    );
    assert!(!steps.iter().any(|(id, _, _)| *id == before || *id == still_gone));
    let history = json["history"].as_array().unwrap();
    assert_eq!(history[3]["metadata_changed"], true, "{json:#}");
    assert_eq!(history[3]["mode"], 0o600);
    assert_eq!(history[3]["mtime"], 1_700_000_000);
    assert_eq!(history[4]["metadata_changed"], false);
    assert_eq!(history[1]["previous"], added.as_str());
    assert_eq!(history[5]["previous"], untouched.as_str());
    assert_eq!(json["path"], s(&f));
    assert_eq!(json["versions"], 6);
    assert_eq!(json["snapshots_searched"], 9);
    assert_eq!(
        json["restore_command"],
        format!("snap restore {back} --target DIR --include {}", s(&f)).as_str()
    );

    // The hint, with a version and a directory filled in, gives that version back.
    r.snap(["restore", &changed, "--target", s(&r.target), "--include", s(&f)]).assert_clean();
    assert_eq!(fs::read(r.restored(&r.target, &f)).unwrap(), b"second version");

    // A relative path is taken from the current directory.
    let mut cmd = r.command();
    cmd.current_dir(&r.src);
    let run = run_command(cmd, ["--json", "log", "./sub/../notes.txt"]);
    run.assert_clean();
    assert_eq!(run.json()["path"], s(&f));
    assert_eq!(run.json()["history"], json["history"]);
}

#[test]
fn log_compares_within_the_same_host_and_paths() {
    let r = TempRepo::init();
    let sub = r.src.join("sub");
    fs::create_dir(&sub).unwrap();
    fs::write(sub.join("inner"), b"inner").unwrap();
    let f = r.src.join("a.txt");
    fs::write(&f, b"aaa").unwrap();
    let whole = short(&r.backup(&[]));
    // A snapshot of other paths lacks a.txt: that is no removal.
    let only_sub = short(&r.json(["backup", s(&sub)]));
    let whole_again = short(&r.backup(&[]));
    let (steps, json) = log(&r, f.as_os_str());
    assert_eq!(
        steps,
        vec![step(&whole, "added", Some(3)), step(&whole_again, "unchanged", Some(3))],
        "{json:#}"
    );

    // A file in both groups continues its history in the new group.
    let (steps, _) = log(&r, sub.join("inner").as_os_str());
    assert_eq!(
        steps,
        vec![
            step(&whole, "added", Some(5)),
            step(&only_sub, "unchanged", Some(5)),
            step(&whole_again, "unchanged", Some(5)),
        ]
    );
}

#[test]
fn log_follows_symlink_targets_and_type_changes() {
    let r = TempRepo::init();
    let link = r.src.join("link");
    symlink("one", &link).unwrap();
    let a = short(&r.backup(&[]));
    fs::remove_file(&link).unwrap();
    symlink("two", &link).unwrap();
    let b = short(&r.backup(&[]));
    fs::remove_file(&link).unwrap();
    symlink("two", &link).unwrap();
    let c = short(&r.backup(&[]));
    fs::remove_file(&link).unwrap();
    fs::create_dir(&link).unwrap();
    let d = short(&r.backup(&[]));

    let (steps, json) = log(&r, link.as_os_str());
    let changes: Vec<(String, String)> = steps.iter().map(|(id, c, _)| (id.clone(), c.clone())).collect();
    let want = [(a, "added"), (b, "changed"), (c, "unchanged"), (d, "changed")];
    assert_eq!(changes, want.map(|(id, c)| (id, c.to_owned())), "{json:#}");
    let h = &json["history"];
    assert_eq!((h[0]["type"].as_str(), h[0]["target"].as_str()), (Some("l"), Some("one")));
    assert_eq!((h[1]["type"].as_str(), h[1]["target"].as_str()), (Some("l"), Some("two")));
    assert_eq!(h[3]["type"], "d");
    let text = r.snap(["log", s(&link)]);
    assert!(text.stdout.lines().next().unwrap().ends_with("-> one"), "{}", text.stdout);
}

/// src/a.txt, src/b.rs, src/sub/c.txt, src/sub/x.txt/ (a directory) and
/// src/sub/deeper/D.TXT, in three snapshots: a.txt is removed and
/// sub/deeper/e.txt added in the second, the third is the second again.
fn three_snapshots(r: &TempRepo) -> [String; 3] {
    fs::create_dir_all(r.src.join("sub/deeper")).unwrap();
    fs::create_dir(r.src.join("sub/x.txt")).unwrap();
    for (name, data) in [("a.txt", "a"), ("b.rs", "b"), ("sub/c.txt", "cc"), ("sub/deeper/D.TXT", "d")] {
        fs::write(r.src.join(name), data).unwrap();
    }
    let first = short(&r.backup(&[]));
    fs::remove_file(r.src.join("a.txt")).unwrap();
    fs::write(r.src.join("sub/deeper/e.txt"), "eee").unwrap();
    let second = short(&r.backup(&[]));
    let third = short(&r.backup(&[]));
    [first, second, third]
}

#[test]
fn find_lists_matching_names_per_snapshot_oldest_first() {
    let r = TempRepo::init();
    let [s1, s2, s3] = three_snapshots(&r);
    let p = |rel: &str| r.src.join(rel);
    let (a, c, x, e, d) =
        (p("a.txt"), p("sub/c.txt"), p("sub/x.txt"), p("sub/deeper/e.txt"), p("sub/deeper/D.TXT"));

    assert_eq!(
        find(&r, &["*.txt"]),
        pairs(&[
            (&s1, &a),
            (&s1, &c),
            (&s1, &x),
            (&s2, &c),
            (&s2, &e),
            (&s2, &x),
            (&s3, &c),
            (&s3, &e),
            (&s3, &x),
        ])
    );
    // Case, and one snapshot only.
    assert_eq!(find(&r, &["-i", "d.txt", "--snapshot", &s1]), pairs(&[(&s1, &d)]));
    assert_eq!(find(&r, &["*.txt", "--snapshot", "latest", "-s", "latest~2"]).len(), 6);
    assert_eq!(find(&r, &["e.txt", "-s", &s1]), pairs(&[]));

    // The JSON carries each entry's details.
    let json = r.json(["find", "c.txt", "-s", &s2]);
    let m = &json["matches"][0];
    assert_eq!((m["type"].as_str(), m["size"].as_u64()), (Some("-"), Some(2)), "{json:#}");
    assert_eq!(m["snapshot"].as_str().unwrap()[..8], s2);
    let json = r.json(["find", "x.txt", "-s", &s2]);
    assert_eq!(json["matches"][0]["type"], "d", "{json:#}");
    assert_eq!(json["snapshots_searched"], 1);
}

#[test]
fn find_with_a_slash_matches_the_whole_path() {
    let r = TempRepo::init();
    let [_, _, s3] = three_snapshots(&r);
    let p = |rel: &str| r.src.join(rel);
    let latest = |pattern: &str| find(&r, &[pattern, "-s", "latest"]);

    // Not anchored: at any depth; `*` stays within one name.
    assert_eq!(latest("sub/*.txt"), pairs(&[(&s3, &p("sub/c.txt")), (&s3, &p("sub/x.txt"))]));
    assert_eq!(
        latest("sub/**/*.txt"),
        pairs(&[(&s3, &p("sub/c.txt")), (&s3, &p("sub/deeper/e.txt")), (&s3, &p("sub/x.txt"))])
    );
    // Anchored at `/`.
    let anchored = format!("{}/*", s(&r.src));
    assert_eq!(latest(&anchored), pairs(&[(&s3, &p("b.rs")), (&s3, &p("sub"))]));
    assert_eq!(latest("/sub/*.txt"), pairs(&[]));
    // A trailing slash: directories only.
    assert_eq!(latest("*.txt/"), pairs(&[(&s3, &p("sub/x.txt"))]));
    assert_eq!(latest("sub/deeper/"), pairs(&[(&s3, &p("sub/deeper"))]));
}

#[test]
fn a_path_never_backed_up() {
    let r = TempRepo::init();
    // No snapshot at all yet.
    assert_eq!(find(&r, &["*.txt"]), pairs(&[]));
    r.snap(["log", "/nowhere/at/all"]).assert_one_line_error();

    fs::write(r.src.join("a.txt"), b"a").unwrap();
    r.backup(&[]);
    let json = r.json(["find", "never-*"]);
    assert_eq!(json["matches"], Value::Array(vec![]), "{json:#}");
    assert_eq!(json["snapshots_searched"], 1);
    let run = r.snap(["find", "never-*"]);
    run.assert_clean();
    assert_eq!(run.stdout.trim(), "0 matches in 0 of 1 snapshot(s)");

    let missing = r.src.join("never.txt");
    let line = r.snap(["log", s(&missing)]).assert_one_line_error().to_owned();
    assert!(line.contains(s(&missing)), "{line}");
    let run = r.snap(["--json", "log", s(&missing)]);
    run.assert_one_line_error();
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    // Below a file.
    r.snap(["log", s(&r.src.join("a.txt/inside"))]).assert_one_line_error();
    // A bad pattern is a one-line error too.
    r.snap(["find", "a[b"]).assert_one_line_error();
}

#[test]
fn non_utf8_names_are_shown_escaped() {
    let r = TempRepo::init();
    let raw = OsStr::from_bytes(b"caf\xe9.txt");
    let f = r.src.join(raw);
    fs::write(&f, b"latin-1").unwrap();
    let first = short(&r.backup(&[]));
    fs::write(&f, b"latin-1!").unwrap();
    let second = short(&r.backup(&[]));
    let shown = format!("{}/caf\\xe9.txt", s(&r.src));

    let want = vec![(first.clone(), shown.clone()), (second.clone(), shown.clone())];
    assert_eq!(find(&r, &["*.txt"]), want);
    // The escaped form is what a pattern sees; its backslash is written `\\`.
    assert_eq!(find(&r, &["caf\\\\xe9.*"]), want);

    let (steps, json) = log(&r, f.as_os_str());
    assert_eq!(steps, vec![step(&first, "added", Some(7)), step(&second, "changed", Some(8))]);
    assert_eq!(json["path"], shown.as_str());
    let text = r.snap([OsStr::new("log"), f.as_os_str()]);
    assert!(text.stdout.contains(&format!("'{shown}'")), "the hint quotes the path:\n{}", text.stdout);
}
