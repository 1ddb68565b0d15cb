//! Storage under injected faults: a backend that fails its N-th put
//! (ENOSPC, as from a full disk, or EIO), or fsyncs nothing it was given
//! after a point (a torn write), or returns short reads. Whatever fails, the
//! backup reports one error, writes no snapshot, and everything committed
//! before stays whole; a short read is an error, never a panic or a wrong
//! byte restored. The same backend records which bytes of which packs are
//! read, to show restore and verify fetch no byte of a pack twice, and how
//! many packs it is storing at once.

use crate::common;

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Rng, TempRepo, write_random};
use snap::backend::local::LocalBackend;
use snap::backend::{Backend, FileKind, LockGuard, LockMode, Pieces, Put, Unlock};
use snap::id::BlobId;
use snap::ops::backup::{BackupOptions, backup};
use snap::ops::restore::{RestoreOptions, restore};
use snap::ops::verify::{ReadData, verify};
use snap::{Error, NoProgress, Repository};

/// How the faulty backend misbehaves once its budget of good puts is spent.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// The put fails with this OS error and leaves nothing behind.
    Errno(i32),
    /// The put leaves a truncated object under the final name and then
    /// fails, as a filesystem that lost the tail of a write might.
    Torn,
}

struct Faulty {
    inner: LocalBackend,
    good_puts: usize,
    puts: AtomicUsize,
    fault: Fault,
    /// Every this many reads of file data (64 KiB or more), one comes back
    /// a byte short (0: never). Smaller reads (trees, snapshots, footers)
    /// stay whole, so the restore gets as far as the data.
    short_read_every: usize,
    reads: AtomicUsize,
    /// How many reads were shortened, seen by the test.
    shortened: Arc<AtomicUsize>,
    /// Every read of pack bytes: (pack, offset, length).
    pack_reads: Arc<Mutex<Vec<(String, u64, u64)>>>,
    /// Pack puts under way, and the most there ever were at once.
    puts_in_flight: AtomicUsize,
    most_puts_in_flight: Arc<AtomicUsize>,
    /// Whether the first pack put waits (a while) for a second one to start.
    hold_first_pack: AtomicBool,
    /// Objects whose next reads fail with EIO, with how many more fail.
    failing_reads: Mutex<HashMap<String, usize>>,
}

impl Faulty {
    fn new(r: &TempRepo, good_puts: usize, fault: Fault) -> Self {
        Faulty {
            inner: r.local_backend(),
            good_puts,
            puts: AtomicUsize::new(0),
            fault,
            short_read_every: 0,
            reads: AtomicUsize::new(0),
            shortened: Arc::default(),
            pack_reads: Arc::default(),
            puts_in_flight: AtomicUsize::new(0),
            most_puts_in_flight: Arc::default(),
            hold_first_pack: AtomicBool::new(false),
            failing_reads: Mutex::default(),
        }
    }

    /// A backend whose first `times` reads of object `name` fail with EIO.
    fn failing_reads_of(r: &TempRepo, name: &str, times: usize) -> Self {
        let backend = Faulty::new(r, usize::MAX, Fault::Errno(0));
        backend.failing_reads.lock().unwrap().insert(name.to_owned(), times);
        backend
    }

    /// Fails this read of `name` if its turn has come.
    fn read_fault(&self, name: &str) -> snap::Result<()> {
        let mut failing = self.failing_reads.lock().unwrap();
        match failing.get_mut(name) {
            Some(left) if *left > 0 => {
                *left -= 1;
                Err(Error::io(
                    PathBuf::from(name),
                    std::io::Error::from_raw_os_error(rustix::io::Errno::IO.raw_os_error()),
                ))
            }
            _ => Ok(()),
        }
    }

    fn record(&self, kind: FileKind, name: &str, offset: u64, len: u64) {
        if kind == FileKind::Pack {
            self.pack_reads.lock().unwrap().push((name.to_owned(), offset, len));
        }
    }

    /// Whether a read of `len` bytes comes back a byte short.
    fn shortens(&self, len: u64) -> bool {
        if self.short_read_every == 0 || len < 64 << 10 {
            return false;
        }
        let n = self.reads.fetch_add(1, Ordering::SeqCst) + 1;
        let short = n.is_multiple_of(self.short_read_every);
        if short {
            self.shortened.fetch_add(1, Ordering::SeqCst);
        }
        short
    }

    /// Shortens a read when its turn has come.
    fn read(&self, result: snap::Result<Vec<u8>>) -> snap::Result<Vec<u8>> {
        let mut data = result?;
        if self.shortens(data.len() as u64) {
            data.pop();
        }
        Ok(data)
    }

