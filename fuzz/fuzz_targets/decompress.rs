//! `compress::decompress` with a declared raw length (zstd bombs, truncated
//! and concatenated frames, lengths that lie): never panics, allocates
//! within a bound of the declared length, and returns `Ok` only with exactly
//! `raw_len` bytes that a plain zstd decoder agrees on. Then a round trip:
//! whatever `compress` produces decompresses to the input, and only at its
//! exact length.
//!
//! Input: byte 0 = flags, bytes 1..5 = raw_len (u32 LE, folded into
//! `0..=MAX_BLOB_LEN`, the bound every pack entry is checked against),
//! byte 5 = zstd level (1..=19), rest = stored bytes.
//!
//! Flags: bit 0 = compression code (0 none, 1 zstd). Bit 1 = frame mode:
//! rather than hoping for valid zstd from random bytes, the rest is
//! `[edits: u8][3 bytes per edit][payload]`, and the stored bytes are a real
//! zstd frame of the payload (bit 3: with a checksum, bit 4: without the
//! content size, bit 5: followed by a second frame of it), then damaged: up
//! to 3 byte XORs (low 2 bits of `edits`; each edit is a u16 position and an
//! XOR mask) and the last `edits >> 4` bytes cut off. Bit 2 (frame mode)
//! declares the true raw length instead, and an undamaged frame must then
//! decode to the payload.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use snap::compress::{compress, decompress};
use snap::format::MAX_BLOB_LEN;
use snap::format::pack::Compression;

fuzz_target!(|data: &[u8]| {
    if data.len() < 6 {
        return;
    }
    let flags = data[0];
    let mut compression = Compression::from_code(flags & 1).unwrap();
    let mut raw_len = u32::from_le_bytes(data[1..5].try_into().unwrap()) % (MAX_BLOB_LEN + 1);
    let level = 1 + i32::from(data[5] % 19);
    let mut honest = None;
    let framed;
    let stored = if flags & 2 == 0 {
        &data[6..]
    } else {
        let Some((&edits, rest)) = data[6..].split_first() else { return };
        let count = usize::from(edits & 3);
        if rest.len() < 3 * count {
            return;
        }
        let (edits_bytes, payload) = rest.split_at(3 * count);
        let mut frame = zstd_frame(payload, level, flags & 8 != 0, flags & 16 == 0);
        let mut expected = payload.to_vec();
        if flags & 32 != 0 {
            frame.extend_from_within(..);
            expected.extend_from_slice(payload);
        }
        for edit in edits_bytes.chunks_exact(3) {
            let pos = usize::from(u16::from_le_bytes([edit[0], edit[1]])) % frame.len();
            frame[pos] ^= edit[2];
        }
        frame.truncate(frame.len().saturating_sub(usize::from(edits >> 4)));
        compression = Compression::Zstd;
        if flags & 4 != 0 {
            raw_len = expected.len() as u32;
            if edits & 0xf3 == 0 {
                honest = Some(expected);
            }
        }
        framed = frame;
        &framed[..]
    };

    let (result, peak) = common::peak_alloc(|| decompress(stored, compression, raw_len));
    // The output buffer is the only Rust allocation: at most the declared
    // length plus one probe byte, and `Vec` growth may double it.
    let budget = 2 * (raw_len as usize + 1) + (16 << 20);
    assert!(peak <= budget, "decompress to {raw_len} bytes allocated {peak}");
    match (&result, compression) {
        (Ok(out), _) => assert_eq!(out.len(), raw_len as usize, "Ok with the wrong length"),
        (Err(_), Compression::None) => assert_ne!(stored.len(), raw_len as usize, "refused a raw blob"),
        (Err(_), Compression::Zstd) => {}
    }
    if let Some(expected) = honest {
        assert_eq!(result.as_ref().ok(), Some(&expected), "an undamaged frame did not decode");
    }
    if let Ok(out) = &result {
        match compression {
            Compression::None => assert_eq!(out.as_slice(), stored),
            // A reader with no length limit must see the same complete frames;
            // this catches accepting a truncated frame or trailing garbage.
            // zstd's streaming reader refuses frames declaring a window over
            // 2^27 bytes; snap decodes in one shot into the declared length
            // and needs no window, so such a frame is legitimately accepted.
            Compression::Zstd => match zstd::stream::decode_all(stored) {
                Ok(plain) => assert_eq!(&plain, out, "snap and zstd decode differently"),
                Err(e) if e.to_string().contains("too much memory") => {}
                Err(e) => panic!("zstd refuses what snap accepted: {e:?}"),
            },
        }
    }

    round_trip(&data[6..], level);
});

/// A zstd frame of `payload`, optionally with a checksum and without the
/// content size (so the decoder sizes its buffers from the window alone).
fn zstd_frame(payload: &[u8], level: i32, checksum: bool, content_size: bool) -> Vec<u8> {
    use zstd::zstd_safe::CParameter;
    let mut c = zstd::bulk::Compressor::new(level).expect("zstd context");
    c.set_parameter(CParameter::ChecksumFlag(checksum)).expect("checksum flag");
    c.set_parameter(CParameter::ContentSizeFlag(content_size)).expect("content size flag");
    c.compress(payload).expect("zstd compresses")
}

fn round_trip(data: &[u8], level: i32) {
    let len = data.len() as u32;
    match compress(data, level) {
        Some(packed) => {
            assert!(packed.len() < data.len(), "compress returned a larger frame");
            let out = decompress(&packed, Compression::Zstd, len).expect("own frame decompresses");
            assert_eq!(out, data);
            assert!(decompress(&packed, Compression::Zstd, len + 1).is_err(), "accepted a longer raw_len");
            if len > 0 {
                assert!(
                    decompress(&packed, Compression::Zstd, len - 1).is_err(),
                    "accepted a shorter raw_len"
                );
            }
        }
        None => {
            assert_eq!(decompress(data, Compression::None, len).expect("raw blob"), data);
        }
    }
}
