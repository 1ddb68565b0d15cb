//! Directories of any size: one too large for a single tree node is stored
//! as pages (tree version 3), and every command reads it whole. The page
//! size is lowered through `SNAP_TEST_TREE_PAGE_BYTES` so that a directory
//! of a few thousand entries is paged; at the real size (16 MiB) that takes
//! some 150,000 entries. Issue 15, item 7.

use std::fs;

use crate::common::*;
use snap::backend::LockMode;
use snap::format::tree::{Node, Page, Stored, TREE_VERSION_PAGED, Tree};
use snap::id::BlobId;
use snap::repo::Repository;
use snap::tree::Found;

const FILES: usize = 3_000;

fn paged_repo(storage: Storage) -> TempRepo {
    let mut r = TempRepo::init_on(storage);
    r.env.push(("SNAP_TEST_TREE_PAGE_BYTES".into(), "4096".into()));
    r
}

/// A directory `big` of FILES small files, a subdirectory and a symlink.
fn fill(r: &TempRepo) {
    let big = r.src.join("big");
    fs::create_dir_all(big.join("sub")).unwrap();
    for i in 0..FILES {
        fs::write(big.join(format!("f{i:05}")), format!("file {i}")).unwrap();
    }
    fs::write(big.join("sub").join("inner"), "inner").unwrap();
    std::os::unix::fs::symlink("f00001", big.join("link")).unwrap();
}

/// The latest snapshot's `big`: its node as stored, and its pages.
fn stored_big(r: &TempRepo) -> (Vec<u8>, Vec<Page>, Repository) {
    let repo = Repository::open(Box::new(r.local_backend()), LockMode::Shared).unwrap();
    let (_, snap) = repo.resolve("latest").unwrap();
    let mut path: Vec<Vec<u8>> =
        r.src.components().skip(1).map(|c| c.as_os_str().as_encoded_bytes().to_vec()).collect();
    path.push(b"big".to_vec());
    let Found::Entry(entry) = snap::tree::find(&repo, snap.tree, &path).unwrap() else { panic!("no big") };
    let Node::Dir { tree } = entry.node else { panic!("big is not a directory") };
    assert_eq!(repo.load_tree(&tree).unwrap().entries.len(), FILES + 2);
    let raw = repo.read_blob(&BlobId::Tree(tree)).unwrap();
    let pages = match Tree::decode_stored(&raw).unwrap() {
        Stored::Paged(pages) => pages,
        Stored::Whole(_) => Vec::new(),
    };
    (raw, pages, repo)
}

#[test]
fn a_paged_directory_backs_up_restores_and_survives_every_command() {
    for storage in storages() {
        let r = paged_repo(storage);
        fill(&r);
        r.backup(&[]);
        if r.s3.is_none() {
            let (node, pages, _) = stored_big(&r);
            assert_eq!(node[0], TREE_VERSION_PAGED);
            assert!(pages.len() > 10, "the directory is stored as pages: {}", pages.len());
        }
        // An unchanged directory gets the same pages: nothing new is stored.
        // (At most the small nodes of the source's ancestors are new: other
        // processes change the times of /tmp.)
        let again = r.backup(&[]);
        assert!(summary(&again, "new_bytes") < 1024, "{again:#}");
        r.snap(["restore", "latest", "--target", s(&r.target)]).assert_ok();
        assert_trees_equal(&r.src, &r.restored(&r.target, &r.src));
        // One change: a new page for that file, the others deduplicated.
        fs::write(r.src.join("big/f01500"), "changed").unwrap();
        let changed = r.backup(&[]);
        assert!(summary(&changed, "new_bytes") < 20_000, "one page, not all of them: {changed:#}");

        let ls = r.snap(["ls", "latest"]);
        ls.assert_ok();
        assert_eq!(ls.stdout.lines().filter(|l| l.contains("/big/f")).count(), FILES, "{}", ls.stderr);
        let found = r.snap(["find", "f02999"]);
        found.assert_ok();
        assert!(found.stdout.contains("big/f02999"), "{}", found.stdout);
        let diff = r.snap(["diff", "latest~1", "latest"]);
        diff.assert_ok();
        let changed: Vec<&str> = diff.stdout.lines().filter(|l| l.contains("/big/")).collect();
        assert!(changed.len() == 1 && changed[0].contains("f01500"), "{}", diff.stdout);
        let dump = r.root.join("dump.tar");
        r.snap(["dump", "latest", "--format", "tar", "--output", s(&dump)]).assert_ok();

        // Forgetting the older snapshots frees their pages only: prune
        // keeps every page the kept snapshot needs.
        // Pages shared by the two versions of the directory count once: the
        // second version adds one page and a few small nodes, not a copy.
        let trees = |args: &[&str]| {
            let mut all = vec!["stats"];
            all.extend_from_slice(args);
            r.json(all)["tree_stored_bytes"].as_u64().unwrap()
        };
        let (latest, both) = (trees(&["latest"]), trees(&[]));
        assert!(both > latest && both < latest * 3 / 2, "{both} bytes for both, {latest} for the latest");
        r.snap(["prune", "--keep", "1"]).assert_ok();
        r.snap(["verify", "--read-data"]).assert_ok();
        let stats = r.json(["stats"]);
        assert!(stats["tree_stored_bytes"].as_u64().unwrap() > 4096 * 2, "{stats:#}");

        let target = r.root.join("after-prune");
        r.snap(["restore", "latest", "--target", s(&target)]).assert_ok();
        assert_trees_equal(&r.src, &r.restored(&target, &r.src));

        // Copy moves the pages with the node; the destination reads it.
        let dst = TempRepo::init();
        r.snap(["copy", "--to", s(&dst.repo)]).assert_ok();
        dst.snap(["verify", "--read-data"]).assert_ok();
        let copied = dst.root.join("copied");
        dst.snap(["restore", "latest", "--target", s(&copied)]).assert_ok();
        assert_trees_equal(&r.src, &dst.restored(&copied, &r.src));
    }
}

