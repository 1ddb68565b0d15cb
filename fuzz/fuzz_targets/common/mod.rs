//! Shared by the fuzz targets: a global allocator that counts bytes, so a
//! target can check that decoding allocates no more than a bound derived
//! from the input ("every length read from disk is checked before
//! allocating"), instead of only hoping libFuzzer's RSS limit trips.
//!
//! Only Rust allocations are counted; zstd's C allocations are not (the
//! `decompress` target relies on `-malloc_limit_mb` for those).
//!
//! Also the keys the targets run under: an unencrypted repository's and an
//! encrypted one's with a fixed master key, made once per process.

#![allow(dead_code)] // each target uses only some of these helpers

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use snap::crypto::Keys;

/// The master key of the encrypted repository the targets decode for.
pub const FIXED_KEY: [u8; 32] = *b"snap fuzz: a fixed master key!!!";

static PLAIN: LazyLock<Keys> = LazyLock::new(Keys::plain);
static SEALED: LazyLock<Keys> = LazyLock::new(|| Keys::from_master(&FIXED_KEY));
static PADDED: LazyLock<Keys> =
    LazyLock::new(|| Keys::from_master_for(&FIXED_KEY, snap::format::SIZE_HIDING_VERSION));

/// The keys of an unencrypted repository.
pub fn plain_keys() -> &'static Keys {
    &PLAIN
}

/// The keys of an encrypted repository whose master key is [`FIXED_KEY`].
pub fn sealed_keys() -> &'static Keys {
    &SEALED
}

/// The keys of a format 3 repository (padded packs) with [`FIXED_KEY`].
pub fn padded_keys() -> &'static Keys {
    &PADDED
}

/// Both sets of keys, unencrypted first.
pub fn both_keys() -> [&'static Keys; 2] {
    [plain_keys(), sealed_keys()]
}

/// The keys of the other scheme than `keys`'.
pub fn other_keys(keys: &Keys) -> &'static Keys {
    if keys.overhead() == 0 { sealed_keys() } else { plain_keys() }
}

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grow(bytes: usize) {
    let now = LIVE.fetch_add(bytes, Relaxed) + bytes;
    PEAK.fetch_max(now, Relaxed);
}

// SAFETY: every method forwards to `System` unchanged; the counters are
// bookkeeping only and never affect the pointers handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grow(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc_zeroed`'s contract.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grow(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            // Old and new blocks may briefly coexist; count the larger view.
            grow(new_size);
            LIVE.fetch_sub(layout.size(), Relaxed);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result with the most bytes it had allocated at
/// once on top of what was live when it started.
pub fn peak_alloc<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    let out = f();
    (out, PEAK.load(Relaxed).saturating_sub(base))
}

/// The allocation a decoder may make for `input_len` bytes of input: a fixed
/// allowance (serde preallocates at most 1 MiB per sequence from a declared
/// length, and a failed decode can have a few such sequences open) plus a
/// generous multiple of the input, for in-memory structs larger than their
/// encoding and `Vec` doubling.
pub fn decode_budget(input_len: usize) -> usize {
    (8 << 20) + 64 * input_len
}

/// Panics when a decode of `input_len` bytes allocated more than its budget.
pub fn assert_within_budget(what: &str, input_len: usize, peak: usize) {
    let budget = decode_budget(input_len);
    assert!(
        peak <= budget,
        "{what}: decoding {input_len} bytes allocated {peak} bytes at peak, over the budget of {budget}"
    );
}
