//! Encrypted repositories: everything works as on a plain one, nothing
//! readable leaves the machine, passwords are managed with `snap key`, and
//! tampering by someone who can rewrite the repository (and recompute every
//! unkeyed checksum and name) is detected, named and never restored.

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;

const PASSWORD: &str = "correct horse battery staple";
/// Exit code of a wrong or missing password.
const EXIT_PASSWORD: i32 = 12;
/// Exit code of `verify` when it found damage.
const EXIT_DAMAGED: i32 = 4;
/// Exit code of a restore that left something out.
const EXIT_INCOMPLETE: i32 = 3;

const SECRET_NAME: &str = "quarterly-payroll-secret.xlsx";
const SECRET_TEXT: &[u8] = b"TOP SECRET PLAINTEXT MARKER 7f3a";

/// An encrypted repository with one snapshot of a tree holding a file with a
/// known name and contents (the marker, then incompressible bytes, so an
/// unencrypted store would keep the marker verbatim) and a small known file.
fn encrypted_with_snapshot() -> TempRepo {
    let r = TempRepo::init_encrypted(PASSWORD);
    let mut rng = Rng::new(81);
    let mut secret = SECRET_TEXT.to_vec();
    secret.extend(rng.bytes(3 << 20));
    fs::write(r.src.join(SECRET_NAME), &secret).unwrap();
    fs::write(r.src.join("known.txt"), b"a file everybody has\n").unwrap();
    write_random_tree(&r.src.join("tree"), 82, 20, 200_000);
    r.backup(&[]);
    r
}

