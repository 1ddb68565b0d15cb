//! The lock protocol on a real S3 server (issue 15, items 2 and 8): a
//! writer that may have lost its lock does not commit, staleness is judged
//! by the store's clock and a pid only within its own kernel and pid
//! namespace, and `snap status` looks at the lock without taking one.
//! The commands that judge or hold the locks in question run with
//! SNAP_TEST_LOCK_STALE_SECS, so a lock goes stale in seconds rather than
//! half an hour.

use crate::common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};

/// The stale age the commands run with (the holder's margin is half).
const STALE_SECS: u64 = 6;

/// A command with the short stale age, as `home`'s user. Only the commands
/// that must see a lock go stale, or whose own must, run with it: the
/// others keep the real age, since a 3 s margin is needlessly tight on a
/// loaded machine.
fn command(r: &TempRepo, home: &Path) -> Command {
    let mut cmd = r.command_in(home);
    cmd.env("SNAP_TEST_LOCK_STALE_SECS", STALE_SECS.to_string());
    cmd
}

fn snap<const N: usize>(r: &TempRepo, args: [&str; N]) -> Run {
    run_command(command(r, &r.home), args)
}

/// Waits long enough for a lock to be older than the stale age by the
/// store's clock, whose times are whole seconds.
fn let_locks_go_stale() {
    std::thread::sleep(Duration::from_secs(STALE_SECS + 3));
}

/// The repository's keys in the bucket, read and written directly.
struct Bucket {
    store: object_store::aws::AmazonS3,
    prefix: String,
    runtime: tokio::runtime::Runtime,
}

impl Bucket {
    fn of(r: &TempRepo) -> Self {
        let store = r.s3.as_ref().unwrap().store();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        Bucket { store, prefix: r.s3_prefix(), runtime }
    }

    /// Every key under `dir` of the repository.
    fn keys(&self, dir: &str) -> Vec<object_store::path::Path> {
        let base = object_store::path::Path::from(format!("{}/{dir}", self.prefix));
        let found: Vec<object_store::ObjectMeta> =
            self.runtime.block_on(self.store.list(Some(&base)).try_collect()).unwrap();
        found.into_iter().map(|m| m.location).collect()
    }

    /// The lock records now in `locks/` (one removed while read is skipped).
    fn locks(&self) -> Vec<snap::format::lock::LockRecord> {
        self.keys("locks")
            .iter()
            .filter_map(|key| {
                let got = self.runtime.block_on(async { self.store.get(key).await?.bytes().await }).ok()?;
                snap::format::lock::LockRecord::decode(&got).ok()
            })
            .collect()
    }

    fn plant_lock(&self, name: &str, record: &snap::format::lock::LockRecord) {
        let key = object_store::path::Path::from(format!("{}/locks/{name}", self.prefix));
        self.runtime.block_on(self.store.put(&key, record.encode().into())).unwrap();
    }
}

/// A new repository on the test server, or `None` without one.
fn s3_repo() -> Option<(TempRepo, Bucket)> {
    S3Server::from_env()?;
    let r = TempRepo::init_on(Storage::S3);
    let bucket = Bucket::of(&r);
    Some((r, bucket))
}

fn signal(child: &Child, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, sig).unwrap();
}

