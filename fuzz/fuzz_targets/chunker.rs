//! Both chunkers, FastCDC (formats 1 and 2) and format 3's keyed cut rule,
//! with parameters derived from the input.
//!
//! Byte 0 picks the mode. Bit 6 picks the chunker: clear, FastCDC with the
//! seed; set, `Chunker::keyed` under a key hashed from the header.
//! Derived mode (bit 7 clear): small valid parameters, which
//! `ChunkerParams::validate` (and for the keyed rule `validate_keyed`) must
//! accept. FastCDC: min even in 64..=1024, avg a power of two from
//! max(256, min) to 8 KiB, max from max(avg, 1 KiB) to 16 KiB. Keyed: avg
//! the smallest format 3 accepts at the normalization level, or up to four
//! times that, min even in 64..=avg, max from avg to 4 avg, and up to
//! ~510 KiB of data so inputs still span several chunks.
//! Raw mode (bit 7 set): four arbitrary u32/u8 fields; whatever `validate`
//! (`validate_keyed`) accepts must then chunk without a panic (fastcdc
//! asserts on its bounds, and `validate` is what stands between repository
//! bytes and those asserts), and the keyed rule accepts only an average
//! whose exponent less the level exceeds the candidate bits (so its PRF
//! decides every cut).
//!
//! Invariants for accepted parameters: `cut` covers the input exactly, in
//! order, with no empty chunk; every chunk is within [min, max] except the
//! last, which is within [1, max]; reading through `windows` yields the same
//! chunks whatever sizes the reader returns; and chunking is deterministic.

#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use snap::chunk::{CANDIDATE_BITS, Chunker};
use snap::format::config::ChunkerParams;

const HEADER: usize = 16;

fn u16_at(data: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(data[at..at + 2].try_into().unwrap())
}

fn u32_at(data: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(data[at..at + 4].try_into().unwrap())
}

/// Small valid parameters from the header bytes. `min_size` is even:
/// fastcdc's v2020 cut loop steps two bytes at a time from `min_size / 2 * 2`,
/// so an odd minimum yields chunks of `min_size - 1` bytes (raw mode still
/// probes odd minimums through `validate`).
fn derived(h: &[u8]) -> ChunkerParams {
    let min_size = 64 + 2 * (u32::from(u16_at(h, 1)) % ((1024 - 64) / 2 + 1));
    let lowest_bits = min_size.next_power_of_two().max(256).trailing_zeros();
    let avg_bits = lowest_bits + u32::from(h[3]) % (13 - lowest_bits + 1);
    let avg_size = 1 << avg_bits;
    let lowest_max = avg_size.max(1024);
    let max_size = lowest_max + u32::from(u16_at(h, 4)) % (16384 - lowest_max + 1);
    let seed = u64::from_le_bytes(h[6..14].try_into().unwrap());
    ChunkerParams { min_size, avg_size, max_size, normalization: h[14] % 4, seed }
}

/// Small parameters format 3's keyed rule accepts, from the header bytes:
/// the average at most four times the smallest allowed at its level.
fn derived_keyed(h: &[u8]) -> ChunkerParams {
    let normalization = h[14] % 4;
    let avg_bits = CANDIDATE_BITS + 1 + u32::from(normalization) + u32::from(h[3]) % 3;
    let avg_size = 1 << avg_bits;
    let min_size = 64 + 2 * (u32::from(u16_at(h, 1)) % ((avg_size - 64) / 2 + 1));
    // Four times the u16, to reach 3 avg however large avg is.
    let max_size = avg_size + (u32::from(u16_at(h, 4)) << 2) % (3 * avg_size + 1);
    ChunkerParams { min_size, avg_size, max_size, normalization, seed: 0 }
}

/// Arbitrary parameters from the header bytes.
fn raw(h: &[u8]) -> ChunkerParams {
    ChunkerParams {
        min_size: u32_at(h, 1),
        avg_size: u32_at(h, 5),
        max_size: u32_at(h, 9),
        normalization: h[13],
        seed: u64::from(h[14]),
    }
}

/// A reader that hands out at most `step` bytes per call, cycling its step.
struct Dribble<'a> {
    data: &'a [u8],
    steps: &'a [u8],
    call: usize,
}

