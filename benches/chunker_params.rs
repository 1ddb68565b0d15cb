//! The measured case for the default FastCDC parameters, and the raw
//! single-core speeds of this machine. Run with
//!
//! ```text
//! cargo bench --bench chunker_params
//! ```
//!
//! It is a plain program (`harness = false`), not a criterion bench: each
//! figure is one pass (throughputs are the best of a few) over large real
//! data, printed as Markdown tables on stdout.
//!
//! Corpora, all built from real files under `/usr/lib/x86_64-linux-gnu` and
//! `/usr/share` (override with `SNAP_BENCH_DIRS=dir1:dir2`), each
//! `SNAP_BENCH_CORPUS_MIB` (default 256) MiB:
//!
//! * `tree`: regular files picked in a pseudo-random (path-hash) order,
//!   chunked file by file, as `snap backup` does;
//! * `stream`: the same files concatenated into one stream (a tar archive);
//! * `image`: a synthetic disk image: other real files laid out on 4 KiB
//!   blocks with zeroed free space between some of them.
//!
//! For every candidate parameter set it reports chunking throughput, chunk
//! count, mean and standard deviation of chunk size, index entries per GiB,
//! stored size after per-chunk zstd-3 (with snap's incompressibility probe
//! and without), the new bytes predicted from the size distribution, and the bytes of new chunks a backup
//! of an edited copy needs (10 inserts of 100 bytes; 10 overwrites of
//! 4 KiB), averaged over `SNAP_BENCH_TRIALS` (default 20) random edit sets
//! that are the same for every parameter set.

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use snap::chunk::Chunker;
use snap::format::config::ChunkerParams;

mod common;
use common::Rng;

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;
const GIB: f64 = (1u64 << 30) as f64;
/// Files larger than this are left out of the corpora (one file would
/// otherwise dominate them).
const MAX_FILE: u64 = 64 << 20;
const EDITS: usize = 10;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn mb_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

/// Best (shortest) time of `runs` runs of `f`.
fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed()
        })
        .min()
        .unwrap()
}

struct Corpus {
    name: &'static str,
    files: Vec<Vec<u8>>,
    /// Edits land on 4 KiB blocks (disk image).
    aligned: bool,
}

impl Corpus {
    fn total(&self) -> u64 {
        self.files.iter().map(|f| f.len() as u64).sum()
    }
}

fn walk(dir: &Path, out: &mut Vec<(PathBuf, u64)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let Ok(meta) = std::fs::symlink_metadata(e.path()) else { continue };
        if meta.is_dir() {
            walk(&e.path(), out);
        } else if meta.is_file() && meta.len() > 0 && meta.len() <= MAX_FILE {
            out.push((e.path(), meta.len()));
        }
    }
}

/// Files in the order of the hash of their path with `salt`, read until
/// `budget` bytes, skipping the paths in `skip`.
fn pick(all: &[(PathBuf, u64)], salt: &str, budget: u64, skip: &HashSet<PathBuf>) -> Vec<(PathBuf, Vec<u8>)> {
    let mut order: Vec<&(PathBuf, u64)> = all.iter().filter(|(p, _)| !skip.contains(p)).collect();
    order.sort_by_key(|(p, _)| {
        let mut h = blake3::Hasher::new();
        h.update(salt.as_bytes()).update(p.as_os_str().as_encoded_bytes());
        *h.finalize().as_bytes()
    });
    let mut out = Vec::new();
    let mut total = 0;
    for (path, _) in order {
        if total >= budget {
            break;
        }
        let Ok(data) = std::fs::read(path) else { continue };
        if data.is_empty() {
            continue;
        }
        total += data.len() as u64;
        out.push((path.clone(), data));
    }
    out
}

