//! zstd compression of blobs. A blob that does not shrink is stored as is, so
//! restore spends no time decompressing it. No separate "is this
//! compressible" probe is made: zstd skips incompressible blocks at several
//! GiB/s by itself, and a sampled probe measured 5-8 % larger repositories on
//! real data (BENCHMARKS.md). Decompression is bounded by the length the pack
//! entry declares, whatever the frame claims.

use std::cell::RefCell;
use std::io::Read;

use crate::format::DecodeError;
use crate::format::pack::Compression;

thread_local! {
    static COMPRESSORS: RefCell<Vec<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(Vec::new()) };
}

fn with_compressor<T>(level: i32, f: impl FnOnce(&mut zstd::bulk::Compressor<'static>) -> T) -> T {
    COMPRESSORS.with(|cell| {
        let mut list = cell.borrow_mut();
        let pos = match list.iter().position(|(l, _)| *l == level) {
            Some(pos) => pos,
            None => {
                let c = zstd::bulk::Compressor::new(level).expect("zstd context for a valid level");
                list.push((level, c));
                list.len() - 1
            }
        };
        f(&mut list[pos].1)
    })
}

fn zstd(level: i32, data: &[u8]) -> Vec<u8> {
    with_compressor(level, |c| c.compress(data)).expect("zstd compression into a growable buffer")
}

/// Compresses `data` at `level`, or returns `None` when the result would
/// not be smaller (the caller then stores the raw bytes).
pub fn compress(data: &[u8], level: i32) -> Option<Vec<u8>> {
    let out = zstd(level, data);
    (out.len() < data.len()).then_some(out)
}

/// Turns stored bytes back into exactly `raw_len` bytes.
pub fn decompress(stored: &[u8], compression: Compression, raw_len: u32) -> Result<Vec<u8>, DecodeError> {
    let raw_len = raw_len as usize;
    match compression {
        Compression::None if stored.len() == raw_len => Ok(stored.to_vec()),
        Compression::None => Err(DecodeError::invalid("blob", "stored length differs from raw length")),
        Compression::Zstd => {
            let mut decoder = zstd::stream::read::Decoder::with_buffer(stored)
                .map_err(|e| DecodeError::invalid("zstd frame", e.to_string()))?;
            // A frame may declare a window of up to 2^27 bytes whatever its
            // real size; zstd would allocate it. No frame snap writes needs a
            // window beyond the blob's own size (zstd shrinks the window to a
            // known source size), so anything larger is refused.
            let window_log = (raw_len.max(1).next_power_of_two().trailing_zeros()).clamp(10, 27);
            decoder
                .window_log_max(window_log)
                .map_err(|e| DecodeError::invalid("zstd frame", e.to_string()))?;
            // Reading one byte past the declared length tells "too long" apart
            // from "exact", while never allocating more than it admits.
            let mut out = Vec::with_capacity(raw_len.min(16 << 20));
            decoder
                .take(raw_len as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| DecodeError::invalid("zstd frame", e.to_string()))?;
            if out.len() != raw_len {
                return Err(DecodeError::invalid(
                    "zstd frame",
                    format!("decompressed to {} bytes, expected {raw_len}", out.len()),
                ));
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(data in prop::collection::vec(0u8..4, 0..100_000)) {
            match compress(&data, 3) {
                Some(c) => prop_assert_eq!(decompress(&c, Compression::Zstd, data.len() as u32).unwrap(), data),
                None => prop_assert!(data.len() < 64),
            }
        }
    }

    #[test]
    fn random_data_is_stored_raw() {
        let mut random = vec![0u8; 200_000];
        blake3::Hasher::new().update(b"seed").finalize_xof().fill(&mut random);
        assert!(compress(&random, 3).is_none());
    }

    #[test]
    fn a_frame_declaring_a_huge_window_is_refused_before_allocating_it() {
        // Found by fuzzing: window 2^27, no content size, raw_len 1.
        let hostile = hex::decode("28b52ffd008809000041").unwrap();
        assert!(decompress(&hostile, Compression::Zstd, 1).is_err());
    }

    #[test]
    fn large_blobs_at_high_levels_still_decode() {
        let data: Vec<u8> = (0..(16u32 << 20)).map(|i| (i % 251) as u8 ^ (i >> 12) as u8).collect();
        let c = compress(&data, 19).unwrap();
        assert_eq!(decompress(&c, Compression::Zstd, data.len() as u32).unwrap(), data);
    }

    #[test]
    fn bomb_is_refused() {
        let zeros = vec![0u8; 1 << 20];
        let c = compress(&zeros, 3).unwrap();
        assert!(decompress(&c, Compression::Zstd, 1000).is_err());
        assert!(decompress(&c, Compression::Zstd, (2 << 20) as u32).is_err());
    }
}
