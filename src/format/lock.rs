//! Lock objects (`locks/<32 hex>`) of a repository on an object store, where
//! no flock exists: each process holding the repository writes one and
//! rewrites it every few minutes; it names who holds it, so a lock left by a
//! process that is gone can be recognised and removed. JSON, small, read by
//! eye when someone asks why a repository is locked.
//!
//! ```json
//! { "version": 2, "exclusive": false, "hostname": "h", "username": "u",
//!   "pid": 1234, "boot_id": "0f6c…", "pid_ns": 4026531836,
//!   "created": 1764633600, "refreshed": 1764633900 }
//! ```
//!
//! Version 2 added `boot_id` (the kernel's `/proc/sys/kernel/random/boot_id`)
//! and `pid_ns` (the inode of `/proc/self/ns/pid`): a pid means one process
//! only within one boot of one kernel and one pid namespace, and a hostname
//! says neither (containers and cloned VMs share hostnames). Either is
//! absent when the holder could not read it; a version 1 lock has neither.
//! `created` and `refreshed` are the holder's wall clock, for people only:
//! staleness is judged by the store's own times (see `backend::object::lock`).

use serde::{Deserialize, Serialize};

use super::{DecodeError, decode_json};

/// Largest lock object snap will parse.
pub const MAX_LOCK_LEN: usize = 4 << 10;
/// The lock object version this build writes; it reads 1 and this.
pub const LOCK_VERSION: u32 = 2;
/// Longest host, user name or boot id accepted.
pub const MAX_TEXT_LEN: usize = 255;

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
    /// Its process id in its pid namespace.
    pub pid: u32,
    /// The boot id of the holder's kernel (version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    /// The inode number of the holder's pid namespace (version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_ns: Option<u64>,
    /// When the lock was taken, in seconds since the Unix epoch (holder's clock).
    pub created: i64,
    /// When the holder last rewrote it, in seconds since the Unix epoch (holder's clock).
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
        if lock.version == 1 && (lock.boot_id.is_some() || lock.pid_ns.is_some()) {
            return Err(DecodeError::invalid("lock", "a version 1 lock names no boot id or pid namespace"));
        }
        let long = |s: &str| s.len() > MAX_TEXT_LEN;
        if long(&lock.hostname) || long(&lock.username) || lock.boot_id.as_deref().is_some_and(long) {
            return Err(DecodeError::invalid("lock", "host name, user name or boot id too long"));
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
            version: 2,
            exclusive: true,
            hostname: "h".into(),
            username: "u".into(),
            pid: 7,
            boot_id: Some("0f6c2d4e-8d0a-4a53-9a8e-1c2b3d4e5f60".into()),
            pid_ns: Some(4026531836),
            created: 100,
            refreshed: 400,
        }
    }

    #[test]
    fn round_trip() {
        assert_eq!(LockRecord::decode(&record().encode()).unwrap(), record());
        // Extreme times are data like any other: nothing here does arithmetic on them.
        let extreme = LockRecord { created: i64::MIN, refreshed: i64::MAX, ..record() };
        assert_eq!(LockRecord::decode(&extreme.encode()).unwrap(), extreme);
        let unknown = LockRecord { boot_id: None, pid_ns: None, ..record() };
        assert_eq!(LockRecord::decode(&unknown.encode()).unwrap(), unknown);
    }

    #[test]
    fn version_1_locks_still_decode_without_an_identity() {
        let v1 = br#"{"version":1,"exclusive":false,"hostname":"h","username":"u","pid":7,
                      "created":100,"refreshed":400}"#;
        let lock = LockRecord::decode(v1).unwrap();
        assert_eq!((lock.version, lock.boot_id, lock.pid_ns), (1, None, None));
        let v1_with_identity = LockRecord { version: 1, ..record() };
        assert!(LockRecord::decode(&v1_with_identity.encode()).is_err());
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        let newer = LockRecord { version: 3, ..record() };
        assert!(LockRecord::decode(&newer.encode()).is_err());
        let none = LockRecord { version: 0, ..record() };
        assert!(LockRecord::decode(&none.encode()).is_err());
        let backwards = LockRecord { refreshed: 99, ..record() };
        assert!(LockRecord::decode(&backwards.encode()).is_err());
        let long_boot = LockRecord { boot_id: Some("b".repeat(MAX_TEXT_LEN + 1)), ..record() };
        assert!(LockRecord::decode(&long_boot.encode()).is_err());
        assert!(LockRecord::decode(br#"{"version":1}"#).is_err());
        let mut extra = String::from_utf8(record().encode()).unwrap();
        extra.insert_str(1, r#""fence":1,"#);
        assert!(LockRecord::decode(extra.as_bytes()).is_err(), "unknown fields are refused");
        assert!(LockRecord::decode(&vec![b' '; MAX_LOCK_LEN + 1]).is_err());
    }
}
