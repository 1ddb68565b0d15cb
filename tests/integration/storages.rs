//! The same scenarios on every storage: a local directory and a key prefix
//! on a real S3 server (SeaweedFS, started by scripts/test.sh; see
//! `common::S3Server`). Round trip, diff, ls, verify, forget and prune,
//! a lost index cache, repair index, encryption, copy in both directions,
//! two hosts sharing a bucket, concurrent backups, and locks.

use crate::common;

use std::fs;
use std::process::Stdio;

use common::*;
use object_store::ObjectStoreExt;

fn changed_paths(diff: &serde_json::Value) -> Vec<String> {
    let mut paths: Vec<String> = diff["changes"]
        .as_array()
        .unwrap_or_else(|| panic!("diff --json has no changes: {diff}"))
        .iter()
        .filter(|c| c["change"] != "metadata")
        .map(|c| c["path"].as_str().unwrap().rsplit('/').next().unwrap().to_owned())
        .collect();
    paths.sort();
    paths
}

#[test]
fn round_trip_diff_and_ls() {
    for storage in storages() {
        let r = TempRepo::init_on(storage);
        write_random_tree(&r.src, 11, 40, 300_000);
        fs::write(r.src.join("edited"), b"before").unwrap();
        fs::write(r.src.join("deleted"), b"soon gone").unwrap();
        r.backup(&[]);
        // No file data is new; a directory node may be, when other tests
        // change /tmp (an ancestor of the source, so in the snapshot).
        let unchanged = r.backup(&[]);
        assert!(
            summary(&unchanged, "new_stored_bytes") < 1024,
            "{storage:?}: a no-change backup stored data"
        );
        r.snap(["restore", "latest", "--target", s(&r.target)]).assert_clean();
        assert_trees_equal(&r.src, &r.restored(&r.target, &r.src));
        fs::write(r.src.join("edited"), b"after").unwrap();
        fs::remove_file(r.src.join("deleted")).unwrap();
        fs::write(r.src.join("added"), b"new").unwrap();
        r.backup(&[]);
        let diff = r.json(["diff", "latest~1", "latest"]);
        assert_eq!(changed_paths(&diff), ["added", "deleted", "edited"], "{storage:?}: {diff}");
        let ls = r.snap(["ls", "latest"]).assert_ok().stdout.clone();
        assert!(ls.contains("added") && !ls.contains("deleted"), "{storage:?}: ls shows\n{ls}");
        assert_eq!(r.snapshots().len(), 3, "{storage:?}");

        let target = r.root.join("second");
        r.snap(["restore", "latest", "--target", s(&target)]).assert_clean();
        assert_trees_equal(&r.src, &r.restored(&target, &r.src));
    }
}

#[test]
fn verify_forget_prune_and_a_lost_index() {
    for storage in storages() {
        let r = TempRepo::init_on(storage);
        // Made now, so restoring later changes nothing the backups see.
        fs::create_dir(&r.target).unwrap();
        // The first snapshot's pack holds only the file the second lacks.
        fs::write(r.src.join("big-and-gone"), Rng::new(5).bytes(3_000_000)).unwrap();
        r.backup(&[]);
        fs::remove_file(r.src.join("big-and-gone")).unwrap();
        write_random_tree(&r.src, 21, 20, 400_000);
        r.backup(&[]);
        r.snap(["verify", "--read-data"]).assert_clean();

        let first = r.snapshots()[0]["id"].as_str().unwrap().to_owned();
        r.snap(["forget", &first]).assert_ok();
        let pruned = r.json(["prune"]);
        assert!(pruned["bytes_freed"].as_u64().unwrap() > 2_000_000, "{storage:?}: prune freed {pruned}");
        r.snap(["verify", "--read-data"]).assert_clean();

        // The index is a cache: delete it and everything still works, then
        // rebuild it on purpose.
        let index = r.index_file();
        assert!(index.is_file(), "{storage:?}: no index at {}", index.display());
        fs::remove_file(&index).unwrap();
        r.snap(["restore", "latest", "--target", s(&r.target)]).assert_clean();
        assert_trees_equal(&r.src, &r.restored(&r.target, &r.src));
        let rebuilt = r.json(["repair", "index"]);
        assert!(rebuilt["packs_indexed"].as_u64().unwrap() >= 2, "{storage:?}: {rebuilt}");
        r.snap(["verify", "--read-data"]).assert_clean();
        // Only directory nodes whose times the restore touched may be new.
        let again = r.backup(&["--force"]);
        assert!(
            summary(&again, "new_stored_bytes") < 1024,
            "{storage:?}: the rebuilt index lost chunks: {again}"
        );
    }
}

