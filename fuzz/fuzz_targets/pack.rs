//! The pack decoders on arbitrary bytes and truncations, for an unencrypted
//! repository and for an encrypted one (fixed master key): `decode_pack` on
//! the whole input, again with the input repaired into a pack whose header
//! matches the keys and whose trailer is sealed and checksummed correctly (so
//! the fuzzer reaches the postcard trailer and the entry checks instead of
//! stopping at BLAKE3 or the authentication tag), and `decode_footer` +
//! `decode_trailer` on the tail with an arbitrary claimed pack length, as
//! `repo::sync` reads them from storage. Every unencrypted pack accepted is
//! also sealed blob by blob into the pack an encrypted repository would
//! have written, which must decode to the same entries at their new offsets
//! (so the encrypted entry checks see accepted entries too), and into the
//! padded, shuffled-layout pack of a format 3 repository, which must decode
//! too and show only a padded length and trailer length.
//!
//! Inputs are far too short to be format 3 packs themselves (256 KiB at
//! least), so an input starting with `3` also describes one structurally:
//! up to eight blobs (lengths, kinds, compression), written as a format 3
//! writer lays them out, padded and sealed, then altered in one of the ways a hostile
//! repository could (a flipped byte; padding that opens to non-zero bytes,
//! or sealed as another object; a trailer whose zero padding is not zero; a
//! pack padded to more than its writer's length, or not at all). The
//! unaltered pack must decode to its entries with its padding envelope
//! where `decode_pack_contents` places it; each alteration must be refused
//! by the check meant for it, and padding damage by `decode_pack` alone
//! (the footer-and-trailer path, and `decode_pack_contents`, never look at
//! the padding, so they still accept the pack).
//!
//! Invariants: no panic, allocation within a bound of the input, and any
//! accepted entry list lies inside the blob area, is sorted and
//! non-overlapping, respects the blob limits (a sealed blob's stored length
//! includes the envelope), and re-encodes to itself; an accepted pack starts
//! with its keys' header and is never read under the other scheme.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use snap::crypto::{Aad, ENVELOPE_OVERHEAD, Keys};
use snap::format::pack::{
    Compression, FOOTER_LEN, FOOTER_MAGIC, MAX_ENTRIES, MAX_ENTRY_WIRE_LEN, PackEntry, TRAILER_PAD, data_end,
    decode_footer, decode_pack, decode_pack_contents, decode_trailer, encode_trailer, pack_header,
    padded_len,
};
use snap::format::{HEADER_LEN, MAX_BLOB_LEN};
use snap::id::{BlobId, ChunkId, TreeId};

/// Offset of the trailer hash inside the footer.
const OFF_HASH: usize = 4;
/// Offset of the footer magic inside the footer.
const OFF_MAGIC: usize = 36;

fuzz_target!(|data: &[u8]| {
    // Only inputs starting with `3`: sealing and opening 256 KiB and more
    // per input (under coverage instrumentation) runs ten times slower
    // than the other checks, which then still get most inputs.
    if let Some((b'3', description)) = data.split_first() {
        check_structured(description);
    }
    for keys in common::both_keys().into_iter().chain([common::padded_keys()]) {
        check_pack(data, keys);
        if let Some(fixed) = with_valid_checksum(data, keys) {
            check_pack(&fixed, keys);
        }
        if data.len() >= 8 {
            let pack_len = u64::from_le_bytes(data[..8].try_into().unwrap());
            let tail = &data[8..];
            check_tail(tail, pack_len, false, keys);
            check_tail(tail, pack_len, true, keys);
            // A claimed length that matches the bytes, as for a real file.
            check_tail(tail, tail.len() as u64, true, keys);
        }
    }
});

fn trailer_len_field(footer: &[u8]) -> u32 {
    u32::from_le_bytes(footer[..OFF_HASH].try_into().unwrap())
}

