//! A restore at the limits of its target and its process: directories it
//! cannot make, and a descriptor limit it keeps running into.

use crate::common;

use common::*;

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
    let restore_with = |limit: usize| {
        let target = r.root.join(format!("limit-{limit}"));
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
        .find(|limit| restored_any(&restore_with(*limit).1))
        .expect("some limit below 64 lets a file be restored");
    for limit in first..first + 4 {
        let (target, run) = restore_with(limit);
        assert_eq!(run.code, Some(0), "limit {limit} (first: {first}): {}", run.describe());
        assert_eq!(run.json()["report"]["files"], DIRS, "limit {limit}: {}", run.describe());
        let restored = r.restored(&target, &r.src);
        for i in [0, DIRS / 2, DIRS - 1] {
            let f = restored.join(format!("d{i:03}/f"));
            assert_eq!(std::fs::read_to_string(f).unwrap(), format!("file {i}"), "limit {limit}");
        }
    }
}
