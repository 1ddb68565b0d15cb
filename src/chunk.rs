//! Content-defined chunking. Boundaries depend only on nearby bytes, so an
//! insert early in a file moves only the chunks around it. Readers are cut
//! in windows of one maximum chunk: memory stays at one window per reader,
//! and chunks are handed out as slices of it, not copied.
//!
//! Two cut rules, fixed by the repository's format (DESIGN.md 16): FastCDC
//! 2020 with a seed XORed into its gear table (formats 1 and 2), and from
//! format 3 a keyed rule in which FastCDC's gear digest only proposes
//! candidates and a PRF (AES-128 under a key derived from the master key)
//! decides, so chunk lengths give no equations about the key.

use std::io::{ErrorKind, Read};
use std::ops::Range;
use std::sync::Arc;

use aes::Aes128;
use aes::cipher::{BlockEncrypt, KeyInit};
use fastcdc::v2020::{FastCDC, Normalization};
use zeroize::Zeroizing;

use crate::format::config::ChunkerParams;

/// How many top bits (below the highest) of the gear digest must be zero
/// for a position to be a candidate: one position in 2^10 is one, so the
/// PRF runs about a thousand times per megabyte it examines (measured in
/// BENCHMARKS.md, "Size hiding").
pub const CANDIDATE_BITS: u32 = 10;

/// A configured chunker (parameters come from the repository config, which
/// has already been validated).
#[derive(Clone, Debug)]
pub struct Chunker {
    params: ChunkerParams,
    keyed: Option<Arc<KeyedCut>>,
}

impl Chunker {
    /// A FastCDC chunker for validated parameters, seeded with their seed.
    pub fn new(params: ChunkerParams) -> Self {
        Chunker { params, keyed: None }
    }

    /// A chunker with format 3's keyed cut rule, for parameters
    /// `ChunkerParams::validate_keyed` accepts; `params.seed` is unused.
    pub fn keyed(params: ChunkerParams, key: &[u8; 32]) -> Self {
        Chunker { params, keyed: Some(Arc::new(KeyedCut::new(&params, key))) }
    }

    /// The largest chunk this chunker emits.
    pub fn max_size(&self) -> usize {
        self.params.max_size as usize
    }

    fn level(&self) -> Normalization {
        match self.params.normalization {
            0 => Normalization::Level0,
            1 => Normalization::Level1,
            2 => Normalization::Level2,
            _ => Normalization::Level3,
        }
    }

    /// Byte ranges of the chunks of `data`, in order, covering all of it.
    pub fn cut(&self, data: &[u8]) -> Vec<Range<usize>> {
        let p = &self.params;
        match &self.keyed {
            None => {
                FastCDC::with_level_and_seed(data, p.min_size, p.avg_size, p.max_size, self.level(), p.seed)
                    .map(|c| c.offset..c.offset + c.length)
                    .collect()
            }
            Some(keyed) => {
                let mut out = Vec::new();
                let mut start = 0;
                while start < data.len() {
                    let end = start + keyed.cut(&data[start..], p);
                    out.push(start..end);
                    start = end;
                }
                out
            }
        }
    }

    /// Cuts what `reader` yields, a window at a time; `size_hint` (the
    /// expected length) sizes the first window so a small file costs no
    /// more memory than itself.
    pub fn windows<R: Read>(&self, reader: R, size_hint: u64) -> Windows<R> {
        let first = usize::try_from(size_hint).map_or(usize::MAX, |n| n.saturating_add(1));
        Windows {
            chunker: self.clone(),
            reader,
            buf: vec![0; first.min(self.max_size())],
            filled: 0,
            consumed: 0,
            eof: false,
        }
    }
}

/// Format 3's cut rule: FastCDC 2020's loop (two bytes a step, the same
/// minimum, normalization and maximum) over a gear table drawn from the key.
/// A position is a candidate when the CANDIDATE_BITS bits of its digest
/// below the highest are zero (the high bits mix the most bytes); a candidate is a cut when AES-128 of the digest (shifted left
/// by one, the form both halves of a step have it in) falls below the
/// threshold that gives FastCDC's own cut probability there. Lengths show
/// only where the PRF said yes, which says nothing about its key.
pub struct KeyedCut {
    gear: Box<Zeroizing<[u64; 256]>>,
    /// `gear`, shifted left by one, for the first byte of a step.
    gear_ls: Box<Zeroizing<[u64; 256]>>,
    prf: Aes128,
    /// The candidate mask, shifted left by one like the digest it tests.
    candidate_ls: u64,
    /// Leading zero bits the PRF output needs before the average size and
    /// after it.
    strict: u32,
    loose: u32,
}

