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

#[test]
fn a_changed_byte_in_a_padded_pack_is_found_even_renamed() {
    let (r, _) = one_file_backed_up(1000);
    for pack in
        fs::read_dir(r.repo.join("data")).unwrap().flat_map(|d| fs::read_dir(d.unwrap().path()).unwrap())
    {
        let path = pack.unwrap().path();
        let mut bytes = fs::read(&path).unwrap();
        // Well inside the padding: the blobs of this pack take a few KiB.
        let at = bytes.len() / 2;
        bytes[at] ^= 1;
        fs::remove_file(&path).unwrap();
        // Renamed to its new hash, as an attacker with write access would.
        let name = blake3::hash(&bytes).to_hex().to_string();
        let dir = r.repo.join("data").join(&name[..2]);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(&name), &bytes).unwrap();
    }
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
