//! Findings of an adversarial review (an unlucky user and an attacker):
//! each test failed before its fix, or is marked ignored with the finding.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{self, Rng, TempRepo, flip_byte, write_random};

/// A read-only bind mount of `dir` at `at`; unmounted when dropped. Needs
/// root, as CI runs.
struct ReadOnlyMount(PathBuf);

impl ReadOnlyMount {
    fn new(dir: &Path, at: &Path) -> Self {
        fs::create_dir_all(at).unwrap();
        let ok = |args: &[&str], extra: &[&Path]| {
            Command::new("mount").args(args).args(extra).status().unwrap().success()
        };
        assert!(ok(&["--bind"], &[dir, at]), "bind mounts need root, as CI runs");
        let mount = ReadOnlyMount(at.to_owned());
        assert!(ok(&["-o", "remount,bind,ro"], &[at]), "remount read-only");
        mount
    }
}

impl Drop for ReadOnlyMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Finding 1: a backup disk that the kernel remounted read-only after an
/// error (ext4 `errors=remount-ro`), or one mounted read-only on purpose to
/// get data back from it, could not be read at all: every command, restore
/// and verify included, failed opening `lock` for writing (EROFS), though
/// DESIGN 2 says a read-only disk still restores. A shared flock needs no
/// write access; commands that write still fail clearly.
#[test]
fn a_repository_on_a_read_only_file_system_still_lists_restores_and_verifies() {
    let r = TempRepo::init();
    let mut rng = Rng::new(1);
    write_random(&r.src.join("a"), &mut rng, 200_000);
    write_random(&r.src.join("b"), &mut rng, 3_000);
    r.backup(&[]);
    let ro = r.root.join("ro");
    let _mount = ReadOnlyMount::new(&r.repo, &ro);
    let run = |args: &[&str]| {
        let mut cmd = r.command();
        cmd.env("SNAP_REPO", &ro);
        common::run_command(cmd, args)
    };
    run(&["snapshots"]).assert_ok();
    run(&["verify", "--read-data"]).assert_clean();
    run(&["restore", "latest", "--target", common::s(&r.target)]).assert_ok();
    common::assert_trees_equal(&r.src, &r.restored(&r.target, &r.src));
    // What must write says so, in one line, and changes nothing.
    let backup = run(&["backup", common::s(&r.src)]);
    assert_eq!(backup.code, Some(1), "{}", backup.describe());
    assert!(backup.assert_one_line_error().contains("Read-only file system"), "{}", backup.describe());
    let prune = run(&["prune", "--keep", "1"]);
    assert_eq!(prune.code, Some(1), "{}", prune.describe());
    assert!(prune.assert_one_line_error().contains("Read-only file system"), "{}", prune.describe());
}

/// The files below `dir` (`snapshots`, or `data` with its fan-out
/// directories), sorted.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Finding 2: an object file in `snapshots/` that is a symbolic link (a
/// planted link, or a dedup tool that replaces identical files by links)
/// is skipped silently by the listing (`DirEntry::metadata` does not follow
/// links, and only regular files are kept): `snapshots` and `verify` do not
/// mention it, and `prune` deletes every pack only that snapshot used.
/// DESIGN 19.4 says a planted link makes commands refuse to run, and that
/// nothing is deleted through one; a link to a directory (`data/XX`) is
/// indeed refused.
#[test]
fn a_snapshot_file_replaced_by_a_symlink_is_refused_not_ignored_and_pruned() {
    let r = TempRepo::init();
    let mut rng = Rng::new(2);
    write_random(&r.src.join("a"), &mut rng, 50_000);
    r.backup(&[]);
    let first = files_under(&r.repo.join("snapshots"));
    assert_eq!(first.len(), 1);
    fs::remove_file(r.src.join("a")).unwrap();
    write_random(&r.src.join("b"), &mut rng, 50_000);
    r.backup(&[]);
    let snap = &first[0];
    let aside = r.root.join("snapshot-aside");
    fs::rename(snap, &aside).unwrap();
    std::os::unix::fs::symlink(&aside, snap).unwrap();
    let prune = r.snap(["prune", "--keep", "10"]);
    // Put the real file back: nothing the snapshot needs may have gone.
    fs::remove_file(snap).unwrap();
    fs::copy(&aside, snap).unwrap();
    let verify = r.snap(["verify"]);
    assert_eq!(verify.code, Some(0), "after {}:\n{}", prune.describe(), verify.describe());
    assert_ne!(prune.code, Some(0), "prune ran with a linked snapshot file: {}", prune.describe());
}

