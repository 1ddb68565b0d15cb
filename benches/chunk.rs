//! Cut throughput with the default parameters on 64 MiB of pseudo-random
//! data, in memory (`cut`) and read through windows of one maximum chunk:
//! seeded FastCDC (formats 1 and 2) and format 3's keyed rule (`keyed_*`).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use snap::chunk::Chunker;
use snap::format::config::ChunkerParams;

mod common;

fn chunking(c: &mut Criterion) {
    let data = common::random_bytes(64 << 20, 1);
    let mut g = c.benchmark_group("chunk");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .throughput(Throughput::Bytes(data.len() as u64));
    let seeded = Chunker::new(ChunkerParams { seed: 0x5eed, ..ChunkerParams::default() });
    let keyed = Chunker::keyed(ChunkerParams::default(), &[7; 32]);
    for (name, chunker) in [("", seeded), ("keyed_", keyed)] {
        g.bench_function(format!("{name}cut_64MiB_default"), |b| {
            b.iter(|| black_box(chunker.cut(black_box(&data))).len())
        });
        bench_windows(&mut g, name, &chunker, &data);
    }
    g.finish();
}

fn bench_windows(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    chunker: &Chunker,
    data: &[u8],
) {
    g.bench_function(format!("{name}windows_64MiB_default"), |b| {
        b.iter(|| {
            let mut windows = chunker.windows(black_box(data), 0);
            let mut chunks = 0;
            while let Some(w) = windows.next_window().unwrap() {
                chunks += w.chunks.len();
            }
            chunks
        })
    });
}

criterion_group!(benches, chunking);
criterion_main!(benches);
