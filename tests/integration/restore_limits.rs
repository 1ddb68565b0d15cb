//! A restore at the limits of its target and its process: directories it
//! cannot make, and a descriptor limit it keeps running into.

use crate::common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::process::Command;

use common::*;

/// A snapshot whose `locked/sub` (with `deeper` below it) holds the first
/// name of a hardlinked file, `open/h2` and `open/h3` being the others,
/// restored by another user into a target of theirs where `locked` exists
/// and is not writable: `locked/sub` and `deeper` cannot be made. Returns
/// the run and where the source was restored.
fn restore_with_unmade_leader(r: &TempRepo) -> (Run, std::path::PathBuf) {
    for dir in ["locked/sub/deeper", "open"] {
        fs::create_dir_all(r.src.join(dir)).unwrap();
    }
    fs::write(r.src.join("locked/sub/deeper/b"), "b").unwrap();
    fs::write(r.src.join("locked/sub/h"), "shared contents").unwrap();
    for other in ["open/h2", "open/h3"] {
        fs::hard_link(r.src.join("locked/sub/h"), r.src.join(other)).unwrap();
    }
    fs::write(r.src.join("top"), "top").unwrap();
    r.backup(&[]);
    let restored = r.restored(&r.target, &r.src);
    fs::create_dir_all(restored.join("locked")).unwrap();
    let chown = Command::new("chown").args(["-R", "65534:65534"]).arg(&r.root).status().unwrap();
    assert!(chown.success());
    fs::set_permissions(restored.join("locked"), std::os::unix::fs::PermissionsExt::from_mode(0o555))
        .unwrap();
    let nobody = r.command_through(&["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
    (run_command(nobody, ["--json", "restore", "latest", "--target", s(&r.target)]), restored)
}

/// The paths the warnings of a `--json` restore name.
fn warned(run: &Run) -> Vec<String> {
    let warnings = run.json()["report"]["warnings"].as_array().unwrap().clone();
    warnings.iter().map(|w| w["path"].as_str().unwrap().to_owned()).collect()
}

/// The first name of a hardlink group lies in a directory that cannot be
/// made: its other names are still restored, one of them the file the
/// rest link to, and only the directory is named.
#[test]
fn other_names_of_a_file_in_a_directory_that_cannot_be_made_are_restored() {
    let r = TempRepo::init();
    let (run, restored) = restore_with_unmade_leader(&r);
    assert_eq!(run.code, Some(3), "{}", run.describe());
    assert_eq!(warned(&run), [s(&restored.join("locked/sub"))], "{}", run.describe());
    let (h2, h3) = (restored.join("open/h2"), restored.join("open/h3"));
    for name in [&h2, &h3] {
        assert_eq!(fs::read_to_string(name).unwrap(), "shared contents", "{}", run.describe());
    }
    let (m2, m3) = (fs::metadata(&h2).unwrap(), fs::metadata(&h3).unwrap());
    assert_eq!((m2.ino(), m2.nlink()), (m3.ino(), 2), "one file, two names");
    assert_eq!(run.json()["report"]["files"], 3, "h2, h3 and top: {}", run.describe());
}

/// The directories the restore could not make are not counted as restored.
#[test]
fn a_restore_counts_only_the_directories_it_made() {
    let r = TempRepo::init();
    let (run, _) = restore_with_unmade_leader(&r);
    assert_eq!(run.code, Some(3), "{}", run.describe());
    let all = r.root.join("all");
    let whole = r.json(["restore", "latest", "--target", s(&all)]);
    let dirs = |report: &serde_json::Value| report["dirs"].as_u64().unwrap();
    // `locked/sub` and `locked/sub/deeper`.
    assert_eq!(dirs(&run.json()["report"]), dirs(&whole["report"]) - 2, "{}", run.describe());
}

/// With one thread and a descriptor limit so low that only a few are
/// free, creating a file runs out of descriptors whenever directory
/// descriptors are kept: like opening a directory, it lets those go and
/// tries again. So from the lowest limit at which a file can be restored
/// at all (below it, not even one is free), every file is restored.
#[test]
fn a_restore_short_of_descriptors_lets_kept_directories_go_for_its_files() {
    const DIRS: usize = 200;
    let r = TempRepo::init();
    for i in 0..DIRS {
        std::fs::create_dir(r.src.join(format!("d{i:03}"))).unwrap();
        std::fs::write(r.src.join(format!("d{i:03}/f")), format!("file {i}")).unwrap();
    }
    r.backup(&[]);
    // Each run into a target of its own: into one a run left files in, a
    // restore takes a safety snapshot first, a backup with needs of its own.
    let restore_with = |limit: usize, name: &str| {
        let target = r.root.join(format!("{name}-{limit}"));
        let ulimit = format!("ulimit -n {limit} && exec \"$0\" \"$@\"");
        let mut cmd = r.command_through(&["sh", "-c", &ulimit]);
        // One thread: how many descriptors are in use at once is then the
        // same on every run and every machine.
        cmd.env("RAYON_NUM_THREADS", "1");
        (target.clone(), run_command(cmd, ["--json", "restore", "latest", "--target", s(&target)]))
    };
    // Below some limit the restore cannot even open the repository (one
    // error, no report), or restores no file.
    let restored_any = |run: &Run| {
        let report = serde_json::from_str::<serde_json::Value>(&run.stdout).ok();
        report.and_then(|r| r["report"]["files"].as_u64()).is_some_and(|files| files > 0)
    };
    let first = (4..64)
        .find(|limit| restored_any(&restore_with(*limit, "probe").1))
        .expect("some limit below 64 lets a file be restored");
    for limit in first..first + 4 {
        let (target, run) = restore_with(limit, "limit");
        assert_eq!(run.code, Some(0), "limit {limit} (first: {first}): {}", run.describe());
        assert_eq!(run.json()["report"]["files"], DIRS, "limit {limit}: {}", run.describe());
        let restored = r.restored(&target, &r.src);
        for i in [0, DIRS / 2, DIRS - 1] {
            let f = restored.join(format!("d{i:03}/f"));
            assert_eq!(std::fs::read_to_string(f).unwrap(), format!("file {i}"), "limit {limit}");
        }
    }
}
