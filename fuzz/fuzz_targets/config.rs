//! `Config::decode` on arbitrary bytes: never panics, allocates within a
//! bound of the input, and whatever it accepts is valid, survives
//! `encode` -> `decode` unchanged and encodes the same way again.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use snap::format::FORMAT_VERSION;
use snap::format::config::{Config, MAX_CONFIG_LEN};

fuzz_target!(|data: &[u8]| {
    let (decoded, peak) = common::peak_alloc(|| Config::decode(data));
    common::assert_within_budget("config", data.len(), peak);
    let Ok(config) = decoded else { return };

    assert!(data.len() <= MAX_CONFIG_LEN, "accepted a config over the size limit");
    assert!((1..=FORMAT_VERSION).contains(&config.version), "accepted version {}", config.version);
    assert_eq!(config.encryption, "none");
    assert_eq!(config.id.len(), 64, "id {:?}", config.id);
    assert!(config.chunker.validate().is_ok(), "accepted chunker {:?}", config.chunker);

    let encoded = config.encode();
    assert!(encoded.len() <= MAX_CONFIG_LEN, "an accepted config encodes over the size limit");
    let again = Config::decode(&encoded).expect("a re-encoded config decodes");
    assert_eq!(again, config);
    assert_eq!(again.encode(), encoded, "config encoding is not stable");
});
