//! `Config::decode` on arbitrary bytes: never panics, allocates within a
//! bound of the input, and whatever it accepts is valid (a known encryption
//! scheme with its own format version, 1 for "none" and 2 for
//! "xchacha20-poly1305", no chunker seed written down, a 32-byte hex id),
//! survives `encode` -> `decode` unchanged and encodes the same way again.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use snap::crypto::Scheme;
use snap::format::{FORMAT_VERSION, SIZE_HIDING_VERSION};
use snap::format::config::{Config, MAX_CONFIG_LEN};

fuzz_target!(|data: &[u8]| {
    let (decoded, peak) = common::peak_alloc(|| Config::decode(data));
    common::assert_within_budget("config", data.len(), peak);
    let Ok(config) = decoded else { return };

    assert!(data.len() <= MAX_CONFIG_LEN, "accepted a config over the size limit");
    assert!((1..=FORMAT_VERSION).contains(&config.version), "accepted version {}", config.version);
    let Some(scheme) = Scheme::from_name(&config.encryption) else {
        panic!("accepted encryption {:?}", config.encryption)
    };
    let versions = match scheme {
        Scheme::None => 1..=1,
        Scheme::XChaCha20Poly1305 => 2..=SIZE_HIDING_VERSION,
    };
    assert!(versions.contains(&config.version), "accepted version {} with {scheme:?}", config.version);
    assert_eq!(config.scheme(), scheme);
    assert_eq!(config.chunker.seed, 0, "accepted a chunker seed in the config");
    assert_eq!(config.id.len(), 64, "id {:?}", config.id);
    let id_hex: String = config.id_bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(id_hex, config.id.to_ascii_lowercase(), "id_bytes disagrees with id {:?}", config.id);
    assert!(config.chunker.validate().is_ok(), "accepted chunker {:?}", config.chunker);

    let encoded = config.encode();
    assert!(encoded.len() <= MAX_CONFIG_LEN, "an accepted config encodes over the size limit");
    let again = Config::decode(&encoded).expect("a re-encoded config decodes");
    assert_eq!(again, config);
    assert_eq!(again.encode(), encoded, "config encoding is not stable");
});
