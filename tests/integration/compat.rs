//! Old repositories stay readable and writable: each fixture under
//! `tests/compat/formatN` is a repository written by the snap that made
//! format N (see its `make.sh`), with `expected.json` saying what it holds.
//! Today's snap must list its snapshots as they were written, verify it
//! clean with every byte read, restore every snapshot exactly (contents by
//! SHA-256, modes, times, symlinks, the empty file, names that are not
//! UTF-8), and take a new backup into it that dedups against the old data,
//! keeps the repository's format and restores. The checked-in fixture is
//! never touched: every test works on a copy.

use crate::common;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use common::*;

/// Exit code of a wrong or missing password.
const EXIT_PASSWORD: i32 = 12;

/// Bytes of `data/random.bin` in the fixtures' tree (tests/compat/tools/tree.py).
const RANDOM_FILE_LEN: u64 = 24 * 1024;

fn fixture_dir(format: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat").join(format!("format{format}"))
}

/// Every file below `dir` with the BLAKE3 of its bytes and its mode.
fn fingerprint(dir: &Path) -> BTreeMap<PathBuf, (String, u32)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else {
                let hash = blake3::hash(&fs::read(&path).unwrap()).to_hex().to_string();
                out.insert(path.strip_prefix(dir).unwrap().to_owned(), (hash, meta.mode()));
            }
        }
    }
    out
}

