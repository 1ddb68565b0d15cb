//! `snap verify`: a clean repository passes; a flipped byte, a truncated or
//! a deleted pack and a damaged snapshot file are found and the affected
//! files named, exactly; `--read-data-subset` parts cover every pack once;
//! and verify never changes the repository's files.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

/// Exit code of `verify` when it found damage.
const EXIT_DAMAGED: i32 = 4;

// ---------------------------------------------------------------------------
// Looking inside the repository (DESIGN.md sections 2 and 5)
// ---------------------------------------------------------------------------

/// One entry of a pack's trailer.
#[derive(Debug)]
struct PackEntry {
    /// 0 = chunk, 1 = tree.
    kind: u8,
    id: String,
    offset: u64,
    stored_len: u64,
}

fn varint(bytes: &[u8], pos: &mut usize) -> u64 {
    let (mut value, mut shift) = (0u64, 0);
    loop {
        let b = bytes[*pos];
        *pos += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return value;
        }
        shift += 7;
    }
}

/// Decodes a pack's trailer: `| header | blobs | trailer | len u32 | hash 32 | SNPF |`.
fn pack_entries(path: &Path) -> Vec<PackEntry> {
    let bytes = fs::read(path).unwrap();
    let end = bytes.len();
    assert_eq!(&bytes[end - 4..], b"SNPF", "footer magic of {}", path.display());
    let len = u32::from_le_bytes(bytes[end - 40..end - 36].try_into().unwrap()) as usize;
    let trailer = &bytes[end - 40 - len..end - 40];
    let mut pos = 0;
    let count = varint(trailer, &mut pos);
    let mut out = Vec::new();
    for _ in 0..count {
        let kind = trailer[pos];
        let id = hex::encode(&trailer[pos + 1..pos + 33]);
        pos += 33;
        let offset = varint(trailer, &mut pos);
        let stored_len = varint(trailer, &mut pos);
        let _raw_len = varint(trailer, &mut pos);
        pos += 1; // compression
        out.push(PackEntry { kind, id, offset, stored_len });
    }
    assert_eq!(pos, trailer.len(), "trailer of {} fully decoded", path.display());
    out
}

// ---------------------------------------------------------------------------
// Running verify
// ---------------------------------------------------------------------------

/// `snap --json verify ARGS`: exit code and report; asserts that the run
/// left every repository file as it was.
#[track_caller]
fn verify(r: &TempRepo, args: &[&str]) -> (i32, Value) {
    let before = repo_files(&r.repo);
    let mut all = vec!["--json", "verify"];
    all.extend_from_slice(args);
    let run = r.snap(&all);
    assert!(!run.stderr.contains("panicked"), "{run:?}");
    let code = run.code.expect("verify exited normally");
    assert!(code == 0 || code == EXIT_DAMAGED, "verify {args:?} failed to run: {run:?}");
    let json = run.json();
    assert_eq!(json["ok"], code == 0, "`ok` agrees with the exit code: {json:#}");
    assert_eq!(repo_files(&r.repo), before, "verify {args:?} changed the repository");
    (code, json)
}

