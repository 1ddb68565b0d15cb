//! Pack files: blobs back to back, then a trailer that lists them, so a pack
//! describes its own contents and the index can be rebuilt from packs alone.
//!
//! | offset            | size | field                                        |
//! |-------------------|------|----------------------------------------------|
//! | 0                 | 8    | object header, magic `SNPK`                  |
//! | 8                 | ...  | stored blobs, back to back                   |
//! | T = end-40-len    | len  | trailer: sealed postcard `Vec<WireEntry>`    |
//! | end-40            | 4    | trailer length `len`, u32 little-endian      |
//! | end-36            | 32   | BLAKE3 of the trailer bytes                  |
//! | end-4             | 4    | footer magic `SNPF`                          |
//!
//! Each entry: kind (0 chunk, 1 tree), 32-byte id, absolute offset, stored
//! length, raw (decompressed) length, compression (0 none, 1 zstd). Entries are
//! sorted by offset and never overlap. The pack's file name is the BLAKE3 of
//! all its bytes. In an encrypted repository the trailer and every blob's
//! stored bytes are envelopes (`crypto`), so `stored_len` includes the
//! envelope's 40 bytes.
//!
//! Format 3 hides sizes (DESIGN.md 5.2): blobs lie back to back from byte 8
//! in a random order; then comes a padding envelope (sealed zeros, none or
//! at least 40 bytes) that brings the pack to a length [`padded_len`]
//! allows; the sealed trailer holds the entries followed by zero bytes, so
//! its length is a multiple of [`TRAILER_PAD`]. Every byte of such a pack is
//! under an authentication tag except the header and footer, which readers
//! check byte for byte.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::{DecodeError, HEADER_LEN, MAX_BLOB_LEN, decode_exact, read_header, write_header};
use crate::crypto::{Aad, ENVELOPE_OVERHEAD, Keys};
use crate::id::{BlobId, BlobKind, ID_LEN};

/// Magic at the start of a pack.
pub const PACK_MAGIC: [u8; 4] = *b"SNPK";
/// Magic at the very end of a pack; its absence means truncation.
pub const FOOTER_MAGIC: [u8; 4] = *b"SNPF";
/// Length of the fixed footer.
pub const FOOTER_LEN: usize = 40;
const OFF_TRAILER_LEN: usize = 0;
const OFF_TRAILER_HASH: usize = 4;
const OFF_FOOTER_MAGIC: usize = 36;
/// Bytes one encoded entry can take at most (postcard varints), used to bound
/// the trailer length before reading it.
pub const MAX_ENTRY_WIRE_LEN: usize = 1 + ID_LEN + 3 * 5 + 1;
/// Most entries a pack may list.
pub const MAX_ENTRIES: usize = 1 << 20;
/// Format 3: a sealed trailer's length is a multiple of this, so the footer
/// tells the number of entries only to within about ninety.
pub const TRAILER_PAD: usize = 4096;
/// Format 3: no pack is shorter, so a file stored alone in one shows only
/// that it is smaller than this.
pub const MIN_PACK_LEN: u64 = 256 << 10;

/// How a blob's stored bytes are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Stored as is (incompressible data).
    None,
    /// A zstd frame.
    Zstd,
}

impl Compression {
    /// The on-disk code.
    pub const fn code(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Zstd => 1,
        }
    }

    /// The compression for an on-disk code.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Compression::None),
            1 => Some(Compression::Zstd),
            _ => None,
        }
    }
}

/// Where one blob lives inside a pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PackEntry {
    /// The blob's kind and id.
    pub blob: BlobId,
    /// Absolute byte offset of the stored bytes in the pack.
    pub offset: u32,
    /// Length of the stored (possibly compressed) bytes.
    pub stored_len: u32,
    /// Length after decompression.
    pub raw_len: u32,
    /// How the stored bytes are encoded.
    pub compression: Compression,
}

#[derive(Serialize, Deserialize)]
struct WireEntry {
    kind: u8,
    id: [u8; ID_LEN],
    offset: u32,
    stored_len: u32,
    raw_len: u32,
    compression: u8,
}

/// The pack header bytes every pack of a repository with `keys` starts with.
pub fn pack_header(keys: &Keys) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN);
    write_header(&mut out, PACK_MAGIC, keys.scheme());
    out
}