/// Copies a repository directory (directories and regular files only).
fn copy_repo(from: &Path, to: &Path) {
    fs::create_dir(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        let dest = to.join(entry.file_name());
        if kind.is_dir() {
            copy_repo(&entry.path(), &dest);
        } else {
            assert!(kind.is_file(), "only directories and files in a fixture: {}", entry.path().display());
            fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// What a restored tree holds, in the form of `tree.py describe`: every
/// entry below `root` (not `root` itself), sorted by path bytes.
fn describe(root: &Path) -> Vec<Value> {
    fn lossy(bytes: &[u8]) -> String {
        // tree.py writes undecodable bytes as Python's backslashreplace
        // does; the exact bytes are in the _hex fields, which this compares.
        String::from_utf8_lossy(bytes).into_owned()
    }
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().as_os_str().as_bytes().to_vec();
            let meta = fs::symlink_metadata(&path).unwrap();
            let mode = format!("{:o}", meta.permissions().mode() & 0o7777);
            let mut e = json!({ "path": lossy(&rel), "path_hex": hex::encode(&rel) });
            let ft = meta.file_type();
            if ft.is_symlink() {
                let target = fs::read_link(&path).unwrap().into_os_string().into_vec();
                e["kind"] = json!("symlink");
                e["target"] = json!(lossy(&target));
                e["target_hex"] = json!(hex::encode(&target));
            } else if ft.is_dir() {
                e["kind"] = json!("dir");
                e["mode"] = json!(mode);
                stack.push(path);
            } else if ft.is_file() {
                e["kind"] = json!("file");
                e["size"] = json!(meta.len());
                e["sha256"] = json!(hex::encode(Sha256::digest(fs::read(&path).unwrap())));
                e["mode"] = json!(mode);
                e["mtime"] = json!(meta.mtime());
            } else {
                panic!("unexpected entry {}", path.display());
            }
            out.push(e);
        }
    }
    out.sort_by_key(|e| hex::decode(e["path_hex"].as_str().unwrap()).unwrap());
    out
}

/// The fields compared exactly, with the lossy `path`/`target` left out
/// (Python's and Rust's renderings of bytes that are not UTF-8 differ).
fn exact(entries: &[Value]) -> Vec<Value> {
    entries
        .iter()
        .map(|e| {
            let mut e = e.clone();
            let o = e.as_object_mut().unwrap();
            o.remove("path");
            o.remove("target");
            e
        })
        .collect()
}

#[track_caller]
fn assert_same_tree(found: &[Value], expected: &[Value], what: &str) {
    let (found, expected) = (exact(found), exact(expected));
    if found != expected {
        let show = |v: &[Value]| v.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n");
        panic!(
            "{what}: restored tree differs\n--- expected ---\n{}\n--- found ---\n{}",
            show(&expected),
            show(&found)
        );
    }
}

/// A copy of fixture `format` in a fresh temporary repository, with its
/// password set, and the parsed expected.json.
fn open_fixture(format: u32) -> (TempRepo, Value) {
    let dir = fixture_dir(format);
    let expected: Value = serde_json::from_slice(&fs::read(dir.join("expected.json")).unwrap()).unwrap();
    assert_eq!(expected["format"], json!(format), "expected.json of format{format}");
    let mut r = TempRepo::new();
    copy_repo(&dir.join("repo"), &r.repo);
    let password = dir.join("password");
    assert_eq!(
        password.exists(),
        expected["encrypted"] == json!(true),
        "format{format}: password file iff encrypted"
    );
    if password.exists() {
        let text = fs::read_to_string(&password).unwrap();
        r.password = Some(text.strip_suffix('\n').unwrap_or(&text).to_owned());
    }
    (r, expected)
}

/// The config's `version` and `encryption`.
fn config_of(repo: &Path) -> (u64, String) {
    let config: Value = serde_json::from_slice(&fs::read(repo.join("config")).unwrap()).unwrap();
    (config["version"].as_u64().unwrap(), config["encryption"].as_str().unwrap().to_owned())
}

#[track_caller]
fn assert_verify_clean(r: &TempRepo, snapshots: usize, what: &str) {
    let run = r.snap(["--json", "verify", "--read-data"]);
    run.assert_ok();
    let v = run.json();
    let report = &v["report"];
    assert_eq!(v["ok"], json!(true), "{what}: verify --read-data must be clean: {v:#}");
    for list in ["problems", "unverified", "affected", "unused_packs", "damaged_padding"] {
        assert_eq!(report[list], json!([]), "{what}: verify {list}: {v:#}");
    }
    assert_eq!(report["snapshots"], json!(snapshots), "{what}: snapshots verified: {v:#}");
    assert!(report["packs"].as_u64().unwrap() > 0, "{what}: packs: {v:#}");
    assert_eq!(report["packs_read"], report["packs"], "{what}: every pack read: {v:#}");
}

/// No index, journal or other cache file was written into the repository.
#[track_caller]
fn assert_no_cache_in(repo: &Path) {
    for path in fingerprint(repo).keys() {
        let name = path.to_string_lossy();
        assert!(
            !name.contains("sqlite") && !name.contains("cache"),
            "cache-like file in the repository: {name}"
        );
    }
}

fn check_fixture(format: u32) {
    let before = fingerprint(&fixture_dir(format));
    let (r, expected) = open_fixture(format);
    let source = PathBuf::from(expected["source"].as_str().unwrap());
    let want = expected["snapshots"].as_array().unwrap();
    assert!(!want.is_empty());
    assert_eq!(config_of(&r.repo).0, u64::from(format), "the fixture's config says format {format}");

    // The snapshots, as the old snap listed them.
    let listed = r.snapshots();
    assert_eq!(listed.len(), want.len(), "format{format}: snapshot count: {listed:#?}");
    for (found, want) in listed.iter().zip(want) {
        for field in ["id", "unix_time", "hostname", "username", "paths", "tags", "message", "parent"] {
            assert_eq!(found[field], want[field], "format{format}: snapshot {} field {field}", want["id"]);
        }
        assert_eq!(found["paths"], json!([source.to_str().unwrap()]));
    }

    assert_verify_clean(&r, want.len(), &format!("format{format} as made"));

    // Every snapshot restores exactly, by id and (the newest) as `latest`.
    let mut names: Vec<(String, &Value)> =
        want.iter().map(|s| (s["id"].as_str().unwrap().to_owned(), s)).collect();
    names.push(("latest".to_owned(), want.last().unwrap()));
    for (i, (name, snap)) in names.iter().enumerate() {
        let target = r.root.join(format!("restore-{i}"));
        r.snap(["restore", name, "--target", s(&target)]).assert_clean();
        let files = snap["files"].as_array().unwrap();
        assert!(files.iter().any(|e| e["kind"] == "symlink"), "the fixture has symlinks");
        assert!(
            files.iter().any(|e| e["kind"] == "file" && e["size"] == json!(0)),
            "the fixture has an empty file"
        );
        assert_same_tree(
            &describe(&r.restored(&target, &source)),
            files,
            &format!("format{format} restore {name}"),
        );
        // Nothing else was restored beside the source path.
        let mut top = source.as_path();
        while let Some(parent) = top.parent().filter(|p| *p != Path::new("/")) {
            top = parent;
        }
        assert_eq!(sorted_names(&target), vec![OsString::from(top.file_name().unwrap())]);
    }

    // A wrong password is refused, clearly, for an encrypted fixture.
    if r.password.is_some() {
        let mut cmd = r.command();
        cmd.env("SNAP_PASSWORD", "not the password");
        let run = run_command(cmd, ["snapshots"]);
        run.assert_one_line_error();
        assert_eq!(run.code, Some(EXIT_PASSWORD), "{}", run.describe());
    }

    // Today's snap backs up into the old repository: the newest snapshot's
    // files (stored already: only the new file and the trees are new) and
    // one file more.
    let latest = r.root.join("restore-0-latest");
    r.snap(["restore", "latest", "--target", s(&latest)]).assert_clean();
    fs::remove_dir(&r.src).unwrap();
    fs::rename(r.restored(&latest, &source), &r.src).unwrap();
    fs::write(r.src.join("added-by-today.txt"), b"written into an old repository by today's snap\n").unwrap();
    let report = r.backup(&["--tag", "today"]);
    assert_eq!(report["warnings"], json!([]), "{report:#}");
    assert!(
        summary(&report, "new_bytes") < RANDOM_FILE_LEN,
        "format{format}: the old chunks must dedup (only the new file and trees are new): {report:#}"
    );
    let new_id = report["snapshot"].as_str().unwrap().to_owned();

    let listed = r.snapshots();
    assert_eq!(listed.len(), want.len() + 1);
    for (found, want) in listed.iter().zip(want) {
        assert_eq!(found["id"], want["id"], "the old snapshots stay as they were");
    }
    assert_eq!(listed.last().unwrap()["id"], json!(new_id));
    assert_eq!(listed.last().unwrap()["tags"], json!(["today"]));

    let target = r.root.join("restore-new");
    r.snap(["restore", &new_id, "--target", s(&target)]).assert_clean();
    assert_same_tree(
        &describe(&r.restored(&target, &r.src)),
        &describe(&r.src),
        &format!("format{format} new backup"),
    );
    // The old snapshot still restores after the new writes.
    let target = r.root.join("restore-old-again");
    r.snap(["restore", want[0]["id"].as_str().unwrap(), "--target", s(&target)]).assert_clean();
    assert_same_tree(
        &describe(&r.restored(&target, &source)),
        want[0]["files"].as_array().unwrap(),
        &format!("format{format} first snapshot after a new backup"),
    );

    assert_verify_clean(&r, want.len() + 1, &format!("format{format} after a new backup"));
    // Written in its own format: no silent upgrade, no downgrade.
    let (version, encryption) = config_of(&r.repo);
    assert_eq!(version, u64::from(format));
    assert_eq!(encryption == "none", r.password.is_none(), "encryption {encryption}");
    assert_no_cache_in(&r.repo);

    assert_eq!(fingerprint(&fixture_dir(format)), before, "the checked-in fixture must not change");
}

#[test]
fn format1_fixture_lists_verifies_restores_and_takes_a_new_backup() {
    check_fixture(1);
}

#[test]
fn format2_fixture_lists_verifies_restores_and_takes_a_new_backup() {
    check_fixture(2);
}

#[test]
fn format3_fixture_lists_verifies_restores_and_takes_a_new_backup() {
    check_fixture(3);
}

/// The fixtures are what the compatibility promise is about: each exists,
/// is small, carries no index or cache, and says how it was made.
#[test]
fn fixtures_are_complete_small_and_without_cache() {
    for format in 1..=3 {
        let dir = fixture_dir(format);
        let make = fs::read_to_string(dir.join("make.sh")).unwrap();
        let expected: Value = serde_json::from_slice(&fs::read(dir.join("expected.json")).unwrap()).unwrap();
        let commit = expected["made_by_commit"].as_str().unwrap();
        assert!(commit.len() == 40 && make.contains(commit), "format{format}: make.sh names commit {commit}");
        assert_eq!(config_of(&dir.join("repo")).0, u64::from(format));
        assert_no_cache_in(&dir.join("repo"));
        let total: u64 = fingerprint(&dir.join("repo"))
            .keys()
            .map(|p| fs::metadata(dir.join("repo").join(p)).unwrap().len())
            .sum();
        assert!(total < 1 << 20, "format{format}: {total} bytes; a fixture should stay small");
    }
}