impl std::fmt::Debug for KeyedCut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyedCut { .. }")
    }
}

impl KeyedCut {
    fn new(params: &ChunkerParams, key: &[u8; 32]) -> Self {
        let mut bytes = Zeroizing::new([0u8; 256 * 8]);
        blake3::Hasher::new_derive_key("snap 2026-12 chunker gear table")
            .update(key)
            .finalize_xof()
            .fill(bytes.as_mut());
        let mut gear = Box::new(Zeroizing::new([0u64; 256]));
        let mut gear_ls = Box::new(Zeroizing::new([0u64; 256]));
        for (i, word) in bytes.chunks_exact(8).enumerate() {
            gear[i] = u64::from_le_bytes(word.try_into().expect("8 bytes"));
            gear_ls[i] = gear[i] << 1;
        }
        let prf_key = Zeroizing::new(blake3::derive_key("snap 2026-12 chunker cut prf", key));
        let prf = Aes128::new_from_slice(&prf_key[..16]).expect("16-byte key");
        // Validated parameters (`ChunkerParams::validate_keyed`): the
        // average is a power of two whose exponent, less the normalization
        // level, exceeds CANDIDATE_BITS, so both thresholds need at least
        // one zero bit from the PRF, and the PRF decides every cut.
        let bits = params.avg_size.trailing_zeros();
        let level = u32::from(params.normalization);
        let candidate_ls = ((1u64 << CANDIDATE_BITS) - 1) << (64 - CANDIDATE_BITS);
        KeyedCut {
            gear,
            gear_ls,
            prf,
            candidate_ls,
            strict: bits + level - CANDIDATE_BITS,
            loose: bits - level - CANDIDATE_BITS,
        }
    }

    /// Whether the PRF accepts the candidate with digest `h` (shifted).
    fn accepts(&self, h: u64, zeros: u32) -> bool {
        let mut block = aes::Block::default();
        block[..8].copy_from_slice(&h.to_le_bytes());
        self.prf.encrypt_block(&mut block);
        u64::from_le_bytes(block[..8].try_into().expect("8 bytes")).leading_zeros() >= zeros
    }

    /// The length of the first chunk of `source`, found as FastCDC 2020
    /// finds it: never below the minimum (unless the input ends), the strict
    /// threshold up to the average size, the loose one after, and the
    /// maximum when no cut comes. A cut at `a` reads the byte at `a` and no
    /// further ([`Windows`] relies on that).
    fn cut(&self, source: &[u8], p: &ChunkerParams) -> usize {
        let (min, avg, max) = (p.min_size as usize, p.avg_size as usize, p.max_size as usize);
        let mut remaining = source.len();
        if remaining <= min {
            return remaining;
        }
        let mut center = avg;
        if remaining > max {
            remaining = max;
        } else if remaining < center {
            center = remaining;
        }
        // Locals and one slice bound let the compiler keep the tables in
        // registers and drop the bounds checks from the loop.
        let (gear, gear_ls, candidate_ls) = (&**self.gear, &**self.gear_ls, self.candidate_ls);
        let source = &source[..remaining];
        let mut index = min / 2;
        let mut hash: u64 = 0;
        for (until, zeros) in [(center / 2, self.strict), (remaining / 2, self.loose)] {
            for pair in source[index * 2..until * 2].chunks_exact(2) {
                hash = (hash << 2).wrapping_add(gear_ls[pair[0] as usize]);
                if hash & candidate_ls == 0 && self.accepts(hash, zeros) {
                    return index * 2;
                }
                hash = hash.wrapping_add(gear[pair[1] as usize]);
                if (hash << 1) & candidate_ls == 0 && self.accepts(hash << 1, zeros) {
                    return index * 2 + 1;
                }
                index += 1;
            }
        }
        remaining
    }
}