#[test]
fn encrypted_repositories_and_copy_in_both_directions() {
    if S3Server::from_env().is_none() {
        return;
    }
    let local = TempRepo::init();
    write_random_tree(&local.src, 31, 25, 200_000);
    local.backup(&[]);

    // Local, plain -> S3, encrypted: every file re-cut with the bucket's keys.
    let remote = TempRepo::init_encrypted_on(Storage::S3, "bucket secret");
    let mut copy = local.command();
    copy.env("SNAP_TO_PASSWORD", "bucket secret");
    remote.s3.as_ref().unwrap().configure(&mut copy);
    let to_remote = run_command(copy, ["copy", "--to", remote.location.to_str().unwrap()]);
    to_remote.assert_ok();
    remote.snap(["verify", "--read-data"]).assert_clean();
    remote.snap(["restore", "latest", "--target", s(&remote.target)]).assert_clean();
    assert_trees_equal(&local.src, &remote.restored(&remote.target, &local.src));
    let wrong = run_command(
        {
            let mut c = remote.command();
            c.env("SNAP_PASSWORD", "not it");
            c
        },
        ["snapshots"],
    );
    assert_eq!(wrong.code, Some(12), "a wrong password on S3: {wrong:?}");

    // S3, encrypted -> a new local repository, and a second run copies nothing.
    let back = TempRepo::init();
    for round in 0..2 {
        let run = remote.snap(["--json", "copy", "--to", s(&back.repo)]);
        run.assert_ok();
        let copied = run.json()["copied"].as_array().map(Vec::len);
        assert_eq!(copied, Some(if round == 0 { 1 } else { 0 }), "round {round}: {}", run.stdout);
    }
    back.snap(["restore", "latest", "--target", s(&back.target)]).assert_clean();
    assert_trees_equal(&local.src, &back.restored(&back.target, &local.src));
}

#[test]
fn two_hosts_sharing_a_repository_see_each_others_chunks() {
    for storage in storages() {
        let r = TempRepo::init_on(storage);
        // Another host: its own home and cache, the same repository.
        let other_home = r.root.join("other-host");
        fs::create_dir(&other_home).unwrap();
        write_random_tree(&r.src, 41, 10, 500_000);
        let first = r.backup(&[]);
        assert!(summary(&first, "new_stored_bytes") > 1_000_000);
        let second = run_command(r.command_in(&other_home), ["--json", "backup", "--force", s(&r.src)]);
        second.assert_ok();
        let report = second.json();
        // Directory nodes aside (see above), nothing is stored again.
        assert!(
            summary(&report, "new_stored_bytes") < 1024,
            "{storage:?}: the second host stored data the first had stored: {report}"
        );
    }
}

