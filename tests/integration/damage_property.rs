//! Damage containment, as a property (issue 25): a repository of several
//! snapshots of an evolving tree with shared content gets one flipped byte
//! at a random place of a random pack (payload, header, trailer and footer
//! all count). `verify --read-data` must then name exactly the paths a
//! restore cannot bring back: every snapshot is restored and compared with
//! the source tree it was taken from; every path verify did not name is
//! identical, every named one is reported by the restore and not written,
//! and the exit codes are 4 (verify) and 3 (restore, 0 when the snapshot is
//! untouched). `SNAP_TEST_DAMAGE_SEEDS` runs more seeds than the default.

use crate::common;

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

/// Seeds run by default: enough to hit payloads, trailers and footers of
/// both tree and data packs in a few seconds.
const SEEDS: u64 = 24;

/// The repository every seed starts from, and the source tree each of its
/// snapshots was taken from (oldest first).
struct Base {
    repo: TempRepo,
    /// (snapshot id, copy of the source at that time).
    snapshots: Vec<(String, PathBuf)>,
}

fn cp(from: &Path, to: &Path) {
    let ok = Command::new("cp").arg("-a").arg(from).arg(to).status().unwrap();
    assert!(ok.success(), "cp -a {from:?} {to:?}");
}

/// Three snapshots: random files with duplicates (shared chunks), then
/// some changed, added and removed, then a directory renamed.
fn base() -> Base {
    let r = TempRepo::init();
    let files = write_random_tree(&r.src, 25, 30, 40 << 10);
    for (i, f) in files.iter().take(5).enumerate() {
        fs::copy(r.src.join(f), r.src.join(format!("copy-{i}"))).unwrap();
    }
    std::os::unix::fs::symlink("copy-0", r.src.join("link")).unwrap();
    let mut snapshots = Vec::new();
    let mut save = |r: &TempRepo, n: usize| {
        let id = r.backup(&[])["snapshot"].as_str().unwrap().to_owned();
        let copy = r.root.join(format!("saved-{n}"));
        cp(&r.src, &copy);
        snapshots.push((id, copy));
    };
    save(&r, 0);
    let mut rng = Rng::new(26);
    for f in files.iter().skip(10).take(6) {
        let path = r.src.join(f);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        write_random(&path, &mut rng, 20 << 10);
    }
    fs::remove_file(r.src.join(&files[2])).unwrap();
    fs::create_dir(r.src.join("new")).unwrap();
    fs::copy(r.src.join(&files[3]), r.src.join("new/shared")).unwrap();
    save(&r, 1);
    fs::rename(r.src.join("delta"), r.src.join("omega")).unwrap();
    write_random(&r.src.join("new/late"), &mut rng, 30 << 10);
    save(&r, 2);
    Base { repo: r, snapshots }
}

/// A fresh user (home, cache, notes) with a copy of the base repository.
fn copy_of(base: &Base) -> TempRepo {
    let r = TempRepo::new();
    fs::remove_dir_all(&r.src).unwrap();
    cp(&base.repo.repo, &r.repo);
    // Indexed before the damage, as a repository in use is: the index
    // lives in this host's cache, not in the copied directory.
    r.snap(["snapshots"]).assert_ok();
    r
}

/// Flips one byte at a random place of a random pack; returns what it hit.
fn flip_random_byte(r: &TempRepo, seed: u64) -> String {
    let mut rng = Rng::new(seed);
    let packs: Vec<PathBuf> = pack_files(&r.repo).into_values().collect();
    let pack = &packs[rng.below(packs.len() as u64) as usize];
    let len = fs::metadata(pack).unwrap().len();
    let offset = rng.below(len);
    flip_byte(pack, offset);
    format!("seed {seed}: byte {offset} of {len} in {}", pack.file_name().unwrap().to_string_lossy())
}

/// Whether `path` or a directory above it is in `named`.
fn covered(named: &HashSet<PathBuf>, path: &Path) -> bool {
    path.ancestors().any(|a| named.contains(a))
}