/// Every file below `dir`, recursively.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_below(&path));
        } else if path.is_file() {
            out.push(path);
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Flips one bit at `offset` (from the end when negative) and renames the
/// object to the BLAKE3 of its new bytes, as an attacker with write access
/// would, so only authentication can notice.
fn tamper_and_rename(path: &Path, offset: i64) -> PathBuf {
    let mut bytes = fs::read(path).unwrap();
    let at = if offset < 0 { bytes.len() - offset.unsigned_abs() as usize } else { offset as usize };
    bytes[at] ^= 0x10;
    rename_to_hash(path, &bytes)
}

fn rename_to_hash(path: &Path, bytes: &[u8]) -> PathBuf {
    let name = blake3::hash(bytes).to_hex().to_string();
    let dir = path.parent().unwrap();
    // Packs live in a fan-out directory named by the first two hex digits.
    let dir = if dir.parent().unwrap().file_name().unwrap() == "data" {
        let fan = dir.parent().unwrap().join(&name[..2]);
        fs::create_dir_all(&fan).unwrap();
        fan
    } else {
        dir.to_owned()
    };
    let new = dir.join(&name);
    fs::remove_file(path).unwrap();
    fs::write(&new, bytes).unwrap();
    new
}

fn packs(r: &TempRepo) -> Vec<PathBuf> {
    let mut all = files_below(&r.repo.join("data"));
    all.sort_by_key(|p| fs::metadata(p).unwrap().len());
    all
}

fn only_file(dir: &Path) -> PathBuf {
    let files = files_below(dir);
    assert_eq!(files.len(), 1, "{files:?}");
    files.into_iter().next().unwrap()
}

#[test]
fn round_trip_and_no_plaintext_names_contents_or_plain_ids_anywhere() {
    let r = encrypted_with_snapshot();
    r.snap(["restore", "latest", "--target", s(&r.target)]).assert_ok();
    assert_trees_equal(&r.src, &r.restored(&r.target, &r.src));

    let plain_id = blake3::hash(b"a file everybody has\n");
    let needles: [(&str, &[u8]); 4] = [
        ("file name", SECRET_NAME.as_bytes()),
        ("file contents", SECRET_TEXT),
        ("source path", s(&r.src).as_bytes()),
        ("unkeyed chunk id of a known file", plain_id.as_bytes()),
    ];
    // The repository and the local cache (index database and its journal).
    let mut scanned = files_below(&r.repo);
    scanned.extend(files_below(&r.home));
    assert!(scanned.iter().any(|p| p.ends_with("index.sqlite")), "{scanned:?}");
    for path in &scanned {
        let bytes = fs::read(path).unwrap();
        for (what, needle) in needles {
            assert!(!contains(&bytes, needle), "{what} found in {}", path.display());
        }
        let hex = plain_id.to_hex();
        assert!(!contains(&bytes, hex.as_bytes()), "hex unkeyed chunk id found in {}", path.display());
    }
}

#[test]
fn every_command_works_on_an_encrypted_repository() {
    let r = encrypted_with_snapshot();
    fs::write(r.src.join("new.txt"), b"added later\n").unwrap();
    let second = r.backup(&[]);
    assert_eq!(summary(&second, "files_read"), 1, "{second}");
    let run = r.snap(["snapshots"]);
    run.assert_clean();
    assert!(run.stdout.contains("repository encrypted (xchacha20-poly1305)"), "{}", run.stdout);
    let status = r.json(["status"]);
    assert_eq!(status["encryption"], "xchacha20-poly1305");
    assert_eq!(status["format_version"], 3, "new encrypted repositories are format 3");
    let diff = r.snap(["diff", "latest~1", "latest"]);
    diff.assert_clean();
    assert!(diff.stdout.contains("new.txt"), "{}", diff.stdout);
    let ls = r.snap(["ls", "latest"]);
    assert!(ls.assert_clean().stdout.contains(SECRET_NAME), "{}", ls.stdout);
    r.snap(["find", "new.txt"]).assert_clean();
    r.snap(["stats"]).assert_clean();
    r.snap(["forget", "latest~1"]).assert_clean();
    r.snap(["prune"]).assert_clean();
    r.snap(["repair", "index"]).assert_clean();
    r.snap(["verify", "--read-data"]).assert_clean();
    r.snap(["restore", "latest", "--target", s(&r.target), "--verify"]).assert_clean();
    assert_trees_equal(&r.src, &r.restored(&r.target, &r.src));
}

#[test]
fn identical_data_in_two_encrypted_repositories_shares_no_ids() {
    let a = encrypted_with_snapshot();
    let b = TempRepo::init_encrypted(PASSWORD);
    fs::remove_dir(&b.src).unwrap();
    let status = std::process::Command::new("cp").args(["-a", s(&a.src), s(&b.src)]).status().unwrap();
    assert!(status.success());
    b.backup(&[]);
    let ids = |r: &TempRepo| -> std::collections::BTreeSet<String> {
        let run = r.snap(["--json", "ls", "latest"]);
        run.assert_ok();
        let v = run.json();
        v["entries"]
            .as_array()
            .or_else(|| v.as_array())
            .expect("ls --json lists entries")
            .iter()
            .filter_map(|e| e["chunks"].as_array())
            .flatten()
            .filter_map(|c| c.as_str().map(str::to_owned))
            .collect()
    };
    let (ia, ib) = (ids(&a), ids(&b));
    if !ia.is_empty() {
        assert!(ia.is_disjoint(&ib), "two repositories with different keys named a chunk alike");
    }
    let names = |r: &TempRepo| -> std::collections::BTreeSet<String> {
        packs(r).iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect()
    };
    assert!(names(&a).is_disjoint(&names(&b)));
}

#[test]
fn wrong_or_missing_password_is_one_line_and_its_own_exit_code() {
    let mut r = encrypted_with_snapshot();
    r.password = Some("not the password".into());
    for args in [vec!["snapshots"], vec!["backup", s(&r.src)], vec!["repair", "index"], vec!["status"]] {
        let run = r.snap(&args);
        let line = run.assert_one_line_error();
        assert!(line.contains("wrong password"), "{args:?}: {line}");
        assert_eq!(run.code, Some(EXIT_PASSWORD), "{args:?}");
    }
    assert!(r.index_file().exists(), "a wrong password must not delete the index");
    r.password = None;
    let run = r.snap(["snapshots"]);
    assert!(run.assert_one_line_error().contains("SNAP_PASSWORD"), "{}", run.stderr);
    assert_eq!(run.code, Some(EXIT_PASSWORD));
}

#[test]
fn password_file_and_password_command_are_read() {
    let mut r = encrypted_with_snapshot();
    r.password = None;
    let file = r.root.join("pw");
    fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    let mut cmd = r.command();
    cmd.env("SNAP_PASSWORD_FILE", &file);
    run_command(cmd, ["snapshots"]).assert_clean();
    let mut cmd = r.command();
    cmd.env("SNAP_PASSWORD_COMMAND", format!("cat {}", s(&file)));
    run_command(cmd, ["snapshots"]).assert_clean();
    let mut cmd = r.command();
    cmd.env("SNAP_PASSWORD_COMMAND", "exit 3");
    let run = run_command(cmd, ["snapshots"]);
    assert!(run.assert_one_line_error().contains("SNAP_PASSWORD_COMMAND"), "{}", run.stderr);
    let mut cmd = r.command();
    cmd.env("SNAP_PASSWORD", "");
    run_command(cmd, ["snapshots"]).assert_one_line_error();
}

/// Programs snap starts (git for a backup's facts, a password command)
/// never see a password in their environment: SNAP_PASSWORD went to every
/// git child of a backup, and to the destination's password command.
#[test]
fn programs_snap_starts_see_no_password() {
    let r = encrypted_with_snapshot();
    let bin = r.root.join("bin");
    fs::create_dir(&bin).unwrap();
    let seen = r.root.join("git-env");
    let git = bin.join("git");
    fs::write(&git, format!("#!/bin/sh\nenv >> {}\nexit 1\n", s(&seen))).unwrap();
    fs::set_permissions(&git, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", s(&bin), std::env::var("PATH").unwrap_or_default());
    let mut cmd = r.command();
    cmd.env("PATH", &path).env("SNAP_TO_PASSWORD", "the-destination-password");
    run_command(cmd, ["backup", s(&r.src)]).assert_ok();
    let env = fs::read_to_string(&seen).expect("backup ran git");
    assert!(env.contains("SNAP_REPO="), "the rest of the environment is passed on: {env}");
    assert!(!env.contains(PASSWORD) && !env.contains("the-destination-password"), "{env}");

    let dst = TempRepo::init_encrypted("the-destination-password");
    let printed = r.root.join("command-env");
    let mut cmd = r.command();
    let command = format!("env > {}; echo the-destination-password", s(&printed));
    cmd.env("SNAP_TO_PASSWORD_COMMAND", command);
    run_command(cmd, ["copy", "--to", s(&dst.repo)]).assert_ok();
    let env = fs::read_to_string(&printed).unwrap();
    assert!(env.contains("SNAP_TO_PASSWORD_COMMAND="), "{env}");
    assert!(!env.contains(PASSWORD), "the source's password reached the command: {env}");
}

#[test]
fn keys_are_added_listed_removed_and_changed() {
    let mut r = encrypted_with_snapshot();
    let second = r.root.join("second");
    fs::write(&second, "second password\n").unwrap();
    r.snap(["key", "add", "--new-password-file", s(&second)]).assert_clean();
    let keys = r.json(["key", "list"]);
    let keys = keys.as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys.iter().filter(|k| k["current"] == true).count(), 1);
    let first_id = keys.iter().find(|k| k["current"] == true).unwrap()["id"].as_str().unwrap().to_owned();

    // The key in use cannot be removed.
    let run = r.snap(["key", "remove", &first_id[..8]]);
    assert!(run.assert_one_line_error().contains("in use"), "{}", run.stderr);

    // Opened with the second password, the first key can go.
    r.password = Some("second password".into());
    r.snap(["key", "remove", &first_id[..8]]).assert_clean();
    r.snap(["snapshots"]).assert_clean();
    r.password = Some(PASSWORD.into());
    assert_eq!(r.snap(["snapshots"]).code, Some(EXIT_PASSWORD), "a removed key still opens");

    // passwd: the new password works, the old one no longer does.
    r.password = Some("second password".into());
    let third = r.root.join("third");
    fs::write(&third, "third password\n").unwrap();
    r.snap(["key", "passwd", "--new-password-file", s(&third)]).assert_clean();
    assert_eq!(r.snap(["snapshots"]).code, Some(EXIT_PASSWORD));
    r.password = Some("third password".into());
    r.snap(["restore", "latest", "--target", s(&r.target)]).assert_clean();
    assert_trees_equal(&r.src, &r.restored(&r.target, &r.src));
    assert_eq!(r.json(["key", "list"]).as_array().unwrap().len(), 1);
}

#[test]
fn a_key_file_from_another_repository_does_not_open_this_one() {
    let a = encrypted_with_snapshot();
    let b = TempRepo::init_encrypted("other password");
    let foreign = only_file(&b.repo.join("keys"));
    fs::copy(&foreign, a.repo.join("keys").join(foreign.file_name().unwrap())).unwrap();
    let mut a = a;
    a.password = Some("other password".into());
    assert_eq!(a.snap(["snapshots"]).code, Some(EXIT_PASSWORD));
}

#[test]
fn a_tampered_data_blob_is_named_and_never_restored() {
    let r = encrypted_with_snapshot();
    // The largest pack holds the 3 MiB secret file; its blob area starts at 8.
    let pack = packs(&r).pop().unwrap();
    tamper_and_rename(&pack, 1000);
    let run = r.snap(["verify", "--read-data"]);
    assert_eq!(run.code, Some(EXIT_DAMAGED), "{}", run.stderr);
    assert!(run.stdout.contains("authentication failed"), "{}", run.stdout);
    // verify names the one file whose chunk the flipped byte fell in.
    let affected: Vec<&str> = run
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("affected: snapshot "))
        .map(|l| l.split_once(' ').unwrap().1)
        .collect();
    assert_eq!(affected.len(), 1, "{}", run.stdout);
    let damaged = Path::new(affected[0]);
    let run = r.snap(["restore", "latest", "--target", s(&r.target)]);
    assert_eq!(run.code, Some(EXIT_INCOMPLETE), "{}", run.stderr);
    assert!(run.stderr.contains(s(damaged)), "{}", run.stderr);
    assert!(!r.restored(&r.target, damaged).exists(), "a damaged file was written");
    let restored_files = files_below(&r.target).len();
    assert_eq!(restored_files, files_below(&r.src).len() - 1, "everything else must be restored");
}

