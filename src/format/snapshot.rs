//! Snapshot manifests (`snapshots/<id>`): the 8-byte object header (magic
//! `SNSN`) followed by the postcard encoding of [`Snapshot`], sealed in an
//! encrypted repository (the header is authenticated with it). The file name is
//! the BLAKE3 of the whole file. Writing this file is the one commit point of
//! a backup: it refers only to trees and chunks already durable and indexed.
//!
//! Format 3 pads the file to a Padmé length of at least
//! [`MIN_PADDED_SNAPSHOT_LEN`] with a string of zeros under the `extra` key
//! [`PAD_KEY`], inside the sealed body, so its length no longer gives the
//! lengths of its paths, names, tags and message. Readers of every version
//! decode it (an `extra` key they do not know); this one drops it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{DecodeError, HEADER_LEN, Timestamp, decode_exact, padme, read_header, write_header};
use crate::crypto::{Aad, ENVELOPE_OVERHEAD, Keys};
use crate::id::{SnapshotId, TreeId};

/// Magic of a snapshot file.
pub const SNAPSHOT_MAGIC: [u8; 4] = *b"SNSN";
/// Largest snapshot file snap will decode.
pub const MAX_SNAPSHOT_LEN: usize = 16 << 20;
/// Format 3: no snapshot file is shorter (a typical one takes 300 to 600
/// bytes unpadded).
pub const MIN_PADDED_SNAPSHOT_LEN: u64 = 1 << 10;
/// The `extra` key whose value (zeros) pads a format 3 snapshot file.
pub const PAD_KEY: &str = "snap.pad";

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

    /// Encodes the whole snapshot file (padded in format 3).
    pub fn encode(&self, keys: &Keys) -> crate::Result<Vec<u8>> {
        let mut out = Vec::new();
        write_header(&mut out, SNAPSHOT_MAGIC, keys.scheme());
        let body = if keys.hides_sizes() { self.padded_body() } else { self.body() };
        let sealed = keys.seal(Aad::Snapshot(&out), body)?;
        out.extend(sealed);
        Ok(out)
    }

    fn body(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("snapshot serializes")
    }

    /// The body of a format 3 file: padded under [`PAD_KEY`] so that the
    /// sealed file's length is a Padmé length of at least
    /// [`MIN_PADDED_SNAPSHOT_LEN`], the first one a pad can reach exactly
    /// (a pad's own length prefix grows by a byte at 128 and 16384 bytes,
    /// so a few lengths cannot be hit). Unpadded only past the largest
    /// file readers take, where no padded length is left.
    fn padded_body(&self) -> Vec<u8> {
        let file_len = |body: &[u8]| (HEADER_LEN + ENVELOPE_OVERHEAD + body.len()) as u64;
        let mut padded = self.clone();
        padded.extra.insert(PAD_KEY.to_owned(), String::new());
        let bare = file_len(&padded.body());
        let mut target = padme(bare, MIN_PADDED_SNAPSHOT_LEN);
        while target <= MAX_SNAPSHOT_LEN as u64 {
            // A pad of n bytes adds n and the growth of its length prefix
            // (at most 4 bytes here) to the bare length.
            let need = (target - bare) as usize;
            for n in need.saturating_sub(4)..=need {
                padded.extra.insert(PAD_KEY.to_owned(), "0".repeat(n));
                let body = padded.body();
                if file_len(&body) == target {
                    return body;
                }
            }
            target = padme(target + 1, MIN_PADDED_SNAPSHOT_LEN);
        }
        self.body()
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
        let mut snap: Snapshot = decode_exact(&keys.open(Aad::Snapshot(&bytes[..HEADER_LEN]), body)?)?;
        // Only length, authenticated with the rest: nothing to show or keep.
        snap.extra.remove(PAD_KEY);
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
            prop_assert_eq!(Snapshot::decode(&sealed, &keys).unwrap(), snap.clone());
            prop_assert!(Snapshot::decode(&sealed, &plain).is_err());
            let hiding = Keys::from_master_for(&[1; 32], crate::format::SIZE_HIDING_VERSION);
            let padded = snap.encode(&hiding).unwrap();
            prop_assert_eq!(Snapshot::decode(&padded, &hiding).unwrap(), snap);
            prop_assert_eq!(padme(padded.len() as u64, MIN_PADDED_SNAPSHOT_LEN), padded.len() as u64);
        }

        /// Whatever the lengths of its names, a format 3 snapshot file is
        /// padded exactly to a Padmé length, and decodes without its pad.
        #[test]
        fn padded_snapshots_show_only_buckets(lens in prop::collection::vec(0usize..40_000, 1..4)) {
            let hiding = Keys::from_master_for(&[1; 32], crate::format::SIZE_HIDING_VERSION);
            let mut snap = Snapshot::new(Timestamp { secs: 1, nanos: 0 }, TreeId::from_bytes([3; 32]));
            snap.paths = lens.iter().map(|n| serde_bytes::ByteBuf::from([b"/".to_vec(), vec![b'a'; *n]].concat())).collect();
            let bytes = snap.encode(&hiding).unwrap();
            let len = bytes.len() as u64;
            prop_assert_eq!(padme(len, MIN_PADDED_SNAPSHOT_LEN), len);
            let unpadded = (HEADER_LEN + ENVELOPE_OVERHEAD + snap.body().len()) as u64;
            prop_assert!(len > unpadded);
            // Padmé costs at most a sixteenth from 1 KiB on; a skipped bucket another.
            prop_assert!(len - unpadded <= unpadded / 8 + MIN_PADDED_SNAPSHOT_LEN, "{} for {}", len, unpadded);
            prop_assert_eq!(Snapshot::decode(&bytes, &hiding).unwrap(), snap);
        }
    }

    #[test]
    fn path_lengths_no_longer_show_in_a_format_3_snapshot_length() {
        let hiding = Keys::from_master_for(&[1; 32], crate::format::SIZE_HIDING_VERSION);
        let with_path = |path: &str| {
            let mut snap = Snapshot::new(Timestamp { secs: 1, nanos: 0 }, TreeId::from_bytes([3; 32]));
            snap.paths = vec![serde_bytes::ByteBuf::from(path.as_bytes())];
            snap
        };
        let (short, long) = (with_path("/a"), with_path("/home/someone/a-much-longer-project-name"));
        let lengths = |keys: &Keys| [&short, &long].map(|s| s.encode(keys).unwrap().len());
        assert_eq!(lengths(&hiding), [MIN_PADDED_SNAPSHOT_LEN as usize; 2]);
        let [a, b] = lengths(&Keys::from_master(&[1; 32]));
        assert_eq!(b - a, 38, "format 2 shows the difference of the path lengths");
    }
}
