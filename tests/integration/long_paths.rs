//! Paths longer than `PATH_MAX` (issue 26): a chain of directories whose
//! full path passes 8,192 bytes, each name legal, built one relative step
//! at a time as the kernel allows, inside a tree with other files. Backup
//! reads all of it, restore writes all of it back, and `ls`, `find` and
//! `dump` name the deepest entries; the restored tree is compared with
//! the source entry by entry through directory descriptors (a path that
//! long cannot be named in one system call).

use crate::common;

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::*;
use snap::dirfd::Dir;

/// Each level's name: 200 bytes (`NAME_MAX` is 255).
const NAME_LEN: usize = 200;
/// Levels: 45 x 201 bytes is a path of over 9,000 bytes below the source.
const LEVELS: usize = 45;

/// Builds the chain under `root/deep` one relative step at a time (as
/// `mkdir -p` cannot, and `cd` in a shell that tracks the full path
/// cannot either), with a file at level 20, and a file, a symlink and a
/// fifo at the bottom.
fn build_chain(root: &Path) {
    let name = OsString::from("n".repeat(NAME_LEN));
    let create = rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CREATE;
    let mut dir = Dir::open_root(root, false).unwrap();
    dir.mkdir("deep".as_ref(), 0o755).unwrap();
    dir = dir.child("deep".as_ref(), None);
    for level in 1..=LEVELS {
        dir.mkdir(&name, 0o755).unwrap();
        dir = dir.child(&name, None);
        if level == 20 {
            dir.open("middle.txt".as_ref(), create, 0o644).unwrap().write_all(b"halfway down").unwrap();
        }
    }
    dir.open("leaf.txt".as_ref(), create, 0o640).unwrap().write_all(b"the bottom").unwrap();
    dir.symlink(b"leaf.txt", "link".as_ref()).unwrap();
    dir.mknod("fifo".as_ref(), rustix::fs::FileType::Fifo, 0).unwrap();
}

/// Compares two trees entry by entry through descriptors: names, kinds,
/// modes, sizes, mtimes, file contents and symlink targets.
fn assert_same_tree(a: &Arc<Dir>, b: &Arc<Dir>, shown: &str) -> usize {
    let names = a.list().unwrap_or_else(|e| panic!("list {shown}: {e}"));
    let theirs = b.list().unwrap_or_else(|e| panic!("list restored {shown}: {e}"));
    assert_eq!(names, theirs, "names in {shown}");
    let mut entries = 0;
    for name in &names {
        let (sa, sb) = (a.stat(name).unwrap(), b.stat(name).unwrap());
        let here = format!("{shown}/{}", name.to_string_lossy());
        assert_eq!(sa.st_mode, sb.st_mode, "kind and mode of {here}");
        let mode = sa.st_mode & 0o170000;
        if mode != 0o040000 {
            assert_eq!(sa.st_size, sb.st_size, "size of {here}");
            assert_eq!((sa.st_mtime, sa.st_mtime_nsec), (sb.st_mtime, sb.st_mtime_nsec), "mtime of {here}");
        }
        entries += 1;
        match mode {
            0o040000 => entries += assert_same_tree(&a.child(name, None), &b.child(name, None), &here),
            0o100000 => assert_eq!(read(a, name), read(b, name), "contents of {here}"),
            0o120000 => {
                assert_eq!(a.read_link(name).unwrap(), b.read_link(name).unwrap(), "target of {here}")
            }
            _ => {}
        }
    }
    entries
}

fn read(dir: &Arc<Dir>, name: &OsString) -> Vec<u8> {
    let mut bytes = Vec::new();
    dir.open(name, rustix::fs::OFlags::RDONLY, 0).unwrap().read_to_end(&mut bytes).unwrap();
    bytes
}

#[test]
fn a_tree_with_paths_past_path_max_backs_up_and_restores_whole() {
    let r = TempRepo::init();
    write_random_tree(&r.src, 26, 20, 64 << 10);
    build_chain(&r.src);
    let report = r.backup(&[]);
    assert_eq!(report["warnings"].as_array().map(Vec::len), Some(0), "{report:#}");

    let run = r.snap(["restore", "latest", "--target", s(&r.target)]);
    run.assert_clean();
    let source = Dir::open_root(&r.src, false).unwrap();
    let restored = Dir::open_root(&r.restored(&r.target, &r.src), false).unwrap();
    let entries = assert_same_tree(&source, &restored, "src");
    assert!(entries > LEVELS + 20, "the whole chain and the other files were compared: {entries}");

    // The deepest names are listed, found and dumped, in full.
    let deepest = format!("{}/leaf.txt", vec!["n".repeat(NAME_LEN); LEVELS].join("/"));
    assert!(deepest.len() > 8192);
    let found = r.snap(["find", "leaf.txt"]);
    found.assert_ok();
    assert!(found.stdout.lines().any(|l| l.ends_with(&deepest)), "find: {}", found.describe());
    let listed = r.snap(["ls", "latest"]);
    assert!(listed.stdout.lines().any(|l| l.ends_with(&deepest)), "ls: {}", listed.describe());
    let tar = r.root.join("dump.tar");
    r.snap(["dump", "latest", "--format", "tar", "--output", s(&tar)]).assert_clean();
    let names = Command::new("tar").arg("-tf").arg(&tar).output().expect("run tar");
    let names = String::from_utf8_lossy(&names.stdout);
    assert!(names.lines().any(|l| l.ends_with(&deepest)), "tar lists the deepest file");
}

#[test]
fn a_directory_that_cannot_be_created_is_one_warning_and_the_rest_restores() {
    let r = TempRepo::init();
    for dir in ["locked/sub/deeper", "open"] {
        std::fs::create_dir_all(r.src.join(dir)).unwrap();
    }
    for file in ["locked/sub/a", "locked/sub/deeper/b", "open/c", "top"] {
        std::fs::write(r.src.join(file), file).unwrap();
    }
    r.backup(&[]);
    // Restored by another user into a target of theirs where `locked`
    // exists and is not writable: `locked/sub` cannot be made, so nothing
    // below it can; everything else is restored.
    let restored = r.restored(&r.target, &r.src);
    std::fs::create_dir_all(restored.join("locked")).unwrap();
    let chown = Command::new("chown").args(["-R", "65534:65534"]).arg(&r.root).status().unwrap();
    assert!(chown.success());
    let mode = std::os::unix::fs::PermissionsExt::from_mode(0o555);
    std::fs::set_permissions(restored.join("locked"), mode).unwrap();
    let nobody = r.command_through(&["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
    let run = run_command(nobody, ["--json", "restore", "latest", "--target", s(&r.target)]);
    assert_eq!(run.code, Some(3), "{}", run.describe());
    let report = &run.json()["report"];
    let warnings: Vec<&str> =
        report["warnings"].as_array().unwrap().iter().map(|w| w["path"].as_str().unwrap()).collect();
    let sub = s(&restored.join("locked/sub")).to_owned();
    assert!(warnings.contains(&sub.as_str()), "{report:#}");
    assert!(
        !warnings.iter().any(|w| w.starts_with(&format!("{sub}/"))),
        "nothing below it is named: {report:#}"
    );
    for file in ["open/c", "top"] {
        assert_eq!(std::fs::read_to_string(restored.join(file)).unwrap(), file);
    }
}
