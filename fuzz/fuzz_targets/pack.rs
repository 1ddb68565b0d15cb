//! The pack decoders on arbitrary bytes and truncations: `decode_pack` on the
//! whole input, again with the footer checksum made valid (so the fuzzer
//! reaches the postcard trailer and the entry checks instead of stopping at
//! BLAKE3), and `decode_footer` + `decode_trailer` on the tail with an
//! arbitrary claimed pack length, as `repo::sync` reads them from storage.
//!
//! Invariants: no panic, allocation within a bound of the input, and any
//! accepted entry list lies inside the blob area, is sorted and
//! non-overlapping, respects the blob limits, and re-encodes to itself.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use snap::format::pack::{
    Compression, FOOTER_LEN, FOOTER_MAGIC, MAX_ENTRIES, MAX_ENTRY_WIRE_LEN, PackEntry, decode_footer,
    decode_pack, decode_trailer, encode_trailer, pack_header,
};
use snap::format::{HEADER_LEN, MAX_BLOB_LEN};

/// Offset of the trailer hash inside the footer.
const OFF_HASH: usize = 4;
/// Offset of the footer magic inside the footer.
const OFF_MAGIC: usize = 36;

fuzz_target!(|data: &[u8]| {
    check_pack(data);
    if let Some(fixed) = with_valid_checksum(data) {
        check_pack(&fixed);
    }
    if data.len() >= 8 {
        let pack_len = u64::from_le_bytes(data[..8].try_into().unwrap());
        let tail = &data[8..];
        check_tail(tail, pack_len, false);
        check_tail(tail, pack_len, true);
        // A claimed length that matches the bytes, as for a real file.
        check_tail(tail, tail.len() as u64, true);
    }
});

fn trailer_len_field(footer: &[u8]) -> u32 {
    u32::from_le_bytes(footer[..OFF_HASH].try_into().unwrap())
}

/// Checks what `decode_pack` accepts, given the whole pack.
fn check_pack(bytes: &[u8]) {
    let (decoded, peak) = common::peak_alloc(|| decode_pack(bytes));
    common::assert_within_budget("pack", bytes.len(), peak);

    // The path that reads only the footer and trailer from storage must agree
    // with the in-memory one whenever the header is right (it never sees the
    // header).
    if bytes.len() >= FOOTER_LEN && bytes.starts_with(&pack_header()) {
        let len = bytes.len() as u64;
        let split = decode_footer(&bytes[bytes.len() - FOOTER_LEN..], len).and_then(|footer| {
            let end = bytes.len() - FOOTER_LEN;
            let start = end - footer.trailer_len as usize;
            decode_trailer(&bytes[start..end], &footer)
        });
        assert_eq!(split.as_ref().ok(), decoded.as_ref().ok(), "split and whole-pack decoding disagree");
    }

    let Ok(entries) = decoded else { return };
    let footer_at = bytes.len() - FOOTER_LEN;
    let data_end = footer_at - trailer_len_field(&bytes[footer_at..]) as usize;
    check_entries(&entries, data_end as u64);

    // The same blobs under a freshly encoded trailer decode to the same list.
    let mut rebuilt = bytes[..data_end].to_vec();
    rebuilt.extend(encode_trailer(&entries));
    assert_eq!(decode_pack(&rebuilt).as_ref(), Ok(&entries), "re-encoded trailer decodes differently");
}

/// Entries must lie in `HEADER_LEN..data_end`, sorted and non-overlapping.
fn check_entries(entries: &[PackEntry], data_end: u64) {
    assert!(entries.len() <= MAX_ENTRIES);
    let mut next_free = HEADER_LEN as u64;
    for e in entries {
        let start = u64::from(e.offset);
        let end = start + u64::from(e.stored_len);
        assert!(start >= next_free, "entry at {start} overlaps or precedes {next_free}: {e:?}");
        assert!(end <= data_end, "entry {start}..{end} runs past the blob area end {data_end}: {e:?}");
        assert!(e.stored_len <= MAX_BLOB_LEN && e.raw_len <= MAX_BLOB_LEN, "{e:?}");
        if e.compression == Compression::None {
            assert_eq!(e.stored_len, e.raw_len, "{e:?}");
        }
        next_free = end;
    }
}

/// The input with a pack header, footer magic and a trailer checksum that
/// match, the trailer length folded into what the input can hold.
fn with_valid_checksum(data: &[u8]) -> Option<Vec<u8>> {
    if data.len() < HEADER_LEN + FOOTER_LEN {
        return None;
    }
    let mut bytes = data.to_vec();
    bytes[..HEADER_LEN].copy_from_slice(&pack_header());
    let footer_at = bytes.len() - FOOTER_LEN;
    bytes[footer_at + OFF_MAGIC..].copy_from_slice(&FOOTER_MAGIC);
    let room = (footer_at - HEADER_LEN) as u32;
    let trailer_len = trailer_len_field(&bytes[footer_at..]) % (room + 1);
    bytes[footer_at..footer_at + OFF_HASH].copy_from_slice(&trailer_len.to_le_bytes());
    let hash = blake3::hash(&bytes[footer_at - trailer_len as usize..footer_at]);
    bytes[footer_at + OFF_HASH..footer_at + OFF_MAGIC].copy_from_slice(hash.as_bytes());
    Some(bytes)
}

/// `tail` is the end of a pack said to be `pack_len` bytes long: its last
/// `FOOTER_LEN` bytes are the footer, and what precedes them the trailer (or
/// as much of it as the input has). With `fix`, the footer magic and the
/// trailer checksum are made to match.
fn check_tail(tail: &[u8], pack_len: u64, fix: bool) {
    // A footer slice of the wrong length is refused, whatever it holds.
    if tail.len() != FOOTER_LEN {
        assert!(decode_footer(tail, pack_len).is_err(), "accepted a {}-byte footer", tail.len());
    }
    if tail.len() < FOOTER_LEN {
        return;
    }
    let footer_at = tail.len() - FOOTER_LEN;
    let mut footer_bytes: [u8; FOOTER_LEN] = tail[footer_at..].try_into().unwrap();
    let wanted = trailer_len_field(&footer_bytes) as usize;
    let trailer = &tail[footer_at.saturating_sub(wanted)..footer_at];
    if fix {
        footer_bytes[OFF_MAGIC..].copy_from_slice(&FOOTER_MAGIC);
        footer_bytes[OFF_HASH..OFF_MAGIC].copy_from_slice(blake3::hash(trailer).as_bytes());
    }

    let Ok(footer) = decode_footer(&footer_bytes, pack_len) else { return };
    assert_eq!(footer_bytes[OFF_MAGIC..], FOOTER_MAGIC);
    assert_eq!(footer.trailer_len as usize, wanted);
    let max = (MAX_ENTRIES * MAX_ENTRY_WIRE_LEN + 5) as u64;
    assert!(u64::from(footer.trailer_len) <= max, "accepted trailer length {}", footer.trailer_len);
    let min_pack = (HEADER_LEN + FOOTER_LEN) as u64 + u64::from(footer.trailer_len);
    assert!(pack_len >= min_pack, "accepted pack length {pack_len} below {min_pack}");

    let (decoded, peak) = common::peak_alloc(|| decode_trailer(trailer, &footer));
    common::assert_within_budget("pack trailer", trailer.len(), peak);
    let Ok(entries) = decoded else { return };
    assert_eq!(trailer.len(), wanted, "accepted a short trailer");
    check_entries(&entries, pack_len - FOOTER_LEN as u64 - u64::from(footer.trailer_len));
}
