//! The repository config object (`config` at the repository root): JSON,
//! because it is tiny, read first by every command, and worth reading by eye.
//! It fixes everything that must stay the same for the repository's life:
//! format version, repository id, chunker parameters, compression and the
//! encryption scheme (`"none"` in format 1, `"xchacha20-poly1305"` in formats
//! 2 and 3; an unknown one is refused, never guessed). A reader refuses a
//! version above its own, before it could misread it.

use serde::{Deserialize, Serialize};

use super::{DecodeError, FORMAT_VERSION, decode_json};
use crate::crypto::Scheme;

/// Largest config file snap will parse.
pub const MAX_CONFIG_LEN: usize = 64 << 10;

/// The repository config.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Repository format version; a reader refuses versions above its own.
    pub version: u32,
    /// Random 32-byte id in hex; names the local cache of a remote repository.
    pub id: String,
    /// Content-defined chunking parameters.
    pub chunker: ChunkerParams,
    /// How blobs are compressed.
    pub compression: CompressionParams,
    /// Encryption scheme: `"none"` in format 1, `"xchacha20-poly1305"` in formats 2 and 3.
    pub encryption: String,
    /// Target size of a pack file in bytes.
    pub pack_size: u32,
}

/// FastCDC (2020 variant) parameters; see DESIGN.md for why these defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkerParams {
    /// Smallest chunk except a file's last.
    pub min_size: u32,
    /// Expected chunk size.
    pub avg_size: u32,
    /// Largest chunk.
    pub max_size: u32,
    /// FastCDC normalization level (0..=3).
    pub normalization: u8,
    /// XORed into the gear table. Always 0 here: an encrypted repository
    /// derives its seed from the master key, so it is never written down.
    pub seed: u64,
}

/// Compression settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompressionParams {
    /// zstd level used for new blobs (1..=19). Readers do not need it.
    pub zstd_level: i32,
}

impl Default for ChunkerParams {
    fn default() -> Self {
        ChunkerParams { min_size: 512 << 10, avg_size: 1 << 20, max_size: 8 << 20, normalization: 2, seed: 0 }
    }
}

impl Default for CompressionParams {
    fn default() -> Self {
        CompressionParams { zstd_level: 3 }
    }
}

/// Default target pack size (16 MiB): few files per gigabyte, and small
/// enough to hold in memory while it is built.
pub const DEFAULT_PACK_SIZE: u32 = 16 << 20;

impl Config {
    /// A fresh config with the default parameters, the given id and scheme.
    pub fn new(id: [u8; 32], scheme: Scheme) -> Self {
        Config {
            version: format_for(scheme),
            id: hex::encode(id),
            chunker: ChunkerParams::default(),
            compression: CompressionParams::default(),
            encryption: scheme.name().to_owned(),
            pack_size: DEFAULT_PACK_SIZE,
        }
    }

    /// The encryption scheme (checked when decoded).
    pub fn scheme(&self) -> Scheme {
        Scheme::from_name(&self.encryption).unwrap_or(Scheme::None)
    }

    /// The id as local files are named after it (caches, notes): lower-case
    /// hex, whatever case the config spells it in, so one repository never
    /// goes by two names.
    pub fn local_name(&self) -> String {
        hex::encode(self.id_bytes())
    }

    /// The repository id's bytes (checked when decoded).
    pub fn id_bytes(&self) -> [u8; 32] {
        let mut id = [0u8; 32];
        hex::decode_to_slice(&self.id, &mut id).unwrap_or_default();
        id
    }