#[test]
fn a_tampered_pack_trailer_is_refused_even_with_its_checksum_recomputed() {
    let r = encrypted_with_snapshot();
    let pack = packs(&r).pop().unwrap();
    let mut bytes = fs::read(&pack).unwrap();
    let n = bytes.len();
    let trailer_len = u32::from_le_bytes(bytes[n - 40..n - 36].try_into().unwrap()) as usize;
    let trailer_at = n - 40 - trailer_len;
    bytes[trailer_at + trailer_len / 2] ^= 1;
    let hash = blake3::hash(&bytes[trailer_at..n - 40]);
    bytes[n - 36..n - 4].copy_from_slice(hash.as_bytes());
    rename_to_hash(&pack, &bytes);
    let run = r.snap(["repair", "index"]);
    assert!(run.stderr.contains("authentication failed"), "{}", run.stderr);
    assert_ne!(run.code, Some(0));
    let run = r.snap(["verify"]);
    assert_eq!(run.code, Some(EXIT_DAMAGED), "{}", run.stderr);
}

#[test]
fn a_tampered_snapshot_is_refused_even_under_its_new_name() {
    let r = encrypted_with_snapshot();
    let snapshot = only_file(&r.repo.join("snapshots"));
    tamper_and_rename(&snapshot, -20);
    let run = r.snap(["snapshots"]);
    assert_ne!(run.code, Some(0));
    assert!(run.stderr.contains("authentication failed"), "{}", run.stderr);
    let run = r.snap(["verify"]);
    assert_eq!(run.code, Some(EXIT_DAMAGED), "{}", run.stderr);
}