/// The paths of a report's failed warnings.
fn failed_paths(report: &Value) -> HashSet<PathBuf> {
    let warnings = report["warnings"].as_array().cloned().unwrap_or_default();
    warnings
        .iter()
        .filter(|w| w["kind"] == "failed")
        .map(|w| PathBuf::from(w["path"].as_str().unwrap()))
        .collect()
}

/// Restores snapshot `id` and compares it with `saved`, the source it was
/// taken from (at `src` then): what verify named for it (`named`, snapshot
/// paths) is reported and absent, everything else is identical.
fn check_snapshot(r: &TempRepo, what: &str, id: &str, saved: &Path, src: &Path, named: &HashSet<PathBuf>) {
    let target = r.root.join(format!("restore-{id}"));
    let run = r.snap(["--json", "restore", id, "--target", s(&target)]);
    if named.contains(Path::new("/")) {
        assert_eq!(run.code, Some(1), "{what}: the whole snapshot is lost: {}", run.describe());
        assert!(
            !target.exists() || fs::read_dir(&target).unwrap().next().is_none(),
            "{what}: nothing written"
        );
        return;
    }
    let expected = if named.is_empty() { 0 } else { 3 };
    assert_eq!(run.code, Some(expected), "{what}: {id}: {named:?}\n{}", run.describe());
    let in_target = |p: &Path| target.join(p.strip_prefix("/").unwrap());
    // None missing: every named path is reported, and nothing of it is written.
    let reported: HashSet<PathBuf> = failed_paths(&run.json()["report"]);
    for path in named {
        assert!(
            reported.contains(&in_target(path)),
            "{what}: {path:?} named by verify, not by restore: {reported:?}"
        );
        assert!(fs::symlink_metadata(in_target(path)).is_err(), "{what}: {path:?} was written");
    }
    // None extra: restore reports nothing verify did not name.
    for path in &reported {
        let snapshot_path = Path::new("/").join(path.strip_prefix(&target).unwrap());
        assert!(named.contains(&snapshot_path), "{what}: restore reported {path:?}, verify did not");
    }
    // Everything not named is as it was.
    for rel in list_tree(saved) {
        let snapshot_path = src.join(&rel);
        let restored = in_target(&snapshot_path);
        if covered(named, &snapshot_path) {
            continue;
        }
        let (a, b) = (fs::symlink_metadata(saved.join(&rel)).unwrap(), fs::symlink_metadata(&restored));
        let b = b.unwrap_or_else(|e| panic!("{what}: {rel:?} not restored: {e}"));
        assert_eq!(a.file_type(), b.file_type(), "{what}: {rel:?}");
        if a.is_file() {
            assert_eq!(fs::read(saved.join(&rel)).unwrap(), fs::read(&restored).unwrap(), "{what}: {rel:?}");
        } else if a.file_type().is_symlink() {
            assert_eq!(fs::read_link(saved.join(&rel)).unwrap(), fs::read_link(&restored).unwrap());
        }
    }
}

#[test]
fn verify_names_exactly_what_a_restore_cannot_bring_back() {
    let base = base();
    let seeds = std::env::var("SNAP_TEST_DAMAGE_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(SEEDS);
    for seed in 0..seeds {
        let r = copy_of(&base);
        let what = flip_random_byte(&r, 1000 + seed);
        let verify = r.snap(["--json", "verify", "--read-data"]);
        assert_eq!(verify.code, Some(4), "{what}: every byte of a pack is checked: {}", verify.describe());
        let report = verify.json();
        let affected = report["report"]["affected"].as_array().unwrap();
        for (id, saved) in &base.snapshots {
            let named: HashSet<PathBuf> = affected
                .iter()
                .filter(|a| a["snapshot"] == id.as_str())
                .map(|a| PathBuf::from(a["path"].as_str().unwrap()))
                .collect();
            check_snapshot(&r, &what, id, saved, &base.repo.src, &named);
        }
    }
}
