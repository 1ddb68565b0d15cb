//! What must hold when things go wrong: concurrent backups, lost and damaged
//! packs, files that vanish and appear while a backup reads them, and
//! repositories crafted to attack the restore path.

use crate::common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{Rng, TempRepo, largest_pack, s, write_random};
use snap::backend::LockMode;
use snap::format::Timestamp;
use snap::format::snapshot::Snapshot;
use snap::format::tree::{Entry, Metadata, Node, Tree};
use snap::id::BlobId;
use snap::repo::{BlobWriter, Repository};

#[test]
fn two_backups_at_once_both_succeed() {
    let r = TempRepo::init();
    let (a, b) = (r.src.join("a"), r.src.join("b"));
    let mut rng = Rng::new(1);
    for dir in [&a, &b] {
        fs::create_dir(dir).unwrap();
        for i in 0..20 {
            write_random(&dir.join(format!("f{i}")), &mut rng, 300_000);
        }
    }
    let spawn = |dir: &Path| r.command().args(["backup", s(dir)]).output().unwrap();
    let (out_a, out_b) = std::thread::scope(|scope| {
        let ta = scope.spawn(|| spawn(&a));
        let tb = scope.spawn(|| spawn(&b));
        (ta.join().unwrap(), tb.join().unwrap())
    });
    for out in [&out_a, &out_b] {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    r.snap(["verify", "--read-data"]).assert_ok();
    assert_eq!(r.snapshots().len(), 2);
    r.snap(["restore", "latest", "--target", s(&r.target)]).assert_ok();
    r.snap(["restore", "latest~1", "--target", s(&r.target)]).assert_ok();
    common::assert_trees_equal(&a, &r.restored(&r.target, &a));
    common::assert_trees_equal(&b, &r.restored(&r.target, &b));
}

#[test]
fn backup_after_a_lost_pack_stores_the_data_again() {
    let r = TempRepo::init();
    write_random(&r.src.join("big"), &mut Rng::new(2), 3_000_000);
    r.backup(&[]);
    fs::remove_file(largest_pack(&r.repo)).unwrap();
    // The index still names the lost pack; opening the repository drops it,
    // so the unchanged file is read and stored again instead of deduplicated.
    let report = r.backup(&[]);
    assert_eq!(common::summary(&report, "files_read"), 1);
    assert!(common::summary(&report, "new_bytes") >= 3_000_000);
    r.snap(["verify", "--read-data"]).assert_ok();
    r.snap(["restore", "latest~1", "--target", s(&r.target)]).assert_ok();
    assert_eq!(
        fs::read(r.restored(&r.target, &r.src).join("big")).unwrap(),
        fs::read(r.src.join("big")).unwrap()
    );
}

#[test]
fn restore_refuses_corrupt_data_and_restores_everything_else() {
    let r = TempRepo::init();
    write_random(&r.src.join("damaged"), &mut Rng::new(3), 2_000_000);
    r.backup(&[]);
    write_random(&r.src.join("intact"), &mut Rng::new(4), 1_000_000);
    r.backup(&[]);
    // The largest pack holds the first file's data; flip a byte in its middle.
    let pack = largest_pack(&r.repo);
    let mut bytes = fs::read(&pack).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    fs::write(&pack, bytes).unwrap();
    let run = r.snap(["restore", "latest", "--target", s(&r.target)]);
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    assert!(run.stderr.contains("damaged"), "the damaged file is named: {}", run.stderr);
    assert!(!run.stderr.contains("intact"), "{}", run.stderr);
    let restored = r.restored(&r.target, &r.src);
    assert!(!restored.join("damaged").exists(), "corrupt data must never be restored as if it were good");
    assert_eq!(fs::read(restored.join("intact")).unwrap(), fs::read(r.src.join("intact")).unwrap());
    let verify = r.snap(["verify", "--read-data"]);
    assert_eq!(verify.code, Some(4));
    assert!(verify.stdout.contains("damaged"), "{}", verify.stdout);
}

/// Writes a snapshot whose root holds `entries` (not validated: this is
/// what an attacker with write access to the repository could store).
fn plant_snapshot(r: &TempRepo, entries: Vec<Entry>) {
    let repo = Repository::open(Box::new(r.local_backend()), LockMode::Shared).unwrap();
    let data = b"owned\n".to_vec();
    let chunk = snap::hash::BlobHasher::Plain.chunk_id(&data);
    let bytes = Tree { entries }.encode();
    let id = snap::hash::BlobHasher::Plain.tree_id(&bytes);
    let (_, _, durable) = BlobWriter::write(&repo, |writer| {
        writer.save(BlobId::Chunk(chunk), &data)?;
        writer.save(BlobId::Tree(id), &bytes)
    })
    .unwrap();
    durable.save_snapshot(&Snapshot::new(Timestamp::now(), id)).unwrap();
}

fn file(name: &[u8]) -> Entry {
    let chunk = snap::hash::BlobHasher::Plain.chunk_id(b"owned\n");
    Entry {
        name: name.to_vec(),
        node: Node::File { size: 6, chunks: vec![chunk] },
        meta: Metadata { mode: 0o644, ..Default::default() },
        sha256: None,
    }
}

fn symlink(name: &[u8], target: &Path) -> Entry {
    let target = target.as_os_str().as_encoded_bytes().to_vec();
    Entry {
        name: name.to_vec(),
        node: Node::Symlink { target },
        meta: Metadata { mode: 0o777, ..Default::default() },
        sha256: None,
    }
}

/// Everything below `root` except `target`'s contents, for "nothing was written outside".
fn outside_listing(root: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> =
        common::list_tree(root).into_iter().filter(|p| !p.starts_with("target")).collect();
    out.sort();
    out
}

#[test]
fn restore_refuses_hostile_names_and_writes_nothing_outside_the_target() {
    let cases: Vec<(&str, Vec<Entry>)> = vec![
        ("dot-dot", vec![file(b"..")]),
        ("slash", vec![file(b"../../escaped")]),
        ("absolute", vec![file(b"/tmp/escaped")]),
        ("nul", vec![file(b"a\0b")]),
        ("empty", vec![file(b"")]),
    ];
    for (what, entries) in cases {
        let r = TempRepo::init();
        plant_snapshot(&r, entries);
        let before = outside_listing(&r.root);
        let line = r.snap(["restore", "latest", "--target", s(&r.target)]).assert_one_line_error().to_owned();
        assert!(line.contains("corrupt tree"), "{what}: {line}");
        assert_eq!(outside_listing(&r.root), before, "{what}: something was written outside the target");
    }
}

#[test]
fn a_name_that_is_both_a_symlink_and_a_directory_is_refused() {
    let r = TempRepo::init();
    let outside = r.root.join("outside");
    fs::create_dir(&outside).unwrap();
    // `evil -> outside` followed by `evil/pwned`: only possible with two
    // entries of the same name, which a valid tree never has.
    let inner = {
        let repo = Repository::open(Box::new(r.local_backend()), LockMode::Shared).unwrap();
        let bytes = Tree { entries: vec![file(b"pwned")] }.encode();
        let id = snap::hash::BlobHasher::Plain.tree_id(&bytes);
        BlobWriter::write(&repo, |writer| writer.save(BlobId::Tree(id), &bytes)).unwrap();
        id
    };
    let dir = Entry {
        name: b"evil".to_vec(),
        node: Node::Dir { tree: inner },
        meta: Metadata { mode: 0o755, ..Default::default() },
        sha256: None,
    };
    plant_snapshot(&r, vec![symlink(b"evil", &outside), dir]);
    r.snap(["restore", "latest", "--target", s(&r.target)]).assert_one_line_error();
    assert!(fs::read_dir(&outside).unwrap().next().is_none(), "a file was written through the symlink");
}

#[test]
fn a_symlink_planted_in_the_target_is_never_followed() {
    let r = TempRepo::init();
    write_random(&r.src.join("secret"), &mut Rng::new(5), 1000);
    r.backup(&[]);
    let outside = r.root.join("outside");
    fs::create_dir(&outside).unwrap();
    // The restore will create target/<first component of src>; plant a
    // symlink there pointing outside the target.
    let first = r.src.strip_prefix("/").unwrap().components().next().unwrap();
    fs::create_dir(&r.target).unwrap();
    std::os::unix::fs::symlink(&outside, r.target.join(first)).unwrap();
    let line = r.snap(["restore", "latest", "--target", s(&r.target)]).assert_one_line_error().to_owned();
    assert!(line.contains("not a directory"), "{line}");
    assert!(fs::read_dir(&outside).unwrap().next().is_none(), "restore wrote through a planted symlink");
}

#[test]
fn a_dangling_symlink_to_outside_is_restored_as_a_link_only() {
    let r = TempRepo::init();
    let outside = r.root.join("outside-file");
    plant_snapshot(&r, vec![symlink(b"link", &outside), file(b"plain")]);
    r.snap(["restore", "latest", "--target", s(&r.target)]).assert_ok();
    assert_eq!(fs::read_link(r.target.join("link")).unwrap(), outside);
    assert!(!outside.exists(), "restore followed a symlink out of the target");
    assert_eq!(fs::read(r.target.join("plain")).unwrap(), b"owned\n");
}

#[test]
fn unreadable_files_are_named_and_the_backup_exits_3() {
    let r = TempRepo::init();
    fs::write(r.src.join("readable"), "ok").unwrap();
    fs::write(r.src.join("secret"), "no").unwrap();
    fs::create_dir(r.src.join("closed")).unwrap();
    fs::write(r.src.join("closed/inside"), "no").unwrap();
    // Root reads everything, so the backup runs as an unprivileged user.
    let nobody = 65534;
    for entry in common::list_tree(&r.root).into_iter().chain([PathBuf::new()]) {
        std::os::unix::fs::lchown(r.root.join(entry), Some(nobody), Some(nobody)).unwrap();
    }
    fs::set_permissions(r.src.join("secret"), fs::Permissions::from_mode(0o000)).unwrap();
    fs::set_permissions(r.src.join("closed"), fs::Permissions::from_mode(0o000)).unwrap();
    let mut cmd = if rustix::process::geteuid().is_root() {
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", env!("CARGO_BIN_EXE_snap")]);
        c
    } else {
        std::process::Command::new(env!("CARGO_BIN_EXE_snap"))
    };
    let out = cmd
        .args(["--json", "backup", s(&r.src)])
        .env("SNAP_REPO", &r.repo)
        .env("HOME", &r.home)
        .env("XDG_DATA_HOME", r.home.join("data"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    for path in ["secret", "closed"] {
        assert!(stderr.contains(&format!("{}: ", s(&r.src.join(path)))), "{path} not named: {stderr}");
    }
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["incomplete"], true);
    assert_eq!(report["warnings"].as_array().unwrap().len(), 2, "{report:#}");
    // The snapshot holds everything else.
    fs::set_permissions(r.src.join("closed"), fs::Permissions::from_mode(0o755)).unwrap();
    let listed = r.json(["ls", "latest", s(&r.src)]);
    let paths: Vec<&str> =
        listed["entries"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert!(paths.contains(&s(&r.src.join("readable"))), "{paths:?}");
    assert!(!paths.contains(&s(&r.src.join("secret"))), "{paths:?}");
}

#[test]
fn repair_snapshots_drops_only_what_is_lost() {
    let r = TempRepo::init();
    fs::create_dir(r.src.join("d")).unwrap();
    write_random(&r.src.join("d/lost"), &mut Rng::new(6), 2_000_000);
    r.backup(&[]);
    write_random(&r.src.join("kept"), &mut Rng::new(7), 5000);
    r.backup(&[]);
    fs::remove_file(largest_pack(&r.repo)).unwrap();
    assert_eq!(r.snap(["verify"]).code, Some(4));

    let dry = r.json(["repair", "snapshots", "--dry-run"]);
    assert_eq!(dry["repaired"].as_array().unwrap().len(), 2, "{dry:#}");
    assert_eq!(r.snapshots().iter().filter(|s| s["tags"].to_string().contains("repaired")).count(), 0);

    let report = r.json(["repair", "snapshots"]);
    let lost = s(&r.src.join("d/lost")).to_owned();
    for repaired in report["repaired"].as_array().unwrap() {
        assert_eq!(repaired["lost"], serde_json::json!([lost]), "{report:#}");
    }
    r.snap(["verify"]).assert_ok();
    let snapshots = r.snapshots();
    assert!(snapshots.iter().all(|s| s["tags"] == serde_json::json!(["repaired"])), "{snapshots:?}");
    assert_eq!(snapshots[1]["summary"]["files"], 1);
    r.snap(["restore", "latest", "--target", s(&r.target)]).assert_ok();
    let restored = r.restored(&r.target, &r.src);
    assert_eq!(fs::read(restored.join("kept")).unwrap(), fs::read(r.src.join("kept")).unwrap());
    assert!(restored.join("d").is_dir() && !restored.join("d/lost").exists());
}

#[test]
fn a_file_that_changes_while_read_is_reported_and_stored_as_read() {
    // /proc files claim size 0 to lstat but yield data when read: the same
    // path a file growing during the backup takes, without a race.
    let r = TempRepo::init();
    let report = r.json(["backup", "/proc/uptime"]);
    let warnings = report["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{report:#}");
    assert_eq!(warnings[0]["kind"], "changed");
    assert_eq!(warnings[0]["path"], "/proc/uptime");
    assert_eq!(report["incomplete"], false, "a changed file is stored, not lost");
    let stored = common::summary(&report, "bytes");
    assert!(stored > 0, "the bytes actually read are stored: {report:#}");
    r.snap(["restore", "latest", "--target", s(&r.target), "--verify"]).assert_ok();
    let restored = fs::read(r.target.join("proc/uptime")).unwrap();
    assert_eq!(restored.len() as u64, stored);
    assert!(restored.ends_with(b"\n") && restored.iter().all(|b| b.is_ascii()), "{restored:?}");
}

/// Content of churn file `n`, so any copy of it can be checked.
fn churn_content(n: u64) -> Vec<u8> {
    let mut rng = Rng::new(n);
    rng.bytes(1000 + (n as usize % 7) * 3000)
}

#[test]
fn files_vanishing_and_appearing_during_backups_never_spoil_a_snapshot() {
    let r = TempRepo::init();
    let stable = r.src.join("stable");
    common::write_random_tree(&stable, 61, 40, 50_000);
    let churn = r.src.join("churn");
    fs::create_dir(&churn).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churner = {
        let (churn, stop) = (churn.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Whole files appear by rename; old ones and whole
                // directories vanish.
                let tmp = churn.join(format!(".tmp{n}"));
                fs::write(&tmp, churn_content(n)).unwrap();
                let dir = churn.join(format!("d{}", n % 4));
                fs::create_dir_all(&dir).unwrap();
                fs::rename(&tmp, dir.join(format!("f{n}"))).unwrap();
                if n >= 6 {
                    let _ =
                        fs::remove_file(churn.join(format!("d{}", (n - 6) % 4)).join(format!("f{}", n - 6)));
                }
                if n % 25 == 24 {
                    let _ = fs::remove_dir_all(churn.join(format!("d{}", n % 4)));
                }
                n += 1;
            }
        })
    };
    for _ in 0..6 {
        let run = r.snap(["backup", s(&r.src)]);
        assert!(matches!(run.code, Some(0) | Some(3)), "{}", run.stderr);
        for line in run.stderr.lines().filter(|l| l.starts_with("snap: warning: /")) {
            assert!(line.contains(s(&churn)), "a warning about a stable path: {line}");
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    churner.join().unwrap();

    r.snap(["verify", "--read-data"]).assert_clean();
    r.snap(["restore", "latest", "--target", s(&r.target)]).assert_ok();
    common::assert_trees_equal(&stable, &r.restored(&r.target, &stable));
    let restored_churn = r.restored(&r.target, &churn);
    for path in common::list_tree(&restored_churn) {
        let full = restored_churn.join(&path);
        let name = full.file_name().unwrap().to_str().unwrap();
        if let Some(n) = name.strip_prefix('f').and_then(|n| n.parse::<u64>().ok()) {
            assert_eq!(
                fs::read(&full).unwrap(),
                churn_content(n),
                "{} restored with other bytes",
                path.display()
            );
        }
    }
}
