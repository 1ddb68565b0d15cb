//! Where a host keeps what it caches of a repository: the index database
//! and, for object storage, whole tree packs. It lives in the user's own
//! cache directory, never in the repository: whoever can read or write the
//! repository must neither read the index (it holds every blob's exact
//! length, which format 3 hides in the packs) nor plant one.
//!
//! ```text
//! <cache>/<repository id>/index.sqlite        object storage
//! <cache>/<repository id>/trees/<pack id>     object storage
//! <cache>/<repository id>/local-<16 hex>/index.sqlite   a local repository
//! ```

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use super::is_object_id;
use crate::error::{Error, IoContext, Result};

/// The file name of the index database in its cache directory.
pub(crate) const INDEX_FILE: &str = "index.sqlite";

/// A cache base directory (`$XDG_CACHE_HOME/snap` for the user).
#[derive(Debug, Clone)]
pub(crate) struct CacheDir(PathBuf);

impl CacheDir {
    /// The user's: `$XDG_CACHE_HOME/snap`, or `~/.cache/snap`.
    pub(crate) fn user() -> Result<Self> {
        let base = dirs::cache_dir().ok_or_else(|| {
            Error::InvalidInput("cannot find a cache directory for the index (set XDG_CACHE_HOME)".into())
        })?;
        Ok(CacheDir(base.join("snap")))
    }

    /// A given directory (tests, benchmarks).
    pub(crate) fn at(base: impl Into<PathBuf>) -> Self {
        CacheDir(base.into())
    }

    /// `<base>/<repository id>/<sub>`, made private (0700) if missing.
    pub(crate) fn dir(&self, repo_id: &str, sub: &str) -> Result<PathBuf> {
        if !is_object_id(repo_id) {
            return Err(Error::InvalidInput(format!("bad repository id {repo_id:?}")));
        }
        let dir = self.0.join(repo_id).join(sub);
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).at(&dir)?;
        Ok(dir)
    }
}

/// The cache subdirectory of a local repository at `root`. A directory
/// copied with `cp -a` or rsync keeps its repository id, and two copies
/// must not share one database (each would find the other's packs missing,
/// and an exclusive open of one would wait on the other), so the place is
/// part of the name: the first 8 bytes of the BLAKE3 of its canonical path.
pub(crate) fn local_subdir(root: &Path) -> Result<String> {
    let canonical = std::fs::canonicalize(root).at(root)?;
    let hash = blake3::hash(canonical.as_os_str().as_encoded_bytes());
    Ok(format!("local-{}", hex::encode(&hash.as_bytes()[..8])))
}
