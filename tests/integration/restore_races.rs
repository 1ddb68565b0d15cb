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
fn start_paused(r: &TempRepo, point: &str, flag: &Path, extra: &[&str]) -> Child {
    let mut cmd = r.command();
    cmd.env("SNAP_TEST_PAUSE", format!("{point}={}", s(flag)));
    cmd.args(["restore", "latest", "--target", s(&r.target)]).args(extra);
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
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
        let child = start_paused(&r, point, &flag, &[]);
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

/// Someone else's user: owns what the "attacker" puts into the target.
const NOBODY: u32 = 65534;

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A file of `NOBODY`'s at `path`, in place of whatever is there.
fn plant_foreign_file(path: &Path) {
    let _ = fs::remove_file(path);
    fs::write(path, "attacker's").unwrap();
    std::os::unix::fs::chown(path, Some(NOBODY), Some(NOBODY)).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Run as root into a directory another user can write to: a file left
/// unchanged, a fifo and a symlink are each swapped for a file of that
/// user's just before the metadata is applied. None of them may get the
/// snapshot's owner or mode (the file's is setuid root).
#[test]
fn entries_swapped_before_their_metadata_get_none_of_it() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    for overwrite in ["if-changed", "always"] {
        let r = TempRepo::init();
        let dir = r.src.join("shared");
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("su"), "setuid program").unwrap();
        fs::set_permissions(dir.join("su"), fs::Permissions::from_mode(0o4755)).unwrap();
        rustix::fs::mknodat(rustix::fs::CWD, dir.join("fifo"), rustix::fs::FileType::Fifo, 0o644.into(), 0)
            .unwrap();
        std::os::unix::fs::symlink("nowhere", dir.join("link")).unwrap();
        r.backup(&[]);
        r.snap(["restore", "latest", "--target", s(&r.target)]).assert_clean();
        let restored = r.restored(&r.target, &r.src).join("shared");
        std::os::unix::fs::chown(&restored, Some(NOBODY), Some(NOBODY)).unwrap();

        let flag = r.root.join("paused");
        let child = start_paused(&r, "restore-before-metadata", &flag, &["--overwrite", overwrite]);
        let swapped: &[&str] =
            if overwrite == "always" { &["fifo", "link"] } else { &["su", "fifo", "link"] };
        for name in swapped {
            plant_foreign_file(&restored.join(name));
        }
        fs::remove_file(&flag).unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
        for name in swapped {
            let m = fs::symlink_metadata(restored.join(name)).unwrap();
            assert_eq!((m.uid(), m.mode() & 0o7777), (NOBODY, 0o755), "{overwrite}: {name}\n{stderr}");
            assert!(stderr.contains(&format!("{name}: replaced by something else")), "{overwrite}: {stderr}");
        }
    }
}

/// A file someone else made, identical to the snapshot's setuid-root
/// file, is not left "unchanged" by a root restore (which would make it
/// root's and setuid while they may still have it open): it is written
/// anew.
#[test]
fn a_foreign_copy_of_a_file_is_not_taken_as_unchanged_by_root() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let r = TempRepo::init();
    fs::write(r.src.join("su"), "setuid program").unwrap();
    fs::set_permissions(r.src.join("su"), fs::Permissions::from_mode(0o4755)).unwrap();
    r.backup(&[]);
    let restored = r.restored(&r.target, &r.src);
    fs::create_dir_all(&restored).unwrap();
    fs::write(restored.join("su"), "setuid program").unwrap();
    std::os::unix::fs::chown(restored.join("su"), Some(NOBODY), Some(NOBODY)).unwrap();
    let run = r.snap(["--json", "restore", "latest", "--target", s(&r.target), "--overwrite", "if-changed"]);
    let report = &run.json()["report"];
    // Written anew (its inode number may well be the removed one's again).
    assert_eq!((&report["unchanged"], &report["written"]), (&0.into(), &1.into()), "{}", run.describe());
    let m = fs::metadata(restored.join("su")).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o7777), (0, 0o4755));
}