#[test]
fn a_tampered_tree_is_found_by_verify() {
    let r = encrypted_with_snapshot();
    // The smallest pack holds the tree nodes.
    let pack = packs(&r).remove(0);
    tamper_and_rename(&pack, 20);
    let run = r.snap(["verify"]);
    assert_eq!(run.code, Some(EXIT_DAMAGED), "{}\n{}", run.stdout, run.stderr);
    let run = r.snap(["restore", "latest", "--target", s(&r.target)]);
    assert_ne!(run.code, Some(0), "{}", run.stderr);
}

#[test]
fn a_plaintext_snapshot_planted_in_an_encrypted_repository_is_refused() {
    let enc = encrypted_with_snapshot();
    let plain = TempRepo::init();
    fs::write(plain.src.join("planted.txt"), b"from the attacker\n").unwrap();
    plain.backup(&[]);
    let planted = only_file(&plain.repo.join("snapshots"));
    fs::copy(&planted, enc.repo.join("snapshots").join(planted.file_name().unwrap())).unwrap();
    let run = enc.snap(["--json", "snapshots"]);
    assert_ne!(run.code, Some(0));
    assert_eq!(run.json().as_array().unwrap().len(), 1, "only the real snapshot is listed");
    assert!(run.stderr.contains("encryption"), "{}", run.stderr);
}

