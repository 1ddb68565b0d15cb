//! A pack read whole, every byte seen: the check `verify --read-data`
//! makes of each pack it reads. The trailer says where the blobs lie; each
//! blob is opened and checked on its own, the pack's bytes are hashed
//! against its name, and a pack whose trailer is damaged is still checked
//! blob by blob where the index places them.

use super::Repository;
use crate::error::{Error, Result};
use crate::format::pack::{PACK_MAGIC, PackEntry};
use crate::format::{DecodeError, HEADER_LEN, read_header};
use crate::hash;
use crate::id::{BlobId, PackId};

/// Problems found while reading one pack, each with the blob it concerns
/// (`None`: the pack as a whole).
pub(crate) type PackErrors = Vec<(Option<BlobId>, Error)>;

/// What reading a pack in full found: its trailer (or why the pack could
/// not be read, which makes all of it suspect), and each other problem with
/// the blob it concerns.
pub(crate) struct PackRead {
    pub(crate) trailer: Result<Vec<PackEntry>>,
    pub(crate) errors: PackErrors,
    /// Whether every indexed blob was opened and checked on its own (so a
    /// trailer that failed takes no blob with it).
    pub(crate) blobs_checked: bool,
    /// Whether the padding envelope was opened and proved damaged.
    pub(crate) padding_damaged: bool,
}

impl PackRead {
    /// A read that stopped before the blobs could all be checked.
    fn unchecked(trailer: Error, errors: PackErrors) -> Self {
        PackRead { trailer: Err(trailer), errors, blobs_checked: false, padding_damaged: false }
    }
}

impl Repository {
    /// Reads one pack in full and opens every blob in it. The trailer comes
    /// first, to know where the blobs lie; then the bytes before it are read
    /// front to back in one stream, each byte hashed once and only the blob at
    /// hand held.
    pub(crate) fn check_pack(&self, id: &PackId, size: u64) -> PackRead {
        let (entries, tail) = match self.read_pack_tail(id, size) {
            Ok(t) => t,
            Err(e) if e.proves_damage() => return self.check_pack_by_index(id, size, e),
            Err(e) => return PackRead::unchecked(e, Vec::new()),
        };
        let mut errors = Vec::new();
        let (actual, padding) =
            match self.read_blobs(id, (size - tail.len() as u64, &tail), &entries, &mut errors) {
                Ok(read) => read,
                Err(e) => return PackRead::unchecked(e, errors),
            };
        // The trailer is whole, so what lies between the last blob and it is
        // format 3's padding envelope, which must open like any other (a pack
        // renamed to the hash of altered padding is still found).
        let padding = if self.keys().hides_sizes() { self.open_padding(id, &padding) } else { Ok(()) };
        let padding_damaged = padding.is_err();
        errors.extend(padding.err().map(|e| (None, e)));
        if actual != *id {
            errors
                .push((None, Error::corrupt(format!("pack {id}"), "contents do not match the pack's name")));
        } else if errors.is_empty() {
            // Every byte is as written: whatever was marked damaged in it
            // before (a pack since put back, an index row that was wrong) is not.
            if let Err(e) = self.with_index(|i| i.clear_damaged(id, None)) {
                errors.push((None, e));
            }
        }
        PackRead { trailer: Ok(entries), errors, blobs_checked: true, padding_damaged }
    }

    /// Reads a pack whose trailer (its table of contents) is damaged: the
    /// blobs are where the index says, so each is opened and checked on its
    /// own, and only those that fail are lost. The pack as a whole cannot
    /// match its name any more (its trailer changed), which the trailer's
    /// error already says.
    pub(crate) fn check_pack_by_index(&self, id: &PackId, size: u64, trailer: Error) -> PackRead {
        let indexed = match self.with_index(|i| i.pack_entries(id)) {
            Ok(entries) => entries,
            Err(e) => return PackRead::unchecked(trailer, vec![(None, e)]),
        };
        let mut errors = Vec::new();
        // What follows the last blob is not known to be padding: the trailer
        // that says where the padding ends is damaged.
        if let Err(e) = self.read_blobs(id, (size, &[]), &indexed, &mut errors) {
            errors.push((None, e));
            return PackRead::unchecked(trailer, errors);
        }
        errors.retain(|(blob, _)| blob.is_some());
        // Proved damaged while its blobs are indexed: `repair packs` rewrites it.
        if let Err(e) = self.with_index(|i| i.set_trailer_damaged(id, true)) {
            errors.push((None, e));
        }
        let detail = format!(
            "{}; each of its {} blob(s) was checked where the index places it",
            trailer.detail(),
            indexed.len()
        );
        let trailer = Err(Error::corrupt(format!("pack {id}"), detail));
        PackRead { trailer, errors, blobs_checked: true, padding_damaged: false }
    }

    /// Reads the pack up to `end`, where its `tail` (trailer and footer, read
    /// before) starts: checks the header, opens every blob (noting each failure
    /// in `errors`), and returns the id of the whole pack as read and the bytes
    /// between the last blob and `end`.
    fn read_blobs(
        &self,
        id: &PackId,
        (end, tail): (u64, &[u8]),
        entries: &[PackEntry],
        errors: &mut PackErrors,
    ) -> Result<(PackId, Vec<u8>)> {
        let mut hasher = hash::PackIdHasher::default();
        let mut reader = self.stream_pack_range(id, 0, end)?;
        let mut bytes = Vec::new();
        reader.read_to(HEADER_LEN as u64, |s| {
            hasher.update(s);
            bytes.extend_from_slice(s);
        })?;
        if let Err(e) = read_header(&bytes, PACK_MAGIC, self.keys().scheme()) {
            let object = format!("pack {id}");
            errors.push((
                None,
                match e {
                    DecodeError::NewerVersion { .. } => Error::decode(object, e),
                    damage => Error::corrupt(object, format!("header: {damage}")),
                },
            ));
        }
        for entry in entries {
            reader.read_stored(entry, &mut bytes, |s| hasher.update(s))?;
            if let Err(e) = self.open_blob(id, entry, &bytes) {
                errors.push((Some(entry.blob), e));
            }
        }
        bytes.clear();
        reader.read_to(end, |s| {
            hasher.update(s);
            bytes.extend_from_slice(s);
        })?;
        hasher.update(tail);
        Ok((hasher.finish(), bytes))
    }
}