/// A hardlink's leader, in a directory another user can write to, is
/// swapped for a symlink and for a file of theirs before the links are
/// made: the other name, in a directory only root can write to, must not
/// become another name of what they put there.
#[test]
fn a_hardlink_leader_swapped_before_linking_is_not_linked() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    for swap in ["symlink", "file"] {
        let r = TempRepo::init();
        for dir in ["a", "b"] {
            fs::create_dir(r.src.join(dir)).unwrap();
        }
        fs::write(r.src.join("a/h"), "leader").unwrap();
        fs::hard_link(r.src.join("a/h"), r.src.join("b/h2")).unwrap();
        fs::set_permissions(r.src.join("b"), fs::Permissions::from_mode(0o700)).unwrap();
        r.backup(&[]);
        let restored = r.restored(&r.target, &r.src);
        fs::create_dir_all(restored.join("a")).unwrap();
        std::os::unix::fs::chown(restored.join("a"), Some(NOBODY), Some(NOBODY)).unwrap();

        let flag = r.root.join("paused");
        let child = start_paused(&r, "restore-before-links", &flag, &[]);
        let leader = restored.join("a/h");
        fs::rename(&leader, restored.join("a/h.moved")).unwrap();
        match swap {
            "symlink" => std::os::unix::fs::symlink("/etc/passwd", &leader).unwrap(),
            _ => plant_foreign_file(&leader),
        }
        fs::remove_file(&flag).unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{swap}: {stderr}");
        assert!(stderr.contains("was replaced by another while being restored"), "{swap}: {stderr}");
        assert!(fs::symlink_metadata(restored.join("b/h2")).is_err(), "{swap}: not linked\n{stderr}");
    }
}

/// A directory moved out of the target while the restore has it open keeps
/// receiving what is written through its descriptor; the restore cannot
/// prevent that, but it must not report those files as restored at their
/// path: the directory is named, and the exit status is 3.
#[test]
fn a_directory_moved_out_of_the_target_mid_restore_is_named() {
    let r = TempRepo::init();
    fs::create_dir_all(r.src.join("a/sub")).unwrap();
    fs::write(r.src.join("a/g"), "g").unwrap();
    fs::write(r.src.join("a/sub/f"), "f").unwrap();
    fs::write(r.src.join("top"), "top").unwrap();
    r.backup(&[]);
    let flag = r.root.join("paused");
    let child = start_paused(&r, "restore-after-dirs", &flag, &[]);
    let a = r.restored(&r.target, &r.src).join("a");
    fs::rename(&a, r.root.join("moved-out")).unwrap();
    fs::create_dir(&a).unwrap();
    fs::remove_file(&flag).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let named = format!("{}: moved or replaced while being restored", a.display());
    assert!(stderr.contains(&named), "{stderr}");
}

/// Run as root into a directory another user can write to: a directory
/// the restore just made, and has not opened yet, is moved away and one
/// of that user's put in its place. Its identity was recorded when it was
/// made, so the restore refuses theirs: nothing is written into it, it
/// does not get the snapshot's owner or mode, and the path is named.
#[test]
fn a_directory_swapped_right_after_it_was_made_is_refused() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let r = TempRepo::init();
    fs::create_dir_all(r.src.join("shared/leaf")).unwrap();
    fs::write(r.src.join("shared/leaf/secret"), "root's secret").unwrap();
    fs::set_permissions(r.src.join("shared/leaf/secret"), fs::Permissions::from_mode(0o600)).unwrap();
    r.backup(&[]);
    let shared = r.restored(&r.target, &r.src).join("shared");
    fs::create_dir_all(&shared).unwrap();
    std::os::unix::fs::chown(&shared, Some(NOBODY), Some(NOBODY)).unwrap();

    let flag = r.root.join("paused");
    let child = start_paused(&r, "restore-after-dirs", &flag, &[]);
    // `leaf` has no directories below it: the restore made it and has not
    // opened it yet.
    let leaf = shared.join("leaf");
    fs::rename(&leaf, shared.join("leaf.moved")).unwrap();
    fs::create_dir(&leaf).unwrap();
    std::os::unix::fs::chown(&leaf, Some(NOBODY), Some(NOBODY)).unwrap();
    fs::set_permissions(&leaf, fs::Permissions::from_mode(0o777)).unwrap();
    fs::remove_file(&flag).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(fs::read_dir(&leaf).unwrap().count(), 0, "nothing is written into theirs\n{stderr}");
    let m = fs::metadata(&leaf).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o7777), (NOBODY, 0o777), "theirs gets no metadata\n{stderr}");
    assert!(stderr.contains(&format!("{}: moved or replaced", leaf.display())), "{stderr}");
}