/// Encodes what follows the blobs of a pack whose blobs end at `data_end`:
/// in format 3 the padding envelope, then the trailer for `entries`, then
/// the footer.
pub fn encode_trailer(entries: &[PackEntry], data_end: usize, keys: &Keys) -> crate::Result<Vec<u8>> {
    let wire: Vec<WireEntry> = entries
        .iter()
        .map(|e| WireEntry {
            kind: e.blob.kind().code(),
            id: *e.blob.as_bytes(),
            offset: e.offset,
            stored_len: e.stored_len,
            raw_len: e.raw_len,
            compression: e.compression.code(),
        })
        .collect();
    let mut plain = postcard::to_stdvec(&wire).expect("pack entries serialize");
    if keys.hides_sizes() {
        plain.resize((plain.len() + ENVELOPE_OVERHEAD).next_multiple_of(TRAILER_PAD) - ENVELOPE_OVERHEAD, 0);
    }
    let trailer = keys.seal(Aad::PackTrailer, plain)?;
    let mut out = padding(data_end, trailer.len(), keys)?;
    let len = u32::try_from(trailer.len()).expect("trailer bounded by MAX_ENTRIES");
    let hash = blake3::hash(&trailer);
    out.extend_from_slice(&trailer);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(hash.as_bytes());
    out.extend_from_slice(&FOOTER_MAGIC);
    Ok(out)
}

/// The padding envelope a format 3 pack needs between its blobs (ending at
/// `data_end`) and a trailer of `trailer_len` bytes; nothing before format 3.
fn padding(data_end: usize, trailer_len: usize, keys: &Keys) -> crate::Result<Vec<u8>> {
    if !keys.hides_sizes() {
        return Ok(Vec::new());
    }
    let bare = (data_end + trailer_len + FOOTER_LEN) as u64;
    let len = padded_pack_len(bare);
    match usize::try_from(len - bare).expect("packs stay far below 4 GiB") {
        0 => Ok(Vec::new()),
        gap => keys.seal(Aad::PackPadding, vec![0; gap - ENVELOPE_OVERHEAD]),
    }
}

/// The length of a format 3 pack whose header, blobs, trailer and footer
/// take `bare` bytes: the first padded length that leaves room for no
/// padding envelope or a whole one (an envelope cannot be shorter than its
/// nonce and tag). Writers make exactly this length, and readers require it,
/// so padding cannot be made longer than the writer's.
pub fn padded_pack_len(bare: u64) -> u64 {
    let mut len = padded_len(bare);
    while (1..ENVELOPE_OVERHEAD as u64).contains(&(len - bare)) {
        len = padded_len(len + 1);
    }
    len
}

/// The lengths a format 3 pack may have: at least [`MIN_PACK_LEN`], and
/// above it Padmé's buckets ([`super::padme`]): a 16 MiB pack to within
/// 512 KiB.
pub fn padded_len(len: u64) -> u64 {
    super::padme(len, MIN_PACK_LEN)
}

/// Checks a format 3 pack's padding envelope (the bytes between its last
/// blob and its trailer): none, or sealed zeros that open under the key.
pub fn check_padding(padding: &[u8], keys: &Keys) -> Result<(), DecodeError> {
    if padding.is_empty() {
        return Ok(());
    }
    if keys.open(Aad::PackPadding, padding)?.iter().any(|b| *b != 0) {
        return Err(DecodeError::invalid("pack padding", "not zero"));
    }
    Ok(())
}

/// What the footer says: the trailer's length and checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footer {
    /// Length of the trailer that precedes the footer.
    pub trailer_len: u32,
    trailer_hash: [u8; 32],
    /// Length of the whole pack, as checked against `trailer_len`.
    pack_len: u64,
}

/// Decodes the last [`FOOTER_LEN`] bytes of a pack of `pack_len` bytes.
pub fn decode_footer(bytes: &[u8], pack_len: u64) -> Result<Footer, DecodeError> {
    if bytes.len() != FOOTER_LEN {
        return Err(DecodeError::Truncated { need: FOOTER_LEN, have: bytes.len() });
    }
    if bytes[OFF_FOOTER_MAGIC..] != FOOTER_MAGIC {
        let found = bytes[OFF_FOOTER_MAGIC..].try_into().expect("4-byte slice");
        return Err(DecodeError::BadMagic { found, expected: FOOTER_MAGIC });
    }
    let trailer_len =
        u32::from_le_bytes(bytes[OFF_TRAILER_LEN..OFF_TRAILER_HASH].try_into().expect("4 bytes"));
    let max = (MAX_ENTRIES * MAX_ENTRY_WIRE_LEN + 5 + ENVELOPE_OVERHEAD).next_multiple_of(TRAILER_PAD) as u64;
    if u64::from(trailer_len) > max {
        return Err(DecodeError::TooLarge { what: "pack trailer", len: trailer_len.into(), max });
    }
    let min_pack = (HEADER_LEN + FOOTER_LEN) as u64 + u64::from(trailer_len);
    if pack_len < min_pack {
        return Err(DecodeError::Truncated { need: min_pack as usize, have: pack_len as usize });
    }
    let trailer_hash = bytes[OFF_TRAILER_HASH..OFF_FOOTER_MAGIC].try_into().expect("32 bytes");
    Ok(Footer { trailer_len, trailer_hash, pack_len })
}

