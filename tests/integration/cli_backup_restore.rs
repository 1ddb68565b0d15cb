//! Backup and restore through the real binary: bit-for-bit round trips,
//! partial restores, change detection, snapshot names, `ls`, dedup.

use crate::common;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use common::*;
use serde_json::Value;

/// Backs up `src` and restores it, asserting a clean run both ways.
/// Returns the backup report.
fn backup_and_restore(r: &TempRepo) -> Value {
    let run = r.snap(["--json", "backup", s(&r.src)]);
    run.assert_clean();
    let report = run.json();
    assert_eq!(report["incomplete"], false, "{report:#}");
    assert_eq!(report["warnings"], Value::Array(vec![]), "{report:#}");
    let run = r.snap(["--json", "restore", "latest", "--target", s(&r.target), "--verify"]);
    run.assert_clean();
    let restored = run.json();
    assert_eq!(restored["report"]["incomplete"], false, "{restored:#}");
    assert_eq!(
        restored["report"]["verified_files"].as_u64(),
        Some(distinct_file_inodes(&r.src) as u64),
        "--verify must check every restored file: {restored:#}"
    );
    report
}

#[test]
fn restore_reproduces_modes_times_links_names_and_large_files() {
    let r = TempRepo::init();
    write_random_tree(&r.src, 1, 40, 64 << 10);
    let features = write_special_entries(&r.src);
    write_name_cases(&r.src);
    let sparse = write_big_files(&r.src, 2);
    stamp_times(&r.src, 3);
    if !features.xattrs {
        eprintln!("note: the filesystem does not support user xattrs; xattrs are not checked");
    }
    if !features.devices {
        eprintln!("note: mknod is not permitted here; device files are not checked");
    }

    let report = backup_and_restore(&r);

    // The counters agree with the tree (every hardlink name is a file).
    let mut files = 0;
    let mut bytes = 0;
    let mut others = 0;
    for rel in list_tree(&r.src) {
        let m = fs::symlink_metadata(r.src.join(rel)).unwrap();
        if m.is_file() {
            files += 1;
            bytes += m.len();
        } else if !m.is_dir() {
            others += 1;
        }
    }
    assert_eq!(summary(&report, "files"), files, "{report:#}");
    assert_eq!(summary(&report, "bytes"), bytes, "{report:#}");
    assert_eq!(summary(&report, "others"), others, "{report:#}");
    assert_eq!(summary(&report, "files_read"), files, "a first backup reads every file: {report:#}");
    assert_eq!(summary(&report, "bytes_read"), bytes, "{report:#}");

    // Only the source (and the directories above it) is restored.
    assert_only_chain_to(&r.target, &r.src);
    let restored = r.restored(&r.target, &r.src);
    assert_trees_equal(&r.src, &restored);
    assert_eq!(fs::metadata(r.restored(&r.target, &sparse)).unwrap().len(), 64 << 20);
}

#[test]
fn a_deep_tree_backs_up_within_a_small_file_descriptor_limit() {
    let r = TempRepo::init();
    let mut deep = r.src.clone();
    for _ in 0..150 {
        deep.push("d");
    }
    fs::create_dir_all(&deep).unwrap();
    fs::write(deep.join("leaf"), b"at the bottom").unwrap();
    let mut cmd = r.command();
    // A directory kept open while everything below it is backed up would
    // need one descriptor per level: 150 levels against a limit of 48.
    // SAFETY: between fork and exec the closure only calls setrlimit.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            let limit = rustix::process::Rlimit { current: Some(48), maximum: Some(48) };
            rustix::process::setrlimit(rustix::process::Resource::Nofile, limit).map_err(Into::into)
        });
    }
    run_command(cmd, ["--json", "backup", s(&r.src)]).assert_clean();
    r.snap(["restore", "latest", "--target", s(&r.target)]).assert_clean();
    let leaf = r.restored(&r.target, &deep).join("leaf");
    assert_eq!(fs::read(leaf).unwrap(), b"at the bottom");
}

