//! What an encrypted repository shows an observer of its storage (issue 16
//! item 4): a new one is format 3, whose packs are padded, so a small file
//! backed up alone no longer gives its size away; and a format 2
//! repository keeps being read and written as it was.

use crate::common;

use std::fs;
use std::path::Path;

use common::*;

const PASSWORD: &str = "correct horse battery staple";

/// The lengths of the pack files of a local repository, sorted.
fn pack_lengths(repo: &Path) -> Vec<u64> {
    let mut out = Vec::new();
    for dir in fs::read_dir(repo.join("data")).unwrap() {
        for pack in fs::read_dir(dir.unwrap().path()).unwrap() {
            out.push(pack.unwrap().metadata().unwrap().len());
        }
    }
    out.sort_unstable();
    out
}

/// An encrypted repository holding one snapshot of one incompressible file
/// of `len` bytes, and its pack lengths.
fn one_file_backed_up(len: usize) -> (TempRepo, Vec<u64>) {
    let r = TempRepo::init_encrypted(PASSWORD);
    write_random(&r.src.join("f"), &mut Rng::new(len as u64), len);
    r.backup(&[]);
    let lengths = pack_lengths(&r.repo);
    (r, lengths)
}

#[test]
fn a_small_file_alone_no_longer_shows_its_size() {
    let (a, small) = one_file_backed_up(100_000);
    let (_, larger) = one_file_backed_up(150_000);
    assert_eq!(small, larger, "the packs of a 100000- and a 150000-byte file differ in length");
    let config: serde_json::Value =
        serde_json::from_slice(&fs::read(a.repo.join("config")).unwrap()).unwrap();
    assert_eq!(config["version"], 3, "a new encrypted repository is format 3");
    // Format 2 stored the file's 100000 bytes plus 40 of envelope in the
    // blob area of its pack: no pack length may come within a page of it.
    assert!(small.iter().all(|len| *len >= 256 << 10), "{small:?}");
    a.snap(["verify", "--read-data"]).assert_ok();
    a.snap(["restore", "latest", "--target", s(&a.target)]).assert_ok();
    assert_eq!(
        fs::read(a.restored(&a.target, &a.src).join("f")).unwrap(),
        fs::read(a.src.join("f")).unwrap()
    );
}

/// A snapshot file's length no longer gives the length of the paths it
/// names (nor of host, user, tags or message): both are padded to 1 KiB,
/// and the pad shows nowhere.
#[test]
fn snapshot_files_do_not_show_path_lengths() {
    let r = TempRepo::init_encrypted(PASSWORD);
    let long = r.src.join("a-directory-name-much-longer-than-the-other-one/and-deeper-still");
    for dir in [r.src.join("a"), long] {
        fs::create_dir_all(&dir).unwrap();
        write_random(&dir.join("f"), &mut Rng::new(7), 100);
        r.json(["backup", s(&dir), "--tag", "t"]);
    }
    let lengths: Vec<u64> = fs::read_dir(r.repo.join("snapshots"))
        .unwrap()
        .map(|f| f.unwrap().metadata().unwrap().len())
        .collect();
    assert_eq!(lengths, [1024, 1024], "snapshot files of paths 60 bytes apart");
    for snapshot in r.snapshots() {
        assert_eq!(snapshot["extra"], serde_json::json!({}), "{snapshot:#}");
    }
}

/// Flips a byte well inside the padding envelope of every pack (the blobs
/// of these packs take a few KiB), and with `rename` renames each pack to
/// the hash of its new bytes, as an attacker with write access would.
/// Returns the names the packs have now, sorted.
fn damage_padding(r: &TempRepo, rename: bool) -> Vec<String> {
    let mut names = Vec::new();
    for (name, path) in pack_files(&r.repo) {
        flip_byte(&path, fs::metadata(&path).unwrap().len() / 2);
        names.push(if rename { rename_to_hash(r, &path) } else { name });
    }
    names.sort();
    names
}

/// Moves the pack at `path` to the name of the hash of its bytes, as an
/// attacker with write access would after changing it; returns that name.
fn rename_to_hash(r: &TempRepo, path: &Path) -> String {
    let bytes = fs::read(path).unwrap();
    fs::remove_file(path).unwrap();
    let name = blake3::hash(&bytes).to_hex().to_string();
    let dir = r.repo.join("data").join(&name[..2]);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(&name), &bytes).unwrap();
    name
}