/// Checks what `decode_pack` accepts, given the whole pack.
fn check_pack(bytes: &[u8], keys: &Keys) {
    let (decoded, peak) = common::peak_alloc(|| decode_pack(bytes, keys));
    common::assert_within_budget("pack", bytes.len(), peak);

    // The path that reads only the footer and trailer from storage must agree
    // with the in-memory one whenever the header is right (it never sees the
    // header).
    if bytes.len() >= FOOTER_LEN && bytes.starts_with(&pack_header(keys)) {
        let len = bytes.len() as u64;
        let split = decode_footer(&bytes[bytes.len() - FOOTER_LEN..], len).and_then(|footer| {
            let end = bytes.len() - FOOTER_LEN;
            let start = end - footer.trailer_len as usize;
            decode_trailer(&bytes[start..end], &footer, keys)
        });
        assert_eq!(split.as_ref().ok(), decoded.as_ref().ok(), "split and whole-pack decoding disagree");
    }

    let Ok(entries) = decoded else { return };
    assert_eq!(bytes[..HEADER_LEN], pack_header(keys), "accepted a pack with another header");
    let footer_at = bytes.len() - FOOTER_LEN;
    let trailer_at = footer_at - trailer_len_field(&bytes[footer_at..]) as usize;
    check_entries(&entries, trailer_at as u64, keys);
    if keys.hides_sizes() {
        check_padded(bytes.len() as u64, &bytes[footer_at..]);
    }

    // The same blobs under a freshly encoded trailer decode to the same list,
    // and only under these keys. A padded pack's padding is encoded anew.
    let blobs_end = if keys.hides_sizes() { data_end(&entries) } else { trailer_at };
    let trailer = encode_trailer(&entries, blobs_end, keys).expect("a trailer encodes");
    if !keys.hides_sizes() {
        let plain_trailer =
            encode_trailer(&entries, blobs_end, common::plain_keys()).expect("a trailer encodes");
        assert_eq!(trailer.len(), plain_trailer.len() + keys.overhead(), "sealing added the wrong overhead");
    }
    let mut rebuilt = bytes[..blobs_end].to_vec();
    rebuilt.extend(trailer);
    assert_eq!(decode_pack(&rebuilt, keys).as_ref(), Ok(&entries), "re-encoded trailer decodes differently");
    assert!(
        decode_pack(&rebuilt, common::other_keys(keys)).is_err(),
        "a pack decoded under the other scheme"
    );

    if keys.overhead() == 0 {
        for sealed in [common::sealed_keys(), common::padded_keys()] {
            check_twin(bytes, &entries, sealed);
        }
    }
}

/// Checks the pack `sealed` would have written for the blobs of an accepted
/// unencrypted pack.
fn check_twin(bytes: &[u8], entries: &[PackEntry], sealed: &Keys) {
    {
        let (twin, twin_entries, twin_data_end) = sealed_twin(bytes, entries, sealed);
        let (decoded, peak) = common::peak_alloc(|| decode_pack(&twin, sealed));
        common::assert_within_budget("sealed pack", twin.len().max(256 << 10), peak);
        assert_eq!(decoded.as_ref(), Ok(&twin_entries), "a pack sealed blob by blob decodes differently");
        check_entries(&twin_entries, twin_data_end, sealed);
        if sealed.hides_sizes() {
            check_padded(twin.len() as u64, &twin[twin.len() - FOOTER_LEN..]);
        }
        for (e, t) in entries.iter().zip(&twin_entries) {
            let at = t.offset as usize;
            let opened = sealed.open(Aad::Blob(&t.blob), &twin[at..at + t.stored_len as usize]);
            let original = &bytes[e.offset as usize..][..e.stored_len as usize];
            assert_eq!(opened.as_deref(), Ok(original), "a sealed blob did not open to its stored bytes");
        }
    }
}

/// What an encrypted repository would have written for the blobs of an
/// accepted unencrypted pack: each blob's stored bytes sealed as that blob,
/// back to back, and a sealed trailer listing them. Returns the pack, the
/// entries it must decode to and the end of its blob area.
fn sealed_twin(bytes: &[u8], entries: &[PackEntry], keys: &Keys) -> (Vec<u8>, Vec<PackEntry>, u64) {
    let mut twin = pack_header(keys);
    let mut twin_entries = Vec::with_capacity(entries.len());
    for e in entries {
        let start = e.offset as usize;
        let stored = bytes[start..start + e.stored_len as usize].to_vec();
        let sealed = keys.seal(Aad::Blob(&e.blob), stored).expect("sealing succeeds");
        twin_entries.push(PackEntry { offset: twin.len() as u32, stored_len: sealed.len() as u32, ..*e });
        twin.extend(sealed);
    }
    let data_end = twin.len();
    twin.extend(encode_trailer(&twin_entries, data_end, keys).expect("a trailer encodes"));
    (twin, twin_entries, data_end as u64)
}

/// A format 3 pack shows only padded lengths: the pack's, a Padmé bucket;
/// the trailer's (in the clear in `footer`), a multiple of the pad.
fn check_padded(pack_len: u64, footer: &[u8]) {
    assert_eq!(padded_len(pack_len), pack_len, "accepted an unpadded pack length");
    assert_eq!(trailer_len_field(footer) as usize % TRAILER_PAD, 0, "accepted an unpadded trailer");
}

