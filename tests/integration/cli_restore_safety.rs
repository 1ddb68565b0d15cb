//! Safe restore through the real binary: the safety snapshot taken before
//! restoring over what is already in the target, `--overwrite always |
//! if-changed | never`, and `--dry-run`, which lists what would change and
//! writes nothing.

use crate::common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

/// A backed-up source restored once into the (then empty) target.
struct Fixture {
    /// The backup's snapshot id. Restores name it by id: after a safety
    /// snapshot, `latest` is the safety snapshot.
    base: String,
    /// The restored copy of the source.
    restored: PathBuf,
    /// Relative paths of the random files.
    random: Vec<PathBuf>,
}

/// Random files, a symlink and a hardlink pair (`alpha/shared` comes first
/// in the walk, so it is the file and `delta/shared-too` the link).
fn fixture(r: &TempRepo) -> Fixture {
    let random = write_random_tree(&r.src, 7, 12, 8 << 10);
    fs::write(r.src.join("notes.txt"), b"the notes\n").unwrap();
    std::os::unix::fs::symlink("notes.txt", r.src.join("link")).unwrap();
    fs::write(r.src.join("alpha/shared"), b"one inode, two names\n").unwrap();
    fs::hard_link(r.src.join("alpha/shared"), r.src.join("delta/shared-too")).unwrap();
    stamp_times(&r.src, 5);
    let base = r.backup(&[])["snapshot"].as_str().expect("a snapshot id").to_owned();
    let report = restore(r, &base, &[]);
    assert_eq!(report["safety_snapshot"], Value::Null, "nothing to protect in an empty target: {report:#}");
    assert_eq!(report["safety_snapshot_needed"], false, "{report:#}");
    assert_eq!(report["written"].as_u64(), Some(non_dirs(&r.src)), "{report:#}");
    Fixture { base, restored: r.restored(&r.target, &r.src), random }
}

/// `snap --json restore SNAPSHOT --target TARGET EXTRA...`, asserted clean: the report.
#[track_caller]
fn restore(r: &TempRepo, snapshot: &str, extra: &[&str]) -> Value {
    let mut args = vec!["--json", "restore", snapshot, "--target", s(&r.target)];
    args.extend_from_slice(extra);
    let run = r.snap(&args);
    run.assert_clean();
    run.json()["report"].clone()
}

/// `snap --json snapshots --tag safety`.
#[track_caller]
fn safety_snapshots(r: &TempRepo) -> Vec<Value> {
    r.json(["snapshots", "--tag", "safety"]).as_array().expect("a list").clone()
}

/// Entries below `root` that are not directories.
fn non_dirs(root: &Path) -> u64 {
    list_tree(root).iter().filter(|rel| !fs::symlink_metadata(root.join(rel)).unwrap().is_dir()).count()
        as u64
}

fn same_inode(a: &Path, b: &Path) -> bool {
    let (a, b) = (fs::symlink_metadata(a).unwrap(), fs::symlink_metadata(b).unwrap());
    (a.dev(), a.ino()) == (b.dev(), b.ino())
}

/// Every entry below `root` with its inode, mode, mtime and contents (or
/// link target): what "nothing was written" must leave exactly as it was.
fn tree_state(root: &Path) -> BTreeMap<PathBuf, (u64, u32, i64, i64, Vec<u8>)> {
    list_tree(root)
        .into_iter()
        .map(|rel| {
            let path = root.join(&rel);
            let m = fs::symlink_metadata(&path).unwrap();
            let body = if m.is_file() {
                fs::read(&path).unwrap()
            } else if m.is_symlink() {
                fs::read_link(&path).unwrap().into_os_string().into_encoded_bytes()
            } else {
                Vec::new()
            };
            (rel, (m.ino(), m.mode(), m.mtime(), m.mtime_nsec(), body))
        })
        .collect()
}