/// Finding 3: a pack file that is a symbolic link (or a directory, or a
/// fifo) is not listed, so the pack counts as gone from storage: `verify`
/// reports its blobs as damaged (proved), and `repair snapshots` then drops
/// every file that used it and forgets the original snapshot, though the
/// pack is there, whole, behind the link. A link in `data/XX` is refused
/// loudly ("is a symbolic link ... changed nothing"); the same should hold
/// one level down, and nothing should be taken as proof of loss.
#[test]
fn a_pack_file_replaced_by_a_symlink_is_not_proof_that_its_data_is_lost() {
    let r = TempRepo::init();
    let mut rng = Rng::new(3);
    for i in 0..5 {
        write_random(&r.src.join(format!("f{i}")), &mut rng, 20_000);
    }
    r.backup(&[]);
    let before = r.snapshots();
    let biggest = &common::largest_pack(&r.repo);
    let aside = r.root.join("pack-aside");
    fs::rename(biggest, &aside).unwrap();
    std::os::unix::fs::symlink(&aside, biggest).unwrap();
    let repair = r.snap(["repair", "snapshots"]);
    fs::remove_file(biggest).unwrap();
    fs::copy(&aside, biggest).unwrap();
    let after = r.snapshots();
    assert_eq!(before[0]["id"], after[0]["id"], "{}", repair.describe());
    assert_ne!(repair.code, Some(0), "{}", repair.describe());
}

/// Finding 4: a prune killed after repacking (crash point
/// `prune-after-repack`: new packs durable and indexed, old ones not yet
/// deleted) leaves, in an encrypted repository, a pack that is never
/// reclaimed: the next prune repacks the old pack again into a new copy,
/// so two packs hold the same live blobs, neither has unused bytes, and
/// no later prune deletes either while the data lives.
#[test]
fn a_prune_killed_after_repacking_leaves_no_duplicate_pack_behind() {
    // Unencrypted, the repack seals to the old replacement's name anyway.
    for r in [TempRepo::init_encrypted("pw"), TempRepo::init()] {
        prune_killed_after_repacking(&r, 4);
        let next = r.json(["prune", "--keep", "1", "--repack-threshold", "1"]);
        if r.password.is_some() {
            // The old pack goes as a copy; nothing is written again.
            assert_eq!(next["report"]["packs_redundant"], 1, "{next:#}");
            assert_eq!(next["report"]["packs_written"], 0, "{next:#}");
        }
        r.snap(["prune", "--keep", "1", "--repack-threshold", "1"]).assert_ok();
        r.snap(["verify", "--read-data"]).assert_clean();
        let stats = r.json(["stats"]);
        assert_eq!(stats["repository"]["packs"], stats["packs_used"], "{stats:#}");
        r.snap(["restore", "latest", "--target", common::s(&r.target)]).assert_ok();
        common::assert_trees_equal(&r.src, &r.restored(&r.target, &r.src));
    }
}

/// Two backups (the second without one of three files), then a prune
/// that repacks and is killed before deleting the old pack. Returns the
/// packs there were before the prune.
fn prune_killed_after_repacking(r: &TempRepo, seed: u64) -> BTreeMap<String, PathBuf> {
    let mut rng = Rng::new(seed);
    for name in ["a", "b", "c"] {
        write_random(&r.src.join(name), &mut rng, 100_000);
    }
    r.backup(&[]);
    fs::remove_file(r.src.join("a")).unwrap();
    r.backup(&[]);
    let before = common::pack_files(&r.repo);
    let mut crash = r.command();
    crash.env("SNAP_CRASH_AT", "prune-after-repack");
    let crashed = common::run_command(crash, ["prune", "--keep", "1", "--repack-threshold", "1"]);
    assert_ne!(crashed.code, Some(0), "{}", crashed.describe());
    before
}

