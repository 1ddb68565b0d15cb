//! `Tree::decode` and `Tree::decode_stored` on arbitrary bytes: never panic,
//! allocate within a bound of the input, and whatever they accept is safe
//! for restore to trust (every name a single safe component, names strictly
//! increasing, within a node and from page to page, symlink targets and
//! timestamps valid) and round-trips through `encode`.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use snap::format::tree::{MAX_LINK_TARGET_LEN, MAX_NAME_LEN, Node, Stored, Tree, validate_name};

fuzz_target!(|data: &[u8]| {
    let (stored, peak) = common::peak_alloc(|| Tree::decode_stored(data));
    common::assert_within_budget("tree", data.len(), peak);
    if let Ok(Stored::Paged(pages)) = stored {
        assert!(pages.len() >= 2, "a page list of {} pages", pages.len());
        for page in &pages {
            assert!(validate_name(&page.first).is_ok() && validate_name(&page.last).is_ok());
            assert!(page.count >= 1 && page.first <= page.last);
        }
        for pair in pages.windows(2) {
            assert!(pair[0].last < pair[1].first, "pages overlap: {:?} then {:?}", pair[0], pair[1]);
        }
        return;
    }

    let (decoded, peak) = common::peak_alloc(|| Tree::decode(data));
    common::assert_within_budget("tree", data.len(), peak);
    let Ok(tree) = decoded else { return };

    for entry in &tree.entries {
        let name = &entry.name;
        assert!(validate_name(name).is_ok(), "accepted name {name:?}");
        assert!(!name.is_empty() && name.len() <= MAX_NAME_LEN);
        assert!(name.as_slice() != b"." && name.as_slice() != b"..");
        assert!(!name.contains(&b'/') && !name.contains(&0), "accepted name {name:?}");
        assert!(entry.meta.mtime.nanos < 1_000_000_000 && entry.meta.ctime.nanos < 1_000_000_000);
        if let Node::Symlink { target } = &entry.node {
            assert!(!target.is_empty() && target.len() <= MAX_LINK_TARGET_LEN && !target.contains(&0));
        }
        let found = tree.find(name).expect("every entry can be found by name");
        assert!(std::ptr::eq(found, entry), "find({name:?}) returned another entry");
    }
    for pair in tree.entries.windows(2) {
        assert!(
            pair[0].name < pair[1].name,
            "names not strictly increasing: {:?} then {:?}",
            pair[0].name,
            pair[1].name
        );
    }

    // The canonical encoding is never longer than an accepted one (postcard
    // varints are minimal when written), and it decodes to the same tree.
    let encoded = tree.encode();
    assert!(encoded.len() <= data.len(), "re-encoding grew from {} to {} bytes", data.len(), encoded.len());
    let again = Tree::decode(&encoded).expect("a re-encoded tree decodes");
    assert_eq!(again, tree);
    assert_eq!(again.encode(), encoded, "tree encoding is not stable");
});