/// Entries must lie in `HEADER_LEN..data_end`, sorted and non-overlapping,
/// with lengths that fit the blob limits plus what sealing adds.
fn check_entries(entries: &[PackEntry], data_end: u64, keys: &Keys) {
    assert!(entries.len() <= MAX_ENTRIES);
    let overhead = keys.overhead() as u32;
    let mut next_free = HEADER_LEN as u64;
    for e in entries {
        let start = u64::from(e.offset);
        let end = start + u64::from(e.stored_len);
        assert!(start >= next_free, "entry at {start} overlaps or precedes {next_free}: {e:?}");
        assert!(!keys.hides_sizes() || start == next_free, "a gap before a padded pack's entry {e:?}");
        assert!(end <= data_end, "entry {start}..{end} runs past the blob area end {data_end}: {e:?}");
        assert!(e.stored_len <= MAX_BLOB_LEN + overhead && e.raw_len <= MAX_BLOB_LEN, "{e:?}");
        assert!(e.stored_len >= overhead, "stored bytes too short for an envelope: {e:?}");
        if e.compression == Compression::None {
            assert_eq!(u64::from(e.stored_len), u64::from(e.raw_len) + u64::from(overhead), "{e:?}");
        }
        next_free = end;
    }
}

/// The input made into a pack for `keys`: their header, the input's blob
/// area, the would-be trailer (its length folded into what the input can
/// hold) sealed as a trailer, and a footer with that trailer's length,
/// checksum and magic. Under plain keys sealing is the identity, so this
/// only overwrites the header and the footer fields.
fn with_valid_checksum(data: &[u8], keys: &Keys) -> Option<Vec<u8>> {
    if data.len() < HEADER_LEN + FOOTER_LEN {
        return None;
    }
    let footer_at = data.len() - FOOTER_LEN;
    let room = (footer_at - HEADER_LEN) as u32;
    let trailer_at = footer_at - (trailer_len_field(&data[footer_at..]) % (room + 1)) as usize;
    let mut bytes = pack_header(keys);
    bytes.extend_from_slice(&data[HEADER_LEN..trailer_at]);
    bytes.extend(sealed_tail(data[trailer_at..footer_at].to_vec(), keys));
    Some(bytes)
}

/// `plain` sealed as a trailer under `keys`, followed by the footer that
/// describes it (its length, checksum and magic).
fn sealed_tail(plain: Vec<u8>, keys: &Keys) -> Vec<u8> {
    let mut tail = keys.seal(Aad::PackTrailer, plain).expect("sealing succeeds");
    let len = u32::try_from(tail.len()).expect("trailers are far below 4 GiB");
    let hash = blake3::hash(&tail);
    tail.extend_from_slice(&len.to_le_bytes());
    tail.extend_from_slice(hash.as_bytes());
    tail.extend_from_slice(&FOOTER_MAGIC);
    tail
}

/// `tail` is the end of a pack said to be `pack_len` bytes long: its last
/// `FOOTER_LEN` bytes are the footer, and what precedes them the trailer (or
/// as much of it as the input has). With `fix`, those trailer bytes are
/// sealed as a trailer (the footer then claims the sealed length, so a short
/// input still gives a short trailer), and the footer magic and the trailer
/// checksum are made to match.
fn check_tail(tail: &[u8], pack_len: u64, fix: bool, keys: &Keys) {
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
    let stored = &tail[footer_at.saturating_sub(wanted)..footer_at];
    let sealed;
    let trailer = if fix {
        let Ok(claimed) = u32::try_from(wanted + keys.overhead()) else { return };
        sealed = keys.seal(Aad::PackTrailer, stored.to_vec()).expect("sealing succeeds");
        footer_bytes[..OFF_HASH].copy_from_slice(&claimed.to_le_bytes());
        footer_bytes[OFF_MAGIC..].copy_from_slice(&FOOTER_MAGIC);
        footer_bytes[OFF_HASH..OFF_MAGIC].copy_from_slice(blake3::hash(&sealed).as_bytes());
        &sealed[..]
    } else {
        stored
    };
    let claimed = trailer_len_field(&footer_bytes) as usize;

    let Ok(footer) = decode_footer(&footer_bytes, pack_len) else { return };
    assert_eq!(footer_bytes[OFF_MAGIC..], FOOTER_MAGIC);
    assert_eq!(footer.trailer_len as usize, claimed);
    let max = (MAX_ENTRIES * MAX_ENTRY_WIRE_LEN + 5 + ENVELOPE_OVERHEAD).next_multiple_of(TRAILER_PAD) as u64;
    assert!(u64::from(footer.trailer_len) <= max, "accepted trailer length {}", footer.trailer_len);
    let min_pack = (HEADER_LEN + FOOTER_LEN) as u64 + u64::from(footer.trailer_len);
    assert!(pack_len >= min_pack, "accepted pack length {pack_len} below {min_pack}");

    let (decoded, peak) = common::peak_alloc(|| decode_trailer(trailer, &footer, keys));
    common::assert_within_budget("pack trailer", trailer.len(), peak);
    let Ok(entries) = decoded else { return };
    assert_eq!(trailer.len(), claimed, "accepted a short trailer");
    check_entries(&entries, pack_len - FOOTER_LEN as u64 - u64::from(footer.trailer_len), keys);
}

