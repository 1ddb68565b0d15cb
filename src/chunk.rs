//! Content-defined chunking with FastCDC (2020). Boundaries depend only on
//! nearby bytes, so an insert early in a file moves only the chunks around
//! it. Small inputs are cut in memory; large files are streamed so memory
//! stays at one maximum chunk per reader.

use std::io::Read;
use std::ops::Range;

use fastcdc::v2020::{FastCDC, Normalization, StreamCDC};

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

    /// Chunks read from `reader` one at a time.
    pub fn stream<R: Read>(&self, reader: R) -> impl Iterator<Item = std::io::Result<Vec<u8>>> {
        let p = &self.params;
        StreamCDC::with_level_and_seed(reader, p.min_size, p.avg_size, p.max_size, self.level(), p.seed)
            .map(|r| r.map(|c| c.data).map_err(stream_error))
    }
}

fn stream_error(e: fastcdc::v2020::Error) -> std::io::Error {
    match e {
        fastcdc::v2020::Error::IoError(io) => io,
        other => std::io::Error::other(other.to_string()),
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
        fn stream_matches_in_memory(len in 0usize..30_000, seed: u8) {
            let data = pseudo_random(len, seed);
            let c = small();
            let streamed: Vec<Vec<u8>> = c.stream(&data[..]).collect::<Result<_, _>>().unwrap();
            let cut: Vec<Vec<u8>> = c.cut(&data).into_iter().map(|r| data[r].to_vec()).collect();
            prop_assert_eq!(streamed, cut);
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