#[test]
fn restoring_over_changed_files_first_takes_a_tagged_safety_snapshot_of_them() {
    let r = TempRepo::init();
    let f = fixture(&r);
    fs::write(f.restored.join("notes.txt"), b"edited after the restore\n").unwrap();
    fs::write(f.restored.join("alpha/made-later.txt"), b"not in any snapshot\n").unwrap();

    let run = r.snap(["restore", &f.base, "--target", s(&r.target)]);
    run.assert_clean();
    let listed = safety_snapshots(&r);
    assert_eq!(listed.len(), 1, "{listed:#?}");
    let safety = &listed[0];
    let short = safety["short_id"].as_str().unwrap();
    assert!(
        run.stdout.lines().any(|l| l.starts_with(&format!("safety snapshot {short} saved"))),
        "the text output names the safety snapshot:\n{}",
        run.stdout
    );
    assert_eq!(safety["tags"], serde_json::json!(["safety", "pre-restore"]));
    let message = safety["message"].as_str().expect("a message");
    assert!(message.contains(&f.base), "the message names the snapshot being restored: {message}");
    // It holds what the restore replaced (every file of the snapshot that
    // was there: --overwrite always), nothing else of the target.
    let paths: Vec<&str> = safety["paths"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert!(paths.contains(&s(&f.restored.join("notes.txt"))), "{paths:?}");
    assert!(paths.iter().all(|p| !p.ends_with("made-later.txt")), "{paths:?}");

    // The restore put the snapshot back (and left the extra file alone)...
    assert_eq!(fs::read(f.restored.join("notes.txt")).unwrap(), b"the notes\n");
    assert!(f.restored.join("alpha/made-later.txt").is_file());
    // ...and what it replaced comes back from the safety snapshot.
    let back = r.root.join("back");
    r.snap(["restore", safety["id"].as_str().unwrap(), "--target", s(&back)]).assert_clean();
    let saved = r.restored(&back, &f.restored);
    assert_eq!(fs::read(saved.join("notes.txt")).unwrap(), b"edited after the restore\n");
    assert!(
        !saved.join("alpha/made-later.txt").exists(),
        "what was not replaced stays out of the repository"
    );

    // The JSON report names it too.
    fs::write(f.restored.join("notes.txt"), b"edited again\n").unwrap();
    let report = restore(&r, &f.base, &[]);
    let id = report["safety_snapshot"].as_str().expect("a safety snapshot id");
    assert_eq!(report["safety_snapshot_needed"], true);
    assert_eq!(safety_snapshots(&r).last().unwrap()["id"], id);
}

#[test]
fn no_safety_snapshot_is_taken_when_asked_not_to_or_when_nothing_is_replaced() {
    let r = TempRepo::init();
    let f = fixture(&r);
    fs::write(f.restored.join("notes.txt"), b"edited\n").unwrap();
    let run = r.snap(["restore", &f.base, "--target", s(&r.target), "--no-safety-snapshot"]);
    run.assert_clean();
    assert!(!run.stdout.contains("safety snapshot"), "{}", run.stdout);
    assert_eq!(fs::read(f.restored.join("notes.txt")).unwrap(), b"the notes\n");

    // A target holding only unrelated things: the restore changes none of them.
    let elsewhere = r.root.join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    fs::write(elsewhere.join("unrelated.txt"), b"mine\n").unwrap();
    let run = r.snap(["--json", "restore", &f.base, "--target", s(&elsewhere)]);
    run.assert_clean();
    let report = &run.json()["report"];
    assert_eq!(report["safety_snapshot_needed"], false, "{report:#}");
    assert_eq!(report["safety_snapshot"], Value::Null, "{report:#}");
    assert_eq!(r.snapshots().len(), 1, "only the backup itself");
}

#[test]
fn overwrite_if_changed_rewrites_only_files_whose_contents_differ() {
    let r = TempRepo::init();
    let f = fixture(&r);
    // Same size, other bytes: only re-hashing can tell.
    fs::write(f.restored.join("notes.txt"), b"THE NOTES\n").unwrap();
    let grown = f.restored.join(&f.random[0]);
    fs::write(&grown, b"a different size from before, surely").unwrap();
    // Right contents, drifted metadata: left in place, metadata restored.
    let drifted = f.restored.join(&f.random[1]);
    fs::set_permissions(&drifted, fs::Permissions::from_mode(0o777)).unwrap();
    filetime::set_file_mtime(&drifted, filetime::FileTime::zero()).unwrap();
    // A second name for each inode, outside the target, keeps the inode
    // alive: a replaced file cannot get its old inode number back.
    let keep = r.root.join("keep");
    fs::create_dir(&keep).unwrap();
    for (name, path) in
        [("notes", f.restored.join("notes.txt")), ("grown", grown.clone()), ("drifted", drifted.clone())]
    {
        fs::hard_link(path, keep.join(name)).unwrap();
    }

    let report = restore(&r, &f.base, &["--overwrite", "if-changed", "--verify"]);
    let all = non_dirs(&r.src);
    assert_eq!(report["written"], 2, "{report:#}");
    assert_eq!(report["unchanged"].as_u64(), Some(all - 2), "{report:#}");
    assert_eq!(report["skipped"], 0, "{report:#}");
    assert_eq!(report["verified_files"], 2, "only what was written is re-read: {report:#}");
    assert!(report["safety_snapshot"].is_string(), "{report:#}");
    assert!(!same_inode(&f.restored.join("notes.txt"), &keep.join("notes")), "notes.txt differed");
    assert!(!same_inode(&grown, &keep.join("grown")), "the grown file differed");
    assert!(same_inode(&drifted, &keep.join("drifted")), "a matching file is left in place");
    assert_trees_equal(&r.src, &f.restored);

    // Everything matches now: a second run writes nothing, so it needs no safety snapshot.
    let report = restore(&r, &f.base, &["--overwrite", "if-changed"]);
    assert_eq!(
        (report["written"].as_u64(), report["unchanged"].as_u64()),
        (Some(0), Some(all)),
        "{report:#}"
    );
    assert_eq!(report["safety_snapshot_needed"], false, "{report:#}");
    assert_eq!(safety_snapshots(&r).len(), 1, "only the first if-changed run replaced something");
    assert!(same_inode(&f.restored.join("alpha/shared"), &f.restored.join("delta/shared-too")));
}

#[test]
fn overwrite_if_changed_relinks_a_hardlink_group_whose_names_were_split() {
    let r = TempRepo::init();
    let f = fixture(&r);
    // Same contents, but no longer one inode.
    let link = f.restored.join("delta/shared-too");
    fs::remove_file(&link).unwrap();
    fs::write(&link, b"one inode, two names\n").unwrap();
    let report = restore(&r, &f.base, &["--overwrite", "if-changed"]);
    assert_eq!(report["written"], 2, "the group is written whole: {report:#}");
    assert!(same_inode(&f.restored.join("alpha/shared"), &link));
    assert_trees_equal(&r.src, &f.restored);
}

#[test]
fn overwrite_never_leaves_existing_files_and_links_untouched_and_restores_the_rest() {
    let r = TempRepo::init();
    let f = fixture(&r);
    let notes = f.restored.join("notes.txt");
    fs::write(&notes, b"edited\n").unwrap();
    fs::set_permissions(&notes, fs::Permissions::from_mode(0o600)).unwrap();
    let link = f.restored.join("link");
    fs::remove_file(&link).unwrap();
    fs::write(&link, b"a file now\n").unwrap();
    fs::write(f.restored.join("alpha/shared"), b"edited first name\n").unwrap();
    fs::remove_file(f.restored.join("delta/shared-too")).unwrap();
    let removed = f.restored.join(&f.random[2]);
    fs::remove_file(&removed).unwrap();
    let notes_before = fs::metadata(&notes).unwrap();

    let run = r.snap(["restore", &f.base, "--target", s(&r.target), "--overwrite", "never"]);
    run.assert_clean();
    let all = non_dirs(&r.src);
    assert!(run.stdout.contains(&format!("2 written, 0 unchanged, {} skipped", all - 2)), "{}", run.stdout);
    assert!(safety_snapshots(&r).is_empty(), "nothing was replaced, so nothing needed saving");

    let notes_after = fs::metadata(&notes).unwrap();
    assert_eq!(fs::read(&notes).unwrap(), b"edited\n");
    assert_eq!(notes_after.mode() & 0o7777, 0o600, "a skipped file gets no metadata either");
    assert_eq!(notes_after.mtime_nsec(), notes_before.mtime_nsec());
    assert!(fs::symlink_metadata(&link).unwrap().is_file(), "the file where a symlink was is kept");
    assert_eq!(fs::read(f.restored.join("alpha/shared")).unwrap(), b"edited first name\n");
    // Its skipped first name is not linked to: the new name gets the snapshot's contents.
    assert_eq!(fs::read(f.restored.join("delta/shared-too")).unwrap(), b"one inode, two names\n");
    assert_trees_equal(&r.src.join(&f.random[2]), &removed);
}

#[test]
fn dry_run_lists_every_change_with_its_marker_and_writes_nothing() {
    let r = TempRepo::init();
    let f = fixture(&r);
    fs::write(f.restored.join("notes.txt"), b"edited\n").unwrap();
    let removed_file = f.random[3].clone();
    fs::remove_file(f.restored.join(&removed_file)).unwrap();
    fs::remove_dir_all(f.restored.join("alpha/beta/gamma")).unwrap();
    let target_before = tree_state(&r.target);
    let repo_before = repo_files(&r.repo);

    let modes = [("always", 'M', 'M', true), ("if-changed", '=', 'M', true), ("never", 's', 's', false)];
    for (mode, same, edited, replaces) in modes {
        let mut expected = BTreeMap::new();
        for rel in list_tree(&r.src) {
            let dest = f.restored.join(&rel);
            let marker = if fs::symlink_metadata(&dest).is_err() {
                '+'
            } else if dest.is_dir() && !dest.is_symlink() {
                continue; // existing directories are merged into, not listed
            } else if rel == Path::new("notes.txt") {
                edited
            } else {
                same
            };
            expected.insert(s(&dest).to_owned(), marker);
        }
        assert!(expected.values().filter(|m| **m == '+').count() > 1, "the fixture removed something");

        let args = ["restore", &f.base, "--target", s(&r.target), "--dry-run", "--overwrite", mode];
        let run = r.snap(args);
        run.assert_clean();
        let mut lines: Vec<&str> = run.stdout.lines().collect();
        let summary = lines.pop().expect("a summary line");
        let safety =
            if replaces { "a safety snapshot would be taken first" } else { "no safety snapshot needed" };
        assert!(summary.contains(safety), "{summary}");
        let listed: BTreeMap<String, char> = lines
            .iter()
            .map(|l| {
                let (marker, path) = l.split_once("  ").unwrap_or_else(|| panic!("not `M  path`: {l}"));
                (path.to_owned(), marker.chars().next().unwrap())
            })
            .collect();
        assert_eq!(listed, expected, "--overwrite {mode} --dry-run");

        let report = &r.json(args)["report"];
        let markers = BTreeMap::from([("new", '+'), ("replace", 'M'), ("unchanged", '='), ("skip", 's')]);
        let from_json: BTreeMap<String, char> = report["changes"]
            .as_array()
            .expect("--json lists the changes")
            .iter()
            .map(|c| (c["path"].as_str().unwrap().to_owned(), markers[c["action"].as_str().unwrap()]))
            .collect();
        assert_eq!(from_json, expected, "--json --overwrite {mode} --dry-run");
        assert_eq!(report["safety_snapshot_needed"], replaces);
        assert_eq!(report["safety_snapshot"], Value::Null);
    }
    assert_eq!(tree_state(&r.target), target_before, "a dry run changed the target");
    assert_eq!(repo_files(&r.repo), repo_before, "a dry run changed the repository");

    // Into a target that does not exist: everything is new, nothing is created.
    let missing = r.root.join("missing/deeper");
    let run = r.snap(["restore", &f.base, "--target", s(&missing), "--dry-run"]);
    run.assert_clean();
    assert!(run.stdout.lines().rev().skip(1).all(|l| l.starts_with("+  ")), "{}", run.stdout);
    assert!(run.stdout.contains("no safety snapshot needed"), "{}", run.stdout);
    assert!(!r.root.join("missing").exists(), "a dry run created the target");
}

#[test]
fn safety_snapshot_and_if_changed_work_on_an_encrypted_repository() {
    let r = TempRepo::init_encrypted("correct horse battery staple");
    fs::write(r.src.join("changes.txt"), b"as backed up\n").unwrap();
    fs::write(r.src.join("stays.txt"), b"never touched\n").unwrap();
    let base = r.backup(&[])["snapshot"].as_str().unwrap().to_owned();
    restore(&r, &base, &[]);
    let restored = r.restored(&r.target, &r.src);
    fs::write(restored.join("changes.txt"), b"edited in the target\n").unwrap();

    let report = restore(&r, &base, &["--overwrite", "if-changed"]);
    assert_eq!((report["written"].as_u64(), report["unchanged"].as_u64()), (Some(1), Some(1)), "{report:#}");
    let safety = report["safety_snapshot"].as_str().expect("a safety snapshot id").to_owned();
    assert_eq!(safety_snapshots(&r).len(), 1);
    assert_trees_equal(&r.src, &restored);

    let back = r.root.join("back");
    r.snap(["restore", &safety, "--target", s(&back)]).assert_clean();
    assert_eq!(
        fs::read(r.restored(&back, &restored).join("changes.txt")).unwrap(),
        b"edited in the target\n"
    );
}

#[test]
fn latest_passes_over_safety_snapshots() {
    let r = TempRepo::init();
    fs::write(r.src.join("a.txt"), b"backed up\n").unwrap();
    let first = r.backup(&[]);
    r.snap(["restore", "latest", "--target", s(&r.target)]).assert_clean();
    fs::write(r.restored(&r.target, &r.src).join("a.txt"), b"edited after the restore\n").unwrap();
    let report = r.json(["restore", "latest", "--target", s(&r.target)]);
    let safety = report["report"]["safety_snapshot"].as_str().map(str::to_owned);
    assert!(safety.is_some(), "a safety snapshot was expected: {report}");
    assert_eq!(r.snapshots().len(), 2);
    // `latest` is still the backup, so a second restore gives the same file.
    let again = r.json(["restore", "latest", "--target", s(&r.target)]);
    assert_eq!(again["snapshot"], first["snapshot"], "{again}");
    assert_eq!(fs::read(r.restored(&r.target, &r.src).join("a.txt")).unwrap(), b"backed up\n");
}

/// A restore that cannot set owners (not root) leaves setuid and setgid
/// bits off files, with one warning, as GNU tar does: a setuid file of
/// another owner would otherwise run as the restoring user. Root keeps
/// them, and a directory's setgid bit (it only passes its group on) stays.
#[test]
fn without_root_setuid_and_setgid_bits_are_left_off_with_one_warning() {
    let r = TempRepo::init();
    let modes = [("suid", 0o4755), ("sgid", 0o2755), ("plain", 0o755), ("shared", 0o2775)];
    for (name, mode) in modes {
        let path = r.src.join(name);
        if name == "shared" {
            fs::create_dir(&path).unwrap();
        } else {
            fs::write(&path, name).unwrap();
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    }
    r.backup(&[]);
    let mode_of = |target: &Path, name: &str| {
        fs::symlink_metadata(r.restored(target, &r.src).join(name)).unwrap().mode() & 0o7777
    };
    r.snap(["restore", "latest", "--target", s(&r.target)]).assert_ok();
    for (name, mode) in modes {
        assert_eq!(mode_of(&r.target, name), mode, "root restores {name} as it was");
    }

    let ok = std::process::Command::new("chown").args(["-R", "65534:65534"]).arg(&r.root).status().unwrap();
    assert!(ok.success());
    let nobody = r.command_through(&["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
    let target = r.root.join("as-nobody");
    let run = run_command(nobody, ["restore", "latest", "--target", s(&target)]);
    run.assert_ok();
    for (name, mode) in [("suid", 0o755), ("sgid", 0o755), ("plain", 0o755), ("shared", 0o2775)] {
        assert_eq!(mode_of(&target, name), mode, "{name}: {}", run.describe());
    }
    assert_eq!(
        run.stderr.matches("setuid and setgid bits left off 2 file(s)").count(),
        1,
        "{}",
        run.describe()
    );
}

/// A file that cannot be restored (its data is missing) leaves what is at
/// its path as it was: the restore removed every failed path, whoever had
/// made the file there.
#[test]
fn a_file_that_cannot_be_restored_leaves_the_existing_one_alone() {
    let r = TempRepo::init();
    fs::write(r.src.join("small.txt"), "tree pack only").unwrap();
    fs::write(r.src.join("big.bin"), Rng::new(5).bytes(300_000)).unwrap();
    r.backup(&[]);
    fs::remove_file(largest_pack(&r.repo)).unwrap();
    let restored = r.restored(&r.target, &r.src);
    fs::create_dir_all(&restored).unwrap();
    fs::write(restored.join("big.bin"), "the user's own version").unwrap();
    let run = r.snap(["restore", "latest", "--target", s(&r.target), "--no-safety-snapshot"]);
    assert_ne!(run.code, Some(0), "{}", run.describe());
    assert_eq!(fs::read_to_string(restored.join("big.bin")).unwrap(), "the user's own version");
}

/// A hostile snapshot whose paths say `/`, restored into a home directory
/// over one file: the safety snapshot took the whole target (the home
/// directory) into the repository restored from. It takes the one file.
#[test]
fn a_snapshot_claiming_root_takes_only_what_it_replaces_into_the_safety_snapshot() {
    let r = TempRepo::init();
    fs::write(r.src.join(".bashrc"), "alias ls='rm -rf'").unwrap();
    r.backup(&[]);
    let repo =
        snap::repo::Repository::open(Box::new(r.local_backend()), snap::backend::LockMode::Shared).unwrap();
    let (_, mut planted) = repo.resolve("latest").unwrap();
    planted.paths = vec![serde_bytes::ByteBuf::from(b"/".to_vec())];
    let id = crate::common::save_snapshot(&repo, &planted).to_hex();
    drop(repo);
    let home = r.target.join(r.src.strip_prefix("/").unwrap());
    fs::create_dir_all(&home).unwrap();
    fs::write(home.join(".bashrc"), "mine").unwrap();
    fs::write(home.join("private-key"), "SECRET-KEY-MATERIAL").unwrap();
    let report = restore(&r, &id, &[]);
    let safety = report["safety_snapshot"].as_str().expect("a safety snapshot");
    let listed = safety_snapshots(&r);
    let taken = listed.iter().find(|s| s["id"] == safety).unwrap();
    assert_eq!(taken["paths"], serde_json::json!([s(&home.join(".bashrc"))]), "{taken:#}");
    let back = r.root.join("back");
    r.snap(["restore", safety, "--target", s(&back)]).assert_clean();
    assert!(!r.restored(&back, &home).join("private-key").exists());
}