    /// Serializes to pretty JSON.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("config serializes");
        out.push(b'\n');
        out
    }

    /// Parses and validates a config read from a repository.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        // Read the version alone first, so a newer repository is refused by
        // version even when it also has fields this build does not know.
        #[derive(Deserialize)]
        struct VersionOnly {
            version: u32,
        }
        let v: VersionOnly = decode_json(bytes, "config", MAX_CONFIG_LEN)?;
        DecodeError::check_version("repository format", v.version, FORMAT_VERSION)?;
        let config: Config = decode_json(bytes, "config", MAX_CONFIG_LEN)?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), DecodeError> {
        let mut id = [0u8; 32];
        hex::decode_to_slice(&self.id, &mut id)
            .map_err(|_| DecodeError::invalid("config", "id is not 64 hex digits"))?;
        let scheme = Scheme::from_name(&self.encryption).ok_or_else(|| {
            DecodeError::invalid(
                "config",
                format!("encryption scheme {:?} is not supported", self.encryption),
            )
        })?;
        if !formats_for(scheme).contains(&self.version) {
            return Err(DecodeError::invalid(
                "config",
                format!("format {} cannot have encryption {:?}", self.version, self.encryption),
            ));
        }
        if self.chunker.seed != 0 {
            return Err(DecodeError::invalid("config", "a chunker seed is never stored in the config"));
        }
        if self.version >= super::SIZE_HIDING_VERSION {
            self.chunker.validate_keyed()?;
        } else {
            self.chunker.validate()?;
        }
        if !(1..=19).contains(&self.compression.zstd_level) {
            return Err(DecodeError::invalid("config", "zstd level outside 1..=19"));
        }
        if !(1 << 20..=super::MAX_BLOB_LEN).contains(&self.pack_size) {
            return Err(DecodeError::invalid("config", "pack size outside 1 MiB..=128 MiB"));
        }
        Ok(())
    }
}

/// The format a new repository with `scheme` gets: 1 is unencrypted; 2
/// added encryption, 3 hid sizes (super::SIZE_HIDING_VERSION).
fn format_for(scheme: Scheme) -> u32 {
    *formats_for(scheme).end()
}

/// The formats a repository with `scheme` may have.
fn formats_for(scheme: Scheme) -> std::ops::RangeInclusive<u32> {
    match scheme {
        Scheme::None => 1..=1,
        Scheme::XChaCha20Poly1305 => 2..=super::SIZE_HIDING_VERSION,
    }
}

impl ChunkerParams {
    /// Checks the bounds fastcdc asserts on, so bad repository bytes become
    /// an error instead of a panic.
    pub fn validate(&self) -> Result<(), DecodeError> {
        use fastcdc::v2020::{AVERAGE_MAX, AVERAGE_MIN, MAXIMUM_MAX, MAXIMUM_MIN, MINIMUM_MAX, MINIMUM_MIN};
        let ok = (MINIMUM_MIN..=MINIMUM_MAX).contains(&self.min_size)
            && (AVERAGE_MIN..=AVERAGE_MAX).contains(&self.avg_size)
            && (MAXIMUM_MIN..=MAXIMUM_MAX).contains(&self.max_size)
            // fastcdc starts its cut loop at min_size rounded down to even,
            // so an odd minimum yields chunks one byte short of it.
            && self.min_size.is_multiple_of(2)
            && self.min_size <= self.avg_size
            && self.avg_size <= self.max_size
            && self.avg_size.is_power_of_two()
            && self.normalization <= 3;
        if ok {
            Ok(())
        } else {
            Err(DecodeError::invalid("config", format!("chunker parameters {self:?} out of range")))
        }
    }