/// How [`check_structured`] alters the format 3 pack it built.
#[derive(Clone, Copy, Debug)]
enum Alteration {
    None,
    /// One byte flipped, anywhere.
    Flip(usize),
    /// The padding envelope replaced by one of the same length that opens
    /// to a non-zero byte at this offset.
    PaddingNotZero(usize),
    /// The padding envelope sealed as a trailer instead.
    PaddingSealedAsTrailer,
    /// A non-zero byte at this offset of the trailer's zero padding (the
    /// trailer re-sealed and its checksum right).
    TrailerPaddingNotZero(usize),
    /// Sealed zeros padding the pack on to the next allowed length.
    MorePadding,
    /// The padding envelope left out.
    NoPadding,
}

/// Decodes the format 3 pack the input describes (see the module comment).
fn check_structured(data: &[u8]) {
    let keys = common::padded_keys();
    let Some((&[count, how, a, b, c, d], blobs)) = data.split_first_chunk::<6>() else { return };
    let at = u32::from_le_bytes([a, b, c, d]) as usize;
    let alteration = match how % 7 {
        0 => Alteration::None,
        1 => Alteration::Flip(at),
        2 => Alteration::PaddingNotZero(at),
        3 => Alteration::PaddingSealedAsTrailer,
        4 => Alteration::TrailerPaddingNotZero(at),
        5 => Alteration::MorePadding,
        _ => Alteration::NoPadding,
    };
    let (pack, entries) = build_padded(blobs, usize::from(count % 8) + 1, keys);
    let end = data_end(&entries);
    let trailer_at = pack.len() - FOOTER_LEN - trailer_len_field(&pack[pack.len() - FOOTER_LEN..]) as usize;
    let padding = end..trailer_at;
    let contents = decode_pack_contents(&pack, keys).expect("a written pack decodes");
    assert_eq!(contents.entries, entries, "a written pack decodes to other entries");
    assert_eq!(contents.padding, padding, "the padding envelope is not where it was written");
    check_padded(pack.len() as u64, &pack[pack.len() - FOOTER_LEN..]);

    let Some(altered) = alter(&pack, &entries, padding.clone(), alteration, keys) else { return };
    let whole = decode_pack(&altered, keys);
    let blobs_only = decode_pack_contents(&altered, keys).map(|c| c.entries);
    let split =
        decode_footer(&altered[altered.len() - FOOTER_LEN..], altered.len() as u64).and_then(|footer| {
            let end = altered.len() - FOOTER_LEN;
            decode_trailer(&altered[end - footer.trailer_len as usize..end], &footer, keys)
        });
    let accepted = |r: &Result<Vec<PackEntry>, _>| r.as_ref().ok() == Some(&entries);
    let flipped_in = |range: std::ops::Range<usize>, at: usize| range.contains(&(at % pack.len()));
    let what = format!("{alteration:?} of a {}-byte pack", pack.len());
    match alteration {
        Alteration::None => assert!(accepted(&whole) && accepted(&split), "{what}"),
        // A blob's own envelope is checked when it is opened, not here.
        Alteration::Flip(at) if flipped_in(HEADER_LEN..end, at) => assert!(accepted(&whole), "{what}"),
        // Only the header (checked byte for byte) is outside both.
        Alteration::Flip(at) if !flipped_in(padding.clone(), at) => assert!(whole.is_err(), "{what}"),
        Alteration::Flip(_) | Alteration::PaddingNotZero(_) | Alteration::PaddingSealedAsTrailer => {
            assert!(whole.is_err(), "{what}: damaged padding accepted");
            assert!(
                accepted(&blobs_only) && accepted(&split),
                "{what}: padding damage is the padding's alone"
            );
        }
        Alteration::TrailerPaddingNotZero(_) | Alteration::MorePadding | Alteration::NoPadding => {
            assert!(whole.is_err() && split.is_err(), "{what}: accepted at the tail read");
        }
    }
}

