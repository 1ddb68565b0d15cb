//! Content-defined chunking with FastCDC (2020). Boundaries depend only on
//! nearby bytes, so an insert early in a file moves only the chunks around
//! it. Readers are cut in windows of one maximum chunk: memory stays at one
//! window per reader, and chunks are handed out as slices of it, not copied.

use std::io::{ErrorKind, Read};
use std::ops::Range;

use fastcdc::v2020::{FastCDC, Normalization};

use crate::format::config::ChunkerParams;

/// A configured chunker (parameters come from the repository config, which
/// has already been validated).
#[derive(Clone, Copy, Debug)]
pub struct Chunker {
    params: ChunkerParams,
}

impl Chunker {
    /// A chunker for validated parameters.
    pub fn new(params: ChunkerParams) -> Self {
        Chunker { params }
    }

    /// The largest chunk this chunker emits.
    pub fn max_size(&self) -> usize {
        self.params.max_size as usize
    }

    fn level(&self) -> Normalization {
        match self.params.normalization {
            0 => Normalization::Level0,
            1 => Normalization::Level1,
            2 => Normalization::Level2,
            _ => Normalization::Level3,
        }
    }

    /// Byte ranges of the chunks of `data`, in order, covering all of it.
    pub fn cut(&self, data: &[u8]) -> Vec<Range<usize>> {
        let p = &self.params;
        FastCDC::with_level_and_seed(data, p.min_size, p.avg_size, p.max_size, self.level(), p.seed)
            .map(|c| c.offset..c.offset + c.length)
            .collect()
    }

    /// Cuts what `reader` yields, a window at a time; `size_hint` (the
    /// expected length) sizes the first window so a small file costs no
    /// more memory than itself.
    pub fn windows<R: Read>(&self, reader: R, size_hint: u64) -> Windows<R> {
        let first = usize::try_from(size_hint).map_or(usize::MAX, |n| n.saturating_add(1));
        Windows {
            chunker: *self,
            reader,
            buf: vec![0; first.min(self.max_size())],
            filled: 0,
            consumed: 0,
            eof: false,
        }
    }
}

/// A reader cut into chunks through a buffer of at most one maximum chunk.
pub struct Windows<R> {
    chunker: Chunker,
    reader: R,
    buf: Vec<u8>,
    filled: usize,
    /// How much of `buf` the last window handed out.
    consumed: usize,
    eof: bool,
}

/// Bytes read and the chunks that are final among them, in order from the
/// start of `data`. Bytes after the last chunk come again in the next window.
pub struct Window<'a> {
    /// The buffered bytes.
    pub data: &'a [u8],
    /// The chunks cut from `data`, covering a prefix of it.
    pub chunks: Vec<Range<usize>>,
}

impl Window<'_> {
    /// The bytes the chunks cover.
    pub fn covered(&self) -> &[u8] {
        &self.data[..self.chunks.last().map_or(0, |r| r.end)]
    }
}

