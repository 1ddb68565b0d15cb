//! Key files (`keys/<id>`): one per password, each holding the repository's
//! master key wrapped by a key derived from that password with Argon2id.
//! JSON, like the config, because it is small and worth reading by eye; the
//! secret parts are hex. The name is the BLAKE3 of the file's bytes.
//!
//! ```json
//! { "version": 1, "created": "2026-12-01T21:00:00Z", "hostname": "h", "username": "u",
//!   "kdf": { "algorithm": "argon2id", "memory_kib": 65536, "iterations": 3,
//!            "parallelism": 1, "salt": "<32 hex bytes>" },
//!   "master_key": "<hex envelope: nonce 24 | sealed key 32 | tag 16>",
//!   "config_mac": "<hex, 32 bytes>" }
//! ```

use serde::{Deserialize, Serialize};

use super::{DecodeError, decode_json};
use crate::crypto::{ENVELOPE_OVERHEAD, KEY_LEN};

/// Largest key file snap will parse.
pub const MAX_KEYFILE_LEN: usize = 16 << 10;
/// The key file version this build writes and reads.
pub const KEYFILE_VERSION: u32 = 1;
/// Most memory a key file may ask the key derivation for (1 GiB), so a
/// hostile key file cannot make opening the repository exhaust memory.
pub const MAX_KDF_MEMORY_KIB: u32 = 1 << 20;
/// Most Argon2 passes a key file may ask for.
pub const MAX_KDF_ITERATIONS: u32 = 64;
/// Most Argon2 lanes a key file may ask for.
pub const MAX_KDF_PARALLELISM: u32 = 16;
const MAX_TEXT_LEN: usize = 255;

/// A decoded, checked key file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    /// Key file format version.
    pub version: u32,
    /// When the key was added (RFC 3339), for `snap key list`.
    pub created: String,
    /// Host the key was added on.
    pub hostname: String,
    /// User who added it.
    pub username: String,
    /// How the wrapping key is derived from the password.
    pub kdf: Kdf,
    /// The master key sealed under the password-derived key.
    #[serde(with = "hex::serde")]
    pub master_key: Vec<u8>,
    /// Keyed BLAKE3 of the repository's config bytes (see `crypto::Keys::config_mac`).
    #[serde(with = "hex::serde")]
    pub config_mac: Vec<u8>,
}

/// Argon2id parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kdf {
    /// Always `"argon2id"` in version 1.
    pub algorithm: String,
    /// Memory cost in KiB.
    pub memory_kib: u32,
    /// Number of passes.
    pub iterations: u32,
    /// Number of lanes.
    pub parallelism: u32,
    /// Random salt, 16 to 64 bytes.
    #[serde(with = "hex::serde")]
    pub salt: Vec<u8>,
}

impl KeyFile {
    /// Serializes to pretty JSON.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("key file serializes");
        out.push(b'\n');
        out
    }

    /// Parses and checks a key file read from a repository.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let key: KeyFile = decode_json(bytes, "key file", MAX_KEYFILE_LEN)?;
        key.validate()?;
        Ok(key)
    }

    fn validate(&self) -> Result<(), DecodeError> {
        let bad = |detail: String| Err(DecodeError::invalid("key file", detail));
        DecodeError::check_version("key file", self.version, KEYFILE_VERSION)?;
        for (what, text) in
            [("created", &self.created), ("hostname", &self.hostname), ("username", &self.username)]
        {
            if text.len() > MAX_TEXT_LEN {
                return bad(format!("{what} longer than {MAX_TEXT_LEN} bytes"));
            }
        }
        let k = &self.kdf;
        if k.algorithm != "argon2id" {
            return bad(format!("key derivation {:?} is not supported", k.algorithm));
        }
        if !(1..=MAX_KDF_PARALLELISM).contains(&k.parallelism)
            || !(1..=MAX_KDF_ITERATIONS).contains(&k.iterations)
            || !(8 * k.parallelism..=MAX_KDF_MEMORY_KIB).contains(&k.memory_kib)
        {
            return bad(format!(
                "Argon2 parameters m={} t={} p={} out of range",
                k.memory_kib, k.iterations, k.parallelism
            ));
        }
        if !(16..=64).contains(&k.salt.len()) {
            return bad(format!("salt of {} bytes", k.salt.len()));
        }
        if self.master_key.len() != KEY_LEN + ENVELOPE_OVERHEAD {
            return bad(format!("wrapped master key of {} bytes", self.master_key.len()));
        }
        if self.config_mac.len() != 32 {
            return bad(format!("config MAC of {} bytes", self.config_mac.len()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> KeyFile {
        KeyFile {
            version: 1,
            created: "2026-12-01T21:00:00Z".into(),
            hostname: "h".into(),
            username: "u".into(),
            kdf: Kdf {
                algorithm: "argon2id".into(),
                memory_kib: 64,
                iterations: 1,
                parallelism: 1,
                salt: vec![1; 16],
            },
            master_key: vec![2; KEY_LEN + ENVELOPE_OVERHEAD],
            config_mac: vec![3; 32],
        }
    }

    #[test]
    fn round_trip() {
        let k = sample();
        assert_eq!(KeyFile::decode(&k.encode()).unwrap(), k);
    }

    #[test]
    fn hostile_parameters_are_refused() {
        let mut k = sample();
        k.kdf.memory_kib = u32::MAX;
        assert!(KeyFile::decode(&k.encode()).is_err(), "memory bomb");
        let mut k = sample();
        k.kdf.iterations = 0;
        assert!(KeyFile::decode(&k.encode()).is_err());
        let mut k = sample();
        k.kdf.algorithm = "scrypt".into();
        assert!(KeyFile::decode(&k.encode()).is_err());
        let mut k = sample();
        k.master_key.pop();
        assert!(KeyFile::decode(&k.encode()).is_err());
        let mut k = sample();
        k.version = 2;
        assert_eq!(
            KeyFile::decode(&k.encode()),
            Err(DecodeError::NewerVersion { what: "key file", found: 2, supported: 1 })
        );
        assert!(KeyFile::decode(b"{\"version\":1,\"master_key\":\"zz\"}").is_err());
    }
}