fn build_corpora(budget: u64) -> (Vec<Corpus>, u64) {
    let dirs =
        std::env::var("SNAP_BENCH_DIRS").unwrap_or_else(|_| "/usr/lib/x86_64-linux-gnu:/usr/share".into());
    let mut all = Vec::new();
    for d in dirs.split(':') {
        walk(Path::new(d), &mut all);
    }
    let available: u64 = all.iter().map(|(_, l)| l).sum();
    let tree = pick(&all, "tree", budget, &HashSet::new());
    let used: HashSet<PathBuf> = tree.iter().map(|(p, _)| p.clone()).collect();
    let tree: Vec<Vec<u8>> = tree.into_iter().map(|(_, d)| d).collect();
    let stream: Vec<u8> = tree.concat();

    // The image: other files on 4 KiB blocks; a quarter of them are followed
    // by 4..256 KiB of zeroed free space.
    let mut rng = Rng::new(0x1a6e);
    let mut image = Vec::with_capacity(budget as usize);
    'fill: for (_, data) in pick(&all, "image", budget * 2, &used) {
        let room = budget as usize - image.len();
        image.extend_from_slice(&data[..data.len().min(room)]);
        image.resize(image.len().div_ceil(4096) * 4096, 0);
        if rng.below(4) == 0 {
            image.resize(image.len() + 4096 * (1 + rng.below(64) as usize), 0);
        }
        if image.len() >= budget as usize {
            break 'fill;
        }
    }
    image.truncate(budget as usize);
    eprintln!(
        "corpus: {} files found ({:.0} MiB); tree {} files {:.0} MiB, image {:.0} MiB",
        all.len(),
        available as f64 / MIB as f64,
        tree.len(),
        stream.len() as f64 / MIB as f64,
        image.len() as f64 / MIB as f64
    );
    let n = tree.len() as u64;
    (
        vec![
            Corpus { name: "tree", files: tree, aligned: false },
            Corpus { name: "stream", files: vec![stream], aligned: false },
            Corpus { name: "image", files: vec![image], aligned: true },
        ],
        n,
    )
}

#[derive(Clone, Copy, PartialEq)]
enum EditKind {
    Insert100,
    Overwrite4K,
}

/// The edited files of one trial: (file index, new contents).
fn edit(corpus: &Corpus, kind: EditKind, seed: u64) -> Vec<(usize, Vec<u8>)> {
    let mut rng = Rng::new(seed);
    let total = corpus.total();
    let mut starts = Vec::with_capacity(corpus.files.len());
    let mut acc = 0u64;
    for f in &corpus.files {
        starts.push(acc);
        acc += f.len() as u64;
    }
    // (file, offset) of each edit.
    let mut spots: Vec<(usize, usize)> = (0..EDITS)
        .map(|_| {
            let at = rng.below(total);
            let file = starts.partition_point(|&s| s <= at) - 1;
            let mut off = (at - starts[file]) as usize;
            if corpus.aligned {
                off -= off % 4096;
            }
            (file, off)
        })
        .collect();
    // Last offset first, so earlier offsets stay valid while inserting.
    spots.sort_unstable_by(|a, b| b.cmp(a));
    let mut out: Vec<(usize, Vec<u8>)> = Vec::new();
    for (file, off) in spots {
        if out.last().map(|(f, _)| *f) != Some(file) {
            out.push((file, corpus.files[file].clone()));
        }
        let data = &mut out.last_mut().unwrap().1;
        match kind {
            EditKind::Insert100 => {
                let bytes = common::random_bytes(100, rng.next_u64());
                data.splice(off..off, bytes);
            }
            EditKind::Overwrite4K => {
                let end = (off + 4096).min(data.len());
                let bytes = common::random_bytes(end - off, rng.next_u64());
                data[off..end].copy_from_slice(&bytes);
            }
        }
    }
    out
}

fn chunk_hashes(chunker: &Chunker, data: &[u8]) -> Vec<([u8; 32], usize)> {
    chunker.cut(data).into_par_iter().map(|r| (*blake3::hash(&data[r.clone()]).as_bytes(), r.len())).collect()
}