impl<R: Read> Windows<R> {
    /// The next window, or `None` at the end of the input.
    pub fn next_window(&mut self) -> std::io::Result<Option<Window<'_>>> {
        self.buf.copy_within(self.consumed..self.filled, 0);
        self.filled -= self.consumed;
        self.consumed = 0;
        self.fill()?;
        if self.filled == 0 {
            return Ok(None);
        }
        let data = &self.buf[..self.filled];
        let max = self.chunker.max_size();
        let mut chunks = self.chunker.cut(data);
        // A cut found before the end of the buffer is the one the whole
        // input would give (FastCDC reads up to and including the byte at
        // its cut, and no further), and so is one forced at the maximum
        // length; a chunk that merely stops where the buffer does may grow
        // with more input.
        if !self.eof && chunks.last().is_some_and(|r| r.len() < max) {
            chunks.pop();
        }
        self.consumed = chunks.last().map_or(0, |r| r.end);
        Ok(Some(Window { data, chunks }))
    }

    /// Reads until the buffer is full (grown, by doubling up to one maximum
    /// chunk, when the input outgrows its hint) or the input ends.
    fn fill(&mut self) -> std::io::Result<()> {
        while !self.eof {
            if self.filled == self.buf.len() {
                if self.buf.len() >= self.chunker.max_size() {
                    return Ok(());
                }
                // Files that report no size (procfs) stay small this way.
                let grown = (self.buf.len() * 2).max(64 << 10).min(self.chunker.max_size());
                self.buf.resize(grown, 0);
            }
            match self.reader.read(&mut self.buf[self.filled..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.filled += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn small() -> Chunker {
        Chunker::new(ChunkerParams {
            min_size: 256,
            avg_size: 1024,
            max_size: 4096,
            normalization: 1,
            seed: 0,
        })
    }

    /// Hands out at most `step` bytes per read, as pipes and slow disks do.
    struct ShortReads<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for ShortReads<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.step).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_read_error_is_returned() {
        let failing = std::io::Read::chain(&[7u8; 10][..], FailingReader);
        let mut windows = small().windows(failing, 10);
        let err = windows.next_window().err().expect("the error reaches the caller");
        assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    }

    struct FailingReader;

    impl Read for FailingReader {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(ErrorKind::PermissionDenied.into())
        }
    }

    fn pseudo_random(len: usize, seed: u8) -> Vec<u8> {
        let mut out = vec![0; len];
        blake3::Hasher::new().update(&[seed]).finalize_xof().fill(&mut out);
        out
    }

    proptest! {
        #[test]
        fn chunks_cover_input_within_bounds(len in 0usize..50_000, seed: u8) {
            let data = pseudo_random(len, seed);
            let ranges = small().cut(&data);
            let mut pos = 0;
            for (i, r) in ranges.iter().enumerate() {
                prop_assert_eq!(r.start, pos);
                prop_assert!(r.len() <= 4096);
                if i + 1 < ranges.len() { prop_assert!(r.len() >= 256); }
                pos = r.end;
            }
            prop_assert_eq!(pos, data.len());
        }

        #[test]
        fn windows_match_in_memory(len in 0usize..30_000, seed: u8, hint in 0u64..40_000, step in 1usize..5000) {
            let data = pseudo_random(len, seed);
            let c = small();
            let reader = ShortReads { data: &data, step };
            let mut windows = c.windows(reader, hint);
            let mut windowed: Vec<Vec<u8>> = Vec::new();
            while let Some(w) = windows.next_window().unwrap() {
                prop_assert!(w.data.len() <= c.max_size());
                prop_assert!(!w.chunks.is_empty(), "a window must make progress");
                windowed.extend(w.chunks.iter().map(|r| w.data[r.clone()].to_vec()));
            }
            let cut: Vec<Vec<u8>> = c.cut(&data).into_iter().map(|r| data[r].to_vec()).collect();
            prop_assert_eq!(windowed, cut);
        }

        #[test]
        fn boundaries_survive_an_insert(seed: u8, at in 0usize..60_000, insert in prop::collection::vec(any::<u8>(), 1..100)) {
            let data = pseudo_random(64_000, seed);
            let mut edited = data[..at].to_vec();
            edited.extend(&insert);
            edited.extend(&data[at..]);
            let c = small();
            let before: std::collections::HashSet<&[u8]> = c.cut(&data).into_iter().map(|r| &data[r]).collect();
            // Chunks ending before the insert are untouched (a cut at p
            // depends on the byte at p, so a chunk ending exactly at the
            // insert may move), and the cuts resynchronise within a few
            // maximum chunk lengths after it.
            let resync = at + insert.len() + 4 * c.max_size();
            for r in c.cut(&edited) {
                if r.end < at || r.start >= resync {
                    prop_assert!(before.contains(&edited[r.clone()]), "chunk {:?} changed (insert at {})", r, at);
                }
            }
        }
    }
}