#[test]
fn restored_sparse_file_keeps_its_holes() {
    let r = TempRepo::init();
    let sparse = r.src.join("sparse.img");
    write_sparse(&sparse, 5);
    // All hole: no chunk of it has a byte to write, so the restore opens it
    // only to create it and to give it its metadata.
    let holes = r.src.join("holes.img");
    fs::File::create(&holes).unwrap().set_len(3 << 20).unwrap();
    fs::set_permissions(&holes, fs::Permissions::from_mode(0o640)).unwrap();
    stamp_times(&r.src, 6);
    backup_and_restore(&r);
    let restored = r.restored(&r.target, &r.src);
    assert_trees_equal(&r.src, &restored);
    let restored_sparse = r.restored(&r.target, &sparse);
    let (src_meta, dst_meta) = (fs::metadata(&sparse).unwrap(), fs::metadata(&restored_sparse).unwrap());
    assert_eq!(dst_meta.len(), 64 << 20);
    assert!(
        src_meta.blocks() * 512 < src_meta.len() / 64,
        "the source file system did not keep the test file sparse ({} blocks)",
        src_meta.blocks()
    );
    // The data needs a few KiB; allow generously for large file system blocks.
    assert!(
        dst_meta.blocks() * 512 <= dst_meta.len() / 16,
        "restored sparse file uses {} bytes on disk for {} bytes of length (source: {} bytes on disk)",
        dst_meta.blocks() * 512,
        dst_meta.len(),
        src_meta.blocks() * 512
    );
}

#[test]
fn restoring_again_over_a_previous_restore_gives_the_same_tree() {
    let r = TempRepo::init();
    write_random_tree(&r.src, 11, 20, 16 << 10);
    write_special_entries(&r.src);
    stamp_times(&r.src, 12);
    backup_and_restore(&r);
    // Scribble over the first restore, then restore again on top of it.
    let restored = r.restored(&r.target, &r.src);
    fs::write(restored.join("meta/plain.txt"), b"changed since").unwrap();
    fs::remove_file(restored.join("meta/links/relative")).unwrap();
    fs::write(restored.join("meta/links/relative"), b"now a file").unwrap();
    r.snap(["restore", "latest", "--target", s(&r.target), "--verify"]).assert_clean();
    assert_trees_equal(&r.src, &restored);
}

fn partial_fixture() -> TempRepo {
    let r = TempRepo::init();
    write_random_tree(&r.src, 21, 20, 16 << 10);
    write_special_entries(&r.src);
    write_name_cases(&r.src);
    stamp_times(&r.src, 22);
    r.backup(&[]);
    r
}

#[test]
fn partial_restore_of_a_subdirectory_restores_only_it_and_its_parents() {
    let r = partial_fixture();
    let sub = r.src.join("meta");
    r.snap(["restore", "latest", "--target", s(&r.target), "--include", s(&sub), "--verify"]).assert_clean();
    assert_only_chain_to(&r.target, &sub);
    assert_trees_equal(&sub, &r.restored(&r.target, &sub));
    // The directory above the included one carries its own metadata.
    let (a, b) = (fs::metadata(&r.src).unwrap(), fs::metadata(r.restored(&r.target, &r.src)).unwrap());
    assert_eq!(a.mode() & 0o7777, b.mode() & 0o7777, "mode of the parent directory");
    assert_eq!((a.mtime(), a.mtime_nsec()), (b.mtime(), b.mtime_nsec()), "mtime of the parent directory");
}

#[test]
fn partial_restore_of_a_single_file_restores_only_it_and_its_parents() {
    let r = partial_fixture();
    let cases = [
        r.src.join("meta/owned_setuid"),
        r.src.join("meta/hard/sub/c"), // hardlinked, its partners left out
        r.src.join(OsStr::from_bytes(b"names/bad\xffname")),
        r.src.join("meta/links/dangling"),
    ];
    for (i, file) in cases.iter().enumerate() {
        let target = r.root.join(format!("target-{i}"));
        let mut args = vec![OsStr::new("restore"), OsStr::new("latest"), OsStr::new("--target")];
        args.extend([target.as_os_str(), OsStr::new("--include"), file.as_os_str(), OsStr::new("--verify")]);
        r.snap(&args).assert_clean();
        assert_only_chain_to(&target, file);
        assert_trees_equal(file, &r.restored(&target, file));
    }
}