#[test]
fn concurrent_backups_both_succeed() {
    for storage in storages() {
        let r = TempRepo::init_on(storage);
        let (a, b) = (r.src.join("a"), r.src.join("b"));
        write_random_tree(&a, 51, 30, 300_000);
        write_random_tree(&b, 52, 30, 300_000);
        let children: Vec<_> = [&a, &b]
            .into_iter()
            .map(|dir| {
                let mut cmd = r.command();
                cmd.args(["backup", s(dir)]).stdout(Stdio::null()).stderr(Stdio::piped());
                cmd.spawn().unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "{storage:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        assert_eq!(r.snapshots().len(), 2, "{storage:?}");
        r.snap(["verify", "--read-data"]).assert_clean();
    }
}

/// A lock object planted straight into the bucket.
fn plant_lock(r: &TempRepo, exclusive: bool, host: &str, pid: u32) -> String {
    let store = r.s3.as_ref().unwrap().store();
    let now = chrono::Utc::now().timestamp();
    // A lock of this host names this kernel and pid namespace, as snap's own do.
    let here = host == gethostname::gethostname().to_string_lossy();
    let record = snap::format::lock::LockRecord {
        version: 2,
        exclusive,
        hostname: host.into(),
        username: "planted".into(),
        pid,
        boot_id: here
            .then(|| fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap().trim().to_owned()),
        pid_ns: here.then(|| {
            use std::os::unix::fs::MetadataExt;
            fs::metadata("/proc/self/ns/pid").unwrap().ino()
        }),
        created: now,
        refreshed: now,
    };
    let prefix = r.s3_prefix();
    let name = format!("{:032x}", u128::from(pid));
    let key = object_store::path::Path::from(format!("{prefix}/locks/{name}"));
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(store.put(&key, record.encode().into()))
        .unwrap();
    name
}

/// A pid no process has: above the kernel's limit.
fn dead_pid() -> u32 {
    fs::read_to_string("/proc/sys/kernel/pid_max").map_or(4_194_304, |s| s.trim().parse().unwrap()) + 1
}

#[test]
fn locks_on_object_storage_name_their_holder_and_stale_ones_are_removed() {
    if S3Server::from_env().is_none() {
        return;
    }
    let r = TempRepo::init_on(Storage::S3);
    fs::write(r.src.join("f"), b"data").unwrap();
    let host = gethostname::gethostname().to_string_lossy().into_owned();

    // A live process's exclusive lock (this test's own pid) stops a backup.
    plant_lock(&r, true, &host, std::process::id());
    let refused = r.snap(["backup", s(&r.src)]);
    let line = refused.assert_one_line_error();
    assert!(line.contains("locked") && line.contains(&format!("pid {}", std::process::id())), "{line}");
    r.snap(["unlock"]).assert_ok();
    assert!(r.snap(["backup", s(&r.src)]).code != Some(0), "unlock removed a live lock");
    let all = r.snap(["unlock", "--all"]);
    assert!(all.assert_ok().stdout.contains("removed exclusive lock of planted@"), "{}", all.stdout);
    r.backup(&[]);

    // Stale locks block nobody: a dead process of this kernel and pid
    // namespace. (Locks gone quiet by the store's clock, whatever their
    // own times say: tests/lock_protocol.rs.)
    plant_lock(&r, true, &host, dead_pid());
    r.backup(&[]);
    r.snap(["prune"]).assert_ok();
    let removed = r.snap(["unlock"]).assert_ok().stdout.clone();
    assert!(removed.contains(&format!("process {} is gone", dead_pid())), "{removed}");
    assert_eq!(r.snap(["unlock"]).assert_ok().stdout.trim(), "no stale locks");

    // A shared lock of another live host lets backups in but keeps prune out.
    plant_lock(&r, false, "elsewhere", 78);
    r.backup(&[]);
    let prune = r.snap(["prune"]);
    assert!(prune.assert_one_line_error().contains("shared lock of planted@elsewhere pid 78"));
}

#[test]
fn s3_usage_errors_are_one_line() {
    let r = TempRepo::new();
    let bad_url = r.snap(["--repo", "s3:///nobucket", "snapshots"]);
    assert!(bad_url.assert_one_line_error().contains("no bucket name"), "{bad_url:?}");
    let no_keys = r.snap(["--repo", "s3://bucket/p", "snapshots"]);
    assert!(no_keys.assert_one_line_error().contains("AWS_ACCESS_KEY_ID"), "{no_keys:?}");

    let mut nothing_there = r.command();
    nothing_there
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_ACCESS_KEY_ID", "k")
        .env("AWS_SECRET_ACCESS_KEY", "s")
        .env("SNAP_S3_RETRY_TIMEOUT", "1s");
    let down = run_command(nothing_there, ["--repo", "s3://bucket/p", "snapshots"]);
    assert!(down.assert_one_line_error().contains("s3://bucket/p"), "{down:?}");

    let Some(server) = S3Server::from_env() else { return };
    let repo = TempRepo::init_on(Storage::S3);
    let mut wrong_secret = repo.command();
    server.configure(&mut wrong_secret);
    wrong_secret.env("AWS_SECRET_ACCESS_KEY", "not the secret");
    let denied = run_command(wrong_secret, ["snapshots"]);
    assert_eq!(denied.code, Some(1));
    denied.assert_one_line_error();
    let twice = repo.snap(["init"]);
    assert!(twice.assert_one_line_error().contains("already exists"), "{twice:?}");
}

#[test]
fn tree_packs_of_a_remote_repository_are_cached_and_a_damaged_copy_is_not_trusted() {
    if S3Server::from_env().is_none() {
        return;
    }
    let r = TempRepo::init_on(Storage::S3);
    write_random_tree(&r.src, 61, 30, 100_000);
    r.backup(&[]);
    let listing = r.snap(["ls", "latest"]).assert_ok().stdout.clone();
    let cache = r.home.join("cache/snap");
    let trees = fs::read_dir(&cache).unwrap().next().unwrap().unwrap().path().join("trees");
    let copies: Vec<_> = fs::read_dir(&trees).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(!copies.is_empty(), "no tree pack was cached in {}", trees.display());

    // Damage every local copy: answers still come from good data.
    for copy in &copies {
        let mut bytes = fs::read(copy).unwrap();
        for b in bytes.iter_mut().skip(8) {
            *b ^= 0x5a;
        }
        fs::write(copy, bytes).unwrap();
    }
    assert_eq!(r.snap(["ls", "latest"]).assert_clean().stdout, listing);
    r.snap(["restore", "latest", "--target", s(&r.target)]).assert_clean();
    assert_trees_equal(&r.src, &r.restored(&r.target, &r.src));
    // The damaged copies were replaced by good ones.
    let backend_copy_ok = copies
        .iter()
        .all(|c| fs::read(c).is_ok_and(|b| blake3::hash(&b).to_hex().as_str() == c.file_name().unwrap()));
    assert!(backend_copy_ok, "damaged copies were kept");
}
