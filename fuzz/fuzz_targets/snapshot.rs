//! `Snapshot::decode` on arbitrary bytes: never panics, allocates within a
//! bound of the input, and whatever it accepts has absolute source paths and
//! a valid time and round-trips through `encode`.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use snap::format::snapshot::{MAX_SNAPSHOT_LEN, SNAPSHOT_MAGIC, Snapshot};

fuzz_target!(|data: &[u8]| {
    let (decoded, peak) = common::peak_alloc(|| Snapshot::decode(data));
    common::assert_within_budget("snapshot", data.len(), peak);
    let Ok(snapshot) = decoded else { return };

    assert!(data.len() <= MAX_SNAPSHOT_LEN);
    assert_eq!(data[..4], SNAPSHOT_MAGIC);
    assert!(snapshot.time.nanos < 1_000_000_000, "accepted time {:?}", snapshot.time);
    for path in &snapshot.paths {
        assert!(path.starts_with(b"/"), "accepted relative path {path:?}");
    }

    let encoded = snapshot.encode();
    assert!(encoded.len() <= data.len(), "re-encoding grew from {} to {} bytes", data.len(), encoded.len());
    let again = Snapshot::decode(&encoded).expect("a re-encoded snapshot decodes");
    assert_eq!(again, snapshot);
    assert_eq!(again.encode(), encoded, "snapshot encoding is not stable");
});
