//! Crash safety: a backup or prune killed at any step leaves a repository
//! that verifies, every snapshot committed before the crash restores
//! byte-exact, and the next run succeeds without manual steps. Named crash
//! points (`SNAP_CRASH_AT`) cover each step of the commit protocol; seeded
//! random `kill -9` covers the moments in between. Each runs on a local
//! repository and on one on the test S3 server.

use crate::common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{Storage, TempRepo, storages};

struct Env {
    repo: TempRepo,
}

impl Env {
    fn new(storage: Storage) -> Self {
        Env { repo: TempRepo::init_on(storage) }
    }

    fn src(&self) -> PathBuf {
        self.repo.src.clone()
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.repo.command();
        c.args(args).env_remove("SNAP_CRASH_AT");
        c
    }

    fn snap(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn snap_ok(&self, args: &[&str]) -> Output {
        let out = self.snap(args);
        assert!(out.status.success(), "snap {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        out
    }

    fn crash(&self, point: &str, args: &[&str]) {
        let out = self.cmd(args).env("SNAP_CRASH_AT", point).output().unwrap();
        assert!(!out.status.success(), "{point}: snap {args:?} did not crash");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("crash point {point}")), "{point} not reached: {stderr}");
    }

    fn backup(&self) {
        self.snap_ok(&["backup", self.src().to_str().unwrap()]);
    }

    fn snapshot_count(&self) -> usize {
        let out = self.snap_ok(&["snapshots", "--json"]);
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap().as_array().unwrap().len()
    }

    fn assert_verifies(&self, context: &str) {
        let out = self.snap(&["verify", "--read-data"]);
        assert!(
            out.status.success(),
            "{context}: verify failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Restores `snapshot` and returns the restored copy of the source.
    fn restore(&self, snapshot: &str) -> BTreeMap<PathBuf, Vec<u8>> {
        let target = self.repo.root.join(format!("restore-{}", rand_name()));
        self.snap_ok(&["restore", snapshot, "--target", target.to_str().unwrap()]);
        let inner = target.join(self.src().strip_prefix("/").unwrap());
        let files = contents(&inner);
        fs::remove_dir_all(&target).unwrap();
        files
    }
}

fn rand_name() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed).to_string()
}

/// Relative path -> contents of every regular file below `dir`.
fn contents(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.insert(p.strip_prefix(dir).unwrap().to_path_buf(), fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn write_files(dir: &Path, seed: u64, count: usize, size: usize) {
    for i in 0..count {
        fs::write(dir.join(format!("f{seed}-{i}")), noise(seed * 1000 + i as u64, size)).unwrap();
    }
}

#[test]
fn backup_crash_points_lose_nothing() {
    for (storage, point) in every_point("backup-") {
        let point = &point;
        let env = Env::new(storage);
        write_files(&env.src(), 1, 5, 300_000);
        env.backup();
        let committed = contents(&env.src());
        write_files(&env.src(), 2, 5, 300_000);
        env.crash(point, &["backup", env.src().to_str().unwrap()]);
        env.assert_verifies(point);
        let expected_snapshots = if *point == "backup-after-snapshot" { 2 } else { 1 };
        assert_eq!(env.snapshot_count(), expected_snapshots, "{point}");
        let first = if expected_snapshots == 2 { "latest~1" } else { "latest" };
        assert_eq!(env.restore(first), committed, "{point}: committed snapshot changed");
        env.backup();
        env.assert_verifies(point);
        assert_eq!(env.restore("latest"), contents(&env.src()), "{point}: backup after the crash");
    }
}

/// Each crash point starting with `prefix`, on each storage.
fn every_point(prefix: &str) -> Vec<(Storage, &'static str)> {
    let points = snap::crash::POINTS.iter().filter(|p| p.starts_with(prefix));
    points.flat_map(|p| storages().into_iter().map(move |s| (s, *p))).collect()
}

#[test]
fn prune_crash_points_lose_nothing() {
    for (storage, point) in every_point("prune-") {
        let point = &point;
        let env = Env::new(storage);
        // One pack holds a file that will be deleted and one that stays, so
        // prune both deletes and repacks.
        fs::write(env.src().join("gone"), noise(7, 3_000_000)).unwrap();
        fs::write(env.src().join("kept"), noise(8, 1_000_000)).unwrap();
        env.backup();
        fs::remove_file(env.src().join("gone")).unwrap();
        write_files(&env.src(), 3, 2, 200_000);
        env.backup();
        let kept = contents(&env.src());
        env.crash(point, &["prune", "--keep", "1"]);
        env.assert_verifies(point);
        assert_eq!(env.restore("latest"), kept, "{point}: kept snapshot changed");
        env.snap_ok(&["prune", "--keep", "1"]);
        env.assert_verifies(point);
        assert_eq!(env.snapshot_count(), 1, "{point}");
        assert_eq!(env.restore("latest"), kept, "{point}: after the second prune");
    }
}

/// Kills a running command after `delay`, or lets it finish.
fn run_and_kill(mut cmd: Command, delay: Duration) {
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    std::thread::sleep(delay);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn random_kill_during_backup_and_prune_loses_nothing() {
    for storage in storages() {
        random_kills(storage);
    }
}

fn random_kills(storage: Storage) {
    let env = Env::new(storage);
    let src = env.src();
    let src = src.to_str().unwrap();
    write_files(&env.src(), 10, 20, 400_000);
    env.backup();
    let mut rng = 0x5eed_u64;
    for round in 0..6u64 {
        let committed: Vec<_> =
            (0..env.snapshot_count()).map(|n| (n, env.restore(&format!("latest~{n}")))).collect();
        fs::remove_file(env.src().join(format!("f10-{round}"))).unwrap();
        write_files(&env.src(), 20 + round, 4, 500_000);
        rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let delay = Duration::from_millis(rng >> 33 & 0xff);
        let args = if round % 2 == 0 { vec!["backup", src] } else { vec!["prune", "--keep", "2"] };
        run_and_kill(env.cmd(&args), delay);
        env.assert_verifies(&format!("round {round} ({args:?} killed after {delay:?})"));
        // Every snapshot that existed before survives unless prune removed it on purpose.
        let now = env.snapshot_count();
        if args[0] == "backup" {
            assert!(now >= committed.len());
            for (n, files) in &committed {
                assert_eq!(
                    &env.restore(&format!("latest~{}", n + now - committed.len())),
                    files,
                    "round {round}"
                );
            }
        }
        env.backup();
        assert_eq!(env.restore("latest"), contents(&env.src()), "round {round}: backup after the kill");
    }
}
