//! snap: a content-addressed, deduplicating snapshot store.
//!
//! Backup: `walk` reads the source tree; `chunk` cuts files with FastCDC;
//! `hash` names each chunk with BLAKE3; `repo::BlobWriter` skips chunks the
//! `index` already has, `pack::seal`s the rest (zstd, checked) into packs
//! that describe themselves; directories become content-addressed `tree`
//! nodes; the snapshot file is written last, as the one commit point.
//! Restore runs it backwards: snapshot -> trees -> index -> pack ranges ->
//! decode and check -> files. Every byte read back from a repository is
//! decoded by `format`, and all storage goes through `backend::Backend`.

#![deny(unsafe_code)]

pub mod backend;
pub mod chunk;
pub mod compress;
pub mod crash;
pub mod crypto;
pub mod dirfd;
pub mod error;
pub mod format;
pub mod hash;
pub mod id;
pub mod index;
pub(crate) mod names;
pub mod ops;
pub mod pack;
pub mod progress;
pub mod repo;
pub mod tree;
pub mod walk;

pub use error::{Error, Result};
pub use progress::{NoProgress, Progress};
pub use repo::Repository;