/// Review 2: a pack whose live blobs all have copies elsewhere is deleted
/// as redundant, but the copies that stay were taken on the index's word:
/// with the replacement pack damaged (not yet found by verify), prune
/// deleted the old intact pack, and the data was lost. The copies that
/// stay are read first; the one proved damaged keeps the old pack.
#[test]
fn a_redundant_pack_is_not_deleted_beside_a_damaged_copy() {
    let r = TempRepo::init_encrypted("pw");
    let before = prune_killed_after_repacking(&r, 5);
    let after = common::pack_files(&r.repo);
    let new: Vec<_> =
        after.iter().filter(|(id, _)| !before.contains_key(*id)).map(|(_, p)| p.clone()).collect();
    assert_eq!(new.len(), 1, "one pack written by the repack");
    flip_byte(&new[0], fs::metadata(&new[0]).unwrap().len() / 3);
    let run = r.snap(["prune", "--keep", "1", "--repack-threshold", "1"]);
    assert_ne!(run.code, Some(0), "{}", run.describe());
    assert!(run.stderr.contains("only intact copy"), "{}", run.describe());
    assert_eq!(common::pack_files(&r.repo).len(), after.len(), "nothing deleted: {}", run.describe());
    // The damaged copy is marked: the next prune keeps the old pack's
    // blobs, and the snapshot restores whole.
    r.snap(["prune", "--keep", "1", "--repack-threshold", "1"]).assert_ok();
    r.snap(["restore", "latest", "--target", common::s(&r.target)]).assert_ok();
    common::assert_trees_equal(&r.src, &r.restored(&r.target, &r.src));
}

/// Finding 5: `repair index` run while a pack is not listed (here a link in
/// its place; likewise moved aside while the user investigates, or a fan-out
/// directory that is a file) drops the marks of the damaged copies in it,
/// silently ("index rebuilt"), and deletes the old index they were kept in:
/// once the pack is back, `verify` finds no problem, `repair packs` nothing
/// to repair, and the damaged copy serves lookups again until a full
/// `verify --read-data` finds it once more. Whether the listing skips the
/// pack (the rebuild succeeds) or refuses it (the rebuild fails), the marks
/// must be there once the pack is back.
#[test]
fn repair_index_keeps_the_damage_marks_of_a_pack_it_could_not_list() {
    type Hide = fn(&Path, &Path);
    type Restore = fn(&Path, &Path);
    let link: (Hide, Restore) = (
        |pack, aside| {
            fs::rename(pack, aside).unwrap();
            std::os::unix::fs::symlink(aside, pack).unwrap();
        },
        |pack, aside| {
            fs::remove_file(pack).unwrap();
            fs::rename(aside, pack).unwrap();
        },
    );
    let moved: (Hide, Restore) =
        (|pack, aside| fs::rename(pack, aside).unwrap(), |pack, aside| fs::rename(aside, pack).unwrap());
    // The listing refuses a fan-out directory that is a link: the rebuild
    // fails part way.
    let dir_link: (Hide, Restore) = (
        |pack, aside| {
            let dir = pack.parent().unwrap();
            fs::rename(dir, aside).unwrap();
            std::os::unix::fs::symlink(aside, dir).unwrap();
        },
        |pack, aside| {
            let dir = pack.parent().unwrap();
            fs::remove_file(dir).unwrap();
            fs::rename(aside, dir).unwrap();
        },
    );
    for (case, (hide, restore)) in [("link", link), ("moved", moved), ("directory link", dir_link)] {
        let (r, pack) = with_a_damaged_pack(5);
        let aside = r.root.join("pack-aside");
        hide(&pack, &aside);
        let rebuild = r.snap(["repair", "index"]);
        restore(&pack, &aside);
        let verify = r.snap(["verify"]);
        assert_eq!(verify.code, Some(4), "{case}: after {}:\n{}", rebuild.describe(), verify.describe());
        let repaired = r.json(["repair", "packs"]);
        assert_eq!(repaired["packs"].as_array().unwrap().len(), 1, "{case}: {repaired:#}");
    }
}

/// A repository of ten files whose data pack has one flipped byte, which
/// `verify --read-data` has found (and marked).
fn with_a_damaged_pack(seed: u64) -> (TempRepo, PathBuf) {
    let r = TempRepo::init();
    let mut rng = Rng::new(seed);
    for i in 0..10 {
        write_random(&r.src.join(format!("f{i}")), &mut rng, 20_000);
    }
    r.backup(&[]);
    let pack = common::largest_pack(&r.repo);
    common::flip_byte(&pack, 100_000);
    assert_eq!(r.snap(["verify", "--read-data"]).code, Some(4));
    (r, pack)
}