fn unchanged_fixture() -> TempRepo {
    let r = TempRepo::init();
    write_random_tree(&r.src, 31, 40, 64 << 10);
    write_special_entries(&r.src);
    write_name_cases(&r.src);
    stamp_times(&r.src, 32);
    let first = r.backup(&[]);
    assert_eq!(summary(&first, "files_read"), summary(&first, "files"));
    r
}

#[test]
fn unchanged_backup_reads_no_files_and_stores_almost_nothing() {
    let r = unchanged_fixture();
    let first = r.snapshots()[0]["summary"].clone();
    let second = r.backup(&[]);
    assert_eq!(summary(&second, "files"), first["files"].as_u64().unwrap(), "{second:#}");
    assert_eq!(summary(&second, "bytes"), first["bytes"].as_u64().unwrap(), "{second:#}");
    assert_eq!(summary(&second, "files_read"), 0, "{second:#}");
    assert_eq!(summary(&second, "bytes_read"), 0, "{second:#}");
    assert!(summary(&second, "new_bytes") < 4096, "an unchanged tree stored new data: {second:#}");
    // And it still restores exactly.
    r.snap(["restore", "latest", "--target", s(&r.target), "--verify"]).assert_clean();
    assert_trees_equal(&r.src, &r.restored(&r.target, &r.src));
}

#[test]
fn backup_after_modifying_one_file_reads_only_that_file() {
    let r = unchanged_fixture();
    let changed = r.src.join("meta/plain.txt");
    fs::write(&changed, b"new contents of the one changed file").unwrap();
    let report = r.backup(&[]);
    assert_eq!(summary(&report, "files_read"), 1, "{report:#}");
    assert_eq!(summary(&report, "bytes_read"), 36, "{report:#}");
    r.snap(["restore", "latest", "--target", s(&r.target), "--verify"]).assert_clean();
    assert_trees_equal(&r.src, &r.restored(&r.target, &r.src));
}

#[test]
fn force_backup_reads_every_file_again() {
    let r = unchanged_fixture();
    let report = r.backup(&["--force"]);
    assert_eq!(summary(&report, "files_read"), summary(&report, "files"), "{report:#}");
    assert_eq!(summary(&report, "bytes_read"), summary(&report, "bytes"), "{report:#}");
    assert!(summary(&report, "files_read") > 0);
    assert!(
        summary(&report, "new_bytes") < 4096,
        "re-reading stored data must not store it again: {report:#}"
    );
}

/// Entries of `snap ls SPEC --json`, by path.
fn ls(r: &TempRepo, spec: &str) -> Vec<Value> {
    let out = r.json(["ls", spec]);
    out["entries"].as_array().unwrap_or_else(|| panic!("ls --json has no entries array: {out:#}")).clone()
}

fn size_in(entries: &[Value], path: &Path) -> u64 {
    let wanted = s(path);
    let e = entries
        .iter()
        .find(|e| e["path"] == wanted)
        .unwrap_or_else(|| panic!("{wanted} not listed in {entries:#?}"));
    e["size"].as_u64().unwrap()
}

#[test]
fn snapshot_names_latest_offset_prefix_and_date_resolve_in_ls_and_restore() {
    let r = TempRepo::init();
    let doc = r.src.join("doc.txt");
    fs::write(&doc, b"version one").unwrap();
    r.backup(&[]);
    fs::write(&doc, b"version two, longer").unwrap();
    r.backup(&[]);
    let list = r.snapshots();
    assert_eq!(list.len(), 2);
    let old_id = list[0]["id"].as_str().unwrap().to_owned();
    let new_id = list[1]["id"].as_str().unwrap().to_owned();
    let today = local_date_of(list[1]["unix_time"].as_i64().unwrap()).format("%Y-%m-%d").to_string();

    let cases = [
        ("latest", "version two, longer"),
        ("latest~0", "version two, longer"),
        ("latest~1", "version one"),
        (&old_id[..8], "version one"),
        (&new_id[..10], "version two, longer"),
        (&old_id[..], "version one"),
        (&today[..], "version two, longer"),
    ];
    for (i, (spec, contents)) in cases.iter().enumerate() {
        let entries = ls(&r, spec);
        assert_eq!(size_in(&entries, &doc), contents.len() as u64, "ls {spec}");
        let target = r.root.join(format!("t{i}"));
        r.snap(["restore", spec, "--target", s(&target)]).assert_clean();
        assert_eq!(fs::read(r.restored(&target, &doc)).unwrap(), contents.as_bytes(), "restore {spec}");
    }
    // `ls` names the snapshot it resolved.
    assert_eq!(r.json(["ls", "latest~1"])["snapshot"], old_id.as_str());
    assert_eq!(r.json(["ls", &today])["snapshot"], new_id.as_str());
}

