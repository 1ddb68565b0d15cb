//! Progress reporting: the library reports, the CLI draws. Every method has
//! a no-op default so operations can call it freely.

/// Receives progress from long operations; must be cheap and thread-safe.
pub trait Progress: Send + Sync {
    /// A phase begins; `total_bytes` when known.
    fn begin(&self, _phase: &str, _total_bytes: Option<u64>) {}
    /// Files and bytes finished since the last call.
    fn advance(&self, _files: u64, _bytes: u64) {}
    /// The phase is over.
    fn end(&self) {}
}

/// Reports nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}