fn affected(report: &Value) -> BTreeSet<(String, String)> {
    report["report"]["affected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["snapshot"].as_str().unwrap().to_owned(), a["path"].as_str().unwrap().to_owned()))
        .collect()
}

fn problems(report: &Value) -> Vec<String> {
    report["report"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| format!("{}: {}", p["object"].as_str().unwrap(), p["detail"].as_str().unwrap()))
        .collect()
}

fn num(report: &Value, field: &str) -> u64 {
    report["report"][field].as_u64().unwrap_or_else(|| panic!("report.{field} missing: {report:#}"))
}

// ---------------------------------------------------------------------------
// A repository with one data pack per file
// ---------------------------------------------------------------------------

/// Three snapshots, each backup adding one file and thus writing one data
/// pack of its own: a/one.bin, then b/two.bin, then c/three.bin together
/// with c/two-copy.bin (the same bytes as two.bin, so no new data).
struct Fixture {
    r: TempRepo,
    /// Snapshot ids, oldest first.
    snaps: Vec<String>,
    /// Absolute paths as the snapshots show them.
    one: String,
    two: String,
    two_copy: String,
    three: String,
    /// Data pack of each file, by file name (`one`, `two`, `three`).
    data_pack: BTreeMap<&'static str, String>,
    /// Chunk id of two.bin (one chunk: BLAKE3 of the contents).
    two_chunk: String,
}

impl Fixture {
    fn new() -> Self {
        let r = TempRepo::init();
        let mut rng = Rng::new(42);
        let mut snaps = Vec::new();
        let mut data_pack = BTreeMap::new();
        let two_bytes = rng.bytes(4000);
        let steps: [(&'static str, &str, Vec<u8>); 3] = [
            ("one", "a/one.bin", rng.bytes(3000)),
            ("two", "b/two.bin", two_bytes.clone()),
            ("three", "c/three.bin", rng.bytes(5000)),
        ];
        for (name, rel, bytes) in steps {
            let path = r.src.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, &bytes).unwrap();
            if name == "three" {
                fs::write(r.src.join("c/two-copy.bin"), &two_bytes).unwrap();
            }
            let before = pack_files(&r.repo);
            let report = r.backup(&[]);
            snaps.push(report["snapshot"].as_str().unwrap().to_owned());
            let new_data: Vec<String> = pack_files(&r.repo)
                .into_iter()
                .filter(|(id, path)| {
                    !before.contains_key(id) && pack_entries(path).iter().all(|e| e.kind == 0)
                })
                .map(|(id, _)| id)
                .collect();
            assert_eq!(new_data.len(), 1, "backup of {rel} should write exactly one data pack");
            let entries = pack_entries(&pack_files(&r.repo)[&new_data[0]]);
            assert_eq!(entries.len(), 1, "the data pack of {rel} holds its one chunk");
            assert_eq!(entries[0].id, blake3::hash(&bytes).to_hex().to_string(), "chunk id of {rel}");
            data_pack.insert(name, new_data[0].clone());
        }
        let p = |rel: &str| format!("{}/{rel}", s(&r.src));
        Fixture {
            snaps,
            one: p("a/one.bin"),
            two: p("b/two.bin"),
            two_copy: p("c/two-copy.bin"),
            three: p("c/three.bin"),
            data_pack,
            two_chunk: blake3::hash(&two_bytes).to_hex().to_string(),
            r,
        }
    }

    fn pack_path(&self, name: &str) -> PathBuf {
        pack_files(&self.r.repo)[&self.data_pack[name]].clone()
    }

    /// What damage to two.bin's data affects: two.bin in the second and
    /// third snapshot and its copy in the third, nothing else.
    fn two_affected(&self) -> BTreeSet<(String, String)> {
        BTreeSet::from([
            (self.snaps[1].clone(), self.two.clone()),
            (self.snaps[2].clone(), self.two.clone()),
            (self.snaps[2].clone(), self.two_copy.clone()),
        ])
    }

    /// Asserts that every problem concerns two.bin's pack or chunk, and that
    /// at least one names the pack.
    #[track_caller]
    fn assert_problems_name_two(&self, report: &Value) {
        let list = problems(report);
        let pack = &self.data_pack["two"];
        assert!(list.iter().any(|p| p.contains(pack.as_str())), "no problem names pack {pack}: {list:#?}");
        for p in &list {
            assert!(
                p.contains(pack.as_str()) || p.contains(&self.two_chunk),
                "problem {p:?} is about neither pack {pack} nor chunk {}",
                self.two_chunk
            );
        }
        for other in [&self.data_pack["one"], &self.data_pack["three"]] {
            assert!(
                !list.iter().any(|p| p.contains(other.as_str())),
                "undamaged pack {other} reported: {list:#?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn verify_passes_on_a_clean_repository_with_and_without_read_data() {
    let f = Fixture::new();
    let all_packs = pack_files(&f.r.repo);
    let total: u64 = all_packs.values().map(|p| fs::metadata(p).unwrap().len()).sum();

    let (code, json) = verify(&f.r, &[]);
    assert_eq!(code, 0, "{json:#}");
    assert!(problems(&json).is_empty() && affected(&json).is_empty(), "{json:#}");
    assert_eq!(num(&json, "snapshots"), 3);
    assert_eq!(num(&json, "chunks"), 3, "one.bin, two.bin (and its copy), three.bin");
    assert_eq!(num(&json, "packs"), all_packs.len() as u64);
    assert_eq!(num(&json, "packs_read"), 0, "structure only reads no pack whole");

    let (code, json) = verify(&f.r, &["--read-data"]);
    assert_eq!(code, 0, "{json:#}");
    assert!(problems(&json).is_empty() && affected(&json).is_empty(), "{json:#}");
    assert_eq!(num(&json, "packs_read"), all_packs.len() as u64);
    assert_eq!(num(&json, "bytes_read"), total);
    assert_eq!(json["report"]["unused_packs"], serde_json::json!([]));

    // The text form says so too, and exits 0.
    let run = f.r.snap(["verify", "--read-data"]);
    run.assert_clean();
    assert!(run.stdout.contains("no problems found"), "{}", run.stdout);
}

#[test]
fn verify_read_data_finds_a_flipped_byte_and_names_the_files_using_it() {
    let f = Fixture::new();
    let pack = f.pack_path("two");
    let entry = &pack_entries(&pack)[0];
    flip_byte(&pack, entry.offset + entry.stored_len / 2);

    let (code, json) = verify(&f.r, &["--read-data"]);
    assert_eq!(code, EXIT_DAMAGED, "{json:#}");
    f.assert_problems_name_two(&json);
    assert_eq!(affected(&json), f.two_affected(), "{json:#}");

    // The text form names the pack and the file, and suggests what to do.
    let run = f.r.snap(["verify", "--read-data"]);
    assert_eq!(run.code, Some(EXIT_DAMAGED), "{run:?}");
    assert!(run.stdout.contains(&f.data_pack["two"]), "{}", run.stdout);
    assert!(run.stdout.contains(&f.two) && run.stdout.contains(&f.two_copy), "{}", run.stdout);
    assert!(!run.stdout.contains(&f.one) && !run.stdout.contains(&f.three), "{}", run.stdout);
    assert!(!run.stderr.is_empty() && !run.stderr.contains("panicked"), "{run:?}");

    // Reading it again finds the same: verify changed nothing.
    let (code, again) = verify(&f.r, &["--read-data"]);
    assert_eq!(code, EXIT_DAMAGED);
    assert_eq!(affected(&again), f.two_affected());
}

#[test]
fn verify_read_data_finds_damage_outside_the_blobs() {
    let f = Fixture::new();
    let pack = f.pack_path("two");
    let len = fs::metadata(&pack).unwrap().len();

    // The header: the pack no longer matches its name, but its blob is whole
    // and every file can still be restored.
    flip_byte(&pack, 1);
    let (code, json) = verify(&f.r, &["--read-data"]);
    assert_eq!(code, EXIT_DAMAGED, "{json:#}");
    f.assert_problems_name_two(&json);
    assert!(problems(&json).iter().any(|p| p.contains("header")), "{json:#}");
    assert!(affected(&json).is_empty(), "{json:#}");
    flip_byte(&pack, 1);

    // The trailer (just before the 40-byte footer): the pack's table of
    // contents is damaged, but the index still says where its blob lies,
    // and the blob is whole: the pack is named, no file is (issue 25), with
    // or without --read-data, and every file restores.
    flip_byte(&pack, len - 41);
    for args in [&["--read-data"][..], &[]] {
        let (code, json) = verify(&f.r, args);
        assert_eq!(code, EXIT_DAMAGED, "{json:#}");
        f.assert_problems_name_two(&json);
        assert!(problems(&json).iter().any(|p| p.contains("checked where the index places it")), "{json:#}");
        assert!(affected(&json).is_empty(), "{json:#}");
    }
    f.r.snap(["restore", "latest", "--target", s(&f.r.target)]).assert_clean();
}

/// `repair index` with a pack whose trailer is damaged: the pack cannot be
/// indexed from itself, but the old index's rows say where its blobs lie,
/// and the blob is whole there, so it is indexed again and nothing is lost.
#[test]
fn repair_index_keeps_the_blobs_of_a_pack_whose_trailer_is_damaged() {
    let f = Fixture::new();
    let pack = f.pack_path("two");
    flip_byte(&pack, fs::metadata(&pack).unwrap().len() - 41);
    let run = f.r.snap(["--json", "repair", "index"]);
    run.assert_ok();
    assert!(run.stderr.contains("its trailer is damaged; its 1 blob(s)"), "{}", run.describe());
    assert!(run.stderr.contains("1 checked whole"), "{}", run.describe());
    let report = run.json();
    assert_eq!(report["packs_salvaged"].as_array().unwrap().len(), 1, "{report:#}");
    assert_eq!(report["packs_unreadable"].as_array().unwrap().len(), 0, "{report:#}");
    let (code, json) = verify(&f.r, &["--read-data"]);
    assert_eq!(code, EXIT_DAMAGED, "the trailer is still damaged: {json:#}");
    assert!(affected(&json).is_empty(), "{json:#}");
    f.r.snap(["restore", "latest", "--target", s(&f.r.target)]).assert_clean();
    // `repair packs` rewrites the pack from its blobs, found through the
    // salvaged rows (before, it stopped at the trailer it could not decode).
    let damaged = f.data_pack["two"].clone();
    let bad = fs::read(&pack).unwrap();
    let repaired = f.r.json(["repair", "packs"]);
    assert_eq!(repaired["packs"], serde_json::json!([damaged]), "{repaired:#}");
    // Its one blob seals to the same pack again, written whole under its
    // own name (which the last-copy guard kept from being deleted).
    assert_ne!(fs::read(&pack).ok(), Some(bad), "the damaged bytes are gone");
    let (code, json) = verify(&f.r, &["--read-data"]);
    assert_eq!(code, 0, "{json:#}");
    fs::remove_dir_all(&f.r.target).unwrap();
    f.r.snap(["restore", "latest", "--target", s(&f.r.target)]).assert_clean();
}

/// A trailer damaged under an index that still has the pack's rows: verify
/// names the pack, no path, and `repair packs` rewrites it.
#[test]
fn repair_packs_rewrites_a_pack_whose_trailer_verify_found_damaged() {
    let f = Fixture::new();
    let pack = f.pack_path("two");
    flip_byte(&pack, fs::metadata(&pack).unwrap().len() - 41);
    let (code, json) = verify(&f.r, &["--read-data"]);
    assert_eq!(code, EXIT_DAMAGED, "{json:#}");
    assert!(affected(&json).is_empty(), "{json:#}");
    let damaged = f.data_pack["two"].clone();
    assert_eq!(f.r.json(["repair", "packs", "--dry-run"])["packs"], serde_json::json!([damaged]));
    let bad = fs::read(&pack).unwrap();
    f.r.json(["repair", "packs"]);
    assert_ne!(fs::read(&pack).ok(), Some(bad));
    let (code, json) = verify(&f.r, &["--read-data"]);
    assert_eq!(code, 0, "{json:#}");
    f.r.snap(["restore", "latest", "--target", s(&f.r.target)]).assert_clean();
}

/// A pack whose trailer is damaged, met by a host with no old rows for it
/// (a fresh cache: a new machine, a lost cache), is not indexed, and may
/// hold any blob the index lacks: nothing is proved missing (before,
/// restore left the files out with exit 3, verify called them damaged, and
/// `repair snapshots` dropped them, though every blob was intact).
#[test]
fn a_pack_that_cannot_be_indexed_proves_no_blob_missing() {
    let f = Fixture::new();
    let pack = f.pack_path("two");
    flip_byte(&pack, fs::metadata(&pack).unwrap().len() - 41);
    fs::remove_dir_all(f.r.home.join("cache")).unwrap();
    // Restore is incomplete (exit 3), and says why without calling the
    // chunk missing.
    let run = f.r.snap(["restore", "latest", "--target", s(&f.r.target)]);
    assert_eq!(run.code, Some(3), "{}", run.describe());
    assert!(run.stderr.contains("could not be indexed and may hold it"), "{}", run.describe());
    assert!(!run.stderr.contains("missing"), "{}", run.describe());
    // The trailer is proved damaged; the chunk is not proved missing.
    let (code, json) = verify(&f.r, &[]);
    assert_eq!(code, EXIT_DAMAGED, "{json:#}");
    let list = problems(&json);
    assert!(list.len() == 1 && list[0].contains("checksum mismatch"), "{json:#}");
    assert!(affected(&json).is_empty(), "{json:#}");
    let unverified = json["report"]["unverified"].as_array().unwrap();
    assert!(unverified.iter().any(|u| u["object"].as_str().unwrap().starts_with("chunk")), "{json:#}");
    let before = f.r.snapshots();
    let run = f.r.snap(["repair", "snapshots"]);
    assert_ne!(run.code, Some(0), "{}", run.describe());
    assert_eq!(f.r.snapshots(), before, "no snapshot may be rewritten on a guess");
}

/// `repair index` killed after deleting the index, and a pack truncated
/// into its trailer: the old rows were kept durably beside the index, so
/// the next run still salvages them, at the pack's length as listed now
/// (before, the rows were lost with the kill, or indexed at the old
/// length, so the next open marked the pack missing).
#[test]
fn repair_index_salvages_after_a_kill_and_at_the_listed_length() {
    let f = Fixture::new();
    let pack = f.pack_path("two");
    let len = fs::metadata(&pack).unwrap().len();
    fs::OpenOptions::new().write(true).open(&pack).unwrap().set_len(len - 30).unwrap();
    let mut r = f.r;
    r.env.push(("SNAP_CRASH_AT".into(), "repair-index-after-destroy".into()));
    let run = r.snap(["repair", "index"]);
    assert_ne!(run.code, Some(0), "{}", run.describe());
    r.env.clear();
    let run = r.snap(["--json", "repair", "index"]);
    run.assert_ok();
    assert_eq!(run.json()["packs_salvaged"].as_array().unwrap().len(), 1, "{}", run.describe());
    let index = r.index_file();
    assert!(!index.with_file_name("index.old.sqlite").exists(), "the old copy goes once salvaged");
    r.snap(["snapshots"]).assert_ok();
    r.snap(["restore", "latest", "--target", s(&r.target)]).assert_clean();
    assert_trees_equal(&r.src, &r.restored(&r.target, &r.src));
}

#[test]
fn verify_read_data_reads_a_large_pack_in_pieces_and_names_the_damaged_blob() {
    let r = TempRepo::init();
    fs::write(r.src.join("big.bin"), Rng::new(7).bytes(14 << 20)).unwrap();
    r.backup(&[]);
    let (code, json) = verify(&r, &["--read-data"]);
    assert_eq!(code, 0, "{json:#}");
    let (id, path) = pack_files(&r.repo)
        .into_iter()
        .max_by_key(|(_, p)| fs::metadata(p).unwrap().len())
        .expect("a data pack");
    let entries = pack_entries(&path);
    assert!(entries.len() >= 6, "{} chunks: the pack is read in several pieces", entries.len());

    // A blob far past the first piece, and one that is not.
    let victim = &entries[entries.len() - 2];
    flip_byte(&path, victim.offset + victim.stored_len / 2);
    let (code, json) = verify(&r, &["--read-data"]);
    assert_eq!(code, EXIT_DAMAGED, "{json:#}");
    let list = problems(&json);
    assert!(list.iter().any(|p| p.contains(&victim.id)), "{list:#?}");
    assert!(list.iter().any(|p| p.contains(&id) && p.contains("do not match")), "{list:#?}");
    for other in entries.iter().filter(|e| e.id != victim.id) {
        assert!(!list.iter().any(|p| p.contains(&other.id)), "intact chunk {} reported: {list:#?}", other.id);
    }
}

#[test]
fn verify_finds_a_truncated_pack_without_read_data_and_names_the_files() {
    let f = Fixture::new();
    let pack = f.pack_path("two");
    make_writable(&pack);
    let len = fs::metadata(&pack).unwrap().len();
    fs::OpenOptions::new().write(true).open(&pack).unwrap().set_len(len - 100).unwrap();

    for round in 0..2 {
        let (code, json) = verify(&f.r, &[]);
        assert_eq!(code, EXIT_DAMAGED, "round {round}: {json:#}");
        f.assert_problems_name_two(&json);
        assert_eq!(affected(&json), f.two_affected(), "round {round}: {json:#}");
    }
    let (code, json) = verify(&f.r, &["--read-data"]);
    assert_eq!(code, EXIT_DAMAGED, "{json:#}");
    assert_eq!(affected(&json), f.two_affected(), "{json:#}");
}

#[test]
fn verify_finds_a_deleted_pack_and_names_the_files() {
    let f = Fixture::new();
    fs::remove_file(f.pack_path("two")).unwrap();

    let (code, json) = verify(&f.r, &[]);
    assert_eq!(code, EXIT_DAMAGED, "{json:#}");
    f.assert_problems_name_two(&json);
    assert_eq!(affected(&json), f.two_affected(), "{json:#}");

    // Still found, with the same files named, when run again with --read-data.
    let (code, json) = verify(&f.r, &["--read-data"]);
    assert_eq!(code, EXIT_DAMAGED, "{json:#}");
    assert_eq!(affected(&json), f.two_affected(), "{json:#}");
    for p in problems(&json) {
        assert!(p.contains(&f.data_pack["two"]) || p.contains(&f.two_chunk), "unrelated problem {p:?}");
    }
}

#[test]
fn verify_names_a_deleted_pack_even_when_another_command_opened_the_repository_first() {
    // The first command to open a repository after a pack went missing is
    // not necessarily verify; verify must still name the missing pack.
    let f = Fixture::new();
    fs::remove_file(f.pack_path("two")).unwrap();
    let run = f.r.snap(["snapshots"]);
    assert!(run.code.is_some() && !run.stderr.contains("panicked"), "{run:?}");

    let (code, json) = verify(&f.r, &[]);
    assert_eq!(code, EXIT_DAMAGED, "{json:#}");
    assert_eq!(affected(&json), f.two_affected(), "{json:#}");
    f.assert_problems_name_two(&json);
}

#[test]
fn verify_reports_a_damaged_snapshot_file() {
    let f = Fixture::new();
    let path = f.r.repo.join("snapshots").join(&f.snaps[1]);
    let len = fs::metadata(&path).unwrap().len();
    flip_byte(&path, len / 2);

    let (code, json) = verify(&f.r, &[]);
    assert_eq!(code, EXIT_DAMAGED, "{json:#}");
    let list = problems(&json);
    assert!(
        list.iter().any(|p| p.contains(&f.snaps[1])),
        "no problem names snapshot {}: {list:#?}",
        f.snaps[1]
    );
    for p in &list {
        assert!(p.contains(&f.snaps[1]), "unrelated problem {p:?}");
    }
    assert_eq!(num(&json, "snapshots"), 2, "the two readable snapshots are still checked");
}

#[test]
fn verify_read_data_subset_parts_read_every_pack_exactly_once() {
    let f = Fixture::new();
    let count = pack_files(&f.r.repo).len() as u64;
    let (_, full) = verify(&f.r, &["--read-data"]);
    let total_bytes = num(&full, "bytes_read");
    assert!(count >= 4, "several packs to spread: {count}");

    for m in [2u64, 3] {
        let (mut read, mut bytes) = (0, 0);
        for n in 1..=m {
            let (code, json) = verify(&f.r, &["--read-data-subset", &format!("{n}/{m}")]);
            assert_eq!(code, 0, "{json:#}");
            assert_eq!(num(&json, "packs"), count);
            read += num(&json, "packs_read");
            bytes += num(&json, "bytes_read");
        }
        assert_eq!(read, count, "parts 1/{m}..{m}/{m} together read every pack once");
        assert_eq!(bytes, total_bytes);
    }
    let (code, json) = verify(&f.r, &["--read-data-subset", "100%"]);
    assert_eq!(code, 0);
    assert_eq!(num(&json, "packs_read"), count);
}

#[test]
fn verify_read_data_subset_finds_a_flipped_byte_in_exactly_one_part() {
    let f = Fixture::new();
    let pack = f.pack_path("two");
    let entry = &pack_entries(&pack)[0];
    flip_byte(&pack, entry.offset + 1);

    // Parts that read the pack find the damage; the damage found is marked
    // in the index, so every run after that knows it without reading.
    let mut read = 0;
    let mut known = false;
    for part in ["1/2", "2/2"] {
        let (code, json) = verify(&f.r, &["--read-data-subset", part]);
        let reads_it = problems(&json).iter().any(|p| p.contains("in pack"));
        read += usize::from(reads_it);
        if code == EXIT_DAMAGED {
            f.assert_problems_name_two(&json);
            assert_eq!(affected(&json), f.two_affected());
        } else {
            assert!(problems(&json).is_empty() && !known, "{json:#}");
        }
        known |= code == EXIT_DAMAGED;
    }
    assert_eq!(read, 1, "the damaged pack is read by exactly one part");
    assert!(known);
}

#[test]
fn verify_lists_packs_no_snapshot_uses_after_forget_without_failing() {
    let f = Fixture::new();
    f.r.snap(["forget", f.snaps[2].as_str()]).assert_ok();
    let (code, json) = verify(&f.r, &["--read-data"]);
    assert_eq!(code, 0, "unused packs are harmless: {json:#}");
    let unused: Vec<&str> =
        json["report"]["unused_packs"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(unused.contains(&f.data_pack["three"].as_str()), "{json:#}");
    assert!(!unused.contains(&f.data_pack["one"].as_str()), "{json:#}");
    assert!(!unused.contains(&f.data_pack["two"].as_str()), "still used by the second snapshot: {json:#}");
}

/// A chunk proved damaged by `verify --read-data` stays out of use: the
/// next backup of the intact source stores it anew (it deduplicated against
/// the damaged copy, "0 B new", and the new snapshot was broken again),
/// `repair packs` moves the rest of the pack out and drops it, and prune
/// runs again. Every snapshot restores whole afterwards.
#[test]
fn a_damaged_chunk_is_stored_anew_and_its_pack_repaired() {
    let r = TempRepo::init();
    let (pack, found, again) = damaged_and_stored_anew(&r, 91);
    assert_eq!(affected(&found).len(), 1, "{found:#}");
    let new = summary(&again, "new_bytes");
    assert!(new < 600_000, "the damaged chunk alone is stored anew: {again:#}");
    let (code, found) = verify(&r, &["--read-data"]);
    assert_eq!(code, EXIT_DAMAGED, "the damaged pack is still there: {found:#}");
    assert!(affected(&found).is_empty(), "an intact copy serves every snapshot: {found:#}");

    let repaired = r.json(["repair", "packs"]);
    assert_eq!(repaired["packs"].as_array().unwrap().len(), 1, "{repaired:#}");
    assert_eq!(repaired["blobs_lost"], serde_json::json!([]), "{repaired:#}");
    assert!(!pack.exists());
    assert_eq!(verify(&r, &["--read-data"]).0, 0);
    r.snap(["prune"]).assert_ok();
    for snapshot in r.snapshots() {
        let target = r.root.join(snapshot["id"].as_str().unwrap());
        r.snap(["restore", snapshot["id"].as_str().unwrap(), "--target", s(&target)]).assert_ok();
        assert_trees_equal(&r.src, &r.restored(&target, &r.src));
    }
}

/// A backup whose data was found damaged, then stored anew: two copies.
/// Returns the damaged pack, what verify found and the second backup.
fn damaged_and_stored_anew(r: &TempRepo, seed: u64) -> (PathBuf, Value, Value) {
    let mut rng = Rng::new(seed);
    // Two files, so that storing the damaged one anew makes another pack.
    write_random(&r.src.join("f"), &mut rng, 300_000);
    write_random(&r.src.join("g"), &mut rng, 300_000);
    r.backup(&[]);
    let pack = largest_pack(&r.repo);
    flip_byte(&pack, fs::metadata(&pack).unwrap().len() / 2);
    let (code, found) = verify(r, &["--read-data"]);
    assert_eq!(code, EXIT_DAMAGED, "{found:#}");
    let again = r.backup(&[]);
    assert!(summary(&again, "new_bytes") > 0, "the damaged chunk is stored anew: {again:#}");
    (pack, found, again)
}

/// `repair index` keeps the marks of copies it proves damaged again: the
/// next backup stores the data anew instead of deduplicating against the
/// damaged copy (the marks were dropped with the old database, and the
/// backup stored "0 B new" on top of damage).
#[test]
fn a_rebuilt_index_keeps_the_marks_of_damaged_copies() {
    let r = TempRepo::init();
    one_chunk_found_damaged(&r, 94);
    rebuild_keeps_the_mark_and_backup_stores_anew(&r);
}

/// A backup of one file whose one data chunk verify then proves damaged.
fn one_chunk_found_damaged(r: &TempRepo, seed: u64) {
    write_random(&r.src.join("f"), &mut Rng::new(seed), 300_000);
    r.backup(&[]);
    let pack = largest_pack(&r.repo);
    flip_byte(&pack, fs::metadata(&pack).unwrap().len() / 2);
    assert_eq!(verify(r, &["--read-data"]).0, EXIT_DAMAGED);
}

/// `repair index` keeps the one mark, so the next backup stores the chunk
/// anew and the result restores whole.
fn rebuild_keeps_the_mark_and_backup_stores_anew(r: &TempRepo) {
    let rebuilt = r.json(["repair", "index"]);
    assert_eq!(rebuilt["damage_marks_kept"], serde_json::json!(1), "{rebuilt:#}");
    let again = r.backup(&[]);
    assert!(summary(&again, "new_bytes") > 0, "stored anew, not deduplicated: {again:#}");
    r.snap(["restore", "latest", "--target", s(&r.target)]).assert_ok();
    assert_trees_equal(&r.src, &r.restored(&r.target, &r.src));
}

/// `repair index` killed after deleting the index: until a rebuild
/// finishes, no command works from the partial index (the backup after the
/// kill opened an empty index without the marks and deduplicated against
/// the damaged copy, "0 B new", and restore could call intact blobs
/// missing). The next `repair index` finishes the work with the marks.
#[test]
fn a_backup_after_a_killed_repair_index_does_not_dedup_against_a_damaged_copy() {
    let mut r = TempRepo::init();
    one_chunk_found_damaged(&r, 96);
    r.env.push(("SNAP_CRASH_AT".into(), "repair-index-after-destroy".into()));
    assert_ne!(r.snap(["repair", "index"]).code, Some(0));
    r.env.clear();
    let snapshot_files = || fs::read_dir(r.repo.join("snapshots")).unwrap().count();
    let before = snapshot_files();
    for args in
        [vec!["backup", s(&r.src)], vec!["snapshots"], vec!["restore", "latest", "--target", s(&r.target)]]
    {
        let run = r.snap(args);
        assert_eq!(run.code, Some(1), "{}", run.describe());
        assert!(run.stderr.contains("snap repair index"), "{}", run.describe());
    }
    assert_eq!(snapshot_files(), before, "no snapshot written from a partial index");
    rebuild_keeps_the_mark_and_backup_stores_anew(&r);
}

/// With two copies of a chunk, a reader that proves the first damaged
/// takes the other: restore and dump of every snapshot are whole even when
/// the mark was lost (before, the file was reported damaged and left out).
#[test]
fn a_reader_that_proves_one_copy_damaged_takes_another() {
    let r = TempRepo::init();
    damaged_and_stored_anew(&r, 95);
    // As if the marks had never been written: lookups serve the damaged
    // copy first again (rows of the older pack come first).
    let db = rusqlite::Connection::open(r.index_file()).unwrap();
    assert!(db.execute("UPDATE blobs SET damaged = 0 WHERE damaged = 1", []).unwrap() > 0);
    drop(db);
    for snapshot in r.snapshots() {
        let id = snapshot["id"].as_str().unwrap();
        let target = r.root.join(id);
        r.snap(["restore", id, "--target", s(&target)]).assert_ok();
        assert_trees_equal(&r.src, &r.restored(&target, &r.src));
        let tar = r.root.join(format!("{id}.tar"));
        r.snap(["dump", id, "--format", "tar", "--output", s(&tar)]).assert_ok();
    }
}

/// A damage mark is a finding, not a verdict for ever: a pack put back
/// whole, or a copy marked through a wrong index row, is read again before
/// anything is deleted on that mark (`repair packs` deleted the only,
/// intact copy, and `repair snapshots` then dropped the file).
#[test]
fn a_stale_or_wrong_damage_mark_deletes_nothing() {
    let r = TempRepo::init();
    let mut rng = Rng::new(92);
    write_random(&r.src.join("f"), &mut rng, 300_000);
    r.backup(&[]);
    let pack = largest_pack(&r.repo);
    let good = fs::read(&pack).unwrap();
    flip_byte(&pack, good.len() as u64 / 2);
    assert_eq!(verify(&r, &["--read-data"]).0, EXIT_DAMAGED);
    fs::write(&pack, &good).unwrap();
    // Put back: repair packs reads it again and keeps it.
    let repaired = r.json(["repair", "packs"]);
    assert_eq!(repaired["packs"], serde_json::json!([]), "{repaired:#}");
    assert!(pack.exists());
    assert_eq!(verify(&r, &["--read-data"]).0, 0);

    // A wrong index row makes restore "prove" an intact copy damaged.
    let db = rusqlite::Connection::open(r.index_file()).unwrap();
    db.execute("UPDATE blobs SET raw_len = raw_len + 1 WHERE kind = 0", []).unwrap();
    drop(db);
    let run = r.snap(["restore", "latest", "--target", s(&r.target)]);
    assert_ne!(run.code, Some(0), "{}", run.describe());
    let repaired = r.json(["repair", "packs"]);
    assert_eq!(repaired["packs"], serde_json::json!([]), "{repaired:#}");
    assert!(pack.exists());
    r.snap(["repair", "index"]).assert_ok();
    assert_eq!(verify(&r, &["--read-data"]).0, 0);
}

/// Rows missing from the local index prove nothing about the packs: verify
/// cannot tell, repair snapshots and prune change nothing (before, the file
/// was dropped and its pack deleted as unused).
#[test]
fn rows_lost_from_the_index_cost_no_data() {
    let r = TempRepo::init();
    write_random(&r.src.join("f"), &mut Rng::new(93), 300_000);
    r.backup(&[]);
    let before = repo_files(&r.repo);
    let db = rusqlite::Connection::open(r.index_file()).unwrap();
    db.execute("DELETE FROM blobs WHERE kind = 0", []).unwrap();
    drop(db);
    let run = r.snap(["verify"]);
    assert_eq!(run.code, Some(1), "{}", run.describe());
    assert!(run.stderr.contains("cannot tell"), "{}", run.describe());
    let run = r.snap(["repair", "snapshots"]);
    assert!(run.stderr.contains("cannot tell, nothing changed"), "{}", run.describe());
    assert_ne!(r.snap(["prune"]).code, Some(0), "prune went on with chunks it cannot find");
    assert_eq!(repo_files(&r.repo), before);
    r.snap(["repair", "index"]).assert_ok();
    assert_eq!(verify(&r, &["--read-data"]).0, 0);
}