/// The same without `repair index`: any command run while a damaged pack
/// is moved aside marks it missing, and the pack read again from its
/// trailer when it is back kept none of its marks either.
#[test]
fn a_damaged_pack_moved_aside_and_back_is_still_known_damaged() {
    let (r, pack) = with_a_damaged_pack(6);
    let aside = r.root.join("pack-aside");
    fs::rename(&pack, &aside).unwrap();
    r.snap(["snapshots"]).assert_ok();
    fs::rename(&aside, &pack).unwrap();
    let verify = r.snap(["verify"]);
    assert_eq!(verify.code, Some(4), "{}", verify.describe());
}

/// What may stand at an object's name in place of its file.
#[derive(Clone, Copy, Debug)]
enum Impostor {
    Link,
    Dir,
    Fifo,
}

impl Impostor {
    fn plant(self, at: &Path, real: &Path) {
        match self {
            Impostor::Link => std::os::unix::fs::symlink(real, at).unwrap(),
            Impostor::Dir => fs::create_dir(at).unwrap(),
            Impostor::Fifo => assert!(Command::new("mkfifo").arg(at).status().unwrap().success()),
        }
    }

    fn remove(self, at: &Path) {
        match self {
            Impostor::Dir => fs::remove_dir(at).unwrap(),
            Impostor::Link | Impostor::Fifo => fs::remove_file(at).unwrap(),
        }
    }
}

/// The class of findings 2 and 3: whatever stands at a snapshot's, key's
/// or pack's name that is not a regular file (a link, a directory, a
/// fifo, which would also block a reader) stops every command that reads
/// that kind with one line naming it, before anything is taken as missing or deleted; with
/// the file back, the repository is whole.
#[test]
fn anything_but_a_regular_file_at_an_objects_name_stops_every_command() {
    let r = TempRepo::init_encrypted("pw");
    let mut rng = Rng::new(6);
    write_random(&r.src.join("a"), &mut rng, 80_000);
    write_random(&r.src.join("b"), &mut rng, 80_000);
    r.backup(&[]);
    fs::remove_file(r.src.join("a")).unwrap();
    r.backup(&[]);
    let objects = [
        files_under(&r.repo.join("snapshots"))[0].clone(),
        files_under(&r.repo.join("keys"))[0].clone(),
        common::largest_pack(&r.repo),
    ];
    let aside = r.root.join("aside");
    let src = common::s(&r.src).to_owned();
    let commands: [&[&str]; 6] = [
        &["snapshots"],
        &["verify"],
        &["prune", "--keep", "1"],
        &["repair", "snapshots"],
        &["repair", "index"],
        &["backup", &src],
    ];
    for object in &objects {
        for impostor in [Impostor::Link, Impostor::Dir, Impostor::Fifo] {
            fs::rename(object, &aside).unwrap();
            impostor.plant(object, &aside);
            // `repair index` reads packs only.
            let is_pack = object.starts_with(r.repo.join("data"));
            for args in commands.iter().filter(|a| is_pack || a[..] != ["repair", "index"]) {
                let run = r.snap(*args);
                assert_eq!(run.code, Some(1), "{impostor:?} at {}: {}", object.display(), run.describe());
                let line = run.assert_one_line_error();
                assert!(line.contains(common::s(object)) && line.contains("changed nothing"), "{line}");
            }
            impostor.remove(object);
            fs::rename(&aside, object).unwrap();
            r.snap(["verify", "--read-data"]).assert_clean();
            assert_eq!(r.snapshots().len(), 2);
        }
    }
}

/// Finding 6: a copy made by a tool that keeps no empty directory (git, a
/// round trip through an object store) lacks `data/`, `snapshots/` and
/// `keys/` of a repository that has nothing in them yet; it works as it is.
#[test]
fn a_copy_without_its_empty_directories_works_as_it_is() {
    let r = TempRepo::init();
    for dir in ["data", "snapshots", "keys", "tmp"] {
        let _ = fs::remove_dir(r.repo.join(dir));
    }
    r.snap(["snapshots"]).assert_ok();
    r.snap(["verify"]).assert_clean();
    write_random(&r.src.join("a"), &mut Rng::new(7), 30_000);
    r.backup(&[]);
    r.snap(["verify", "--read-data"]).assert_clean();
    r.snap(["restore", "latest", "--target", common::s(&r.target)]).assert_ok();
    common::assert_trees_equal(&r.src, &r.restored(&r.target, &r.src));
}
