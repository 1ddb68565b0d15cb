//! BLAKE3 chunk ids and zstd on 1 MiB blobs. Random data should be refused
//! by the compressor's sample probe, so "compress random" costs a 16 KiB
//! level-1 attempt, not a full compression.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use snap::compress::{compress, decompress};
use snap::crypto::{Aad, Keys};
use snap::format::pack::Compression;
use snap::hash::BlobHasher;

mod common;

const MIB: usize = 1 << 20;

fn hash_compress(c: &mut Criterion) {
    let text = common::text_bytes(MIB, 7);
    let random = common::random_bytes(MIB, 7);
    let packed = compress(&text, 3).expect("text compresses");
    eprintln!(
        "text-like 1 MiB compresses to {} bytes at level 3 ({:.1}%); random is stored raw: {}",
        packed.len(),
        packed.len() as f64 * 100.0 / MIB as f64,
        compress(&random, 3).is_none()
    );

    let mut g = c.benchmark_group("hash_compress");
    g.throughput(Throughput::Bytes(MIB as u64));
    g.bench_function("blake3_chunk_id_1MiB", |b| b.iter(|| BlobHasher::Plain.chunk_id(black_box(&random))));
    let keys = Keys::from_master(&[1; 32]);
    g.bench_function("blake3_keyed_chunk_id_1MiB", |b| b.iter(|| keys.hasher().chunk_id(black_box(&random))));
    g.bench_function("xchacha20poly1305_seal_1MiB", |b| {
        b.iter(|| keys.seal(Aad::PackTrailer, black_box(random.clone())).unwrap())
    });
    let sealed = keys.seal(Aad::PackTrailer, random.clone()).unwrap();
    g.bench_function("xchacha20poly1305_open_1MiB", |b| {
        b.iter(|| keys.open(Aad::PackTrailer, black_box(&sealed)).unwrap())
    });
    g.bench_function("zstd3_compress_text_1MiB", |b| b.iter(|| compress(black_box(&text), 3)));
    g.bench_function("zstd1_compress_text_1MiB", |b| b.iter(|| compress(black_box(&text), 1)));
    g.bench_function("zstd3_compress_random_1MiB", |b| b.iter(|| compress(black_box(&random), 3)));
    // What the probe saves: plain zstd level 3 on the random MiB.
    g.bench_function("zstd3_plain_random_1MiB", |b| {
        b.iter(|| zstd::bulk::compress(black_box(&random), 3).unwrap())
    });
    g.bench_function("zstd_decompress_text_1MiB", |b| {
        b.iter(|| decompress(black_box(&packed), Compression::Zstd, MIB as u32).unwrap())
    });
    g.finish();
}

criterion_group!(benches, hash_compress);
criterion_main!(benches);
