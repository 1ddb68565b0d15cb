//! `snap dump`: tar and zip archives of a snapshot, read back with the
//! system's `tar` and Python's `zipfile` and compared with the source.

use crate::common;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::process::{Command, Output};

use common::*;
use filetime::FileTime;
use serde_json::Value;

/// Lists a zip as JSON: each entry's raw name (hex), `external_attr >> 16`,
/// DOS date and time, and contents (hex). Names without the UTF-8 flag are
/// decoded as CP437 by zipfile, so encoding them back gives the raw bytes.
const READ_ZIP: &str = r#"
import json, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    entries = [{
        "name": i.orig_filename.encode("utf-8" if i.flag_bits & 0x800 else "cp437").hex(),
        "mode": i.external_attr >> 16,
        "date_time": list(i.date_time),
        "data": z.read(i).hex(),
    } for i in z.infolist()]
    print(json.dumps({"entries": entries, "first_bad": z.testzip()}))
"#;

/// `snap dump ARGS` with stdout kept as bytes.
fn dump_raw(r: &TempRepo, args: &[&str]) -> Output {
    r.command().arg("dump").args(args).output().expect("run snap dump")
}

/// Extracts a tar with the system's `tar`, as root: owners and all mode bits.
fn untar(archive: &Path, into: &Path) {
    fs::create_dir_all(into).unwrap();
    let out = Command::new("tar").arg("-xpf").arg(archive).arg("-C").arg(into).output().unwrap();
    assert!(out.status.success(), "tar -x failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// Whether the system's `tar` reads `archive` to its end without complaint.
fn tar_lists(archive: &Path) -> bool {
    Command::new("tar").arg("-tf").arg(archive).output().unwrap().status.success()
}

/// Gives every entry below and including `root` a distinct whole-second
/// mtime, children before their directory: tar keeps seconds only, and
/// `assert_trees_equal` compares to the nanosecond.
fn stamp_whole_seconds(root: &Path) {
    let mut paths = vec![root.to_path_buf()];
    paths.extend(list_tree(root).into_iter().map(|rel| root.join(rel)));
    for (i, path) in paths.iter().enumerate().rev() {
        let t = FileTime::from_unix_time(1_600_000_000 + i as i64 * 61, 0);
        filetime::set_symlink_file_times(path, t, t).unwrap();
    }
}

fn mknod(path: &Path, kind: rustix::fs::FileType, mode: u32, dev: u64) -> rustix::io::Result<()> {
    rustix::fs::mknodat(rustix::fs::CWD, path, kind, rustix::fs::Mode::from_raw_mode(mode), dev)
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// What tar can hold: random files (some executable), a multi-chunk file,
/// awkward and long names, deep paths, symlinks (relative, dangling, with a
/// trailing slash, long, non-UTF-8), special bits, a foreign owner, a
/// hardlink pair, a fifo and, where mknod is allowed, a device.
fn write_tar_cases(src: &Path) {
    write_random_tree(src, 11, 25, 40 << 10);
    write_name_cases(src);
    write_random(&src.join("multi-chunk.bin"), &mut Rng::new(12), 3 << 20);
    let l = src.join("links");
    fs::create_dir(&l).unwrap();
    symlink("../multi-chunk.bin", l.join("relative")).unwrap();
    symlink("does/not/exist", l.join("dangling")).unwrap();
    symlink("dir//sub/", l.join("unnormalised")).unwrap();
    symlink("x/".repeat(300), l.join("long_target")).unwrap();
    symlink(OsStr::from_bytes(b"bad\xfftarget"), l.join("non_utf8_target")).unwrap();
    fs::write(src.join("tool.sh"), b"#!/bin/sh\necho hi\n").unwrap();
    chmod(&src.join("tool.sh"), 0o755);
    fs::write(src.join("setuid"), b"s").unwrap();
    chmod(&src.join("setuid"), 0o4755);
    fs::create_dir(src.join("sticky")).unwrap();
    chmod(&src.join("sticky"), 0o1777);
    fs::write(src.join("owned"), b"not root's").unwrap();
    std::os::unix::fs::lchown(src.join("owned"), Some(OTHER_UID), Some(OTHER_GID)).unwrap();
    fs::write(src.join("hard-a"), b"linked").unwrap();
    fs::hard_link(src.join("hard-a"), src.join("hard-b")).unwrap();
    mknod(&src.join("fifo"), rustix::fs::FileType::Fifo, 0o640, 0).unwrap();
    let device =
        mknod(&src.join("null"), rustix::fs::FileType::CharacterDevice, 0o620, rustix::fs::makedev(1, 3));
    if device.is_err() {
        eprintln!("note: mknod is not permitted here; device files are not checked");
    }
    stamp_whole_seconds(src);
}

#[test]
fn tar_extracts_to_the_source_tree_with_modes_mtimes_owners_and_links() {
    let r = TempRepo::init();
    write_tar_cases(&r.src);
    r.backup(&[]);
    let archive = r.root.join("out.tar");

    let report = r.json(["dump", "latest", "--format", "tar", "--output", s(&archive)]);
    let entries = list_tree(&r.src);
    let files = entries.iter().filter(|p| fs::symlink_metadata(r.src.join(p)).unwrap().is_file()).count();
    assert_eq!(report["report"]["files"], files as u64, "{report:#}");
    assert_eq!(report["report"]["warnings"], Value::Array(vec![]), "{report:#}");

    let extracted = r.root.join("extracted");
    untar(&archive, &extracted);
    assert_trees_equal(&r.src, &r.restored(&extracted, &r.src));
    // Paths compare by components, which folds `//`: the target must come back byte for byte.
    let link = r.restored(&extracted, &r.src).join("links/unnormalised");
    assert_eq!(fs::read_link(link).unwrap().as_os_str().as_bytes(), b"dir//sub/");

    // Standard output carries the very same archive.
    let out = dump_raw(&r, &["latest", "--format", "tar"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout == fs::read(&archive).unwrap(), "stdout and --output archives differ");
}

#[test]
fn a_path_is_archived_relative_to_its_parent() {
    let r = TempRepo::init();
    write_random_tree(&r.src, 21, 20, 10 << 10);
    symlink("beta/gamma", r.src.join("alpha/link")).unwrap();
    stamp_whole_seconds(&r.src);
    r.backup(&[]);

    let archive = r.root.join("alpha.tar");
    r.snap(["dump", "latest", s(&r.src.join("alpha")), "--format", "tar", "-o", s(&archive)]).assert_ok();
    let extracted = r.root.join("alpha");
    untar(&archive, &extracted);
    assert_eq!(sorted_names(&extracted), vec![OsStr::new("alpha").to_owned()]);
    assert_trees_equal(&r.src.join("alpha"), &extracted.join("alpha"));

    // A single file is archived under its own name.
    let file = list_tree(&r.src).into_iter().find(|p| r.src.join(p).is_file()).unwrap();
    let archive = r.root.join("one.tar");
    r.snap(["dump", "latest", s(&r.src.join(&file)), "--format", "tar", "-o", s(&archive)]).assert_ok();
    let extracted = r.root.join("one");
    untar(&archive, &extracted);
    let name = file.file_name().unwrap();
    assert_eq!(sorted_names(&extracted), vec![name.to_owned()]);
    assert_trees_equal(&r.src.join(&file), &extracted.join(name));

    let run = r.snap(["dump", "latest", s(&r.src.join("no-such")), "--format", "tar", "-o", s(&archive)]);
    assert!(run.assert_one_line_error().contains("not found"), "{}", run.stderr);
    assert!(!archive.exists(), "a failed dump must leave no archive");
}

/// What a zip entry should be, keyed by its raw name.
fn expected_zip_entries(src: &Path) -> BTreeMap<Vec<u8>, (u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let base = src.parent().unwrap();
    for path in std::iter::once(src.to_path_buf()).chain(list_tree(src).into_iter().map(|p| src.join(p))) {
        let m = fs::symlink_metadata(&path).unwrap();
        let mut name = path.strip_prefix(base).unwrap().as_os_str().as_bytes().to_vec();
        let data = if m.is_file() {
            fs::read(&path).unwrap()
        } else if m.file_type().is_symlink() {
            fs::read_link(&path).unwrap().as_os_str().as_bytes().to_vec()
        } else if m.is_dir() {
            name.push(b'/');
            Vec::new()
        } else {
            continue; // zip has no form for it
        };
        out.insert(name, (m.mode(), data));
    }
    out
}

#[test]
fn zip_holds_contents_modes_mtimes_and_symlinks_and_skips_a_fifo() {
    let r = TempRepo::init();
    write_random_tree(&r.src, 31, 20, 30 << 10);
    write_random(&r.src.join("multi-chunk.bin"), &mut Rng::new(32), 3 << 20);
    fs::write(r.src.join(OsStr::from_bytes(b"caf\xe9-latin1.txt")), b"not UTF-8").unwrap();
    fs::write(r.src.join("caf\u{e9}.txt"), b"UTF-8").unwrap();
    fs::write(r.src.join("tool.sh"), b"#!/bin/sh\n").unwrap();
    chmod(&r.src.join("tool.sh"), 0o4755);
    symlink("alpha/beta", r.src.join("link")).unwrap();
    symlink(OsStr::from_bytes(b"bad\xfftarget"), r.src.join("odd-link")).unwrap();
    mknod(&r.src.join("fifo"), rustix::fs::FileType::Fifo, 0o600, 0).unwrap();
    stamp_whole_seconds(&r.src);
    r.backup(&[]);

    let archive = r.root.join("out.zip");
    let run = r.snap(["dump", "latest", s(&r.src), "--format", "zip", "--output", s(&archive)]);
    run.assert_ok();
    let warning = run.stderr.trim_end();
    assert!(
        !warning.contains('\n')
            && warning.contains(s(&r.src.join("fifo")))
            && warning.contains("cannot hold a fifo"),
        "{}",
        run.stderr
    );

    let out = Command::new("python3").arg("-c").arg(READ_ZIP).arg(&archive).output().unwrap();
    assert!(out.status.success(), "python zipfile failed: {}", String::from_utf8_lossy(&out.stderr));
    let listing: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listing["first_bad"], Value::Null, "a CRC does not match");
    let mut expected = expected_zip_entries(&r.src);
    for e in listing["entries"].as_array().unwrap() {
        let name = hex::decode(e["name"].as_str().unwrap()).unwrap();
        let shown = String::from_utf8_lossy(&name).into_owned();
        let (mode, data) = expected.remove(&name).unwrap_or_else(|| panic!("unexpected entry {shown}"));
        assert_eq!(e["mode"].as_u64(), Some(u64::from(mode)), "mode of {shown}");
        assert!(hex::decode(e["data"].as_str().unwrap()).unwrap() == data, "contents of {shown} differ");
        let path = r.src.parent().unwrap().join(OsStr::from_bytes(name.strip_suffix(b"/").unwrap_or(&name)));
        let t = local_date_of(fs::symlink_metadata(&path).unwrap().mtime());
        use chrono::{Datelike, Timelike};
        // DOS time: local, in two-second steps.
        let dos = [
            t.year(),
            t.month() as i32,
            t.day() as i32,
            t.hour() as i32,
            t.minute() as i32,
            t.second() as i32 & !1,
        ];
        assert_eq!(e["date_time"], serde_json::json!(dos), "mtime of {shown}");
    }
    assert!(
        expected.is_empty(),
        "missing from the zip: {:?}",
        expected.keys().map(|k| String::from_utf8_lossy(k)).collect::<Vec<_>>()
    );
}

#[test]
fn an_encrypted_repository_dumps_the_same_tree() {
    let r = TempRepo::init_encrypted("dump password");
    write_random_tree(&r.src, 41, 15, 20 << 10);
    symlink("alpha", r.src.join("link")).unwrap();
    stamp_whole_seconds(&r.src);
    r.backup(&[]);
    let archive = r.root.join("out.tar");
    r.snap(["dump", "latest", "--format", "tar", "--output", s(&archive)]).assert_clean();
    let extracted = r.root.join("extracted");
    untar(&archive, &extracted);
    assert_trees_equal(&r.src, &r.restored(&extracted, &r.src));
}

/// Flips a byte in the middle of the one place where `data` is stored: an
/// unencrypted repository stores incompressible data as it is.
fn damage_stored_copy(repo: &Path, data: &[u8]) {
    let mut found = Vec::new();
    for pack in pack_files(repo).into_values() {
        let bytes = fs::read(&pack).unwrap();
        found.extend(bytes.windows(data.len()).position(|w| w == data).map(|at| (pack, bytes, at)));
    }
    assert_eq!(found.len(), 1, "the data should be stored exactly once");
    let (pack, mut bytes, at) = found.pop().unwrap();
    bytes[at + data.len() / 2] ^= 0x55;
    fs::set_permissions(&pack, fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(&pack, bytes).unwrap();
}

#[test]
fn a_damaged_chunk_fails_naming_the_file_and_no_archive_looks_whole() {
    let r = TempRepo::init();
    // a.bin comes first, so a cut-off archive holds something. z.bin is
    // small: were a tar trailer written after its short entry, the trailer's
    // zeros would fill it in and the archive would read as whole.
    write_random(&r.src.join("a.bin"), &mut Rng::new(51), 2 << 20);
    let damaged = r.src.join("z.bin");
    let contents = Rng::new(52).bytes(300);
    fs::write(&damaged, &contents).unwrap();
    r.backup(&[]);
    damage_stored_copy(&r.repo, &contents);

    // Each case meets the damage while reading: a fresh index has no mark
    // of it yet (the first read that proves it sets one).
    let forget_marks = || fs::remove_dir_all(r.home.join("cache")).unwrap();
    for format in ["tar", "zip"] {
        forget_marks();
        let archive = r.root.join(format!("out.{format}"));
        let run = r.snap(["dump", "latest", "--format", format, "--output", s(&archive)]);
        assert_eq!(run.code, Some(1), "{run:?}");
        assert!(run.assert_one_line_error().contains(s(&damaged)), "{}", run.stderr);
        assert!(!archive.exists(), "a failed {format} dump left {}", archive.display());
    }

    // On standard output the archive stops short: no trailer makes it look whole.
    forget_marks();
    let out = dump_raw(&r, &["latest", "--format", "tar"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.lines().count() == 1 && stderr.contains(s(&damaged)), "{stderr}");
    let partial = r.root.join("partial.tar");
    fs::write(&partial, &out.stdout).unwrap();
    assert!(!tar_lists(&partial), "tar reads the cut-off archive ({} bytes) as complete", out.stdout.len());
    // A zip for a pipe is built aside: none of it is written.
    forget_marks();
    let out = dump_raw(&r, &["latest", "--format", "zip"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "{} bytes of a failed zip written", out.stdout.len());

    // Damage known before the file's turn (marked by that read): the file
    // is left out before its header and named, the rest is a whole
    // archive, exit 3 (before, every later dump failed the same way).
    for format in ["tar", "zip"] {
        let archive = r.root.join(format!("known.{format}"));
        let run = r.snap(["dump", "latest", "--format", format, "--output", s(&archive)]);
        assert_eq!(run.code, Some(3), "{}", run.describe());
        assert!(run.stderr.contains(s(&damaged)) && run.stderr.contains("left out"), "{}", run.describe());
        if format == "tar" {
            let into = r.root.join("known");
            untar(&archive, &into);
            let back = into.join(r.src.strip_prefix("/").unwrap());
            assert_eq!(fs::read(back.join("a.bin")).unwrap(), fs::read(r.src.join("a.bin")).unwrap());
            assert!(!back.join("z.bin").exists());
        }
    }
}

#[test]
fn a_terminal_or_json_on_standard_output_is_refused() {
    let r = TempRepo::init();
    r.backup(&[]);
    // A pseudo-terminal as stdout and stderr; prints the exit code, then what appeared.
    let script = r#"
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
seen = b""
while True:
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    seen += chunk
print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
sys.stdout.write(seen.decode(errors="replace"))
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_snap"))
        .args(["dump", "latest", "--format", "zip"])
        .env("SNAP_REPO", &r.repo)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0], "1", "{text}");
    assert!(
        lines[1].starts_with("snap: will not write a zip archive to a terminal")
            && lines[1].contains("--output"),
        "{text}"
    );

    let run = r.snap(["--json", "dump", "latest", "--format", "tar"]);
    assert!(run.assert_one_line_error().contains("--json needs --output"), "{}", run.stderr);
    assert!(run.stdout.is_empty());
}
