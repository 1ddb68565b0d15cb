//! Ingest, the one way data enters a repository: a file or any stream cut
//! into chunks by the repository's chunker and stored deduplicated through
//! a [`BlobWriter`]. Backup, copy and the coming stdin backup all call it,
//! so every caller dedups, hashes and parallelises the same way.

use std::io::Read;

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::BlobWriter;
use crate::error::{Error, Result};
use crate::id::ChunkId;

/// Why reading a source file stopped.
pub(crate) enum ReadError {
    /// The source failed: warn and leave the file out.
    Source(std::io::Error),
    /// The repository failed: abort.
    Repo(Error),
}

/// What [`BlobWriter::store_contents`] stored.
pub(crate) struct Contents {
    /// Bytes read.
    pub len: u64,
    /// Their chunks, in order.
    pub chunks: Vec<ChunkId>,
    /// Their SHA-256, when asked for.
    pub sha256: Option<[u8; 32]>,
}

impl BlobWriter<'_> {
    /// Cuts what `reader` yields into chunks with the repository's chunker and
    /// stores them in parallel, a window (one maximum chunk) at a time, computing
    /// the SHA-256 on the way when asked. `size_hint` is the expected length: a
    /// file smaller than a window is read whole and costs only its own size.
    pub(crate) fn store_contents(
        &self,
        reader: impl Read,
        size_hint: u64,
        sha256: bool,
    ) -> Result<Contents, ReadError> {
        let mut hasher = sha256.then(Sha256::new);
        let mut ids = Vec::new();
        let mut total = 0u64;
        let mut windows = self.repo().chunker().windows(reader, size_hint);
        while let Some(window) = windows.next_window().map_err(ReadError::Source)? {
            let covered = window.covered();
            total += covered.len() as u64;
            let (_, stored) = rayon::join(
                || hasher.as_mut().map(|h| h.update(covered)),
                || {
                    window
                        .chunks
                        .par_iter()
                        .map(|r| self.save_chunk(&window.data[r.clone()]))
                        .collect::<Result<Vec<_>>>()
                },
            );
            ids.extend(stored.map_err(ReadError::Repo)?);
        }
        Ok(Contents { len: total, chunks: ids, sha256: hasher.map(|h| h.finalize().into()) })
    }
}
