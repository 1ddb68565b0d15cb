//! Every byte layout snap writes, and the only code that decodes bytes read
//! back from a repository. Pure: no I/O. Decoders never panic and check every
//! length against a cap before allocating; the fuzz targets point here.
//!
//! Object files (packs, snapshots) start with an 8-byte header:
//!
//! | offset | size | field                                    |
//! |--------|------|------------------------------------------|
//! | 0      | 4    | magic, names the object type             |
//! | 4      | 1    | format version (1)                       |
//! | 5      | 1    | encryption scheme (0 = none)             |
//! | 6      | 2    | reserved, zero                           |

pub mod config;
pub mod keyfile;
pub mod lock;
pub mod pack;
pub mod snapshot;
pub mod tree;

use serde::{Deserialize, Serialize};

use crate::crypto::Scheme;
pub use crate::error::DecodeError;

/// The newest repository format (config `version`) this build reads; it
/// makes 1 for unencrypted and 3 for encrypted repositories, and still
/// reads and writes format 2 repositories as they are.
pub const FORMAT_VERSION: u32 = 3;
/// The first format whose packs hide their sizes (padded, shuffled) and
/// whose chunker cuts by a keyed PRF (DESIGN.md 5.2, 16).
pub const SIZE_HIDING_VERSION: u32 = 3;
/// The object header version (packs and snapshots), the same in every format.
pub const OBJECT_VERSION: u8 = 1;

/// Length of the common object header.
pub const HEADER_LEN: usize = 8;
const OFF_MAGIC: usize = 0;
const OFF_VERSION: usize = 4;
const OFF_ENCRYPTION: usize = 5;
const OFF_RESERVED: usize = 6;

/// The largest blob (chunk or tree node) snap will decode, before or after
/// decompression. Chunks are at most 16 MiB; tree nodes of very large
/// directories are the reason for the headroom.
pub const MAX_BLOB_LEN: u32 = 128 << 20;

/// Padmé (Nikitin et al., PETS 2019): `len` rounded up so that only its
/// highest bits are free. A length whose highest set bit is bit E is
/// rounded up to a multiple of 2^(E - S), S the bit length of E: that
/// leaks O(log log L) bits of a length L and costs at most 1/2^S of it
/// (under 1.6 % at 16 MiB, multiples of 512 KiB). Below `floor` (a power
/// of two) every length becomes `floor`. Saturating: a length near 2^64
/// (from a hostile listing) is refused by its reader, never a panic.
pub fn padme(len: u64, floor: u64) -> u64 {
    let len = len.max(floor);
    let e = 63 - len.leading_zeros();
    let s = 32 - e.leading_zeros();
    let mask = (1u64 << (e - s)) - 1;
    len.saturating_add(mask) & !mask
}

/// Writes the common header for an object of type `magic` sealed with `scheme`.
pub(crate) fn write_header(out: &mut Vec<u8>, magic: [u8; 4], scheme: Scheme) {
    out.extend_from_slice(&magic);
    out.push(OBJECT_VERSION);
    out.push(scheme.code());
    out.extend_from_slice(&[0, 0]);
}

/// The encryption scheme code an object's header names, if `bytes` hold a
/// header at all (read without any other check: enough to tell plaintext
/// from sealed objects).
pub(crate) fn header_scheme(bytes: &[u8]) -> Option<u8> {
    (bytes.len() >= HEADER_LEN).then(|| bytes[OFF_ENCRYPTION])
}

/// Checks the common header and returns the bytes after it. An object must
/// be sealed with the repository's scheme: an unencrypted object planted in
/// an encrypted repository is refused, never read as plaintext.
pub(crate) fn read_header(bytes: &[u8], magic: [u8; 4], scheme: Scheme) -> Result<&[u8], DecodeError> {
    if bytes.len() < HEADER_LEN {
        return Err(DecodeError::Truncated { need: HEADER_LEN, have: bytes.len() });
    }
    let found: [u8; 4] = bytes[OFF_MAGIC..OFF_VERSION].try_into().expect("4-byte slice");
    if found != magic {
        return Err(DecodeError::BadMagic { found, expected: magic });
    }
    let version = bytes[OFF_VERSION];
    DecodeError::check_version("object header", version.into(), OBJECT_VERSION.into())?;
    if bytes[OFF_ENCRYPTION] != scheme.code() {
        return Err(DecodeError::UnknownEncryption(bytes[OFF_ENCRYPTION]));
    }
    if bytes[OFF_RESERVED..HEADER_LEN] != [0, 0] {
        return Err(DecodeError::invalid("header", "reserved bytes are not zero"));
    }
    Ok(&bytes[HEADER_LEN..])
}

/// A point in time with nanoseconds, as stored in trees and snapshots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp {
    /// Seconds since the Unix epoch (may be negative).
    pub secs: i64,
    /// Nanoseconds within the second, below 1e9.
    pub nanos: u32,
}

impl Timestamp {
    /// Now, from the system clock.
    pub fn now() -> Self {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Timestamp { secs: d.as_secs() as i64, nanos: d.subsec_nanos() }
    }

    pub(crate) fn validate(&self, what: &'static str) -> Result<(), DecodeError> {
        if self.nanos >= 1_000_000_000 {
            return Err(DecodeError::invalid(what, format!("nanoseconds {}", self.nanos)));
        }
        Ok(())
    }
}

/// Parses a JSON object (the config, a key file) of at most `max` bytes.
pub(crate) fn decode_json<'a, T: Deserialize<'a>>(
    bytes: &'a [u8],
    what: &'static str,
    max: usize,
) -> Result<T, DecodeError> {
    if bytes.len() > max {
        return Err(DecodeError::TooLarge { what, len: bytes.len() as u64, max: max as u64 });
    }
    serde_json::from_slice(bytes).map_err(|e| DecodeError::Encoding(e.to_string()))
}

/// Decodes a postcard value that must use every byte of `bytes`.
pub(crate) fn decode_exact<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, DecodeError> {
    let (value, rest) = postcard::take_from_bytes(bytes)?;
    if !rest.is_empty() {
        return Err(DecodeError::invalid("encoding", format!("{} trailing bytes", rest.len())));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_rejections() {
        let mut buf = Vec::new();
        write_header(&mut buf, *b"TEST", Scheme::None);
        buf.push(42);
        let plain = Scheme::None;
        assert_eq!(read_header(&buf, *b"TEST", plain).unwrap(), &[42]);
        assert!(matches!(read_header(&buf, *b"NOPE", plain), Err(DecodeError::BadMagic { .. })));
        assert!(matches!(read_header(&buf[..5], *b"TEST", plain), Err(DecodeError::Truncated { .. })));
        let mut newer = buf.clone();
        newer[OFF_VERSION] = 2;
        assert_eq!(
            read_header(&newer, *b"TEST", plain),
            Err(DecodeError::NewerVersion { what: "object header", found: 2, supported: 1 })
        );
        let mut enc = buf.clone();
        enc[OFF_ENCRYPTION] = 1;
        assert_eq!(read_header(&enc, *b"TEST", plain), Err(DecodeError::UnknownEncryption(1)));
        assert!(read_header(&enc, *b"TEST", Scheme::XChaCha20Poly1305).is_ok());
        assert!(
            read_header(&buf, *b"TEST", Scheme::XChaCha20Poly1305).is_err(),
            "a plaintext object in an encrypted repository"
        );
    }
}
