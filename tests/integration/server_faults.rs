//! The S3 server dies in the middle of a backup. A private server (its own
//! directory and ports, started with scripts/s3-server.sh) is killed with
//! SIGKILL while a backup uploads; whether the backup rides out the outage
//! on its retries or gives up with one line, nothing is half-committed: the
//! repository verifies, the next backup succeeds and restores byte-exact.

use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/s3-server.sh");

/// A server of this test's own, so killing it disturbs no other test.
struct PrivateServer {
    dir: tempfile::TempDir,
    port: u16,
}

impl PrivateServer {
    fn start(port: u16) -> (Self, S3Server) {
        let server = PrivateServer { dir: tempfile::tempdir().unwrap(), port };
        let s3 = server.up();
        (server, s3)
    }

    /// Starts (or restarts) the server on its directory and port.
    fn up(&self) -> S3Server {
        let out = Command::new(SCRIPT)
            .args(["start", self.dir.path().to_str().unwrap(), &self.port.to_string()])
            .output()
            .unwrap();
        assert!(out.status.success(), "s3-server.sh start: {}", String::from_utf8_lossy(&out.stderr));
        let exports = String::from_utf8(out.stdout).unwrap();
        let printed = |name: &str| {
            let assignment = format!("{name}=");
            exports.split_whitespace().find_map(|w| w.strip_prefix(assignment.as_str())).map(str::to_owned)
        };
        S3Server::from_vars(printed)
            .unwrap_or_else(|| panic!("s3-server.sh start printed no server: {exports}"))
    }

    fn kill(&self) {
        let out = Command::new(SCRIPT).args(["stop", self.dir.path().to_str().unwrap()]).output().unwrap();
        assert!(out.status.success());
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn repo_on(s3: &S3Server) -> TempRepo {
    let mut r = TempRepo::new();
    r.location = s3.fresh_url().into();
    r.s3 = Some(s3.clone());
    r.snap(["init"]).assert_clean();
    r
}

fn write_data(dir: &Path, seed: u64, files: usize) {
    let mut rng = Rng::new(seed);
    for i in 0..files {
        write_random(&dir.join(format!("f{seed}-{i}")), &mut rng, 8 << 20);
    }
}

/// Bytes under `dir`, skipping what the running server removes while they
/// are counted.
fn data_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => data_size(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

/// Starts a backup, kills the server once the backup has been uploading a
/// while, brings it back after `down`; returns the backup's result.
fn backup_through_an_outage(r: &TempRepo, server: &PrivateServer, down: Duration, retry: &str) -> Run {
    let mut cmd = r.command();
    cmd.env("SNAP_S3_RETRY_TIMEOUT", retry).args(["--json", "backup", s(&r.src)]);
    let before = data_size(server.dir.path());
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // Killed once the first packs are up (the server's data grows), so the
    // outage falls in the middle of the upload, not before it.
    let started = Instant::now();
    while data_size(server.dir.path()) < before + (24 << 20) && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    server.kill();
    assert!(child.try_wait().unwrap().is_none(), "the backup ended before the server was killed");
    std::thread::sleep(down);
    server.up();
    let out = child.wait_with_output().unwrap();
    Run {
        args: vec!["backup".into()],
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn assert_recovers(r: &TempRepo, context: &str) {
    r.snap(["verify", "--read-data"]).assert_ok();
    r.backup(&[]);
    r.snap(["verify", "--read-data"]).assert_clean();
    let target = r.root.join(format!("restore-{context}"));
    r.snap(["restore", "latest", "--target", s(&target)]).assert_clean();
    assert_trees_equal(&r.src, &r.restored(&target, &r.src));
}

#[test]
fn server_killed_mid_backup_then_restarted() {
    if S3Server::from_env().is_none() {
        return;
    }
    let (server, s3) = PrivateServer::start(17333);
    let r = repo_on(&s3);
    write_data(&r.src, 1, 8);

    // Back within the retry window: the backup carries on and succeeds.
    let run = backup_through_an_outage(&r, &server, Duration::from_secs(1), "60s");
    run.assert_ok();
    assert_eq!(r.snapshots().len(), 1);
    assert_recovers(&r, "retried");

    // Down for longer than the backup retries: it gives up in one line and
    // commits no snapshot.
    write_data(&r.src, 2, 8);
    let before = r.snapshots().len();
    let run = backup_through_an_outage(&r, &server, Duration::from_secs(4), "2s");
    let line = run.assert_one_line_error();
    assert!(line.contains(s3.fresh_url().split("/t/").next().unwrap()), "{line}");
    assert_eq!(r.snapshots().len(), before, "a failed backup committed a snapshot");
    assert_recovers(&r, "gave-up");
}
