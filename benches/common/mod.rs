//! Deterministic test data shared by the benchmarks (no `rand` dependency).

#![allow(dead_code)]

/// SplitMix64: a tiny, fast, deterministic generator.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; the tiny modulo bias does not matter here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// `len` incompressible bytes, the same for the same `seed`.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0; len];
    blake3::Hasher::new().update(&seed.to_le_bytes()).finalize_xof().fill(&mut out);
    out
}

const WORDS: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "he",
    "this",
    "are",
    "or",
    "his",
    "from",
    "at",
    "which",
    "but",
    "have",
    "an",
    "had",
    "they",
    "you",
    "were",
    "their",
    "one",
    "all",
    "we",
    "can",
    "her",
    "has",
    "there",
    "been",
    "if",
    "more",
    "when",
    "will",
    "would",
    "who",
    "so",
    "no",
    "backup",
    "snapshot",
    "repository",
    "chunk",
    "index",
    "pack",
    "restore",
    "directory",
    "file",
    "error",
    "config",
    "value",
    "return",
    "struct",
    "impl",
    "fn",
    "let",
    "mut",
    "self",
    "match",
    "Some",
    "None",
    "Ok",
    "Err",
    "u64",
    "usize",
    "Vec<u8>",
    "0x1f",
    "42",
    "1024",
    "2026-01-01",
    "/usr/lib",
    "INFO",
    "WARN",
    "DEBUG",
    "request",
    "response",
];

/// `len` bytes of text-like, compressible data (words, punctuation, line
/// breaks, some numbers), the same for the same `seed`. zstd -3 gets it to
/// roughly a third of its size, like source code or logs.
pub fn text_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(len + 32);
    let mut col = 0;
    while out.len() < len {
        let r = rng.next_u64();
        match r % 23 {
            0 => out.extend_from_slice(format!("{}", (r >> 8) % 100_000).as_bytes()),
            _ => out.extend_from_slice(WORDS[((r >> 8) as usize) % WORDS.len()].as_bytes()),
        }
        col += 6;
        match (r >> 40) % 17 {
            0 => out.extend_from_slice(b". "),
            1 => out.extend_from_slice(b", "),
            2 if col > 60 => {
                out.push(b'\n');
                col = 0;
            }
            _ => out.push(b' '),
        }
    }
    out.truncate(len);
    out
}