/// Decodes and checks the trailer a footer describes.
pub fn decode_trailer(trailer: &[u8], footer: &Footer, keys: &Keys) -> Result<Vec<PackEntry>, DecodeError> {
    if trailer.len() != footer.trailer_len as usize {
        return Err(DecodeError::Truncated { need: footer.trailer_len as usize, have: trailer.len() });
    }
    if blake3::hash(trailer).as_bytes() != &footer.trailer_hash {
        return Err(DecodeError::Checksum);
    }
    if keys.hides_sizes() {
        check_padded_lengths(footer)?;
    }
    let opened = keys.open(Aad::PackTrailer, trailer)?;
    let wire: Vec<WireEntry> =
        if keys.hides_sizes() { decode_zero_padded(&opened)? } else { decode_exact(&opened)? };
    if wire.len() > MAX_ENTRIES {
        return Err(DecodeError::TooLarge {
            what: "pack entry count",
            len: wire.len() as u64,
            max: MAX_ENTRIES as u64,
        });
    }
    // decode_footer checked that the pack holds header, trailer and footer.
    let data_end = footer.pack_len - (FOOTER_LEN as u64) - u64::from(footer.trailer_len);
    let mut next_free = HEADER_LEN as u64;
    let overhead = keys.overhead() as u32;
    let entries = wire
        .into_iter()
        .map(|w| check_entry(w, &mut next_free, data_end, overhead, keys.hides_sizes()))
        .collect::<Result<Vec<_>, _>>()?;
    // The writer's length follows from what the pack holds: longer padding
    // (a pack extended by anyone, without a key) is refused here, at the
    // tail read, before a reader would fetch it.
    let written = padded_pack_len(next_free + u64::from(footer.trailer_len) + FOOTER_LEN as u64);
    if keys.hides_sizes() && footer.pack_len != written {
        return Err(DecodeError::invalid(
            "pack",
            format!("length {} is not the {written} its contents make", footer.pack_len),
        ));
    }
    Ok(entries)
}

/// Format 3: the footer's trailer length and the pack's length are the
/// padded ones a writer makes.
fn check_padded_lengths(footer: &Footer) -> Result<(), DecodeError> {
    if !(footer.trailer_len as usize).is_multiple_of(TRAILER_PAD) {
        return Err(DecodeError::invalid(
            "pack trailer",
            format!("length {} is not padded", footer.trailer_len),
        ));
    }
    if padded_len(footer.pack_len) != footer.pack_len {
        return Err(DecodeError::invalid("pack", format!("length {} is not padded", footer.pack_len)));
    }
    Ok(())
}

/// Decodes a postcard value followed by nothing but zero bytes (format 3's
/// trailer padding, inside the envelope and so authenticated).
fn decode_zero_padded<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, DecodeError> {
    let (value, rest) = postcard::take_from_bytes(bytes)?;
    if rest.iter().any(|b| *b != 0) {
        return Err(DecodeError::invalid("pack trailer", "padding is not zero"));
    }
    Ok(value)
}

