//! A range of a pack read front to back, each byte handed over once: for
//! reading many blobs of one pack (restore, verify) with one request and
//! memory for one blob, however long the range.

use bytes::{Buf, Bytes};

use super::Repository;
use crate::backend::{FileKind, Pieces};
use crate::error::{Error, Result};
use crate::format::pack::PackEntry;
use crate::id::PackId;

/// Bytes `start..end` of a pack, read in order.
pub struct PackReader<'r> {
    pack: PackId,
    pieces: Box<dyn Pieces + 'r>,
    /// What is left of the piece at hand.
    piece: Bytes,
    /// The pack offset of the next byte.
    pos: u64,
    end: u64,
}

impl Repository {
    /// The pack's bytes `offset..offset + len`, to be read in order with
    /// [`PackReader::read_to`].
    pub fn stream_pack_range(&self, pack: &PackId, offset: u64, len: u64) -> Result<PackReader<'_>> {
        let pieces = self.backend().stream_range(FileKind::Pack, &pack.to_hex(), offset, len)?;
        Ok(PackReader { pack: *pack, pieces, piece: Bytes::new(), pos: offset, end: offset + len })
    }
}

impl PackReader<'_> {
    /// Reads on to the end of `entry`'s stored bytes and leaves them in
    /// `stored`; `seen` is handed every byte read on the way, the gap before
    /// the blob included.
    pub fn read_stored(
        &mut self,
        entry: &PackEntry,
        stored: &mut Vec<u8>,
        mut seen: impl FnMut(&[u8]),
    ) -> Result<()> {
        stored.clear();
        let start = u64::from(entry.offset);
        self.read_to(start, &mut seen)?;
        self.read_to(start + u64::from(entry.stored_len), |s| {
            seen(s);
            stored.extend_from_slice(s);
        })
    }

    /// Hands the bytes from here up to `offset` to `each`, in order, in one
    /// or more slices. A range that ends early (a short object, a server
    /// that stops sending) is an error, as is an offset behind this one or
    /// past the range.
    pub fn read_to(&mut self, offset: u64, mut each: impl FnMut(&[u8])) -> Result<()> {
        if offset < self.pos || offset > self.end {
            return Err(self.misread(format!(
                "bytes up to offset {offset} lie outside the range still to read ({}..{})",
                self.pos, self.end
            )));
        }
        while self.pos < offset {
            if self.piece.is_empty() {
                self.piece = match self.pieces.next_piece()? {
                    Some(piece) => piece,
                    None => {
                        return Err(self.misread(format!("short read: bytes stop at offset {}", self.pos)));
                    }
                };
            }
            let take = (offset - self.pos).min(self.piece.len() as u64) as usize;
            each(&self.piece[..take]);
            self.piece.advance(take);
            self.pos += take as u64;
        }
        Ok(())
    }

    /// A stream that runs short or past its range proves nothing about the
    /// pack: the storage misbehaved.
    fn misread(&self, detail: String) -> Error {
        Error::read_failed(format!("pack {}", self.pack), detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pieces as given, then the end.
    struct Given(Vec<&'static [u8]>);

    impl Pieces for Given {
        fn next_piece(&mut self) -> Result<Option<Bytes>> {
            Ok((!self.0.is_empty()).then(|| Bytes::from_static(self.0.remove(0))))
        }
    }

    fn reader(pieces: Vec<&'static [u8]>, start: u64, len: u64) -> PackReader<'static> {
        let pack = PackId::from_bytes([7; 32]);
        PackReader {
            pack,
            pieces: Box::new(Given(pieces)),
            piece: Bytes::new(),
            pos: start,
            end: start + len,
        }
    }

    fn read(r: &mut PackReader, to: u64) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        r.read_to(to, |s| out.extend_from_slice(s)).map(|()| out)
    }

    #[test]
    fn bytes_come_in_order_across_pieces_once_each() {
        let mut r = reader(vec![b"hel", b"lo wor", b"ld"], 10, 11);
        assert_eq!(read(&mut r, 12).unwrap(), b"he");
        assert_eq!(read(&mut r, 12).unwrap(), b"");
        assert_eq!(read(&mut r, 18).unwrap(), b"llo wo");
        assert_eq!(read(&mut r, 18).unwrap(), b"", "the reader stands at 18");
        assert!(matches!(read(&mut r, 15), Err(Error::ReadFailed { .. })), "bytes already handed over");
        assert!(matches!(read(&mut r, 22), Err(Error::ReadFailed { .. })), "past the range");
        assert_eq!(read(&mut r, 21).unwrap(), b"rld");
    }

    #[test]
    fn a_range_that_ends_early_is_corrupt() {
        let mut r = reader(vec![b"abc"], 0, 5);
        let err = read(&mut r, 5).unwrap_err();
        assert!(err.to_string().contains("short read: bytes stop at offset 3"), "{err}");
    }
}
