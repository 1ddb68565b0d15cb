//! zstd compression of blobs. A blob that does not shrink is stored as is, so
//! restore spends no time decompressing it. No separate "is this
//! compressible" probe is made: zstd skips incompressible blocks at several
//! GiB/s by itself, and a sampled probe measured 5-8 % larger repositories on
//! real data (BENCHMARKS.md). Decompression produces exactly the length the
//! pack entry declares, whatever the frame claims, or fails.

use std::cell::RefCell;

use crate::format::pack::Compression;
use crate::format::{DecodeError, MAX_BLOB_LEN};

thread_local! {
    static DECOMPRESSOR: RefCell<zstd::bulk::Decompressor<'static>> =
        RefCell::new(zstd::bulk::Decompressor::new().expect("zstd decompression context"));
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
///
/// zstd's one-shot API decodes into a buffer of exactly `raw_len` bytes:
/// every input byte must belong to a valid frame (checksums are verified),
/// output beyond the buffer is an error, and no sliding window is allocated,
/// whatever window size a hostile frame declares. (A streaming reader that
/// stops after `raw_len` bytes once accepted a frame damaged after that
/// point; fuzzing found it.)
pub fn decompress(stored: &[u8], compression: Compression, raw_len: u32) -> Result<Vec<u8>, DecodeError> {
    // The output buffer is allocated up front: its size must be checked here,
    // whoever produced `raw_len` (a trailer, or an index row that may be damaged).
    if raw_len > MAX_BLOB_LEN {
        return Err(DecodeError::TooLarge { what: "blob", len: raw_len.into(), max: MAX_BLOB_LEN.into() });
    }
    let raw_len = raw_len as usize;
    match compression {
        Compression::None if stored.len() == raw_len => Ok(stored.to_vec()),
        Compression::None => Err(DecodeError::invalid("blob", "stored length differs from raw length")),
        // No frame at all is not a valid zstd blob (snap stores empty data raw).
        Compression::Zstd if stored.is_empty() => Err(DecodeError::invalid("zstd frame", "empty")),
        Compression::Zstd => {
            let mut out = Vec::with_capacity(raw_len);
            DECOMPRESSOR
                .with(|d| d.borrow_mut().decompress_to_buffer(stored, &mut out))
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
                None => prop_assert!(zstd(3, &data).len() >= data.len(), "stored raw although it would shrink"),
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
    fn a_frame_declaring_a_huge_window_decodes_into_its_declared_length_only() {
        // Found by fuzzing: window 2^27, no content size, one literal byte.
        // A streaming decoder allocated the whole window (128 MiB); the
        // one-shot decoder writes into the raw_len buffer and allocates none.
        let hostile = hex::decode("28b52ffd008809000041").unwrap();
        assert_eq!(decompress(&hostile, Compression::Zstd, 1).unwrap(), b"A");
        assert!(decompress(&hostile, Compression::Zstd, 2).is_err());
    }

    #[test]
    fn large_blobs_at_high_levels_still_decode() {
        let data: Vec<u8> = (0..(16u32 << 20)).map(|i| (i % 251) as u8 ^ (i >> 12) as u8).collect();
        let c = compress(&data, 19).unwrap();
        assert_eq!(decompress(&c, Compression::Zstd, data.len() as u32).unwrap(), data);
    }

    #[test]
    fn a_frame_damaged_after_its_declared_length_is_refused() {
        // Found by fuzzing: the old streaming decoder stopped reading after
        // raw_len bytes and never saw the damage that followed.
        let data = b"hello hello hello hello".repeat(100);
        let mut frame = zstd::bulk::Compressor::new(3).unwrap();
        frame.include_checksum(true).unwrap();
        let mut c = frame.compress(&data).unwrap();
        let last = c.len() - 1;
        c[last] ^= 1; // the checksum, after all of the content
        assert!(decompress(&c, Compression::Zstd, data.len() as u32).is_err());
        let mut trailing = compress(&data, 3).unwrap();
        trailing.extend_from_slice(b"garbage");
        assert!(decompress(&trailing, Compression::Zstd, data.len() as u32).is_err());
        assert!(decompress(&[], Compression::Zstd, 0).is_err(), "no frame at all");
        // Found by fuzzing: a declared length of 4 GiB was allocated before decoding.
        assert!(matches!(decompress(&c, Compression::Zstd, u32::MAX), Err(DecodeError::TooLarge { .. })));
    }

    #[test]
    fn bomb_is_refused() {
        let zeros = vec![0u8; 1 << 20];
        let c = compress(&zeros, 3).unwrap();
        assert!(decompress(&c, Compression::Zstd, 1000).is_err());
        assert!(decompress(&c, Compression::Zstd, (2 << 20) as u32).is_err());
    }
}
