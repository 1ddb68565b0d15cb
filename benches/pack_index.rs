//! Sealing blobs into a 16 MiB pack, and index lookups on a large index.
//!
//! The index is built once per run (1M chunk rows by default; set
//! `SNAP_BENCH_INDEX_ROWS=10000000` to measure the 10M scale figure by
//! hand). Build time and database size are printed to stderr.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use snap::crypto::Keys;
use snap::format::pack::{Compression, PackEntry};
use snap::id::{BlobId, ChunkId, PackId};
use snap::index::Index;
use snap::pack::{PackWriter, seal};

mod common;

const MIB: usize = 1 << 20;
const ROWS_PER_PACK: usize = 1000;

fn seal_pack(c: &mut Criterion) {
    let text: Vec<Vec<u8>> = (0..16).map(|i| common::text_bytes(MIB, i)).collect();
    let random: Vec<Vec<u8>> = (0..16).map(|i| common::random_bytes(MIB, i)).collect();
    let mut g = c.benchmark_group("pack");
    g.sample_size(10).measurement_time(Duration::from_secs(6)).throughput(Throughput::Bytes(16 * MIB as u64));
    let cases = [("text", &text, Keys::plain()), ("random", &random, Keys::plain())].into_iter().chain([
        ("text_encrypted", &text, Keys::from_master(&[1; 32])),
        ("random_encrypted", &random, Keys::from_master(&[1; 32])),
    ]);
    for (name, blobs, keys) in cases {
        // Ids are computed once: this measures seal (compress, encrypt,
        // verify) and the pack writer, as a backup does after hashing.
        let ids: Vec<BlobId> = blobs.iter().map(|b| BlobId::Chunk(keys.hasher().chunk_id(b))).collect();
        g.bench_function(format!("seal_pack_16MiB_{name}"), |b| {
            b.iter(|| {
                let mut w = PackWriter::new(16 * MIB, &keys);
                for (id, raw) in ids.iter().zip(blobs.iter()) {
                    w.add(seal(&keys, *id, raw, 3).unwrap());
                }
                black_box(w.finish(&keys).unwrap().bytes.len())
            })
        });
    }
    g.finish();
}

fn id(n: u64) -> BlobId {
    BlobId::Chunk(ChunkId::from_bytes(*blake3::hash(&n.to_le_bytes()).as_bytes()))
}

fn index_lookups(c: &mut Criterion) {
    let rows: u64 =
        std::env::var("SNAP_BENCH_INDEX_ROWS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.sqlite");
    let mut index = Index::open(&path).unwrap();
    let started = Instant::now();
    let mut n = 0u64;
    let mut pack_no = 0u64;
    while n < rows {
        let count = (rows - n).min(ROWS_PER_PACK as u64);
        let entries: Vec<PackEntry> = (n..n + count)
            .map(|i| PackEntry {
                blob: id(i),
                offset: ((i % ROWS_PER_PACK as u64) * 700_000) as u32,
                stored_len: 600_000,
                raw_len: 1 << 20,
                compression: Compression::Zstd,
            })
            .collect();
        let pack = PackId::from_bytes(*blake3::hash(&pack_no.to_be_bytes()).as_bytes());
        index.add_pack(&pack, 700 << 20, &entries).unwrap();
        n += count;
        pack_no += 1;
    }
    let build = started.elapsed();
    let db_bytes: u64 = ["", "-wal"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", path.display())).ok())
        .map(|m| m.len())
        .sum();
    eprintln!(
        "index: {rows} rows in {pack_no} packs built in {:.1}s ({:.0} rows/s); database {:.1} MiB ({:.0} bytes/row)",
        build.as_secs_f64(),
        rows as f64 / build.as_secs_f64(),
        db_bytes as f64 / MIB as f64,
        db_bytes as f64 / rows as f64
    );

    let mut g = c.benchmark_group(format!("index_{rows}_rows"));
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    let mut probe = common::Rng::new(99);
    g.bench_function("contains_present", |b| {
        b.iter_batched(|| id(probe.below(rows)), |blob| index.contains(&blob).unwrap(), BatchSize::SmallInput)
    });
    let mut absent = rows;
    g.bench_function("contains_absent", |b| {
        b.iter_batched(
            || {
                absent += 1;
                id(absent)
            },
            |blob| index.contains(&blob).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("lookup_present", |b| {
        b.iter_batched(
            || id(probe.below(rows)),
            |blob| index.lookup(&blob).unwrap().unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, seal_pack, index_lookups);
criterion_main!(benches);
