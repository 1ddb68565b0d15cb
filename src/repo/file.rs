//! A file's contents read back from a repository as a stream, one chunk at
//! a time, for the commands that hand them on to something else (`dump`
//! into an archive, `copy` into another repository's chunker).

use std::io::{self, Read};

use super::Repository;
use crate::error::{Error, Result};
use crate::id::{BlobId, ChunkId};

/// Reads a file's chunks in order; never more than one chunk is held.
pub struct FileReader<'a> {
    repo: &'a Repository,
    chunks: std::slice::Iter<'a, ChunkId>,
    size: u64,
    read: u64,
    chunk: Vec<u8>,
    pos: usize,
    /// Why reading failed: callers often see only the `io::Error` a writer
    /// made of it.
    error: Option<Error>,
}

impl Repository {
    /// The contents of a file of `size` bytes made of `chunks`. Chunks that
    /// do not add up to `size` are an error, found when the end is reached.
    pub fn file_reader<'a>(&'a self, chunks: &'a [ChunkId], size: u64) -> FileReader<'a> {
        FileReader {
            repo: self,
            chunks: chunks.iter(),
            size,
            read: 0,
            chunk: Vec::new(),
            pos: 0,
            error: None,
        }
    }
}

impl FileReader<'_> {
    /// Bytes read from the repository so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// The error that ended reading, if one did.
    pub fn take_error(&mut self) -> Option<Error> {
        self.error.take()
    }

    /// Loads the next chunk; `false` at the end.
    fn next_chunk(&mut self) -> Result<bool> {
        let Some(id) = self.chunks.next() else {
            return if self.read == self.size { Ok(false) } else { Err(self.size_mismatch()) };
        };
        self.chunk = self.repo.read_blob(&BlobId::Chunk(*id))?;
        self.pos = 0;
        self.read += self.chunk.len() as u64;
        if self.read > self.size {
            return Err(self.size_mismatch());
        }
        Ok(true)
    }

    fn size_mismatch(&self) -> Error {
        Error::corrupt("tree entry", format!("its chunks do not add up to its size of {} bytes", self.size))
    }
}

impl Read for FileReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.next_chunk() {
                Ok(true) => {}
                Ok(false) => return Ok(0),
                Err(e) => {
                    let shown = io::Error::other(e.to_string());
                    self.error = Some(e);
                    return Err(shown);
                }
            }
        }
        let n = out.len().min(self.chunk.len() - self.pos);
        out[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