#[test]
fn ls_json_lists_every_path_with_type_mode_owner_size_time_and_target() {
    let r = TempRepo::init();
    write_random_tree(&r.src, 41, 15, 8 << 10);
    write_special_entries(&r.src);
    stamp_times(&r.src, 42);
    r.backup(&[]);
    let entries = ls(&r, "latest");
    let by_path: std::collections::BTreeMap<String, &Value> =
        entries.iter().map(|e| (e["path"].as_str().unwrap().to_owned(), e)).collect();

    // Everything below the source is listed, under its absolute path,
    // and so is every directory above it.
    let mut expected: Vec<String> = list_tree(&r.src).iter().map(|p| s(&r.src.join(p)).to_owned()).collect();
    for a in r.src.ancestors().filter(|a| *a != Path::new("/")) {
        expected.push(s(a).to_owned());
    }
    expected.sort();
    let listed: Vec<String> = by_path.keys().cloned().collect();
    assert_eq!(listed, expected);

    for rel in list_tree(&r.src) {
        let path = r.src.join(&rel);
        let m = fs::symlink_metadata(&path).unwrap();
        let e = by_path[s(&path)];
        let t = m.file_type();
        let kind = if t.is_file() {
            "-"
        } else if t.is_dir() {
            "d"
        } else if t.is_symlink() {
            "l"
        } else if t.is_fifo() {
            "p"
        } else {
            "c"
        };
        assert_eq!(e["type"], kind, "{}", path.display());
        assert_eq!(e["mode"].as_u64(), Some(u64::from(m.mode() & 0o7777)), "{}", path.display());
        assert_eq!(e["uid"].as_u64(), Some(u64::from(m.uid())), "{}", path.display());
        assert_eq!(e["gid"].as_u64(), Some(u64::from(m.gid())), "{}", path.display());
        assert_eq!(e["mtime"].as_i64(), Some(m.mtime()), "{}", path.display());
        assert_eq!(e["mtime_nanos"].as_i64(), Some(m.mtime_nsec()), "{}", path.display());
        if t.is_file() {
            assert_eq!(e["size"].as_u64(), Some(m.len()), "{}", path.display());
        }
        if t.is_symlink() && rel != Path::new("meta/links/non_utf8_target") {
            let target = fs::read_link(&path).unwrap();
            assert_eq!(e["target"], s(&target), "{}", path.display());
        }
    }
    // Non-UTF-8 bytes are shown escaped, never lost.
    assert_eq!(by_path[s(&r.src.join("meta/links/non_utf8_target"))]["target"], "bad\\xfftarget");

    // ls PATH lists only that path and what is below it.
    let links = r.src.join("meta/links");
    let out = r.json(["ls", "latest", s(&links)]);
    let paths: Vec<&str> =
        out["entries"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(paths.len(), 8, "{paths:?}");
    assert!(paths.contains(&s(&links)), "{paths:?}");
    assert!(paths.iter().all(|p| p.starts_with(s(&links))), "{paths:?}");
}

#[test]
fn ls_json_escapes_awkward_names() {
    let r = TempRepo::init();
    write_name_cases(&r.src);
    r.backup(&[]);
    let entries = ls(&r, "latest");
    let paths: Vec<&str> = entries.iter().map(|e| e["path"].as_str().unwrap()).collect();
    let names = s(&r.src.join("names")).to_owned();
    for shown in
        ["bad\\xffname", "new\\nline", "tab\\tand\\\\backslash", "\\xff\\xfe\\xfd", "dir\\xffwith\\nnewline"]
    {
        let full = format!("{names}/{shown}");
        assert!(paths.contains(&full.as_str()), "{full} not in {paths:#?}");
    }
    let deep = paths.iter().filter(|p| p.ends_with("/bottom.txt")).count();
    assert_eq!(deep, 1);
}

#[test]
fn identical_data_under_another_path_is_stored_once() {
    let r = TempRepo::init();
    let a = r.src.join("a");
    let b = r.src.join("b");
    fs::create_dir_all(&a).unwrap();
    write_random_tree(&a, 51, 30, 256 << 10);
    write_random(&a.join("two-mib.bin"), &mut Rng::new(52), 2 << 20);
    r.json(["backup", s(&a)]);
    let first = dir_size(&r.repo.join("data"));
    // The same bytes under another path: no parent snapshot, every file read.
    fs::create_dir_all(&b).unwrap();
    for rel in list_tree(&a) {
        let (from, to) = (a.join(&rel), b.join(&rel));
        if from.is_dir() {
            fs::create_dir_all(&to).unwrap();
        } else {
            fs::copy(&from, &to).unwrap();
        }
    }
    let report = r.json(["backup", s(&b)]);
    assert_eq!(summary(&report, "files_read"), summary(&report, "files"), "{report:#}");
    let second = dir_size(&r.repo.join("data"));
    assert!(
        second < first + first / 10,
        "repository data grew from {first} to {second} bytes for data it already held"
    );
    assert!(summary(&report, "new_bytes") < summary(&report, "bytes") / 10, "{report:#}");
}

#[test]
fn backup_json_names_snapshot_and_parent_by_hex_id() {
    let r = TempRepo::init();
    fs::write(r.src.join("f"), b"x").unwrap();
    let first = r.backup(&[]);
    let second = r.backup(&[]);
    let list = r.snapshots();
    assert_eq!(first["snapshot"], list[0]["id"], "backup --json must give the id `snap` accepts: {first:#}");
    assert_eq!(second["snapshot"], list[1]["id"], "{second:#}");
    assert_eq!(second["parent"], list[0]["id"], "{second:#}");
    // The reported id is usable as a snapshot name.
    if let Some(id) = first["snapshot"].as_str() {
        r.snap(["ls", id]).assert_clean();
    }
}

#[test]
fn default_repository_is_created_in_xdg_data_home_on_first_backup() {
    let r = TempRepo::new();
    fs::write(r.src.join("f"), b"default repo").unwrap();
    let run = run_command(snap_command(&r.home), ["backup", s(&r.src)]);
    run.assert_ok();
    assert!(run.stderr.contains("created the default repository"), "{}", run.stderr);
    let default = r.home.join("data/snap");
    assert!(default.join("config").is_file(), "no repository at {}", default.display());
    assert!(!r.repo.exists());
    // Later commands find it without being told.
    let run = run_command(snap_command(&r.home), ["--json", "snapshots"]);
    run.assert_clean();
    assert_eq!(run.json().as_array().map(Vec::len), Some(1));
    let run = run_command(snap_command(&r.home), ["restore", "latest", "--target", s(&r.target)]);
    run.assert_clean();
    assert_eq!(fs::read(r.restored(&r.target, &r.src.join("f"))).unwrap(), b"default repo");
}

#[test]
fn repository_files_are_private_to_their_owner() {
    let r = TempRepo::init();
    write_random_tree(&r.src, 61, 5, 4 << 10);
    r.backup(&[]);
    r.snap(["restore", "latest", "--target", s(&r.target)]).assert_clean();
    let mut checked = 0;
    for rel in list_tree(&r.repo).into_iter().chain([Path::new("").to_path_buf()]) {
        let path = r.repo.join(&rel);
        let m = fs::symlink_metadata(&path).unwrap();
        let want = if m.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(m.mode() & 0o7777, want, "{} has mode {:o}", path.display(), m.mode() & 0o7777);
        checked += 1;
    }
    assert!(checked > 5);
}

/// The comparison itself must not be vacuous: two trees generated alike
/// compare equal, and each single kind of difference is caught.
#[test]
fn tree_comparison_detects_each_kind_of_difference() {
    let dir = tempfile::tempdir().unwrap();
    let make = |name: &str| {
        let root = dir.path().join(name);
        fs::create_dir(&root).unwrap();
        write_random_tree(&root, 71, 8, 2048);
        write_special_entries(&root);
        stamp_times(&root, 72);
        root
    };
    let a = make("a");
    assert_trees_equal(&a, &make("same"));

    let features = write_special_entries(&dir.path().join("probe"));
    type Mutation = Box<dyn Fn(&Path)>;
    let mut mutations: Vec<(&str, Mutation)> = vec![
        ("file contents", Box::new(|b| fs::write(b.join("meta/plain.txt"), b"plain contents!").unwrap())),
        (
            "mode",
            Box::new(|b| {
                fs::set_permissions(b.join("meta/setuid"), fs::Permissions::from_mode(0o755)).unwrap()
            }),
        ),
        (
            "owner",
            Box::new(|b| std::os::unix::fs::lchown(b.join("meta/owned_link"), Some(0), Some(0)).unwrap()),
        ),
        (
            "file mtime",
            Box::new(|b| {
                let m = fs::metadata(b.join("meta/empty.txt")).unwrap();
                let t = filetime::FileTime::from_unix_time(m.mtime(), m.mtime_nsec() as u32 + 1);
                filetime::set_file_mtime(b.join("meta/empty.txt"), t).unwrap();
            }),
        ),
        (
            "directory mtime",
            Box::new(|b| {
                let m = fs::metadata(b.join("meta/empty_dir")).unwrap();
                let t = filetime::FileTime::from_unix_time(m.mtime() + 1, m.mtime_nsec() as u32);
                filetime::set_file_mtime(b.join("meta/empty_dir"), t).unwrap();
            }),
        ),
        (
            "symlink target",
            Box::new(|b| {
                fs::remove_file(b.join("meta/links/dangling")).unwrap();
                std::os::unix::fs::symlink("does/not/exist2", b.join("meta/links/dangling")).unwrap();
            }),
        ),
        (
            "hardlink grouping",
            Box::new(|b| {
                fs::remove_file(b.join("meta/hard/b")).unwrap();
                fs::copy(b.join("meta/hard/a"), b.join("meta/hard/b")).unwrap();
                let m = fs::metadata(b.join("meta/hard/a")).unwrap();
                let t = filetime::FileTime::from_unix_time(m.mtime(), m.mtime_nsec() as u32);
                filetime::set_file_mtime(b.join("meta/hard/b"), t).unwrap();
                std::os::unix::fs::lchown(b.join("meta/hard/b"), Some(m.uid()), Some(m.gid())).unwrap();
                fs::set_permissions(b.join("meta/hard/b"), m.permissions()).unwrap();
                for name in xattr::list(b.join("meta/hard/a")).into_iter().flatten() {
                    let v = xattr::get(b.join("meta/hard/a"), &name).unwrap().unwrap();
                    xattr::set(b.join("meta/hard/b"), &name, &v).unwrap();
                }
            }),
        ),
        ("extra entry", Box::new(|b| fs::write(b.join("meta/empty_dir/extra"), b"").unwrap())),
        ("missing entry", Box::new(|b| fs::remove_file(b.join("meta/fifo")).unwrap())),
    ];
    if features.xattrs {
        mutations
            .push(("xattr", Box::new(|b| xattr::remove(b.join("meta/plain.txt"), "user.empty").unwrap())));
    }
    for (i, (what, mutate)) in mutations.iter().enumerate() {
        let b = make(&format!("b{i}"));
        mutate(&b);
        let caught = std::panic::catch_unwind(|| assert_trees_equal(&a, &b)).is_err();
        assert!(caught, "a difference in {what} went unnoticed");
    }
}