/// Where the padding envelope of each data pack lies (between its last
/// blob and its trailer), by pack name, read through the library.
fn data_pack_paddings(r: &TempRepo) -> Vec<(String, std::ops::Range<usize>)> {
    use snap::backend::LockMode;
    use snap::backend::local::LocalBackend;
    use snap::format::pack::{FOOTER_LEN, data_end};
    let unlock = || Ok(snap::crypto::keyfile::Password::new(PASSWORD.to_owned()));
    let backend = Box::new(LocalBackend::new(&r.repo));
    let repo = snap::Repository::open_with(backend, LockMode::Shared, &unlock).unwrap();
    let mut out = Vec::new();
    for (name, path) in pack_files(&r.repo) {
        let id = snap::id::PackId::from_hex(&name).unwrap();
        let entries = repo.pack_entries(&id).unwrap();
        if entries.iter().all(|e| matches!(e.blob, snap::id::BlobId::Chunk(_))) {
            let bytes = fs::read(&path).unwrap();
            let footer = bytes.len() - FOOTER_LEN;
            let trailer_len = u32::from_le_bytes(bytes[footer..footer + 4].try_into().unwrap()) as usize;
            out.push((name, data_end(&entries)..footer - trailer_len));
        }
    }
    out
}

/// The padding envelope's associated data names no pack (DESIGN 19.4, a
/// known property of format 3): one moved into another pack whose padding
/// has the same length opens there. It carries no data: verify names both
/// packs as not matching their names, none as damaged padding, no file is
/// affected and `repair packs` leaves them; renamed to their new hashes,
/// they verify clean.
#[test]
fn a_padding_envelope_swapped_between_packs_carries_nothing() {
    let r = TempRepo::init_encrypted(PASSWORD);
    // Two backups of one 1000-byte file each: two data packs of the same
    // layout, so their paddings have the same length.
    for (seed, name) in [(1, "a"), (2, "b")] {
        write_random(&r.src.join(name), &mut Rng::new(seed), 1000);
        r.backup(&[]);
    }
    let [(a, pad_a), (b, pad_b)] = <[_; 2]>::try_from(data_pack_paddings(&r)).unwrap();
    assert_eq!(pad_a, pad_b, "the two data packs are laid out alike");
    let packs = pack_files(&r.repo);
    let (bytes_a, bytes_b) = (fs::read(&packs[&a]).unwrap(), fs::read(&packs[&b]).unwrap());
    for (path, mine, theirs) in [(&packs[&a], &bytes_a, &bytes_b), (&packs[&b], &bytes_b, &bytes_a)] {
        let swapped = [&mine[..pad_a.start], &theirs[pad_a.clone()], &mine[pad_a.end..]].concat();
        make_writable(path);
        fs::write(path, swapped).unwrap();
    }

    let run = r.snap(["--json", "verify", "--read-data"]);
    assert_eq!(run.code, Some(4), "{}", run.describe());
    let report = &run.json()["report"];
    assert_eq!(report["damaged_padding"], serde_json::json!([]), "the padding opens: {report:#}");
    assert_eq!(report["affected"], serde_json::json!([]), "{report:#}");
    let mut named: Vec<String> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| format!("{} {}", p["object"].as_str().unwrap(), p["detail"].as_str().unwrap()))
        .collect();
    named.sort();
    let mismatch = |pack: &str| format!("pack {pack} contents do not match the pack's name");
    let mut expected = vec![mismatch(&a), mismatch(&b)];
    expected.sort();
    assert_eq!(named, expected, "{report:#}");
    assert_eq!(r.json(["repair", "packs"])["packs"], serde_json::json!([]));
    r.snap(["restore", "latest", "--target", s(&r.target)]).assert_ok();
    assert_trees_equal(&r.src, &r.restored(&r.target, &r.src));

    for pack in [&a, &b] {
        rename_to_hash(&r, &pack_files(&r.repo)[pack]);
    }
    r.snap(["verify", "--read-data"]).assert_ok();
}

/// The strings of a JSON array, sorted.
fn sorted_strings(list: &serde_json::Value) -> Vec<String> {
    let mut out: Vec<String> =
        list.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    out.sort();
    out
}

