//! Change notifications for `snap watch`: file-system events below the
//! sources, from inotify (or the platform's equivalent) through the `notify`
//! crate. They only say *that* something may have changed; the backup that
//! follows decides what did, so a missed or spurious event costs at most
//! one walk, never a wrong snapshot.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use crate::error::{Error, Result};

/// What waiting for a change found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Something below a source changed (or may have).
    Seen,
    /// Nothing happened before the timeout.
    Quiet,
    /// The watcher lost events (queue overflow, a watch removed): treat as a
    /// change, and keep going.
    Lost(String),
}

/// Watches source paths recursively.
pub struct ChangeWatcher {
    // Kept alive for as long as events are wanted.
    _watcher: RecommendedWatcher,
    events: Receiver<notify::Result<notify::Event>>,
    ignored: Option<PathBuf>,
}

impl ChangeWatcher {
    /// Starts watching `paths`; events below `ignored` (the repository, when
    /// it lies inside a source) are not changes.
    pub fn new(paths: &[PathBuf], ignored: Option<&Path>) -> Result<Self> {
        let (tx, events) = channel();
        let mut watcher = notify::recommended_watcher(tx).map_err(watch_error)?;
        for path in paths {
            watcher.watch(path, RecursiveMode::Recursive).map_err(|e| match watch_error(e) {
                Error::InvalidInput(msg) => Error::InvalidInput(format!("{}: {msg}", path.display())),
                other => other,
            })?;
        }
        Ok(ChangeWatcher { _watcher: watcher, events, ignored: ignored.map(Path::to_owned) })
    }

    /// Waits up to `timeout` for the first relevant event.
    pub fn wait(&self, timeout: Duration) -> Change {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.events.recv_timeout(left) {
                Ok(Ok(event)) if self.relevant(&event) => return Change::Seen,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Change::Lost(e.to_string()),
                Err(RecvTimeoutError::Timeout) => return Change::Quiet,
                Err(RecvTimeoutError::Disconnected) => return Change::Lost("the watcher stopped".into()),
            }
        }
    }

    fn relevant(&self, event: &notify::Event) -> bool {
        if event.kind.is_access() {
            return false;
        }
        match &self.ignored {
            Some(dir) => event.paths.is_empty() || event.paths.iter().any(|p| !p.starts_with(dir)),
            None => true,
        }
    }
}

fn watch_error(e: notify::Error) -> Error {
    Error::InvalidInput(format!("cannot watch for changes: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_is_seen_and_the_ignored_directory_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        std::fs::create_dir(&repo).unwrap();
        let w = ChangeWatcher::new(&[dir.path().to_owned()], Some(&repo)).unwrap();
        std::fs::write(repo.join("pack"), b"x").unwrap();
        assert_eq!(w.wait(Duration::from_millis(300)), Change::Quiet);
        std::fs::write(dir.path().join("f"), b"x").unwrap();
        assert_eq!(w.wait(Duration::from_secs(10)), Change::Seen);
    }
}
