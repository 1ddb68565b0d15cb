//! Snapshot manifests (`snapshots/<id>`): the 8-byte object header (magic
//! `SNSN`) followed by the postcard encoding of [`Snapshot`], sealed in an
//! encrypted repository (the header is authenticated with it). The file name is
//! the BLAKE3 of the whole file. Writing this file is the one commit point of
//! a backup: it refers only to trees and chunks already durable and indexed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{DecodeError, HEADER_LEN, Timestamp, decode_exact, read_header, write_header};
use crate::crypto::{Aad, Keys};
use crate::id::{SnapshotId, TreeId};

/// Magic of a snapshot file.
pub const SNAPSHOT_MAGIC: [u8; 4] = *b"SNSN";
/// Largest snapshot file snap will decode.
pub const MAX_SNAPSHOT_LEN: usize = 16 << 20;

/// One snapshot: when, of what, and the root of its tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// When the backup started.
    pub time: Timestamp,
    /// Root node: mirrors the absolute source paths from `/`.
    pub tree: TreeId,
    /// The absolute source paths as given, as raw bytes.
    pub paths: Vec<serde_bytes::ByteBuf>,
    /// Host name of the machine that made it.
    pub hostname: String,
    /// User name that made it.
    pub username: String,
    /// Operating system and kernel, e.g. `Linux 6.1.0`.
    pub os: String,
    /// Version of snap that wrote it.
    pub program_version: String,
    /// User-given tags.
    pub tags: Vec<String>,
    /// User-given message.
    pub message: Option<String>,
    /// The snapshot whose unchanged files were reused, if any.
    pub parent: Option<SnapshotId>,
    /// Counters of the backup run.
    pub summary: Summary,
    /// Further descriptive key/values (e.g. version-control state). Readers
    /// show them and otherwise ignore keys they do not know.
    pub extra: BTreeMap<String, String>,
}

/// What a backup run did, kept with its snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Regular files in the snapshot.
    pub files: u64,
    /// Directories in the snapshot.
    pub dirs: u64,
    /// Other entries (symlinks, fifos, devices, sockets).
    pub others: u64,
    /// Sum of file sizes.
    pub bytes: u64,
    /// Files whose contents were read (the rest came from the parent).
    pub files_read: u64,
    /// Bytes read from files.
    pub bytes_read: u64,
    /// Blobs (chunks and trees) that were new to the repository.
    pub new_blobs: u64,
    /// Raw bytes of those new blobs.
    pub new_bytes: u64,
    /// Bytes they took in packs after compression.
    pub new_stored_bytes: u64,
    /// Wall time of the backup in milliseconds.
    pub duration_ms: u64,
}

impl Snapshot {
    /// A snapshot of `tree` taken at `time`, with every description empty.
    pub fn new(time: Timestamp, tree: TreeId) -> Self {
        Snapshot {
            time,
            tree,
            paths: Vec::new(),
            hostname: String::new(),
            username: String::new(),
            os: String::new(),
            program_version: String::new(),
            tags: Vec::new(),
            message: None,
            parent: None,
            summary: Summary::default(),
            extra: BTreeMap::new(),
        }
    }

    /// Encodes the whole snapshot file.
    pub fn encode(&self, keys: &Keys) -> crate::Result<Vec<u8>> {
        let mut out = Vec::new();
        write_header(&mut out, SNAPSHOT_MAGIC, keys.scheme());
        let body = postcard::to_stdvec(self).expect("snapshot serializes");
        let sealed = keys.seal(Aad::Snapshot(&out), body)?;
        out.extend(sealed);
        Ok(out)
    }

    /// Decodes and checks a snapshot file.
    pub fn decode(bytes: &[u8], keys: &Keys) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_SNAPSHOT_LEN {
            return Err(DecodeError::TooLarge {
                what: "snapshot",
                len: bytes.len() as u64,
                max: MAX_SNAPSHOT_LEN as u64,
            });
        }
        let body = read_header(bytes, SNAPSHOT_MAGIC, keys.scheme())?;
        let snap: Snapshot = decode_exact(&keys.open(Aad::Snapshot(&bytes[..HEADER_LEN]), body)?)?;
        snap.time.validate("snapshot time")?;
        if snap.paths.iter().any(|p| !p.starts_with(b"/")) {
            return Err(DecodeError::invalid("snapshot", "source path is not absolute"));
        }
        Ok(snap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(secs in any::<i64>(), tags in prop::collection::vec(".*", 0..4), msg in proptest::option::of(".*"), files in any::<u64>(), path in prop::collection::vec(any::<u8>(), 0..40)) {
            let mut abs = b"/".to_vec();
            abs.extend(path);
            let snap = Snapshot {
                time: Timestamp { secs, nanos: 5 },
                tree: TreeId::from_bytes([3; 32]),
                paths: vec![serde_bytes::ByteBuf::from(abs)],
                hostname: "h".into(),
                username: "u".into(),
                os: "Linux".into(),
                program_version: "0.1.0".into(),
                tags,
                message: msg,
                parent: Some(SnapshotId::from_bytes([4; 32])),
                summary: Summary { files, ..Summary::default() },
                extra: BTreeMap::from([("k".into(), "v".into())]),
            };
            let plain = Keys::plain();
            prop_assert_eq!(Snapshot::decode(&snap.encode(&plain).unwrap(), &plain).unwrap(), snap.clone());
            let keys = Keys::from_master(&[1; 32]);
            let sealed = snap.encode(&keys).unwrap();
            prop_assert_eq!(Snapshot::decode(&sealed, &keys).unwrap(), snap);
            prop_assert!(Snapshot::decode(&sealed, &plain).is_err());
        }
    }
}