/// A format 3 pack of up to `count` blobs described by `spec`, three bytes
/// each (a u16 length, then kind and compression bits), laid out and padded
/// as a writer does. The blobs' stored bytes are not real envelopes: the
/// pack decoders never open blobs.
fn build_padded(spec: &[u8], count: usize, keys: &Keys) -> (Vec<u8>, Vec<PackEntry>) {
    let mut pack = pack_header(keys);
    let mut entries = Vec::new();
    for (i, blob) in spec.chunks_exact(3).take(count).enumerate() {
        let (len, flags) = (u32::from(u16::from_le_bytes([blob[0], blob[1]])), blob[2]);
        let id = [i as u8; 32];
        let compression = if flags & 2 == 0 { Compression::None } else { Compression::Zstd };
        let blob = if flags & 1 == 0 {
            BlobId::Chunk(ChunkId::from_bytes(id))
        } else {
            BlobId::Tree(TreeId::from_bytes(id))
        };
        // A compressed blob's raw length is free; an uncompressed one's is fixed.
        let raw_len = if compression == Compression::None { len } else { u32::from(flags) << 8 };
        let stored_len = len + ENVELOPE_OVERHEAD as u32;
        entries.push(PackEntry { blob, offset: pack.len() as u32, stored_len, raw_len, compression });
        pack.resize(pack.len() + stored_len as usize, flags);
    }
    let end = pack.len();
    pack.extend(encode_trailer(&entries, end, keys).expect("a trailer encodes"));
    (pack, entries)
}

/// `pack` (holding `entries`, its padding envelope at `padding`) altered as
/// asked, or `None` where the alteration does not apply (no padding to
/// alter, no room in the trailer's zero padding).
fn alter(
    pack: &[u8],
    entries: &[PackEntry],
    padding: std::ops::Range<usize>,
    how: Alteration,
    keys: &Keys,
) -> Option<Vec<u8>> {
    let tail = &pack[padding.end..];
    let with_padding = |envelope: &[u8], tail: &[u8]| [&pack[..padding.start], envelope, tail].concat();
    let sealed_padding =
        |aad, plain_len: usize| keys.seal(aad, vec![0; plain_len]).expect("sealing succeeds");
    let plain_len = padding.len().checked_sub(ENVELOPE_OVERHEAD);
    Some(match how {
        Alteration::None => pack.to_vec(),
        Alteration::Flip(at) => {
            let mut out = pack.to_vec();
            out[at % pack.len()] ^= 1;
            out
        }
        Alteration::PaddingNotZero(at) => {
            let mut plain = vec![0; plain_len.filter(|n| *n > 0)?];
            let len = plain.len();
            plain[at % len] = 1;
            with_padding(&keys.seal(Aad::PackPadding, plain).expect("sealing succeeds"), tail)
        }
        Alteration::PaddingSealedAsTrailer => {
            with_padding(&sealed_padding(Aad::PackTrailer, plain_len?), tail)
        }
        Alteration::TrailerPaddingNotZero(at) => {
            // The entry list as an unencrypted pack's trailer holds it.
            let bare =
                encode_trailer(entries, padding.start, common::plain_keys()).expect("a trailer encodes");
            let mut plain = bare[..bare.len() - FOOTER_LEN].to_vec();
            let sealed_len = tail.len() - FOOTER_LEN - ENVELOPE_OVERHEAD;
            let room = sealed_len.checked_sub(plain.len()).filter(|n| *n > 0)?;
            let nonzero = plain.len() + at % room;
            plain.resize(sealed_len, 0);
            plain[nonzero] = 1;
            with_padding(&pack[padding.clone()], &sealed_tail(plain, keys))
        }
        Alteration::MorePadding => {
            // Sealed under the key: only the written length gives it away.
            let gap = padded_len(pack.len() as u64 + 1) as usize - pack.len() + padding.len();
            with_padding(&sealed_padding(Aad::PackPadding, gap - ENVELOPE_OVERHEAD), tail)
        }
        Alteration::NoPadding if padding.is_empty() => return None,
        Alteration::NoPadding => with_padding(&[], tail),
    })
}
