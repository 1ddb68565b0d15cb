//! `snap watch`: a backup at start, another after a change, none while
//! nothing changes, and a clean exit on SIGTERM. The waits are generous
//! deadlines for events to happen, not timings that are measured.

use crate::common;

use std::fs;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Polls until `cond` holds, failing after a generous deadline.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn snapshot_count(r: &TempRepo) -> usize {
    r.snapshots().len()
}

fn terminate(child: &Child) {
    let pid = rustix::process::Pid::from_child(child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
}

#[test]
fn backs_up_at_start_and_after_a_change_and_stops_cleanly_on_sigterm() {
    let r = TempRepo::init();
    write_random_tree(&r.src, 51, 10, 20_000);
    let mut cmd = r.command();
    cmd.args(["watch", "--interval", "1s", s(&r.src)]).stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();

    wait_until("the first snapshot", || snapshot_count(&r) == 1);
    fs::write(r.src.join("new.txt"), b"a change\n").unwrap();
    wait_until("a snapshot after the change", || snapshot_count(&r) == 2);
    let latest = r.json(["ls", "latest", s(&r.src.join("new.txt"))]);
    assert_eq!(latest["entries"].as_array().unwrap().len(), 1, "{latest}");

    // Several intervals without a change write nothing (each check that
    // does run finds nothing to store).
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(snapshot_count(&r), 2);

    let (status, stdout) = stop(child);
    assert_eq!(status.code(), Some(0), "{stdout}");
    assert!(stdout.trim_end().ends_with("stopped"), "{stdout}");
    r.snap(["verify"]).assert_clean();
}

/// Waits for a child to exit after SIGTERM; its status and stdout.
fn stop(mut child: Child) -> (std::process::ExitStatus, String) {
    terminate(&child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "watch did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    (out.status, String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn with_json_stdout_is_one_document_of_every_backup() {
    let r = TempRepo::init();
    fs::write(r.src.join("a"), b"a\n").unwrap();
    let mut cmd = r.command();
    cmd.args(["--json", "watch", "--interval", "1s", s(&r.src)]).stdout(Stdio::piped()).stderr(Stdio::null());
    let child = cmd.spawn().unwrap();
    wait_until("the first snapshot", || snapshot_count(&r) == 1);
    let (status, stdout) = stop(child);
    assert_eq!(status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(doc["stopped"], true);
    let first = &doc["backups"][0];
    assert_eq!(first["snapshot"], r.snapshots()[0]["id"], "{doc}");
}

#[test]
fn bad_arguments_and_a_failing_first_backup_are_one_line_errors() {
    let r = TempRepo::init();
    let line = r.snap(["watch", "--interval", "soon", s(&r.src)]).assert_one_line_error().to_owned();
    assert!(line.contains("--interval"), "{line}");
    let missing = r.root.join("missing");
    let line = r.snap(["watch", "--interval", "1s", s(&missing)]).assert_one_line_error().to_owned();
    assert!(line.contains("missing"), "{line}");
}
