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

/// Encodes the trailer and footer for `entries`, to append after the blobs.
pub fn encode_trailer(entries: &[PackEntry], keys: &Keys) -> crate::Result<Vec<u8>> {
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
    let mut out = keys.seal(Aad::PackTrailer, postcard::to_stdvec(&wire).expect("pack entries serialize"))?;
    let len = u32::try_from(out.len()).expect("trailer bounded by MAX_ENTRIES");
    let hash = blake3::hash(&out);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(hash.as_bytes());
    out.extend_from_slice(&FOOTER_MAGIC);
    Ok(out)
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
    let max = (MAX_ENTRIES * MAX_ENTRY_WIRE_LEN + 5 + ENVELOPE_OVERHEAD) as u64;
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
    let wire: Vec<WireEntry> = decode_exact(&keys.open(Aad::PackTrailer, trailer)?)?;
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
    wire.into_iter().map(|w| check_entry(w, &mut next_free, data_end, overhead)).collect()
}

/// Checks one entry; `overhead` is what sealing adds to a blob's bytes.
fn check_entry(
    w: WireEntry,
    next_free: &mut u64,
    data_end: u64,
    overhead: u32,
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
    if start < *next_free || end > data_end {
        return Err(DecodeError::invalid(
            "pack entry",
            format!("blob at {start}..{end} overlaps or lies outside {next_free}..{data_end}"),
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

/// Decodes the entries of a whole pack held in memory, checking its header.
pub fn decode_pack(bytes: &[u8], keys: &Keys) -> Result<Vec<PackEntry>, DecodeError> {
    read_header(bytes, PACK_MAGIC, keys.scheme())?;
    if bytes.len() < HEADER_LEN + FOOTER_LEN {
        return Err(DecodeError::Truncated { need: HEADER_LEN + FOOTER_LEN, have: bytes.len() });
    }
    let len = bytes.len() as u64;
    let footer = decode_footer(&bytes[bytes.len() - FOOTER_LEN..], len)?;
    let trailer_end = bytes.len() - FOOTER_LEN;
    let trailer = &bytes[trailer_end - footer.trailer_len as usize..trailer_end];
    decode_trailer(trailer, &footer, keys)
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
        bytes.extend(encode_trailer(&entries, &Keys::plain()).unwrap());
        (bytes, entries)
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

        #[test]
        fn truncation_is_detected(cut in 1usize..200) {
            let (bytes, _) = build(&[(BlobId::Chunk(ChunkId::from_bytes([1; 32])), vec![9; 100])]);
            let cut = cut.min(bytes.len());
            prop_assert!(decode_pack(&bytes[..bytes.len() - cut], &Keys::plain()).is_err());
        }
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
        bytes.extend(encode_trailer(&entries, &keys).unwrap());
        assert_eq!(decode_pack(&bytes, &keys).unwrap(), entries);
        assert_eq!(decode_pack(&bytes, &Keys::from_master(&[4; 32])), Err(DecodeError::Authentication));
        assert!(decode_pack(&bytes, &Keys::plain()).is_err(), "an encrypted pack is never read as plain");
    }
}