struct Row {
    label: String,
    mb_s: f64,
    chunks: u64,
    mean: f64,
    stddev: f64,
    per_gib: f64,
    stored_mib: f64,
    plain_mib: f64,
    predicted: f64,
    insert_new: f64,
    insert_chunks: f64,
    overwrite_new: f64,
    overwrite_chunks: f64,
}

fn measure(corpus: &Corpus, label: &str, chunker: &Chunker, trials: u64) -> Row {
    let total = corpus.total();
    let elapsed = best_of(3, || corpus.files.iter().map(|f| chunker.cut(f).len()).sum::<usize>());

    let per_file: Vec<Vec<([u8; 32], usize)>> =
        corpus.files.par_iter().map(|f| chunk_hashes(chunker, f)).collect();
    let sizes: Vec<f64> = per_file.iter().flatten().map(|(_, l)| *l as f64).collect();
    let n = sizes.len() as f64;
    let mean = sizes.iter().sum::<f64>() / n;
    let stddev = (sizes.iter().map(|s| (s - mean) * (s - mean)).sum::<f64>() / n).sqrt();
    let known: HashSet<[u8; 32]> = per_file.iter().flatten().map(|(h, _)| *h).collect();

    // Stored size with per-chunk zstd level 3: as snap does it (with the
    // 16 KiB incompressibility probe) and plain zstd on every chunk.
    let (stored, stored_plain) = corpus
        .files
        .par_iter()
        .flat_map_iter(|f| chunker.cut(f).into_iter().map(move |r| &f[r]))
        .map(|c| {
            let plain = zstd::bulk::compress(c, 3).unwrap().len().min(c.len());
            (snap::compress::compress(c, 3).map_or(c.len(), |z| z.len()), plain)
        })
        .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1));

    let mut new = [(0u64, 0u64); 2];
    for (k, kind) in [EditKind::Insert100, EditKind::Overwrite4K].into_iter().enumerate() {
        for trial in 0..trials {
            let seed = trial * 1000 + k as u64 * 100 + corpus.name.len() as u64;
            for (_, data) in edit(corpus, kind, seed) {
                for (h, len) in chunk_hashes(chunker, &data) {
                    if !known.contains(&h) {
                        new[k].0 += len as u64;
                        new[k].1 += 1;
                    }
                }
            }
        }
    }
    let avg = |x: u64| x as f64 / trials as f64;
    Row {
        label: label.to_owned(),
        mb_s: mb_s(total, elapsed),
        chunks: sizes.len() as u64,
        mean: mean / KIB as f64,
        stddev: stddev / KIB as f64,
        per_gib: n / (total as f64 / GIB),
        stored_mib: stored as f64 / MIB as f64,
        plain_mib: stored_plain as f64 / MIB as f64,
        // An edit lands in a chunk with probability proportional to its
        // length, so it costs E[L^2]/E[L] = mean + variance/mean.
        predicted: EDITS as f64 * (mean + stddev * stddev / mean) / MIB as f64,
        insert_new: avg(new[0].0) / MIB as f64,
        insert_chunks: avg(new[0].1),
        overwrite_new: avg(new[1].0) / MIB as f64,
        overwrite_chunks: avg(new[1].1),
    }
}

fn label(p: &ChunkerParams) -> String {
    let size = |b: u32| if b >= 1 << 20 { format!("{}M", b >> 20) } else { format!("{}K", b >> 10) };
    format!("{}/{}/{} n{}", size(p.min_size), size(p.avg_size), size(p.max_size), p.normalization)
}