/// Checks one entry; `overhead` is what sealing adds to a blob's bytes. In
/// format 3 (`contiguous`) each blob starts where the one before ends: no
/// byte of a pack lies outside an envelope.
fn check_entry(
    w: WireEntry,
    next_free: &mut u64,
    data_end: u64,
    overhead: u32,
    contiguous: bool,
) -> Result<PackEntry, DecodeError> {
    // The trailer's checksum held, so an unknown code was written so.
    let kind = BlobKind::from_code(w.kind).ok_or(DecodeError::Unknown { what: "blob kind", code: w.kind })?;
    let compression = Compression::from_code(w.compression)
        .ok_or(DecodeError::Unknown { what: "compression", code: w.compression })?;
    for (what, len, max) in
        [("stored blob", w.stored_len, MAX_BLOB_LEN + overhead), ("raw blob", w.raw_len, MAX_BLOB_LEN)]
    {
        if len > max {
            return Err(DecodeError::TooLarge { what, len: len.into(), max: max.into() });
        }
    }
    if w.stored_len < overhead
        || (compression == Compression::None
            && u64::from(w.stored_len) != u64::from(w.raw_len) + u64::from(overhead))
    {
        return Err(DecodeError::invalid("pack entry", "stored and raw lengths do not fit together"));
    }
    let start = u64::from(w.offset);
    let end = start + u64::from(w.stored_len);
    if start < *next_free || end > data_end || (contiguous && start != *next_free) {
        return Err(DecodeError::invalid(
            "pack entry",
            format!("blob at {start}..{end} overlaps, leaves a gap or lies outside {next_free}..{data_end}"),
        ));
    }
    *next_free = end;
    Ok(PackEntry {
        blob: BlobId::new(kind, w.id),
        offset: w.offset,
        stored_len: w.stored_len,
        raw_len: w.raw_len,
        compression,
    })
}

/// A whole pack's entries, and where its padding envelope lies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackContents {
    /// The trailer's entries, checked.
    pub entries: Vec<PackEntry>,
    /// Format 3: the bytes between the last blob and the trailer, the
    /// padding envelope (not opened yet); empty before format 3.
    pub padding: Range<usize>,
}

/// Decodes the entries of a whole pack held in memory, checking its header
/// (and in format 3 its padding).
pub fn decode_pack(bytes: &[u8], keys: &Keys) -> Result<Vec<PackEntry>, DecodeError> {
    let contents = decode_pack_contents(bytes, keys)?;
    check_padding(&bytes[contents.padding], keys)?;
    Ok(contents.entries)
}

/// As [`decode_pack`], but leaves the padding envelope unopened: it holds
/// no data, so a reader after the blobs (each checked when opened) need
/// not fail on it, and one that must judge it can, on its own.
pub fn decode_pack_contents(bytes: &[u8], keys: &Keys) -> Result<PackContents, DecodeError> {
    read_header(bytes, PACK_MAGIC, keys.scheme())?;
    if bytes.len() < HEADER_LEN + FOOTER_LEN {
        return Err(DecodeError::Truncated { need: HEADER_LEN + FOOTER_LEN, have: bytes.len() });
    }
    let len = bytes.len() as u64;
    let footer = decode_footer(&bytes[bytes.len() - FOOTER_LEN..], len)?;
    let trailer_end = bytes.len() - FOOTER_LEN;
    let trailer_start = trailer_end - footer.trailer_len as usize;
    let entries = decode_trailer(&bytes[trailer_start..trailer_end], &footer, keys)?;
    // Before format 3 nothing but the pack's name covers bytes there.
    let padding_start = if keys.hides_sizes() { data_end(&entries) } else { trailer_start };
    Ok(PackContents { entries, padding: padding_start..trailer_start })
}