impl Read for Dribble<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let step =
            self.steps.get(self.call % self.steps.len().max(1)).map_or(usize::MAX, |&s| usize::from(s) + 1);
        self.call += 1;
        let n = step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// splitmix64, to stretch short inputs into data spanning many chunks.
fn stretch(seed: u64, len: usize, out: &mut Vec<u8>) {
    let mut state = seed;
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
}

fuzz_target!(|input: &[u8]| {
    if input.len() < HEADER {
        return;
    }
    let (h, body) = input.split_at(HEADER);
    let (raw_mode, keyed) = (h[0] & 0x80 != 0, h[0] & 0x40 != 0);
    let params = match (raw_mode, keyed) {
        (true, _) => raw(h),
        (false, false) => derived(h),
        (false, true) => derived_keyed(h),
    };
    let valid = if keyed { params.validate_keyed() } else { params.validate() };
    if raw_mode {
        if valid.is_err() {
            return;
        }
    } else {
        assert!(valid.is_ok(), "derived parameters refused: {params:?}");
    }
    if keyed {
        assert!(params.validate().is_ok(), "validate_keyed accepted what validate refuses: {params:?}");
        let bits = params.avg_size.trailing_zeros() - u32::from(params.normalization);
        assert!(bits > CANDIDATE_BITS, "accepted a keyed average whose cuts the PRF would not all decide");
    }

    // The body, then (derived mode) up to ~64 KiB (keyed: ~510 KiB) of
    // pseudo-random bytes so inputs span many chunks even under
    // libFuzzer's default max_len.
    let mut data = body.to_vec();
    if !raw_mode {
        let extra = usize::from(h[15]) * if keyed { 2048 } else { 256 };
        stretch(u64::from_le_bytes(h[6..14].try_into().unwrap()) ^ 0x5eed, data.len() + extra, &mut data);
    }

    let chunker =
        if keyed { Chunker::keyed(params, blake3::hash(h).as_bytes()) } else { Chunker::new(params) };
    assert_eq!(chunker.max_size(), params.max_size as usize);
    let ranges = chunker.cut(&data);
    let (min, max) = (params.min_size as usize, params.max_size as usize);
    let mut pos = 0;
    for (i, r) in ranges.iter().enumerate() {
        assert_eq!(r.start, pos, "chunk {i} does not start where the previous ended ({params:?})");
        assert!(!r.is_empty(), "empty chunk {i} ({params:?})");
        assert!(r.len() <= max, "chunk {i} of {} bytes over max {max} ({params:?})", r.len());
        if i + 1 < ranges.len() {
            assert!(r.len() >= min, "chunk {i} of {} bytes under min {min} ({params:?})", r.len());
        }
        pos = r.end;
    }
    assert_eq!(pos, data.len(), "chunks do not cover the input ({params:?})");
    assert_eq!(chunker.cut(&data), ranges, "chunking is not deterministic");

    let expected: Vec<&[u8]> = ranges.iter().map(|r| &data[r.clone()]).collect();
    let whole = windowed(&chunker, &data[..], data.len() as u64);
    assert_eq!(whole, expected, "windows differ from cut ({params:?})");
    let steps = &body[..body.len().min(8)];
    // A size hint anywhere from nothing to twice the real length, from a
    // byte that decides nothing else.
    let hint = data.len() as u64 * u64::from(body.get(8).copied().unwrap_or(0)) / 128;
    let dribbled = windowed(&chunker, Dribble { data: &data, steps, call: 0 }, hint);
    assert_eq!(dribbled, expected, "windows over short reads differ from cut ({params:?})");
});

/// The chunks read through windows, each at most one maximum chunk long,
/// every window making progress.
fn windowed(chunker: &Chunker, reader: impl Read, size_hint: u64) -> Vec<Vec<u8>> {
    let mut windows = chunker.windows(reader, size_hint);
    let mut out = Vec::new();
    while let Some(w) = windows.next_window().expect("in-memory read") {
        assert!(w.data.len() <= chunker.max_size(), "window over one maximum chunk");
        assert!(!w.chunks.is_empty(), "a window without a chunk");
        out.extend(w.chunks.iter().map(|r| w.data[r.clone()].to_vec()));
    }
    out
}