/// A damaged page of a large directory loses only its own entries: verify
/// names the directory and the page's range, and restore and ls give back
/// every entry of the other pages, name the lost range and exit 3 (before,
/// the whole directory was a hole).
#[test]
fn a_damaged_page_loses_only_its_own_entries() {
    let r = paged_repo(Storage::Local);
    fill(&r);
    r.backup(&[]);
    let (_, pages, repo) = stored_big(&r);
    let lost = pages[pages.len() / 2].clone();
    let page = repo.locate(&BlobId::Tree(lost.tree)).unwrap();
    drop(repo);
    let pack = pack_files(&r.repo)[&page.pack.to_hex()].clone();
    flip_byte(&pack, u64::from(page.entry.offset) + u64::from(page.entry.stored_len) / 2);
    let (first, last) = (String::from_utf8(lost.first).unwrap(), String::from_utf8(lost.last).unwrap());
    let range = format!("{} entries from {first} to {last}", lost.count);

    let run = r.snap(["--json", "verify", "--read-data"]);
    assert_eq!(run.code, Some(4), "{}", run.describe());
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let affected = report["report"]["affected"].as_array().unwrap();
    let big = format!("{}/big", s(&r.src));
    assert!(
        affected.iter().any(|a| a["path"] == big.as_str() && a["entries"] == range.as_str()),
        "{report:#}"
    );
    // The chunks of that directory's intact pages are not known: no pack
    // may be called unused (the chunk pack was, "harmless, prune removes it").
    assert_eq!(report["report"]["unused_packs"], serde_json::json!([]), "{report:#}");

    let in_range = |name: &str| name >= first.as_str() && name <= last.as_str();
    let run = r.snap(["restore", "latest", "--target", s(&r.target)]);
    assert_eq!(run.code, Some(3), "{}", run.describe());
    assert!(run.stderr.contains(&range), "the lost entries are named: {}", run.describe());
    let restored = r.restored(&r.target, &r.src).join("big");
    for entry in fs::read_dir(r.src.join("big")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let back = restored.join(&name);
        if in_range(&name) {
            assert!(fs::symlink_metadata(&back).is_err(), "{name} was in the lost page");
        } else if name.starts_with('f') {
            assert_eq!(fs::read(&back).unwrap(), fs::read(r.src.join("big").join(&name)).unwrap(), "{name}");
        }
    }
    assert_eq!(fs::read(restored.join("sub/inner")).unwrap(), b"inner");

    let ls = r.snap(["ls", "latest"]);
    assert_eq!(ls.code, Some(3), "{}", ls.describe());
    let listed = ls.stdout.lines().filter(|l| l.contains("/big/f")).count();
    assert_eq!(listed as u64, FILES as u64 - lost.count, "{}", ls.stderr);
    assert!(ls.stderr.contains(&range), "{}", ls.stderr);
}