fn finish(child: Child, what: &str) -> Run {
    let out = child.wait_with_output().unwrap();
    Run {
        args: vec![what.into()],
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The reproduction of issue 15 item 2: a backup is stopped (SIGSTOP) for
/// longer than the stale age, a prune from another host's cache takes its
/// lock for stale and deletes the packs it had uploaded, the backup
/// resumes. It must fail with the lock-lost message and write no snapshot;
/// every earlier snapshot still verifies and restores.
#[test]
fn a_paused_backup_whose_lock_went_stale_commits_nothing() {
    let Some((r, bucket)) = s3_repo() else { return };
    let (one, two, big) = (r.src.join("one"), r.src.join("two"), r.src.join("big"));
    write_random_tree(&one, 1, 20, 200_000);
    write_random_tree(&two, 2, 20, 200_000);
    let mut rng = Rng::new(3);
    std::fs::create_dir(&big).unwrap();
    for i in 0..12 {
        write_random(&big.join(format!("f{i}")), &mut rng, 8 << 20);
    }
    let first = r.snap(["--json", "backup", s(&one)]);
    let first = first.assert_ok().json()["snapshot"].as_str().unwrap().to_owned();
    let second = r.snap(["--json", "backup", s(&two)]);
    let second = second.assert_ok().json()["snapshot"].as_str().unwrap().to_owned();
    let packs_before = bucket.keys("data").len();

    let mut backup = command(&r, &r.home);
    backup.args(["backup", s(&big)]).stdout(Stdio::piped()).stderr(Stdio::piped());
    let backup = backup.spawn().unwrap();
    // Stopped once it holds its lock and has stored packs of its own, so
    // the prune below has something of it to delete.
    let started = Instant::now();
    while bucket.keys("data").len() <= packs_before || bucket.keys("locks").is_empty() {
        assert!(started.elapsed() < Duration::from_secs(120), "the backup stored no pack");
        std::thread::sleep(Duration::from_millis(10));
    }
    signal(&backup, rustix::process::Signal::STOP);
    let stored = bucket.keys("data").len() - packs_before;
    let_locks_go_stale();

    // Another host (its own cache) prunes: the paused backup's lock is
    // stale by the store's clock, so prune proceeds and deletes its packs.
    let other = r.root.join("other-host");
    std::fs::create_dir(&other).unwrap();
    let prune = run_command(command(&r, &other), ["--json", "prune"]);
    prune.assert_ok();
    let deleted = prune.json()["report"]["packs_deleted"].as_u64().unwrap();
    assert!(deleted >= 1, "prune deleted none of the {stored} packs the backup had stored: {}", prune.stdout);

    signal(&backup, rustix::process::Signal::CONT);
    let resumed = finish(backup, "backup");
    let line = resumed.assert_one_line_error();
    assert!(line.contains("lock may have been lost") && line.contains("no snapshot was written"), "{line}");
    let listed: Vec<String> = r.snapshots().iter().map(|s| s["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(listed.len(), 2, "the paused backup committed a snapshot: {listed:?}");
    assert!(listed.contains(&first) && listed.contains(&second));
    assert!(bucket.keys("locks").is_empty(), "the failed backup left its lock behind");

    r.snap(["verify", "--read-data"]).assert_ok();
    for (id, source) in [(&first, &one), (&second, &two)] {
        let target = r.root.join(format!("restore-{id}"));
        r.snap(["restore", id.as_str(), "--target", s(&target)]).assert_clean();
        assert_trees_equal(source, &r.restored(&target, source));
    }
    // And the repository goes on: the same backup again succeeds.
    r.snap(["backup", s(&big)]).assert_ok();
    r.snap(["verify"]).assert_clean();
}

fn planted(
    exclusive: bool,
    pid: u32,
    boot_id: Option<&str>,
    refreshed: i64,
) -> snap::format::lock::LockRecord {
    snap::format::lock::LockRecord {
        version: if boot_id.is_some() { 2 } else { 1 },
        exclusive,
        hostname: gethostname::gethostname().to_string_lossy().into_owned(),
        username: "planted".into(),
        pid,
        boot_id: boot_id.map(str::to_owned),
        pid_ns: boot_id.map(|_| {
            std::fs::metadata("/proc/self/ns/pid").map_or(1, |m| {
                use std::os::unix::fs::MetadataExt;
                m.ino()
            })
        }),
        created: refreshed.min(0),
        refreshed,
    }
}

/// A pid no process has: above the kernel's limit.
fn dead_pid() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/pid_max").map_or(4_194_304, |s| s.trim().parse().unwrap()) + 1
}

/// Locks whose pid means nothing here (another boot id, or a version 1 lock
/// that does not say) are judged by age alone, and the age is the store's:
/// a refresh time far in the future or the past changes nothing.
#[test]
fn locks_from_another_kernel_are_judged_by_the_stores_clock_alone() {
    let Some((r, bucket)) = s3_repo() else { return };
    std::fs::write(r.src.join("f"), b"data").unwrap();
    let cases = [
        // Our own, live pid, but of another boot; its clock far ahead.
        ("future", planted(true, std::process::id(), Some("another-boot"), i64::MAX)),
        // A dead pid and this host name, but no identity (version 1): the
        // pid may be another namespace's, so it proves nothing.
        ("version1", planted(true, dead_pid(), None, 0)),
        // Its clock far behind: a time no subtraction may overflow on.
        ("past", planted(true, 77, Some("another-boot"), i64::MIN)),
    ];
    for (name, record) in &cases {
        bucket.plant_lock(name, record);
        let refused = snap(&r, ["backup", s(&r.src)]);
        let line = refused.assert_one_line_error();
        assert!(line.contains("locked") && line.contains("exclusive lock of planted@"), "{name}: {line}");
        assert_eq!(snap(&r, ["unlock"]).assert_ok().stdout.trim(), "no stale locks", "{name}");
    }
    assert_eq!(r.json(["status"])["lock"], "exclusive");
    let_locks_go_stale();
    // Old by the store's clock: they block nobody, and unlock removes them.
    snap(&r, ["backup", s(&r.src)]).assert_ok();
    let status = run_command(command(&r, &r.home), ["--json", "status"]);
    assert_eq!(status.assert_ok().json()["lock"], "free");
    let removed = snap(&r, ["unlock"]).assert_ok().stdout.clone();
    assert_eq!(removed.matches("not refreshed for").count(), 3, "{removed}");
    assert!(bucket.keys("locks").is_empty());

    // The pid of a lock from this very kernel and namespace is looked up.
    let here = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    bucket.plant_lock("here", &planted(true, dead_pid(), Some(here.trim()), 0));
    snap(&r, ["backup", s(&r.src)]).assert_ok();
    let removed = snap(&r, ["unlock"]).assert_ok().stdout.clone();
    assert!(removed.contains(&format!("process {} is gone", dead_pid())), "{removed}");
}

/// Issue 15 item 8: `snap status` on S3 used to probe the lock by writing
/// an exclusive lock object, so a monitoring job made other hosts'
/// backups fail at random. While status runs over and over, no exclusive
/// lock ever appears and every backup succeeds.
#[test]
fn status_never_takes_an_exclusive_lock() {
    let Some((r, bucket)) = s3_repo() else { return };
    write_random_tree(&r.src, 4, 10, 50_000);
    r.snap(["backup", s(&r.src)]).assert_ok();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            let mut exclusive_seen = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                exclusive_seen += bucket.locks().iter().filter(|l| l.exclusive).count();
            }
            exclusive_seen
        });
        let status = scope.spawn(|| {
            let other = r.root.join("monitor");
            std::fs::create_dir(&other).unwrap();
            for _ in 0..15 {
                run_command(command(&r, &other), ["status"]).assert_ok();
            }
        });
        for i in 0..4 {
            std::fs::write(r.src.join(format!("new-{i}")), format!("{i}")).unwrap();
            let backup = r.snap(["backup", s(&r.src)]);
            assert!(backup.code == Some(0), "a backup failed beside status: {}", backup.stderr);
        }
        status.join().unwrap();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(watcher.join().unwrap(), 0, "status wrote an exclusive lock");
    });
}