#[test]
fn a_changed_byte_in_a_padded_pack_is_found_even_renamed() {
    let (r, _) = one_file_backed_up(1000);
    damage_padding(&r, true);
    r.snap(["repair", "index"]).assert_ok();
    let run = r.snap(["verify", "--read-data"]);
    assert_ne!(run.code, Some(0), "verify missed altered padding: {}", run.describe());
    assert!(run.stdout.contains("padding") || run.stderr.contains("padding"), "{}", run.describe());
}

/// The index holds every blob's exact length, which the padded packs hide,
/// so it is kept in the user's cache and never in a local repository
/// (before, `<repo>/index.sqlite` gave a thief of the disk every chunk's
/// size); one an older snap left there is removed by the next command.
#[test]
fn a_local_repository_holds_no_index_of_exact_sizes() {
    let (r, _) = one_file_backed_up(100_000);
    let db = rusqlite::Connection::open(r.index_file()).unwrap();
    let exact: i64 =
        db.query_row("SELECT count(*) FROM blobs WHERE raw_len = 100000", [], |row| row.get(0)).unwrap();
    assert_eq!(exact, 1, "the index is expected to know the file's exact size");
    drop(db);
    let names: Vec<String> = sorted_names(&r.repo).into_iter().map(|n| n.into_string().unwrap()).collect();
    assert_eq!(names, ["config", "data", "keys", "lock", "snapshots", "tmp"]);

    for suffix in ["", "-wal"] {
        let cached = format!("{}{suffix}", r.index_file().display());
        if Path::new(&cached).exists() {
            fs::copy(&cached, r.repo.join(format!("index.sqlite{suffix}"))).unwrap();
        }
    }
    r.snap(["snapshots"]).assert_ok();
    assert!(!r.repo.join("index.sqlite").exists(), "an index left in the repository must go");
    assert!(!r.repo.join("index.sqlite-wal").exists());
}

/// A pack whose padding envelope is damaged still holds intact blobs:
/// verify names it as damaged padding, affecting no file, and `repair
/// packs` rewrites it from its blobs and drops it (before, only damaged
/// blobs were marked, and such a pack could never be repaired). Renamed to
/// the hash of its new bytes, it is found and repaired all the same.
#[test]
fn repair_packs_rewrites_a_pack_whose_padding_is_damaged() {
    for rename in [false, true] {
        let (r, _) = one_file_backed_up(1000);
        let damaged = damage_padding(&r, rename);
        if rename {
            r.snap(["repair", "index"]).assert_ok();
        }
        let run = r.snap(["--json", "verify", "--read-data"]);
        assert_eq!(run.code, Some(4), "rename {rename}: {}", run.describe());
        let report = &run.json()["report"];
        assert_eq!(sorted_strings(&report["damaged_padding"]), damaged, "rename {rename}: {report:#}");
        assert_eq!(report["affected"], serde_json::json!([]), "no file is lost: {report:#}");
        assert_eq!(report["unverified"], serde_json::json!([]), "{report:#}");

        let dry = r.json(["repair", "packs", "--dry-run"]);
        assert_eq!(sorted_strings(&dry["packs"]), damaged, "rename {rename}: {dry:#}");
        assert_eq!(pack_files(&r.repo).into_keys().collect::<Vec<_>>(), damaged, "a dry run changes nothing");
        let repaired = r.json(["repair", "packs"]);
        assert_eq!(sorted_strings(&repaired["packs"]), damaged, "rename {rename}: {repaired:#}");
        assert_eq!(repaired["blobs_lost"], serde_json::json!([]), "{repaired:#}");
        // The file's chunk and the trees above it, from a data and a tree pack.
        assert!(repaired["blobs_moved"].as_u64().unwrap() >= 2, "{repaired:#}");
        let now = pack_files(&r.repo);
        assert!(damaged.iter().all(|p| !now.contains_key(p)), "damaged packs left: {now:?}");

        r.snap(["verify", "--read-data"]).assert_ok();
        r.snap(["restore", "latest", "--target", s(&r.target)]).assert_ok();
        assert_trees_equal(&r.src, &r.restored(&r.target, &r.src));
    }
}
