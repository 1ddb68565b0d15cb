//! A restore racing someone who can write into its target (issue 16 item
//! 5): a test-only pause point stops the restore after it made its
//! directories, or before it applies metadata, while directories of the
//! target are swapped for symlinks to a directory outside it. Nothing may
//! be written, removed or changed there, whichever directories the
//! restore still has open and whichever it has to open again.

use crate::common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// More directories than a restore keeps open, so that some of the
/// swapped ones are open still and others are opened again after the swap.
const DIRS: usize = 300;

/// Starts `snap restore` paused at `point`; returns once it is there.
fn start_paused(r: &TempRepo, point: &str, flag: &Path) -> Child {
    let mut cmd = r.command();
    cmd.env("SNAP_TEST_PAUSE", format!("{point}={}", s(flag)));
    cmd.args(["restore", "latest", "--target", s(&r.target)]).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start snap");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !flag.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("restore ended before the pause point {point}: {status}");
        }
        assert!(Instant::now() < deadline, "restore never reached {point}");
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}

/// What is observable of a directory: its entries, mode and mtime.
fn observe(dir: &Path) -> (Vec<String>, u32, i64, i64) {
    let m = fs::metadata(dir).unwrap();
    let mut names: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    (names, m.mode(), m.mtime(), m.mtime_nsec())
}

#[test]
fn directories_swapped_for_symlinks_mid_restore_lead_nowhere_outside() {
    for point in snap::crash::PAUSE_POINTS {
        let r = TempRepo::init();
        for i in 0..DIRS {
            let dir = r.src.join(format!("d{i:03}"));
            fs::create_dir_all(dir.join("sub")).unwrap();
            fs::write(dir.join("file"), format!("file {i}")).unwrap();
            fs::write(dir.join("sub/inner"), format!("inner {i}")).unwrap();
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o751)).unwrap();
        }
        r.backup(&[]);
        let outside = r.root.join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("precious"), "not the restore's").unwrap();
        fs::set_permissions(&outside, fs::Permissions::from_mode(0o700)).unwrap();
        let before = observe(&outside);

        let flag = r.root.join("paused");
        let child = start_paused(&r, point, &flag);
        let restored = r.restored(&r.target, &r.src);
        // The first directory made (long out of the kept descriptors), one
        // in the middle, and the last (surely still open).
        for name in ["d000", "d150", &format!("d{:03}", DIRS - 1)] {
            let dir = restored.join(name);
            fs::rename(&dir, restored.join(format!("{name}.moved"))).unwrap();
            std::os::unix::fs::symlink(&outside, &dir).unwrap();
        }
        fs::remove_file(&flag).unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            matches!(out.status.code(), Some(0 | 3)),
            "{point}: the restore ends with a result: {:?}\n{stderr}",
            out.status
        );
        assert!(!stderr.contains("panicked"), "{point}: {stderr}");
        assert_eq!(observe(&outside), before, "{point}: nothing outside the target changed\n{stderr}");
        assert_eq!(fs::read_to_string(outside.join("precious")).unwrap(), "not the restore's");
        // Every other directory is restored whole.
        for i in (1..DIRS - 1).filter(|i| *i != 150) {
            let dir = restored.join(format!("d{i:03}"));
            assert_eq!(fs::read_to_string(dir.join("sub/inner")).unwrap(), format!("inner {i}"), "{point}");
            assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o7777, 0o751, "{point}");
        }
    }
}
