//! Findings of the third adversarial review (an unlucky user and an
//! attacker): each test failed on the code it was written against.

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::{self, Rng, TempRepo, flip_byte, write_random};

/// Ten files whose data pack has one flipped byte that `verify
/// --read-data` found (and marked): the pack and the file it damaged.
fn with_a_damaged_pack(seed: u64) -> (TempRepo, PathBuf) {
    let r = TempRepo::init();
    let mut rng = Rng::new(seed);
    for i in 0..10 {
        write_random(&r.src.join(format!("f{i}")), &mut rng, 20_000);
    }
    r.backup(&[]);
    let pack = common::largest_pack(&r.repo);
    flip_byte(&pack, 100_000);
    assert_eq!(r.snap(["verify", "--read-data"]).code, Some(4));
    (r, pack)
}

/// Finding 1: prune forgets the damage marks of a pack marked missing.
/// A damaged pack is moved aside (the user investigates it) while no
/// snapshot needs it (here its snapshot was forgotten); `prune` then drops
/// every row of the missing pack (`ops::prune::prune` passes
/// `repo.missing_packs()` to `drop_packs`), its damage marks with them.
/// When the pack is put back, the next open indexes it afresh from its
/// trailer with no mark, so the damaged copy serves `contains` again: the
/// next backup of the same files deduplicates against it (exit 0, "0 read"
/// of that chunk) and the new snapshot cannot be restored. DESIGN 8 says a
/// damaged pack moved aside and put back is still known damaged; prune
/// must keep the marks of a missing pack (as `repair index` does), or
/// keep its rows.
#[test]
fn prune_while_a_damaged_pack_is_aside_keeps_its_damage_marks() {
    let (r, pack) = with_a_damaged_pack(31);
    let first = r.snapshots()[0]["id"].as_str().unwrap().to_owned();
    r.snap(["forget", &first]).assert_ok();
    let aside = r.root.join("pack-aside");
    fs::rename(&pack, &aside).unwrap();
    r.snap(["prune", "--keep", "1"]).assert_ok();
    fs::rename(&aside, &pack).unwrap();
    // The pack is back and still damaged: the same files backed up again
    // must be stored anew, not deduplicated against the damaged copy.
    r.backup(&[]);
    let restore = r.snap(["restore", "latest", "--target", common::s(&r.target)]);
    assert_eq!(restore.code, Some(0), "a fresh backup cannot be restored: {}", restore.describe());
    common::assert_trees_equal(&r.src, &r.restored(&r.target, &r.src));
}

/// Builds an unencrypted pack holding `raw` twice (the same chunk id at two
/// offsets, as another writer or a hand-made pack may) and stores it under
/// its name; returns its path and the offsets of the two copies.
fn plant_pack_with_a_duplicate(repo: &Path, raw: &[u8]) -> (PathBuf, u32, u32) {
    use snap::crypto::Keys;
    use snap::id::BlobId;
    let keys = Keys::plain();
    let blob = BlobId::Chunk(keys.hasher().chunk_id(raw));
    let mut w = snap::pack::PackWriter::new(1 << 20, &keys);
    w.add(snap::pack::seal(&keys, blob, raw, 3).unwrap());
    w.add(snap::pack::seal(&keys, blob, raw, 3).unwrap());
    let done = w.finish(&keys).unwrap();
    let hex = done.id.to_hex();
    let dir = repo.join("data").join(&hex[..2]);
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join(&hex);
    fs::write(&path, &done.bytes).unwrap();
    (path, done.entries[0].offset, done.entries[1].offset)
}

/// Finding 2: a pack holding one blob twice is indexed once (the
/// `blobs` primary key is (id, kind, pack), `INSERT OR IGNORE` keeps the
/// first copy), so when that first copy is damaged, `repair packs` lists
/// the blob as lost and deletes the pack with the second, intact copy in
/// it, never having tried it (`ops::repair::repair_packs` salvages only
/// blobs not marked damaged, `damaged_in` is by blob id). The pack's own
/// trailer names the second copy; repair must read it before calling the
/// blob lost, and must not delete the only intact copy.
#[test]
fn repair_packs_tries_the_second_copy_of_a_blob_in_one_pack() {
    let r = TempRepo::init();
    let mut rng = Rng::new(32);
    write_random(&r.src.join("f"), &mut rng, 20_000);
    let raw = fs::read(r.src.join("f")).unwrap();
    r.backup(&[]);
    let original = common::largest_pack(&r.repo);
    let (dup, first, _second) = plant_pack_with_a_duplicate(&r.repo, &raw);
    // The original copy goes (bit rot took the whole file); the planted
    // pack is the data's only home, its first copy damaged.
    fs::remove_file(&original).unwrap();
    flip_byte(&dup, u64::from(first) + 100);
    let verify = r.snap(["verify", "--read-data"]);
    assert_eq!(verify.code, Some(4), "{}", verify.describe());
    let repaired = r.json(["repair", "packs"]);
    assert!(repaired["blobs_lost"].as_array().unwrap().is_empty(), "an intact copy was there: {repaired:?}");
    r.snap(["restore", "latest", "--target", common::s(&r.target)]).assert_ok();
    common::assert_trees_equal(&r.src, &r.restored(&r.target, &r.src));
}