/// A reader cut into chunks through a buffer of at most one maximum chunk.
pub struct Windows<R> {
    chunker: Chunker,
    reader: R,
    buf: Vec<u8>,
    filled: usize,
    /// How much of `buf` the last window handed out.
    consumed: usize,
    eof: bool,
}

/// Bytes read and the chunks that are final among them, in order from the
/// start of `data`. Bytes after the last chunk come again in the next window.
pub struct Window<'a> {
    /// The buffered bytes.
    pub data: &'a [u8],
    /// The chunks cut from `data`, covering a prefix of it.
    pub chunks: Vec<Range<usize>>,
}

impl Window<'_> {
    /// The bytes the chunks cover.
    pub fn covered(&self) -> &[u8] {
        &self.data[..self.chunks.last().map_or(0, |r| r.end)]
    }
}

impl<R: Read> Windows<R> {
    /// The next window, or `None` at the end of the input.
    pub fn next_window(&mut self) -> std::io::Result<Option<Window<'_>>> {
        self.buf.copy_within(self.consumed..self.filled, 0);
        self.filled -= self.consumed;
        self.consumed = 0;
        self.fill()?;
        if self.filled == 0 {
            return Ok(None);
        }
        let data = &self.buf[..self.filled];
        let max = self.chunker.max_size();
        let mut chunks = self.chunker.cut(data);
        // A cut found before the end of the buffer is the one the whole
        // input would give (FastCDC reads up to and including the byte at
        // its cut, and no further), and so is one forced at the maximum
        // length; a chunk that merely stops where the buffer does may grow
        // with more input.
        if !self.eof && chunks.last().is_some_and(|r| r.len() < max) {
            chunks.pop();
        }
        self.consumed = chunks.last().map_or(0, |r| r.end);
        Ok(Some(Window { data, chunks }))
    }

    /// Reads until the buffer is full (grown, by doubling up to one maximum
    /// chunk, when the input outgrows its hint) or the input ends.
    fn fill(&mut self) -> std::io::Result<()> {
        while !self.eof {
            if self.filled == self.buf.len() {
                if self.buf.len() >= self.chunker.max_size() {
                    return Ok(());
                }
                // Files that report no size (procfs) stay small this way.
                let grown = (self.buf.len() * 2).max(64 << 10).min(self.chunker.max_size());
                self.buf.resize(grown, 0);
            }
            match self.reader.read(&mut self.buf[self.filled..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.filled += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SMALL: ChunkerParams =
        ChunkerParams { min_size: 256, avg_size: 1024, max_size: 4096, normalization: 1, seed: 0 };

    /// The smallest average format 3 accepts at level 1 (2^12: 12 - 1 bits,
    /// one more than the candidate's), the other bounds as small.
    const KEYED_SMALL: ChunkerParams =
        ChunkerParams { min_size: 1024, avg_size: 4096, max_size: 8192, normalization: 1, seed: 0 };

    fn small() -> Chunker {
        Chunker::new(SMALL)
    }

    /// Both cut rules, with small parameters.
    fn both() -> [Chunker; 2] {
        [small(), Chunker::keyed(KEYED_SMALL, &[5; 32])]
    }

    /// Every parameter set format 3 accepts leaves each threshold at least
    /// one bit for the PRF: no cut is made by the gear digest alone.
    #[test]
    fn the_prf_decides_every_cut_of_every_accepted_parameter_set() {
        for normalization in 0..=3 {
            for bits in 8..=fastcdc::v2020::AVERAGE_MAX.trailing_zeros() {
                let (avg_size, max_size) = (1 << bits, fastcdc::v2020::MAXIMUM_MAX);
                let p = ChunkerParams { min_size: 256, avg_size, max_size, normalization, seed: 0 };
                match p.validate_keyed() {
                    Ok(()) => {
                        let k = KeyedCut::new(&p, &[1; 32]);
                        assert!(k.strict >= 1 && k.loose >= 1, "{p:?}: {} and {}", k.strict, k.loose);
                    }
                    Err(e) => assert!(bits - u32::from(normalization) <= CANDIDATE_BITS, "{p:?}: {e}"),
                }
            }
        }
    }

    /// Hands out at most `step` bytes per read, as pipes and slow disks do.
    struct ShortReads<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for ShortReads<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.step).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_read_error_is_returned() {
        let failing = std::io::Read::chain(&[7u8; 10][..], FailingReader);
        let mut windows = small().windows(failing, 10);
        let err = windows.next_window().err().expect("the error reaches the caller");
        assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    }

    struct FailingReader;

    impl Read for FailingReader {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(ErrorKind::PermissionDenied.into())
        }
    }

    #[test]
    fn keyed_cuts_depend_on_the_key_and_keep_fastcdc_sizes() {
        let data = pseudo_random(16 << 20, 1);
        let cuts = |c: &Chunker| c.cut(&data).into_iter().map(|r| r.end).collect::<Vec<_>>();
        let keyed = |key| cuts(&Chunker::keyed(KEYED_SMALL, &[key; 32]));
        let (a, b) = (keyed(1), keyed(2));
        let shared = a.iter().filter(|end| b.binary_search(end).is_ok()).count();
        assert!(shared * 20 < a.len(), "{shared} of {} cuts shared between two keys", a.len());
        let fastcdc = cuts(&Chunker::new(KEYED_SMALL));
        // The same cut probabilities as FastCDC: chunk counts within 5 %.
        assert!(
            a.len().abs_diff(fastcdc.len()) * 20 < fastcdc.len(),
            "{} against {}",
            a.len(),
            fastcdc.len()
        );
    }

    fn pseudo_random(len: usize, seed: u8) -> Vec<u8> {
        let mut out = vec![0; len];
        blake3::Hasher::new().update(&[seed]).finalize_xof().fill(&mut out);
        out
    }

    proptest! {
        #[test]
        fn chunks_cover_input_within_bounds(len in 0usize..50_000, seed: u8, keyed: bool) {
            let data = pseudo_random(len, seed);
            let c = &both()[usize::from(keyed)];
            let ranges = c.cut(&data);
            let mut pos = 0;
            for (i, r) in ranges.iter().enumerate() {
                prop_assert_eq!(r.start, pos);
                prop_assert!(r.len() <= c.max_size());
                if i + 1 < ranges.len() { prop_assert!(r.len() >= c.params.min_size as usize); }
                pos = r.end;
            }
            prop_assert_eq!(pos, data.len());
        }

        #[test]
        fn windows_match_in_memory(len in 0usize..30_000, seed: u8, hint in 0u64..40_000, step in 1usize..5000, keyed: bool) {
            let data = pseudo_random(len, seed);
            let c = both()[usize::from(keyed)].clone();
            let reader = ShortReads { data: &data, step };
            let mut windows = c.windows(reader, hint);
            let mut windowed: Vec<Vec<u8>> = Vec::new();
            while let Some(w) = windows.next_window().unwrap() {
                prop_assert!(w.data.len() <= c.max_size());
                prop_assert!(!w.chunks.is_empty(), "a window must make progress");
                windowed.extend(w.chunks.iter().map(|r| w.data[r.clone()].to_vec()));
            }
            let cut: Vec<Vec<u8>> = c.cut(&data).into_iter().map(|r| data[r].to_vec()).collect();
            prop_assert_eq!(windowed, cut);
        }

        #[test]
        fn boundaries_survive_an_insert(seed: u8, at in 0usize..60_000, insert in prop::collection::vec(any::<u8>(), 1..100), keyed: bool) {
            let data = pseudo_random(128_000, seed);
            let mut edited = data[..at].to_vec();
            edited.extend(&insert);
            edited.extend(&data[at..]);
            let c = both()[usize::from(keyed)].clone();
            let before: std::collections::HashSet<&[u8]> = c.cut(&data).into_iter().map(|r| &data[r]).collect();
            // Chunks ending before the insert are untouched (a cut at p
            // depends on the byte at p, so a chunk ending exactly at the
            // insert may move), and the cuts resynchronise within a few
            // maximum chunk lengths after it.
            let resync = at + insert.len() + 4 * c.max_size();
            for r in c.cut(&edited) {
                if r.end < at || r.start >= resync {
                    prop_assert!(before.contains(&edited[r.clone()]), "chunk {:?} changed (insert at {})", r, at);
                }
            }
        }
    }
}