/// Where the blobs of a checked entry list end (they start at byte 8).
pub fn data_end(entries: &[PackEntry]) -> usize {
    entries.last().map_or(HEADER_LEN, |e| e.offset as usize + e.stored_len as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::{ChunkId, TreeId};
    use proptest::prelude::*;

    fn build(blobs: &[(BlobId, Vec<u8>)]) -> (Vec<u8>, Vec<PackEntry>) {
        let mut bytes = pack_header(&Keys::plain());
        let mut entries = Vec::new();
        for (id, data) in blobs {
            entries.push(PackEntry {
                blob: *id,
                offset: bytes.len() as u32,
                stored_len: data.len() as u32,
                raw_len: data.len() as u32,
                compression: Compression::None,
            });
            bytes.extend_from_slice(data);
        }
        let tail = encode_trailer(&entries, bytes.len(), &Keys::plain()).unwrap();
        bytes.extend(tail);
        (bytes, entries)
    }

    /// A pack as format 3 writes it: `blobs` sealed under `keys`, back to
    /// back, then padding, trailer and footer.
    fn build_sealed(keys: &Keys, blobs: &[(BlobId, usize)]) -> (Vec<u8>, Vec<PackEntry>) {
        let mut bytes = pack_header(keys);
        let mut entries = Vec::new();
        for (id, len) in blobs {
            let stored = keys.seal(Aad::Blob(id), vec![7; *len]).unwrap();
            entries.push(PackEntry {
                blob: *id,
                offset: bytes.len() as u32,
                stored_len: stored.len() as u32,
                raw_len: *len as u32,
                compression: Compression::None,
            });
            bytes.extend(stored);
        }
        let tail = encode_trailer(&entries, bytes.len(), keys).unwrap();
        bytes.extend(tail);
        (bytes, entries)
    }

    fn hiding() -> Keys {
        Keys::from_master_for(&[3; 32], crate::format::SIZE_HIDING_VERSION)
    }

    fn chunk(i: usize) -> BlobId {
        BlobId::Chunk(ChunkId::from_bytes([i as u8; 32]))
    }

    fn trailer_len(pack: &[u8]) -> usize {
        let at = pack.len() - FOOTER_LEN + OFF_TRAILER_LEN;
        u32::from_le_bytes(pack[at..at + 4].try_into().unwrap()) as usize
    }

    proptest! {
        #[test]
        fn round_trip(blobs in prop::collection::vec((any::<[u8; 32]>(), any::<bool>(), prop::collection::vec(any::<u8>(), 0..64)), 0..20)) {
            let blobs: Vec<_> = blobs.into_iter().map(|(id, tree, data)| {
                let id = if tree { BlobId::Tree(TreeId::from_bytes(id)) } else { BlobId::Chunk(ChunkId::from_bytes(id)) };
                (id, data)
            }).collect();
            let (bytes, entries) = build(&blobs);
            prop_assert_eq!(decode_pack(&bytes, &Keys::plain()).unwrap(), entries);
        }

        /// Whatever blobs a format 3 pack holds, its length is a padded one
        /// and its trailer a multiple of the pad, and it decodes back.
        #[test]
        fn padded_packs_show_only_buckets(lens in prop::collection::vec(0usize..30_000, 1..30)) {
            let keys = hiding();
            let blobs: Vec<_> = lens.iter().enumerate().map(|(i, len)| (chunk(i), *len)).collect();
            let (bytes, entries) = build_sealed(&keys, &blobs);
            prop_assert_eq!(trailer_len(&bytes) % TRAILER_PAD, 0);
            prop_assert_eq!(padded_len(bytes.len() as u64), bytes.len() as u64);
            prop_assert!(bytes.len() as u64 >= MIN_PACK_LEN);
            prop_assert_eq!(decode_pack(&bytes, &keys).unwrap(), entries);
        }

        /// Padmé's buckets: never below the length, idempotent, and at most
        /// 1/2^S above it (S the bit length of the length's exponent).
        #[test]
        fn padded_len_is_a_bucket(len in 0u64..(1 << 32)) {
            let padded = padded_len(len);
            prop_assert!(padded >= len);
            prop_assert_eq!(padded_len(padded), padded);
            if len > MIN_PACK_LEN {
                let e = 63 - len.leading_zeros();
                prop_assert!((padded - len) << (32 - e.leading_zeros()) <= len);
            }
        }

        /// No byte of a format 3 pack can change unnoticed, not even where
        /// it is padding: decoding the whole pack fails.
        #[test]
        fn every_byte_of_a_padded_pack_is_checked(seed: usize, lens in prop::collection::vec(0usize..5000, 1..5)) {
            let keys = hiding();
            let blobs: Vec<_> = lens.iter().enumerate().map(|(i, len)| (chunk(i), *len)).collect();
            let (bytes, entries) = build_sealed(&keys, &blobs);
            let at = seed % bytes.len();
            let mut bad = bytes.clone();
            bad[at] ^= 1;
            let in_blob = entries.iter().any(|e| (e.offset as usize..(e.offset + e.stored_len) as usize).contains(&at));
            // A blob's bytes are checked when it is opened (its own tag).
            prop_assert!(in_blob || decode_pack(&bad, &keys).is_err(), "byte {} of {}", at, bytes.len());
        }

        #[test]
        fn truncation_is_detected(cut in 1usize..200) {
            let (bytes, _) = build(&[(BlobId::Chunk(ChunkId::from_bytes([1; 32])), vec![9; 100])]);
            let cut = cut.min(bytes.len());
            prop_assert!(decode_pack(&bytes[..bytes.len() - cut], &Keys::plain()).is_err());
        }
    }

    #[test]
    fn a_small_blob_alone_no_longer_shows_its_size() {
        let keys = hiding();
        let (a, _) = build_sealed(&keys, &[(chunk(1), 100_000)]);
        let (b, _) = build_sealed(&keys, &[(chunk(1), 150_000)]);
        assert_eq!(a.len(), b.len());
        assert_eq!(a.len() as u64, MIN_PACK_LEN);
        let (plain, _) = build(&[(chunk(1), vec![7; 100_000])]);
        assert_eq!(plain.len(), 8 + 100_000 + trailer_len(&plain) + FOOTER_LEN, "format 1 is unpadded");
    }

    #[test]
    fn hidden_data_in_a_padded_pack_is_refused() {
        let keys = hiding();
        let (bytes, entries) = build_sealed(&keys, &[(chunk(1), 1000), (chunk(2), 1000)]);
        // A gap between blobs: the second entry moved on by 40 bytes.
        let moved: Vec<_> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| PackEntry { offset: e.offset + 40 * i as u32, ..*e })
            .collect();
        let mut forged = bytes[..data_end(&entries)].to_vec();
        forged.extend(encode_trailer(&moved, forged.len(), &keys).unwrap());
        assert!(decode_pack(&forged, &keys).is_err(), "a gap between blobs is refused");
        // Padding replaced by bytes that do not open.
        let pad_start = data_end(&entries);
        let mut bad = bytes.clone();
        bad[pad_start + 30] ^= 0xff;
        assert_eq!(decode_pack(&bad, &keys), Err(DecodeError::Authentication));
        // An unpadded pack in a format 3 repository.
        let plain_keys = Keys::from_master(&[3; 32]);
        let (unpadded, _) = build_sealed(&plain_keys, &[(chunk(1), 1000)]);
        assert!(decode_pack(&unpadded, &keys).is_err(), "format 2 layout in a format 3 repository");
    }

    #[test]
    fn a_pack_extended_with_more_padding_is_refused_at_its_tail() {
        let keys = hiding();
        let (bytes, entries) = build_sealed(&keys, &[(chunk(1), 1000)]);
        // Zeros inserted before the trailer, to the next allowed length: no
        // key is needed, and the trailer and footer stay as they were.
        let tail = bytes.len() - trailer_len(&bytes) - FOOTER_LEN;
        let longer = padded_len(bytes.len() as u64 + 1) as usize;
        let mut extended = bytes[..data_end(&entries)].to_vec();
        extended.resize(data_end(&entries) + (longer - bytes.len()) + (tail - data_end(&entries)), 0);
        extended.extend_from_slice(&bytes[tail..]);
        assert_eq!(extended.len(), longer);
        let footer = decode_footer(&extended[extended.len() - FOOTER_LEN..], extended.len() as u64).unwrap();
        let trailer = &extended[tail + (longer - bytes.len())..extended.len() - FOOTER_LEN];
        let err = decode_trailer(trailer, &footer, &keys).unwrap_err();
        assert!(err.to_string().contains("its contents make"), "{err}");
    }

    #[test]
    fn flipped_trailer_byte_fails_checksum() {
        let (mut bytes, _) = build(&[(BlobId::Chunk(ChunkId::from_bytes([1; 32])), vec![9; 10])]);
        let pos = bytes.len() - FOOTER_LEN - 3;
        bytes[pos] ^= 1;
        assert_eq!(decode_pack(&bytes, &Keys::plain()), Err(DecodeError::Checksum));
    }

    #[test]
    fn encrypted_trailer_round_trip_and_wrong_key() {
        let keys = Keys::from_master(&[3; 32]);
        let mut bytes = pack_header(&keys);
        let entries = vec![PackEntry {
            blob: BlobId::Chunk(ChunkId::from_bytes([1; 32])),
            offset: 8,
            stored_len: 10 + ENVELOPE_OVERHEAD as u32,
            raw_len: 10,
            compression: Compression::None,
        }];
        bytes.extend_from_slice(&[0; 10 + ENVELOPE_OVERHEAD]);
        let tail = encode_trailer(&entries, bytes.len(), &keys).unwrap();
        bytes.extend(tail);
        assert_eq!(decode_pack(&bytes, &keys).unwrap(), entries);
        assert_eq!(decode_pack(&bytes, &Keys::from_master(&[4; 32])), Err(DecodeError::Authentication));
        assert!(decode_pack(&bytes, &Keys::plain()).is_err(), "an encrypted pack is never read as plain");
    }
}