#[test]
fn an_altered_or_replaced_config_is_refused() {
    let r = encrypted_with_snapshot();
    let path = r.repo.join("config");
    let original = fs::read(&path).unwrap();
    let mut config: serde_json::Value = serde_json::from_slice(&original).unwrap();
    config["pack_size"] = (1 << 20).into();
    fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    let line = r.snap(["snapshots"]).assert_one_line_error().to_owned();
    assert!(line.contains("config") && line.contains("altered"), "{line}");

    // Replaced by an unencrypted config, so the next backup would write
    // plaintext: refused because key files exist.
    config["version"] = 1.into();
    config["encryption"] = "none".into();
    fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    let line = r.snap(["backup", s(&r.src)]).assert_one_line_error().to_owned();
    assert!(line.contains("key files"), "{line}");

    // The key files gone too: this machine remembers the repository was
    // encrypted (a machine that never opened it cannot: DESIGN.md 19.4).
    let keys = r.repo.join("keys");
    let hidden = r.root.join("keys-elsewhere");
    fs::rename(&keys, &hidden).unwrap();
    fs::create_dir(&keys).unwrap();
    let line = r.snap(["backup", s(&r.src)]).assert_one_line_error().to_owned();
    assert!(line.contains("was encrypted when this machine last opened it"), "{line}");
    fs::remove_dir(&keys).unwrap();
    fs::rename(&hidden, &keys).unwrap();
    fs::write(&path, original).unwrap();
    r.snap(["snapshots"]).assert_clean();
}

/// The config of a fresh unencrypted repository (its own new id).
fn unencrypted_config(r: &TempRepo) -> Vec<u8> {
    let other = r.root.join("plain-elsewhere");
    let mut cmd = r.command();
    cmd.env_remove("SNAP_PASSWORD");
    run_command(cmd, ["--repo", s(&other), "init"]).assert_ok();
    fs::read(other.join("config")).unwrap()
}

/// Key files deleted and an unencrypted config with a new id written in
/// place: the next backup stored plaintext without a word. Now a host that
/// never opened the repository sees the encrypted snapshot headers, and
/// one that did remembers the place too (not only the old id).
#[test]
fn a_downgrade_to_plaintext_under_a_new_id_is_refused() {
    let r = encrypted_with_snapshot();
    let plain = unencrypted_config(&r);
    for key in fs::read_dir(r.repo.join("keys")).unwrap() {
        fs::remove_file(key.unwrap().path()).unwrap();
    }
    fs::write(r.repo.join("config"), &plain).unwrap();
    let snapshots_before = fs::read_dir(r.repo.join("snapshots")).unwrap().count();
    let stranger = r.root.join("a-host-that-never-opened-it");
    let run = run_command(r.command_in(&stranger), ["backup", s(&r.src)]);
    let line = run.assert_one_line_error().to_owned();
    assert!(line.contains("snapshot") && line.contains("is encrypted"), "{line}");
    let run = r.snap(["backup", s(&r.src)]);
    assert!(run.assert_one_line_error().contains("unencrypted"), "{}", run.describe());
    assert_eq!(fs::read_dir(r.repo.join("snapshots")).unwrap().count(), snapshots_before, "nothing written");

    // With no object to read, the note of the place alone refuses it.
    let fresh = TempRepo::init_encrypted(PASSWORD);
    fresh.snap(["snapshots"]).assert_ok();
    for key in fs::read_dir(fresh.repo.join("keys")).unwrap() {
        fs::remove_file(key.unwrap().path()).unwrap();
    }
    fs::write(fresh.repo.join("config"), &plain).unwrap();
    let line = fresh.snap(["backup", s(&fresh.src)]).assert_one_line_error().to_owned();
    assert!(line.contains("was encrypted when this machine last opened it"), "{line}");
}