fn chunker_tables(corpora: &[Corpus], tree_files: u64, trials: u64) {
    let mut params = Vec::new();
    for (min, avg, max) in [(256, 1024, 4096), (512, 1024, 8192), (512, 2048, 8192), (1024, 4096, 16384)] {
        for normalization in [1, 2] {
            let p = ChunkerParams {
                min_size: min << 10,
                avg_size: avg << 10,
                max_size: max << 10,
                normalization,
                seed: 0,
            };
            p.validate().expect("candidate parameters are valid");
            params.push(p);
        }
    }
    // Beyond the brief's candidates: the strongest normalization.
    params.insert(4, ChunkerParams { normalization: 3, ..params[2] });
    for corpus in corpora {
        println!(
            "\n### Corpus `{}`: {:.0} MiB{}; edits: {EDITS} per trial, mean of {trials} trials",
            corpus.name,
            corpus.total() as f64 / MIB as f64,
            if corpus.name == "tree" {
                format!(", {tree_files} files, chunked per file")
            } else {
                String::new()
            }
        );
        println!(
            "\n| params (min/avg/max norm) | chunk MB/s | chunks | mean KiB | stddev KiB | entries/GiB \
             | stored MiB (snap zstd-3) | stored MiB (zstd-3, no probe) | predicted new MiB \
             | +100 B x10: new MiB | new chunks | 4 KiB x10: new MiB | new chunks |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for p in &params {
            let started = Instant::now();
            let r = measure(corpus, &label(p), &Chunker::new(*p), trials);
            println!(
                "| {} | {:.0} | {} | {:.0} | {:.0} | {:.0} | {:.1} | {:.1} | {:.1} | {:.2} | {:.1} | {:.2} | {:.1} |",
                r.label,
                r.mb_s,
                r.chunks,
                r.mean,
                r.stddev,
                r.per_gib,
                r.stored_mib,
                r.plain_mib,
                r.predicted,
                r.insert_new,
                r.insert_chunks,
                r.overwrite_new,
                r.overwrite_chunks
            );
            eprintln!("  ({} on {} took {:.1}s)", r.label, corpus.name, started.elapsed().as_secs_f64());
        }
    }
}