    /// Counts a pack put under way; the first one, if asked, waits up to
    /// 5 s for a second to start beside it.
    fn pack_put_begins(&self) {
        let now = self.puts_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_puts_in_flight.fetch_max(now, Ordering::SeqCst);
        if self.hold_first_pack.swap(false, Ordering::SeqCst) {
            let started = Instant::now();
            while self.puts_in_flight.load(Ordering::SeqCst) < 2 && started.elapsed() < Duration::from_secs(5)
            {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

/// A streamed read that ends `short` bytes early.
struct ShortPieces<'a> {
    inner: Box<dyn Pieces + 'a>,
    /// Bytes still to hand over.
    left: u64,
}

impl Pieces for ShortPieces<'_> {
    fn next_piece(&mut self) -> snap::Result<Option<bytes::Bytes>> {
        if self.left == 0 {
            return Ok(None);
        }
        let piece = self.inner.next_piece()?.map(|p| p.slice(..p.len().min(self.left as usize)));
        self.left -= piece.as_ref().map_or(0, |p| p.len() as u64);
        Ok(piece)
    }
}

impl Backend for Faulty {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn exists(&self) -> snap::Result<bool> {
        self.inner.exists()
    }
    fn is_empty(&self) -> snap::Result<bool> {
        self.inner.is_empty()
    }
    fn create(&self) -> snap::Result<()> {
        self.inner.create()
    }
    fn put(&self, kind: FileKind, name: &str, data: bytes::Bytes) -> snap::Result<Put> {
        if kind == FileKind::Pack {
            self.pack_put_begins();
        }
        let result = self.put_or_fail(kind, name, data);
        if kind == FileKind::Pack {
            self.puts_in_flight.fetch_sub(1, Ordering::SeqCst);
        }
        result
    }
    fn get(&self, kind: FileKind, name: &str) -> snap::Result<Vec<u8>> {
        self.read_fault(name)?;
        let data = self.read(self.inner.get(kind, name))?;
        self.record(kind, name, 0, data.len() as u64);
        Ok(data)
    }
    fn get_range(&self, kind: FileKind, name: &str, offset: u64, len: usize) -> snap::Result<Vec<u8>> {
        self.read_fault(name)?;
        self.record(kind, name, offset, len as u64);
        self.read(self.inner.get_range(kind, name, offset, len))
    }
    fn stream_range(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: u64,
    ) -> snap::Result<Box<dyn Pieces + '_>> {
        self.read_fault(name)?;
        self.record(kind, name, offset, len);
        let inner = self.inner.stream_range(kind, name, offset, len)?;
        Ok(Box::new(ShortPieces { inner, left: if self.shortens(len) { len - 1 } else { len } }))
    }
    fn list(&self, kind: FileKind) -> snap::Result<Vec<(String, u64)>> {
        self.inner.list(kind)
    }
    fn remove(&self, kind: FileKind, name: &str) -> snap::Result<()> {
        self.inner.remove(kind, name)
    }
    fn remove_leftovers(&self) -> snap::Result<u64> {
        self.inner.remove_leftovers()
    }
    fn lock(&self, mode: LockMode) -> snap::Result<Box<dyn LockGuard>> {
        self.inner.lock(mode)
    }
    fn unlock(&self, which: Unlock) -> snap::Result<Vec<String>> {
        self.inner.unlock(which)
    }
    fn index_path(&self, repo_id: &str) -> snap::Result<PathBuf> {
        self.inner.index_path(repo_id)
    }
    /// Several packs stored at once, as on a remote store, so a failure
    /// meets other packs on their way.
    fn puts_in_flight(&self) -> usize {
        3
    }
}

impl Faulty {
    fn put_or_fail(&self, kind: FileKind, name: &str, data: bytes::Bytes) -> snap::Result<Put> {
        if self.puts.fetch_add(1, Ordering::SeqCst) < self.good_puts {
            return self.inner.put(kind, name, data);
        }
        let errno = match self.fault {
            Fault::Errno(errno) => errno,
            Fault::Torn => {
                self.inner.put(kind, name, data.slice(..data.len() / 2))?;
                rustix::io::Errno::IO.raw_os_error()
            }
        };
        Err(Error::io(PathBuf::from(name), std::io::Error::from_raw_os_error(errno)))
    }
}

/// A repository whose packs are 1 MiB (the smallest allowed), so a few MiB
/// of data make several packs and every put of a backup can be failed.
fn small_packs_repo() -> TempRepo {
    let r = TempRepo::init();
    let path = r.repo.join("config");
    let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    config["pack_size"] = (1 << 20).into();
    std::fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
    r
}

/// A [`small_packs_repo`] whose source holds `count` random files of
/// `size` bytes named `<prefix><i>`; the generator comes back for more.
fn small_packs_repo_with(seed: u64, prefix: &str, count: usize, size: usize) -> (TempRepo, Rng) {
    let r = small_packs_repo();
    let mut rng = Rng::new(seed);
    for i in 0..count {
        write_random(&r.src.join(format!("{prefix}{i}")), &mut rng, size);
    }
    (r, rng)
}

fn options(r: &TempRepo) -> BackupOptions {
    BackupOptions { paths: vec![r.src.clone()], hostname: "h".into(), ..Default::default() }
}

/// Backs up through a backend that fails after `good_puts` puts.
fn faulty_backup(r: &TempRepo, good_puts: usize, fault: Fault) -> snap::Result<()> {
    let repo = Repository::open(Box::new(Faulty::new(r, good_puts, fault)), LockMode::Shared)?;
    backup(&repo, &options(r), &NoProgress).map(drop)
}

#[test]
fn failed_writes_never_harm_committed_snapshots() {
    let enospc = Fault::Errno(rustix::io::Errno::NOSPC.raw_os_error());
    let eio = Fault::Errno(rustix::io::Errno::IO.raw_os_error());
    for fault in [enospc, eio, Fault::Torn] {
        // Fail the first put, then the second, ... until a backup gets
        // through: every write of the backup is a failure point once.
        for good_puts in 0.. {
            let (r, mut rng) = small_packs_repo_with(7, "first", 6, 300_000);
            r.backup(&[]);
            let committed = r.root.join("committed");
            r.snap(["restore", "latest", "--target", common::s(&committed)]).assert_ok();
            // Enough new data for several 1 MiB packs.
            for i in 0..3 {
                write_random(&r.src.join(format!("second{i}")), &mut rng, 1_500_000);
            }
            let Err(err) = faulty_backup(&r, good_puts, fault) else {
                assert!(
                    good_puts >= 4,
                    "only {good_puts} puts: the test data is too small to exercise the write path"
                );
                break;
            };
            let msg = err.to_string();
            assert!(
                !msg.is_empty() && !msg.contains('\n'),
                "{fault:?}/{good_puts}: one-line error, got {msg:?}"
            );
            // The failure itself is reported, not the work given up after it.
            let errno = match fault {
                Fault::Errno(errno) => errno,
                Fault::Torn => rustix::io::Errno::IO.raw_os_error(),
            };
            let os_text = std::io::Error::from_raw_os_error(errno).to_string();
            let os_text = os_text.split(" (os error").next().unwrap();
            assert!(msg.contains(os_text), "{fault:?}/{good_puts}: {msg:?} does not say {os_text:?}");
            if matches!(fault, Fault::Torn) {
                // A torn snapshot file is reported as damaged; repair removes it.
                r.snap(["repair", "snapshots"]).assert_ok();
            }
            assert_eq!(
                r.snapshots().len(),
                1,
                "{fault:?}/{good_puts}: no snapshot may be written after a failure"
            );
            assert_committed_data_whole(&r, fault);
            let again = r.root.join("again");
            r.snap(["restore", "latest", "--target", common::s(&again)]).assert_ok();
            common::assert_trees_equal(&r.restored(&committed, &r.src), &r.restored(&again, &r.src));
            // The next backup, with a healthy disk, succeeds without manual steps.
            r.backup(&[]);
            assert_committed_data_whole(&r, fault);
        }
    }
}

#[test]
fn full_packs_are_stored_several_at_once() {
    let (r, _) = small_packs_repo_with(15, "f", 6, 1_000_000);
    let backend = Faulty::new(&r, usize::MAX, Fault::Errno(0));
    backend.hold_first_pack.store(true, Ordering::SeqCst);
    let most = Arc::clone(&backend.most_puts_in_flight);
    let repo = Repository::open(Box::new(backend), LockMode::Shared).unwrap();
    let report = backup(&repo, &options(&r), &NoProgress).unwrap();
    assert!(report.packs_written >= 4, "{} packs", report.packs_written);
    // The first pack waited for a second one: two storing threads at work.
    assert!(most.load(Ordering::SeqCst) >= 2, "one pack stored at a time");
    drop(repo);
    r.snap(["verify", "--read-data"]).assert_ok();
}

/// `verify --read-data` passes, except that a torn write may have left a
/// damaged pack that no snapshot uses: verify must name it, and nothing
/// any snapshot needs may be affected.
fn assert_committed_data_whole(r: &TempRepo, fault: Fault) {
    let run = r.snap(["--json", "verify", "--read-data"]);
    let report = &run.json()["report"];
    if !matches!(fault, Fault::Torn) {
        run.assert_ok();
        return;
    }
    assert_eq!(report["affected"].as_array().unwrap().len(), 0, "{report:#}");
    for problem in report["problems"].as_array().unwrap() {
        assert!(problem["object"].as_str().unwrap().starts_with("pack "), "{report:#}");
    }
}

#[test]
fn short_reads_are_errors_and_never_restore_a_wrong_byte() {
    let (r, _) = small_packs_repo_with(9, "f", 8, 400_000);
    r.backup(&[]);
    for every in [1, 2, 3, 5] {
        let backend = Faulty { short_read_every: every, ..Faulty::new(&r, usize::MAX, Fault::Errno(0)) };
        let shortened = Arc::clone(&backend.shortened);
        let Ok(repo) = Repository::open(Box::new(backend), LockMode::Shared) else { continue };
        let target = r.root.join(format!("short{every}"));
        let restored = repo.resolve("latest").and_then(|(_, snap)| {
            let opts = RestoreOptions { target: target.clone(), ..Default::default() };
            restore(&repo, &snap, &opts, &NoProgress)
        });
        let hit = shortened.swap(0, Ordering::SeqCst) > 0;
        if let (Ok(report), true) = (&restored, hit) {
            assert!(report.incomplete, "every {every}: short reads went unnoticed");
        }
        // Whatever was written is exactly the source.
        let written = if target.exists() { common::list_tree(&target) } else { Vec::new() };
        for path in written.into_iter().filter(|p| target.join(p).is_file()) {
            let source = r.src.join(path.file_name().unwrap());
            assert_eq!(
                std::fs::read(target.join(&path)).unwrap(),
                std::fs::read(source).unwrap(),
                "every {every}"
            );
        }
        let verified = verify(&repo, ReadData::All, &NoProgress);
        if let (Ok(report), true) = (verified, shortened.load(Ordering::SeqCst) > 0) {
            assert!(!report.ok(), "every {every}: verify missed the short reads");
            // The storage misbehaved; the packs are whole.
            assert!(report.problems.is_empty(), "every {every}: {:?}", report.problems);
        }
    }
}

/// A read of a format 3 pack that stops short inside its padding envelope
/// (the stream of the bytes before the trailer ends a byte early) proves
/// nothing about the padding: verify cannot tell, no pack is marked, and
/// `repair packs` leaves every pack where it is.
#[test]
fn a_short_read_of_padding_marks_nothing_for_repair() {
    let password = "short reads";
    let r = TempRepo::init_encrypted(password);
    write_random(&r.src.join("f"), &mut Rng::new(15), 1000);
    r.backup(&[]);
    let before = common::repo_files(&r.repo);
    let backend = Faulty { short_read_every: 1, ..Faulty::new(&r, usize::MAX, Fault::Errno(0)) };
    let shortened = Arc::clone(&backend.shortened);
    let unlock = || Ok(snap::crypto::keyfile::Password::new(password.to_owned()));
    let repo = Repository::open_with(Box::new(backend), LockMode::Exclusive, &unlock).unwrap();
    let report = verify(&repo, ReadData::All, &NoProgress).unwrap();
    assert!(shortened.load(Ordering::SeqCst) > 0, "no read was shortened");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(!report.unverified.is_empty(), "verify missed the short reads");
    assert!(report.damaged_padding.is_empty(), "{:?}", report.damaged_padding);
    let repaired = snap::ops::repair::repair_packs(&repo, false, &NoProgress).unwrap();
    assert!(repaired.packs.is_empty(), "{:?}", repaired.packs);
    drop(repo);
    assert_eq!(common::repo_files(&r.repo), before);
}

/// Asserts no byte of any pack was read twice; returns how many packs were read.
#[track_caller]
fn assert_no_byte_read_twice(reads: &Mutex<Vec<(String, u64, u64)>>, what: &str) -> usize {
    let mut reads = std::mem::take(&mut *reads.lock().unwrap());
    reads.sort();
    for pair in reads.windows(2) {
        let ((a, a_off, a_len), (b, b_off, _)) = (&pair[0], &pair[1]);
        assert!(a != b || a_off + a_len <= *b_off, "{what} read bytes of pack {a} twice: {pair:?}");
    }
    reads.dedup_by(|x, y| x.0 == y.0);
    reads.len()
}

#[test]
fn restore_and_verify_fetch_no_byte_of_a_pack_twice() {
    let (r, _) = small_packs_repo_with(12, "f", 10, 500_000);
    // The same contents twice: restore needs their chunks in two places.
    std::fs::copy(r.src.join("f0"), r.src.join("copy-of-f0")).unwrap();
    r.backup(&[]);
    let backend = Faulty::new(&r, usize::MAX, Fault::Errno(0));
    let reads = Arc::clone(&backend.pack_reads);
    let repo = Repository::open(Box::new(backend), LockMode::Shared).unwrap();
    let packs = repo.packs().unwrap().len();
    assert!(packs >= 4, "only {packs} packs");
    reads.lock().unwrap().clear();

    let (_, snap) = repo.resolve("latest").unwrap();
    let opts = RestoreOptions { target: r.target.clone(), ..Default::default() };
    let report = restore(&repo, &snap, &opts, &NoProgress).unwrap();
    assert!(!report.incomplete);
    assert!(assert_no_byte_read_twice(&reads, "restore") >= packs - 1);

    // Verify walks the trees (small ranged reads of the tree packs) before
    // it reads every pack whole; no data pack is fetched twice.
    let report = verify(&repo, ReadData::All, &NoProgress).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let tree_packs: Vec<String> = repo
        .packs()
        .unwrap()
        .keys()
        .filter(|p| repo.pack_entries(p).unwrap().iter().all(|e| matches!(e.blob, BlobId::Tree(_))))
        .map(|p| p.to_hex())
        .collect();
    assert!(!tree_packs.is_empty() && tree_packs.len() < packs);
    reads.lock().unwrap().retain(|(pack, _, _)| !tree_packs.contains(pack));
    assert_eq!(assert_no_byte_read_twice(&reads, "verify --read-data"), packs - tree_packs.len());
}

/// The real binary, its local backend failing the Nth fsync for each N in
/// turn: the backup ends with one line and no snapshot, and the repository
/// stays whole.
#[test]
fn an_fsync_error_ends_the_backup_and_harms_nothing() {
    let (r, mut rng) = small_packs_repo_with(13, "kept", 3, 700_000);
    r.backup(&[]);
    let committed = r.snapshots();
    let mut failed = 0;
    for n in 1.. {
        assert!(n < 100, "the backup never got past its fsyncs");
        write_random(&r.src.join(format!("new{n}")), &mut rng, 700_000);
        let mut cmd = r.command();
        cmd.env(snap::crash::FSYNC_FAULT_ENV, n.to_string());
        let run = common::run_command(cmd, ["backup", common::s(&r.src)]);
        if run.code == Some(0) {
            break;
        }
        assert!(run.assert_one_line_error().contains("Input/output error"), "fsync {n}: {run:?}");
        assert_eq!(r.snapshots().len(), committed.len(), "fsync {n}: a failed backup committed a snapshot");
        r.snap(["verify", "--read-data"]).assert_ok();
        failed += 1;
    }
    assert!(failed >= 5, "only {failed} fsyncs in a backup of several packs");
    r.snap(["verify", "--read-data"]).assert_clean();
    r.snap(["restore", "latest", "--target", common::s(&r.target)]).assert_clean();
    common::assert_trees_equal(&r.src, &r.restored(&r.target, &r.src));
}

/// A repository with one snapshot of `d/a` and `d/b`, and the names of a
/// pack holding only their chunks and of one holding only trees.
fn repo_with_packs() -> (TempRepo, String, String) {
    let r = small_packs_repo();
    fs::create_dir(r.src.join("d")).unwrap();
    let mut rng = Rng::new(41);
    write_random(&r.src.join("d/a"), &mut rng, 200_000);
    write_random(&r.src.join("d/b"), &mut rng, 200_000);
    r.backup(&[]);
    let repo = Repository::open(Box::new(r.local_backend()), LockMode::Shared).unwrap();
    let packs = repo.packs().unwrap();
    let only = |tree: bool| {
        let pack = packs.keys().find(|p| {
            let entries = repo.pack_entries(p).unwrap();
            entries.iter().all(|e| matches!(e.blob, BlobId::Tree(_)) == tree)
        });
        pack.expect("a pack of one kind").to_hex()
    };
    let (chunks, trees) = (only(false), only(true));
    drop(repo);
    (r, chunks, trees)
}

/// Opens the repository with reads of `name` failing once. An exclusive
/// open is retried for a while: the flock of the open before it lives on,
/// for an instant, in any child another test of this process forked then
/// (until that child's exec closes it).
fn open_failing(r: &TempRepo, name: &str, mode: LockMode) -> Repository {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match Repository::open(Box::new(Faulty::failing_reads_of(r, name, 1)), mode) {
            Err(Error::Locked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            opened => return opened.unwrap(),
        }
    }
}

/// Rule 1: one EIO on a healthy pack proves nothing. Verify says it cannot
/// tell, and repair, prune and copy stop without changing anything (before,
/// `repair snapshots` dropped both files and forgot the snapshot).
#[test]
fn a_read_error_proves_no_damage_and_changes_nothing() {
    let (r, chunk_pack, tree_pack) = repo_with_packs();
    let before = common::repo_files(&r.repo);
    for (read, pack) in
        [(ReadData::None, &chunk_pack), (ReadData::All, &chunk_pack), (ReadData::None, &tree_pack)]
    {
        let repo = open_failing(&r, pack, LockMode::Exclusive);
        let report = verify(&repo, read, &NoProgress).unwrap();
        let what = format!("{read:?} {pack}");
        assert!(report.problems.is_empty(), "{what}: an I/O error is no damage: {:?}", report.problems);
        assert!(report.damaged.is_empty() && report.affected.is_empty(), "{what}");
        assert_eq!(report.unverified.len(), 1, "{what}: {:?}", report.unverified);
        assert!(!report.ok() && !report.complete());
        let err = snap::ops::repair::repair_snapshots(&repo, &report, false).unwrap_err();
        assert!(matches!(err, Error::CannotTell(_)), "{what}: {err}");
        assert!(err.to_string().starts_with("cannot tell, nothing changed"), "{err}");
    }
    let repo = open_failing(&r, &tree_pack, LockMode::Exclusive);
    let err = snap::ops::prune::prune(&repo, &Default::default(), &NoProgress).unwrap_err();
    assert!(matches!(err, Error::CannotTell(_)), "prune: {err}");
    drop(repo);

    let dst = TempRepo::init();
    let dst_repo = Repository::open(Box::new(dst.local_backend()), LockMode::Shared).unwrap();
    let src_repo = open_failing(&r, &chunk_pack, LockMode::Shared);
    let err = snap::ops::copy::copy(&src_repo, &dst_repo, &[], &NoProgress).unwrap_err();
    assert!(!err.proves_damage(), "copy: {err}");
    drop((src_repo, dst_repo));
    assert!(dst.snapshots().is_empty(), "copy wrote a snapshot after a read error");

    assert_eq!(common::repo_files(&r.repo), before, "a read error changed the repository");
    r.snap(["verify", "--read-data"]).assert_ok();
    assert_eq!(r.snapshots()[0]["summary"]["files"], 2);
}

/// Rule 1 with a fresh index (a new host, a lost cache, `repair index`):
/// one EIO on a healthy pack's trailer leaves it out of the index, so what
/// it holds is in no indexed pack, which proves nothing either. Reads
/// fail without a hole, verify cannot tell, repair and prune stop (before,
/// ls and restore left directories out as damaged, verify exited 4).
#[test]
fn a_pack_unread_by_a_fresh_index_proves_nothing_missing() {
    let (r, chunk_pack, tree_pack) = repo_with_packs();
    let before = common::repo_files(&r.repo);
    for pack in [&chunk_pack, &tree_pack] {
        fs::remove_dir_all(r.home.join("cache")).unwrap();
        let repo = open_failing(&r, pack, LockMode::Exclusive);
        assert_eq!(repo.unindexed_packs().len(), 1, "{pack}");
        let report = verify(&repo, ReadData::None, &NoProgress).unwrap();
        assert!(report.problems.is_empty(), "{pack}: an I/O error is no damage: {:?}", report.problems);
        assert!(report.damaged.is_empty() && report.affected.is_empty(), "{pack}");
        assert!(!report.unverified.is_empty(), "{pack}");
        let err = snap::ops::repair::repair_snapshots(&repo, &report, false).unwrap_err();
        assert!(matches!(err, Error::CannotTell(_)), "{pack}: {err}");
        let err = snap::ops::prune::prune(&repo, &Default::default(), &NoProgress).unwrap_err();
        assert!(matches!(err, Error::CannotTell(_)), "{pack}: prune: {err}");
        let (_, snapshot) = repo.resolve("latest").unwrap();
        let store = snap::tree::WithHoles::new(&repo);
        let mut blobs_read = Ok(());
        let walked = snap::tree::walk(&store, snapshot.tree, &mut Vec::new(), &mut |_, entry| {
            if let snap::format::tree::Node::File { chunks, .. } = &entry.node {
                for c in chunks {
                    if let Err(e) = repo.read_blob(&BlobId::Chunk(*c)) {
                        blobs_read = Err(e);
                    }
                }
            }
            Ok(())
        });
        let err = walked.err().or(blobs_read.err()).expect("something of the pack is needed");
        assert!(!err.proves_damage(), "{pack}: {err}");
        assert!(store.into_holes().is_empty(), "{pack}: an unread pack made a hole");
    }
    assert_eq!(common::repo_files(&r.repo), before, "a read error changed the repository");
    r.snap(["verify", "--read-data"]).assert_ok();
}

/// Rule 1: an object of a newer format proves nothing. A snapshot whose
/// tree, and a snapshot file, of a newer version were written by a newer
/// snap are left alone: verify cannot tell, repair changes nothing (before,
/// it emptied the directory and deleted the snapshot file).
#[test]
fn objects_of_a_newer_format_are_not_damage() {
    let (r, _, _) = repo_with_packs();
    let repo = Repository::open(Box::new(r.local_backend()), LockMode::Shared).unwrap();
    let newer_tree = [9u8, 0, 0, 0];
    let tree = repo.keys().hasher().tree_id(&newer_tree);
    let (_, _, durable) =
        snap::repo::BlobWriter::write(&repo, |w| w.save(BlobId::Tree(tree), &newer_tree)).unwrap();
    durable
        .save_snapshot(&snap::format::snapshot::Snapshot::new(snap::format::Timestamp::now(), tree))
        .unwrap();
    drop(repo);
    // A snapshot file whose header says version 2.
    let snapshots = r.repo.join("snapshots");
    let old = fs::read_dir(&snapshots).unwrap().next().unwrap().unwrap().path();
    let mut bytes = fs::read(&old).unwrap();
    bytes[4] = 2;
    fs::write(snapshots.join(snap::hash::snapshot_id(&bytes).to_hex()), &bytes).unwrap();
    let before = common::repo_files(&r.repo);

    let run = r.snap(["--json", "verify"]);
    assert_eq!(run.code, Some(1), "{}", run.describe());
    let report = &run.json()["report"];
    assert_eq!(report["problems"], serde_json::json!([]), "{report:#}");
    let unverified = report["unverified"].as_array().unwrap();
    assert_eq!(unverified.len(), 2, "{report:#}");
    assert!(unverified.iter().all(|p| p["detail"].as_str().unwrap().contains("newer")), "{report:#}");
    let run = r.snap(["repair", "snapshots"]);
    assert_eq!(run.code, Some(1), "{}", run.describe());
    assert!(run.stderr.contains("cannot tell, nothing changed"), "{}", run.describe());
    assert_eq!(common::repo_files(&r.repo), before, "repair changed a repository it cannot read whole");
}

/// Mounts a tmpfs of `size` (as `mount -o size=`) at `dir`; unmounted when
/// dropped. Needs root, as CI runs.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &std::path::Path, size: &str) -> Self {
        fs::create_dir_all(dir).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "none"])
            .arg(dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mounting a tmpfs needs root, as CI runs");
        SmallDisk(dir.to_owned())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// A restore onto a full file system stops at the first ENOSPC with one
/// line saying how far it got (it went on and printed a warning per file),
/// and every file it leaves is whole.
#[test]
fn a_restore_onto_a_full_disk_stops_at_once_leaving_only_whole_files() {
    let r = TempRepo::init();
    let mut rng = Rng::new(77);
    for i in 0..40 {
        write_random(&r.src.join(format!("f{i:02}")), &mut rng, 100_000);
    }
    r.backup(&[]);
    let _disk = SmallDisk::mount(&r.target, "1m");
    let run = r.snap(["restore", "latest", "--target", common::s(&r.target)]);
    assert_eq!(run.code, Some(1), "{}", run.describe());
    let line = run.assert_one_line_error();
    assert!(line.contains("restore stopped, the target is full"), "{line}");
    assert!(line.contains("not written"), "{line}");
    let restored = r.restored(&r.target, &r.src);
    let left: Vec<_> = fs::read_dir(&restored).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(left.len() < 40, "a 1 MiB disk holds 40 files of 100 kB: {}", left.len());
    for path in left {
        assert_eq!(fs::read(&path).unwrap(), fs::read(r.src.join(path.file_name().unwrap())).unwrap());
    }
}

/// A repository on a full disk: the backup that fails leaves no staging
/// file behind (it kept the disk full), and prune, which frees space, runs
/// on a disk without a free byte (the index could not open there).
#[test]
fn a_full_repository_disk_keeps_no_leftovers_and_prune_frees_it() {
    let dir = tempfile::tempdir().unwrap();
    let _disk = SmallDisk::mount(dir.path(), "6m");
    let r = TempRepo::init();
    let repo_dir = dir.path().join("repo");
    let run = r.snap(["--repo", common::s(&repo_dir), "init"]);
    run.assert_ok();
    let mut rng = Rng::new(78);
    write_random(&r.src.join("first"), &mut rng, 3_000_000);
    r.snap(["--repo", common::s(&repo_dir), "backup", common::s(&r.src)]).assert_ok();
    write_random(&r.src.join("second"), &mut rng, 4_000_000);
    let run = r.snap(["--repo", common::s(&repo_dir), "backup", common::s(&r.src)]);
    assert_ne!(run.code, Some(0), "{}", run.describe());
    assert!(run.stderr.contains("No space left"), "{}", run.describe());
    let staged: Vec<_> = fs::read_dir(repo_dir.join("tmp")).unwrap().collect();
    assert!(staged.is_empty(), "staging files left on a full disk: {staged:?}");
    fs::remove_file(r.src.join("second")).unwrap();
    fs::remove_file(r.src.join("first")).unwrap();
    r.snap(["--repo", common::s(&repo_dir), "forget", "latest"]).assert_ok();
    let mut filler = fs::File::create(dir.path().join("filler")).unwrap();
    let full = loop {
        if let Err(e) = std::io::Write::write_all(&mut filler, &[1; 4096]) {
            break e;
        }
    };
    assert_eq!(full.raw_os_error(), Some(rustix::io::Errno::NOSPC.raw_os_error()));
    let pruned = r.json(["--repo", common::s(&repo_dir), "prune"]);
    assert!(pruned["report"]["packs_deleted"].as_u64().unwrap() >= 1, "{pruned:#}");
    r.snap(["--repo", common::s(&repo_dir), "verify"]).assert_ok();
}

/// A restore stopped by a full target removes only files it began: what
/// was there before and was never reached stays as it was (every file the
/// plan would replace was deleted).
#[test]
fn a_restore_stopped_by_a_full_disk_leaves_files_it_never_reached() {
    let r = TempRepo::init();
    for i in 0..10 {
        fs::write(r.src.join(format!("a{i}")), format!("new a{i}")).unwrap();
        fs::write(r.src.join(format!("z{i}")), format!("new z{i}")).unwrap();
    }
    r.backup(&[]);
    let _disk = SmallDisk::mount(&r.target, "10m,nr_inodes=16");
    let restored = r.target.join(r.src.strip_prefix("/").unwrap());
    fs::create_dir_all(&restored).unwrap();
    for i in 0..10 {
        fs::write(restored.join(format!("z{i}")), format!("old z{i}")).unwrap();
    }
    let run = r.snap(["restore", "latest", "--target", common::s(&r.target), "--no-safety-snapshot"]);
    assert_eq!(run.code, Some(1), "{}", run.describe());
    let mut old = 0;
    for i in 0..10 {
        let name = format!("z{i}");
        match fs::read_to_string(restored.join(&name)) {
            Ok(text) if text == format!("old {name}") => old += 1,
            Ok(text) => assert_eq!(text, format!("new {name}"), "a file is old or new, whole"),
            Err(_) => {}
        }
    }
    assert!(old > 0, "every file the restore would replace is gone: {}", run.describe());
}

/// A target without inodes left stops the restore with one line wherever
/// it runs out: making the directories, or the symlinks after the files
/// (it went on and printed a warning per symlink).
#[test]
fn a_restore_out_of_inodes_stops_at_once_at_directories_and_symlinks() {
    let r = TempRepo::init();
    fs::write(r.src.join("file"), "contents").unwrap();
    for i in 0..60 {
        std::os::unix::fs::symlink("file", r.src.join(format!("link{i:02}"))).unwrap();
    }
    r.backup(&[]);
    let deep = TempRepo::init();
    let mut dir = deep.src.clone();
    for i in 0..60 {
        dir = dir.join(format!("d{i}"));
    }
    fs::create_dir_all(&dir).unwrap();
    deep.backup(&[]);

    for (repo, what) in [(&r, "symlinks"), (&deep, "directories")] {
        let _disk = SmallDisk::mount(&repo.target, "10m,nr_inodes=20");
        let run = repo.snap(["restore", "latest", "--target", common::s(&repo.target)]);
        assert_eq!(run.code, Some(1), "{what}: {}", run.describe());
        let line = run.assert_one_line_error();
        assert!(line.contains("restore stopped, the target is full"), "{what}: {line}");
        assert!(line.contains("not written"), "{what}: {line}");
        if what == "symlinks" {
            let restored = r.restored(&r.target, &r.src);
            assert_eq!(fs::read(restored.join("file")).unwrap(), b"contents", "files come before symlinks");
        }
    }
}

/// A stopped restore counts as whole only files it created and wrote:
/// empty files it never reached were counted "restored whole".
#[test]
fn a_restore_out_of_inodes_counts_only_files_it_made() {
    let r = TempRepo::init();
    for i in 0..40 {
        fs::write(r.src.join(format!("empty{i:02}")), "").unwrap();
    }
    r.backup(&[]);
    let _disk = SmallDisk::mount(&r.target, "10m,nr_inodes=20");
    let run = r.snap(["--json", "restore", "latest", "--target", common::s(&r.target)]);
    assert_eq!(run.code, Some(1), "{}", run.describe());
    let line = run.assert_one_line_error();
    let whole: usize = line.split(": ").last().unwrap().split(' ').next().unwrap().parse().unwrap();
    let made = fs::read_dir(r.restored(&r.target, &r.src)).map_or(0, |d| d.count());
    assert_eq!(whole, made, "{line}");
}
