//! End to end: a first backup, a no-change backup, and a restore of a
//! generated tree (~2,000 small files in 40 directories plus a few MiB-sized
//! files, half text-like and half incompressible) into a local repository.

use std::path::Path;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use snap::backend::local::LocalBackend;
use snap::ops::backup::{BackupOptions, ParentChoice, backup};
use snap::ops::restore::{RestoreOptions, restore};
use snap::repo::Protection;
use snap::{NoProgress, Repository};

mod common;

/// Writes the source tree; returns its total size in bytes.
fn make_tree(root: &Path) -> u64 {
    let mut rng = common::Rng::new(5);
    let mut total = 0u64;
    for d in 0..40 {
        let dir = root.join(format!("dir{d:02}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..50 {
            let len = 256 + rng.below(16 << 10) as usize;
            let seed = (d * 50 + f) as u64;
            let data =
                if f % 5 == 0 { common::random_bytes(len, seed) } else { common::text_bytes(len, seed) };
            std::fs::write(dir.join(format!("file{f:02}.txt")), &data).unwrap();
            total += len as u64;
        }
    }
    let big = root.join("big");
    std::fs::create_dir_all(&big).unwrap();
    for i in 0..4u64 {
        let len = (2 + i as usize) << 20;
        let data =
            if i % 2 == 0 { common::text_bytes(len, 1000 + i) } else { common::random_bytes(len, 1000 + i) };
        std::fs::write(big.join(format!("big{i}.bin")), &data).unwrap();
        total += len as u64;
    }
    total
}

fn options(src: &Path, repo_dir: &Path, parent: ParentChoice) -> BackupOptions {
    BackupOptions {
        paths: vec![src.to_path_buf()],
        parent,
        repository_dir: Some(repo_dir.to_path_buf()),
        hostname: "bench".into(),
        username: "bench".into(),
        ..Default::default()
    }
}

fn backup_restore(c: &mut Criterion) {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    let bytes = make_tree(&src);
    eprintln!("source tree: 2004 files, {:.1} MiB", bytes as f64 / (1 << 20) as f64);

    let mut g = c.benchmark_group("backup_restore");
    g.sample_size(10).measurement_time(Duration::from_secs(15)).throughput(Throughput::Bytes(bytes));

    // Each iteration gets a fresh directory; it is removed (untimed) when
    // the returned guard drops.
    g.bench_function("first_backup", |b| {
        b.iter_batched(
            || {
                let tmp = tempfile::tempdir_in(work.path()).unwrap();
                let dir = tmp.path().join("repo");
                let backend = LocalBackend::with_cache_dir(&dir, tmp.path().join("cache"));
                (Repository::init(Box::new(backend), Protection::None).unwrap(), dir, tmp)
            },
            |(repo, dir, tmp)| {
                backup(&repo, &options(&src, &dir, ParentChoice::Ignore), &NoProgress).unwrap();
                (repo, tmp)
            },
            BatchSize::PerIteration,
        )
    });

    // One repository holding the tree, for the no-change backup and restores.
    let dir = work.path().join("repo");
    let backend = LocalBackend::with_cache_dir(&dir, work.path().join("cache"));
    let repo = Repository::init(Box::new(backend), Protection::None).unwrap();
    let first = backup(&repo, &options(&src, &dir, ParentChoice::Ignore), &NoProgress).unwrap();
    g.bench_function("no_change_backup", |b| {
        b.iter(|| {
            backup(
                &repo,
                &options(
                    &src,
                    &dir,
                    ParentChoice::Id(first.snapshot.expect("a first backup writes a snapshot")),
                ),
                &NoProgress,
            )
            .unwrap()
        })
    });

    let snapshot = repo.load_snapshot(&first.snapshot.expect("a first backup writes a snapshot")).unwrap();
    // Restored trees are kept until the end: deleting thousands of files
    // between iterations makes ext4's inode allocator slow for the next
    // iteration's creates (`recently_deleted`), which is not restore's cost.
    let mut restored = Vec::new();
    g.bench_function("restore", |b| {
        b.iter_batched(
            || tempfile::tempdir_in(work.path()).unwrap(),
            |tmp| {
                let opts = RestoreOptions { target: tmp.path().join("target"), ..Default::default() };
                let report = restore(&repo, &snapshot, &opts, &NoProgress).unwrap();
                assert!(!report.incomplete);
                restored.push(tmp);
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, backup_restore);
criterion_main!(benches);