/// Single-core BLAKE3, zstd and read() speeds on real data.
fn raw_speeds(data: &[u8]) {
    let len = data.len() as u64;
    let blocks: Vec<&[u8]> = data.chunks(MIB).collect();
    println!(
        "\n### Raw single-core speeds ({:.0} MiB of real data in 1 MiB blocks)\n",
        len as f64 / MIB as f64
    );
    println!("| operation | MB/s | note |\n|---|---:|---|");

    let t = best_of(3, || blocks.iter().map(|b| blake3::hash(b).as_bytes()[0]).fold(0u8, |a, b| a ^ b));
    println!("| BLAKE3 (`chunk_id`) | {:.0} | one thread, SIMD |", mb_s(len, t));

    let mut compressed = Vec::new();
    for level in [1, 3] {
        let mut c = zstd::bulk::Compressor::new(level).unwrap();
        let mut out = Vec::new();
        let t = best_of(2, || {
            out = blocks.iter().map(|b| c.compress(b).unwrap()).collect::<Vec<_>>();
        });
        let size: usize = out.iter().map(Vec::len).sum();
        println!(
            "| zstd level {level} compress | {:.0} | ratio {:.3} (stored/raw) |",
            mb_s(len, t),
            size as f64 / len as f64
        );
        if level == 3 {
            compressed = out;
        }
    }
    let t = best_of(2, || {
        blocks.iter().map(|b| snap::compress::compress(b, 3).map_or(b.len(), |c| c.len())).sum::<usize>()
    });
    println!(
        "| `snap::compress::compress` level 3 | {:.0} | with the incompressible-data probe |",
        mb_s(len, t)
    );

    let mut d = zstd::bulk::Decompressor::new().unwrap();
    let t = best_of(3, || compressed.iter().map(|c| d.decompress(c, MIB).unwrap().len()).sum::<usize>());
    println!("| zstd decompress (bulk) | {:.0} | of the level-3 output, MB/s of raw output |", mb_s(len, t));
    let t = best_of(3, || {
        compressed
            .iter()
            .zip(&blocks)
            .map(|(c, b)| {
                snap::compress::decompress(c, snap::format::pack::Compression::Zstd, b.len() as u32)
                    .unwrap()
                    .len()
            })
            .sum::<usize>()
    });
    println!("| `snap::compress::decompress` | {:.0} | streaming decoder with length bound |", mb_s(len, t));

    // Already-compressed real files (.gz/.xz/.zst/.png/.jpg/.zip/.jar over
    // 64 KiB): what plain zstd costs on them, and what the probe saves.
    let mut packed = Vec::new();
    let dirs =
        std::env::var("SNAP_BENCH_DIRS").unwrap_or_else(|_| "/usr/lib/x86_64-linux-gnu:/usr/share".into());
    let mut all = Vec::new();
    for d in dirs.split(':') {
        walk(Path::new(d), &mut all);
    }
    all.sort();
    for (path, size) in all {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if size > 64 << 10 && ["gz", "xz", "zst", "png", "jpg", "zip", "jar"].contains(&ext) {
            packed.extend(std::fs::read(&path).unwrap_or_default());
            if packed.len() >= 64 * MIB {
                break;
            }
        }
    }
    let packed_blocks: Vec<&[u8]> = packed.chunks(MIB).collect();
    let plen = packed.len() as u64;
    let mut c = zstd::bulk::Compressor::new(3).unwrap();
    let mut size = 0;
    let t = best_of(2, || {
        size = packed_blocks.iter().map(|b| c.compress(b).unwrap().len().min(b.len())).sum::<usize>();
    });
    println!(
        "| zstd level 3 compress, already-compressed files ({:.0} MiB) | {:.0} | ratio {:.3}, no probe |",
        plen as f64 / MIB as f64,
        mb_s(plen, t),
        size as f64 / plen as f64
    );
    let t = best_of(2, || {
        size =
            packed_blocks.iter().map(|b| snap::compress::compress(b, 3).map_or(b.len(), |c| c.len())).sum();
    });
    println!(
        "| `snap::compress::compress` level 3, same files | {:.0} | ratio {:.3}, with the probe |",
        mb_s(plen, t),
        size as f64 / plen as f64
    );

    // Sequential I/O on a 1 GiB file in the temporary directory: write +
    // fsync, then read() from the page cache.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one-gib");
    let block = common::random_bytes(8 * MIB, 3);
    let t = Instant::now();
    {
        let mut f = File::create(&path).unwrap();
        for _ in 0..128 {
            f.write_all(&block).unwrap();
        }
        f.sync_all().unwrap();
    }
    println!("| write 1 GiB + fsync | {:.0} | 8 MiB write() calls, this disk |", mb_s(1 << 30, t.elapsed()));
    for bs in [8 * MIB, MIB, 128 * KIB] {
        let mut buf = vec![0u8; bs];
        let t = best_of(3, || {
            let mut f = File::open(&path).unwrap();
            let mut n = 0usize;
            loop {
                let got = f.read(&mut buf).unwrap();
                if got == 0 {
                    break n;
                }
                n += got;
            }
        });
        println!(
            "| read() 1 GiB, page cache, {} KiB blocks | {:.0} | mmap not measured (no memmap2 dependency) |",
            bs / KIB,
            mb_s(1 << 30, t)
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; filters are not supported.
    let trials = env_or("SNAP_BENCH_TRIALS", 20u64);
    println!("## snap chunker parameters and raw speeds");
    println!(
        "\nrayon threads: {} (used only for hashing/compressing in the dedup runs)",
        rayon::current_num_threads()
    );
    let budget = env_or("SNAP_BENCH_CORPUS_MIB", 256u64) << 20;
    let (corpora, tree_files) = build_corpora(budget);
    if std::env::var("SNAP_BENCH_SKIP_RAW").is_err() {
        raw_speeds(&corpora[1].files[0]);
    }
    if std::env::var("SNAP_BENCH_SKIP_CHUNKER").is_err() {
        chunker_tables(&corpora, tree_files, trials);
    }
}