    /// [`Self::validate`], and what format 3's chunker needs besides.
    /// Its keyed cut rule (`chunk::KeyedCut`) takes the
    /// [`crate::chunk::CANDIDATE_BITS`] of a cut's probability from the
    /// gear digest and the rest from its PRF; after the average size the
    /// probability is 2^-(log2(avg) - normalization), so unless that
    /// exponent exceeds the candidate bits, every candidate there would be
    /// a cut and the digest alone would decide it.
    pub fn validate_keyed(&self) -> Result<(), DecodeError> {
        self.validate()?;
        let bits = self.avg_size.trailing_zeros();
        let level = u32::from(self.normalization);
        if bits - level > crate::chunk::CANDIDATE_BITS {
            return Ok(());
        }
        let least = 1u32 << (crate::chunk::CANDIDATE_BITS + level + 1);
        Err(DecodeError::invalid(
            "config",
            format!(
                "chunker average size {} is too small for format 3 at normalization level {level}: \
                 its keyed cut rule needs an average of at least {least} bytes, or a PRF would not \
                 decide every cut",
                self.avg_size
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for scheme in [Scheme::None, Scheme::XChaCha20Poly1305] {
            let c = Config::new([7; 32], scheme);
            assert_eq!(Config::decode(&c.encode()).unwrap(), c);
            assert_eq!(c.scheme(), scheme);
        }
        assert_eq!(Config::new([7; 32], Scheme::None).version, 1, "unencrypted repositories stay format 1");
        assert_eq!(
            Config::new([7; 32], Scheme::XChaCha20Poly1305).version,
            3,
            "new encrypted ones hide sizes"
        );
    }

    #[test]
    fn format_2_stays_readable_and_format_3_needs_encryption() {
        let mut c = Config::new([7; 32], Scheme::XChaCha20Poly1305);
        c.version = 2;
        assert_eq!(Config::decode(&c.encode()).unwrap(), c);
        let mut c = Config::new([7; 32], Scheme::None);
        c.version = 3;
        assert!(Config::decode(&c.encode()).is_err(), "format 3 is encrypted");
        c.version = 4;
        assert_eq!(
            Config::decode(&c.encode()),
            Err(DecodeError::NewerVersion { what: "repository format", found: 4, supported: 3 })
        );
    }

    /// At normalization level 2 an average of 4 KiB leaves the PRF no bit
    /// to decide after the average: every candidate there would be a cut.
    #[test]
    fn format_3_refuses_chunker_parameters_whose_cuts_its_prf_would_not_decide() {
        let mut c = Config::new([7; 32], Scheme::XChaCha20Poly1305);
        for (avg_size, normalization, accepted) in
            [(4096, 2, false), (8192, 2, true), (8192, 3, false), (16384, 3, true), (2048, 0, true)]
        {
            c.chunker = ChunkerParams { min_size: 1024, avg_size, max_size: 1 << 16, normalization, seed: 0 };
            let decoded = Config::decode(&c.encode());
            assert_eq!(decoded.is_ok(), accepted, "avg {avg_size}, level {normalization}: {decoded:?}");
            if let Err(e) = decoded {
                assert!(e.to_string().contains("PRF would not decide every cut"), "{e}");
            }
        }
        c.version = 2;
        c.chunker.avg_size = 4096;
        c.chunker.normalization = 2;
        assert!(Config::decode(&c.encode()).is_ok(), "format 2 cuts with FastCDC: no PRF to starve");
    }

    #[test]
    fn newer_version_is_refused_even_with_new_fields() {
        let json = br#"{"version": 9, "something_new": true}"#;
        assert_eq!(
            Config::decode(json),
            Err(DecodeError::NewerVersion { what: "repository format", found: 9, supported: 3 })
        );
    }

    #[test]
    fn bad_chunker_params_are_an_error_not_a_panic() {
        let mut c = Config::new([1; 32], Scheme::None);
        c.chunker.min_size = 1;
        assert!(Config::decode(&c.encode()).is_err());
        let mut c = Config::new([1; 32], Scheme::None);
        c.chunker.avg_size = 3 << 20;
        assert!(Config::decode(&c.encode()).is_err());
        let mut c = Config::new([1; 32], Scheme::None);
        c.chunker.min_size = 111;
        assert!(Config::decode(&c.encode()).is_err(), "odd minimum found by fuzzing");
    }

    #[test]
    fn unknown_encryption_is_refused() {
        let mut c = Config::new([1; 32], Scheme::None);
        c.encryption = "rot13".into();
        assert!(Config::decode(&c.encode()).is_err());
        let mut c = Config::new([1; 32], Scheme::None);
        c.encryption = Scheme::XChaCha20Poly1305.name().into();
        assert!(Config::decode(&c.encode()).is_err(), "format 1 cannot be encrypted");
        let mut c = Config::new([1; 32], Scheme::XChaCha20Poly1305);
        c.chunker.seed = 5;
        assert!(Config::decode(&c.encode()).is_err(), "the seed is secret");
    }
}