/// `init`, and the implicit init of the default repository, make a
/// repository only where nothing is: an encrypted default repository whose
/// config was deleted was re-created unencrypted beside its packs.
#[test]
fn init_refuses_a_directory_that_is_not_empty() {
    let r = TempRepo::new();
    let default_repo = r.home.join("data").join("snap");
    let mut cmd = r.command();
    cmd.env_remove("SNAP_REPO").env("SNAP_PASSWORD", PASSWORD);
    run_command(cmd, ["init", "--encryption", "xchacha20-poly1305"]).assert_ok();
    assert!(default_repo.join("config").is_file());
    fs::write(r.src.join("f"), "data").unwrap();
    let mut cmd = r.command();
    cmd.env_remove("SNAP_REPO").env("SNAP_PASSWORD", PASSWORD);
    run_command(cmd, ["backup", s(&r.src)]).assert_ok();
    fs::remove_file(default_repo.join("config")).unwrap();
    let mut cmd = r.command();
    cmd.env_remove("SNAP_REPO");
    let run = run_command(cmd, ["backup", s(&r.src)]);
    assert!(run.assert_one_line_error().contains("not empty"), "{}", run.describe());
    assert!(!default_repo.join("config").exists(), "no repository made beside the old one");

    let full = r.root.join("full");
    fs::create_dir(&full).unwrap();
    fs::write(full.join("notes.txt"), "mine").unwrap();
    let line = r.snap(["--repo", s(&full), "init"]).assert_one_line_error().to_owned();
    assert!(line.contains("not empty"), "{line}");
    assert_eq!(fs::read_dir(&full).unwrap().count(), 1, "nothing added");
    let empty = r.root.join("empty");
    fs::create_dir(&empty).unwrap();
    r.snap(["--repo", s(&empty), "init"]).assert_ok();
}

#[test]
fn init_refuses_an_existing_repository_before_asking_for_a_password() {
    let mut r = encrypted_with_snapshot();
    r.password = None;
    let line = r.snap(["init", "--encryption", "xchacha20-poly1305"]).assert_one_line_error().to_owned();
    assert!(line.contains("already exists"), "{line}");
}

#[test]
fn a_tampered_key_file_does_not_open_but_another_key_still_does() {
    let mut r = encrypted_with_snapshot();
    let first = only_file(&r.repo.join("keys"));
    let second = r.root.join("second");
    fs::write(&second, "second password\n").unwrap();
    r.snap(["key", "add", "--new-password-file", s(&second)]).assert_clean();
    // Flip a bit inside the wrapped master key's hex, keeping it valid hex.
    let text = fs::read_to_string(&first).unwrap();
    let at = text.find("\"master_key\": \"").unwrap() + 20;
    let mut bytes = text.into_bytes();
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    rename_to_hash(&first, &bytes);
    assert_eq!(r.snap(["snapshots"]).code, Some(EXIT_PASSWORD), "the altered key must not open");
    r.password = Some("second password".into());
    r.snap(["snapshots"]).assert_clean();
}

#[test]
fn authentic_pieces_put_together_wrongly_are_refused() {
    // An attacker cannot seal anything, but can splice authentic objects:
    // here the data pack gets the tree pack's (authentic) trailer.
    let r = encrypted_with_snapshot();
    let all = packs(&r);
    let (small, large) = (&all[0], &all[all.len() - 1]);
    let tree_pack = fs::read(small).unwrap();
    let data_pack = fs::read(large).unwrap();
    let tail = |b: &[u8]| {
        let n = b.len();
        let len = u32::from_le_bytes(b[n - 40..n - 36].try_into().unwrap()) as usize;
        n - 40 - len
    };
    let mut spliced = data_pack[..tail(&data_pack)].to_vec();
    spliced.extend_from_slice(&tree_pack[tail(&tree_pack)..]);
    fs::remove_file(small).unwrap();
    rename_to_hash(large, &spliced);
    let run = r.snap(["verify", "--read-data"]);
    assert_eq!(run.code, Some(EXIT_DAMAGED), "{}\n{}", run.stdout, run.stderr);
    let run = r.snap(["restore", "latest", "--target", s(&r.target)]);
    assert_ne!(run.code, Some(0));
    for file in files_below(&r.target) {
        let restored = fs::read(&file).unwrap();
        let original = r.src.join(file.strip_prefix(r.restored(&r.target, &r.src)).unwrap());
        assert_eq!(restored, fs::read(original).unwrap(), "wrong bytes restored to {}", file.display());
    }
}
