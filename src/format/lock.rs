//! Lock objects (`locks/<32 hex>`) of a repository on an object store, where
//! no flock exists: each process holding the repository writes one and
//! rewrites it every few minutes; it names who holds it, so a lock left by a
//! process that is gone can be recognised and removed. JSON, small, read by
//! eye when someone asks why a repository is locked.
//!
//! ```json
//! { "version": 1, "exclusive": false, "hostname": "h", "username": "u",
//!   "pid": 1234, "created": 1764633600, "refreshed": 1764633900 }
//! ```

use serde::{Deserialize, Serialize};

use super::{DecodeError, decode_json};

/// Largest lock object snap will parse.
pub const MAX_LOCK_LEN: usize = 4 << 10;
/// The lock object version this build writes and reads.
pub const LOCK_VERSION: u32 = 1;
const MAX_TEXT_LEN: usize = 255;

/// A decoded, checked lock object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockRecord {
    /// Lock object format version.
    pub version: u32,
    /// Whether the holder excludes every other process (prune, repair).
    pub exclusive: bool,
    /// Host of the holding process.
    pub hostname: String,
    /// User running it.
    pub username: String,
    /// Its process id on that host.
    pub pid: u32,
    /// When the lock was taken, in seconds since the Unix epoch.
    pub created: i64,
    /// When the holder last rewrote it, in seconds since the Unix epoch.
    pub refreshed: i64,
}

impl LockRecord {
    /// The JSON bytes.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a lock record always serialises")
    }

    /// Parses and checks a lock object.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let lock: LockRecord = decode_json(bytes, "lock", MAX_LOCK_LEN)?;
        if !(1..=LOCK_VERSION).contains(&lock.version) {
            return Err(DecodeError::invalid("lock", format!("version {}", lock.version)));
        }
        if lock.hostname.len() > MAX_TEXT_LEN || lock.username.len() > MAX_TEXT_LEN {
            return Err(DecodeError::invalid("lock", "host or user name too long"));
        }
        if lock.refreshed < lock.created {
            return Err(DecodeError::invalid("lock", "refreshed before it was created"));
        }
        Ok(lock)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> LockRecord {
        LockRecord {
            version: 1,
            exclusive: true,
            hostname: "h".into(),
            username: "u".into(),
            pid: 7,
            created: 100,
            refreshed: 400,
        }
    }

    #[test]
    fn round_trip() {
        assert_eq!(LockRecord::decode(&record().encode()).unwrap(), record());
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        let newer = LockRecord { version: 2, ..record() };
        assert!(LockRecord::decode(&newer.encode()).is_err());
        let backwards = LockRecord { refreshed: 99, ..record() };
        assert!(LockRecord::decode(&backwards.encode()).is_err());
        assert!(LockRecord::decode(br#"{"version":1}"#).is_err());
        assert!(LockRecord::decode(&vec![b' '; MAX_LOCK_LEN + 1]).is_err());
    }
}
