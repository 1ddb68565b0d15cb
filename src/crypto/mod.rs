//! Encryption at rest. A repository is either unencrypted or encrypted with
//! XChaCha20-Poly1305 under keys derived from one random master key; the
//! master key is stored only wrapped by password-derived keys
//! (`keyfile.rs`). Every sealed object carries its own random 192-bit nonce,
//! so no counter has to survive crashes or be shared between hosts writing
//! into one repository, and the object's type and identity are bound into the
//! authenticated data, so a chunk can never be passed off as a tree, a
//! trailer or a snapshot (borg's CVE-2016-10099 and CVE-2023-36811).
//!
//! Sealed bytes (an "envelope"): `nonce (24) | ciphertext | tag (16)`.
//! Pure: no I/O besides the system's random source.

pub mod keyfile;

use std::borrow::Cow;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::format::DecodeError;
use crate::hash::BlobHasher;
use crate::id::BlobId;

/// Length of an envelope's nonce.
pub const NONCE_LEN: usize = 24;
/// Length of an envelope's authentication tag.
pub const TAG_LEN: usize = 16;
/// Bytes an envelope adds to its plaintext.
pub const ENVELOPE_OVERHEAD: usize = NONCE_LEN + TAG_LEN;
/// Length of the master key and of every derived key.
pub const KEY_LEN: usize = 32;

/// An encryption scheme, as named in the config and object headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Stored in the clear.
    None,
    /// XChaCha20-Poly1305 with random nonces.
    XChaCha20Poly1305,
}

impl Scheme {
    /// The config's name for the scheme.
    pub const fn name(self) -> &'static str {
        match self {
            Scheme::None => "none",
            Scheme::XChaCha20Poly1305 => "xchacha20-poly1305",
        }
    }

    /// The scheme a config names.
    pub fn from_name(name: &str) -> Option<Self> {
        [Scheme::None, Scheme::XChaCha20Poly1305].into_iter().find(|s| s.name() == name)
    }

    /// The byte object headers carry.
    pub const fn code(self) -> u8 {
        match self {
            Scheme::None => 0,
            Scheme::XChaCha20Poly1305 => 1,
        }
    }
}

/// What a sealed object is. Its bytes are the authenticated data, so an
/// envelope opens only as the very object it was sealed as.
#[derive(Clone, Copy, Debug)]
pub enum Aad<'a> {
    /// A blob's stored bytes: its kind and id.
    Blob(&'a BlobId),
    /// A pack's trailer.
    PackTrailer,
    /// The filler that brings a format 3 pack to its padded length.
    PackPadding,
    /// A snapshot body, with the file's header.
    Snapshot(&'a [u8]),
    /// A key file's wrapped master key, with the repository id.
    MasterKey(&'a [u8]),
}

impl Aad<'_> {
    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        match self {
            Aad::Blob(blob) => {
                out.extend_from_slice(b"snap blob v1\0");
                out.push(blob.kind().code());
                out.extend_from_slice(blob.as_bytes());
            }
            Aad::PackTrailer => out.extend_from_slice(b"snap pack trailer v1\0"),
            Aad::PackPadding => out.extend_from_slice(b"snap pack padding v1\0"),
            Aad::Snapshot(header) => {
                out.extend_from_slice(b"snap snapshot v1\0");
                out.extend_from_slice(header);
            }
            Aad::MasterKey(repo_id) => {
                out.extend_from_slice(b"snap master key v1\0");
                out.extend_from_slice(repo_id);
            }
        }
        out
    }
}

/// A 32-byte secret that is wiped when dropped.
pub type SecretKey = Zeroizing<[u8; KEY_LEN]>;

/// A fresh random key.
pub fn random_key() -> Result<SecretKey> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    getrandom::fill(key.as_mut()).map_err(|e| Error::Crypto(format!("system random source: {e}")))?;
    Ok(key)
}

fn derive(context: &str, master: &[u8; KEY_LEN]) -> SecretKey {
    Zeroizing::new(blake3::derive_key(context, master))
}

/// Seals `plaintext` under `key` with a random nonce.
pub(crate) fn seal_with(key: &[u8; KEY_LEN], aad: Aad<'_>, plaintext: &[u8]) -> Result<Vec<u8>> {
    let cipher = XChaCha20Poly1305::new(key.into());
    seal_cipher(&cipher, aad, plaintext)
}

/// Opens an envelope sealed by [`seal_with`].
pub(crate) fn open_with(
    key: &[u8; KEY_LEN],
    aad: Aad<'_>,
    sealed: &[u8],
) -> std::result::Result<Vec<u8>, DecodeError> {
    let cipher = XChaCha20Poly1305::new(key.into());
    open_cipher(&cipher, aad, sealed)
}

fn seal_cipher(cipher: &XChaCha20Poly1305, aad: Aad<'_>, plaintext: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(plaintext.len() + ENVELOPE_OVERHEAD);
    out.resize(NONCE_LEN, 0);
    // Without fresh randomness there is no safe nonce: stop, never reuse.
    getrandom::fill(&mut out[..NONCE_LEN])
        .map_err(|e| Error::Crypto(format!("system random source: {e}")))?;
    out.extend_from_slice(plaintext);
    let nonce = *XNonce::from_slice(&out[..NONCE_LEN]);
    let tag = cipher
        .encrypt_in_place_detached(&nonce, &aad.bytes(), &mut out[NONCE_LEN..])
        .map_err(|_| Error::Crypto(format!("cannot encrypt {} bytes", plaintext.len())))?;
    out.extend_from_slice(&tag);
    Ok(out)
}

fn open_cipher(
    cipher: &XChaCha20Poly1305,
    aad: Aad<'_>,
    sealed: &[u8],
) -> std::result::Result<Vec<u8>, DecodeError> {
    if sealed.len() < ENVELOPE_OVERHEAD {
        return Err(DecodeError::Truncated { need: ENVELOPE_OVERHEAD, have: sealed.len() });
    }
    let (nonce, rest) = sealed.split_at(NONCE_LEN);
    let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
    let mut plain = body.to_vec();
    cipher
        .decrypt_in_place_detached(XNonce::from_slice(nonce), &aad.bytes(), &mut plain, Tag::from_slice(tag))
        .map_err(|_| DecodeError::Authentication)?;
    Ok(plain)
}

/// The keys an open repository works with: how blobs are named, how objects
/// are sealed, and how the chunker is keyed. For an unencrypted repository
/// sealing is the identity and ids are plain.
pub struct Keys {
    hasher: BlobHasher,
    cipher: Option<XChaCha20Poly1305>,
    chunker_seed: u64,
    /// Format 3 only: the key of the chunker's cut rule. Its presence is
    /// what makes packs padded and shuffled (DESIGN.md 5.2, 16).
    chunker_key: Option<SecretKey>,
    config_mac: Option<SecretKey>,
}

impl Keys {
    /// The keys of an unencrypted repository.
    pub fn plain() -> Self {
        Keys { hasher: BlobHasher::Plain, cipher: None, chunker_seed: 0, chunker_key: None, config_mac: None }
    }

    /// Every key of an encrypted repository, derived from its master key
    /// (BLAKE3 key derivation, one context per purpose).
    pub fn from_master(master: &[u8; KEY_LEN]) -> Self {
        let data = derive("snap 2026-12 data encryption key", master);
        let seed = derive("snap 2026-12 chunker seed", master);
        Keys {
            hasher: BlobHasher::Keyed {
                chunk: derive("snap 2026-12 chunk id key", master),
                tree: derive("snap 2026-12 tree id key", master),
            },
            cipher: Some(XChaCha20Poly1305::new(data.as_ref().into())),
            chunker_seed: u64::from_le_bytes(seed[..8].try_into().expect("8 bytes")),
            chunker_key: None,
            config_mac: Some(derive("snap 2026-12 config mac key", master)),
        }
    }

    /// The keys of an encrypted repository of format `version`: from format
    /// 3 on, packs hide their sizes and the chunker cuts by a keyed PRF.
    /// Format 2 keeps its seeded FastCDC, or its chunks would no longer
    /// deduplicate against what it holds.
    pub fn from_master_for(master: &[u8; KEY_LEN], version: u32) -> Self {
        let mut keys = Self::from_master(master);
        if version >= crate::format::SIZE_HIDING_VERSION {
            keys.chunker_key = Some(derive("snap 2026-12 chunker cut key", master));
        }
        keys
    }

    /// The scheme these keys seal with.
    pub fn scheme(&self) -> Scheme {
        if self.cipher.is_some() { Scheme::XChaCha20Poly1305 } else { Scheme::None }
    }

    /// How blobs are named.
    pub fn hasher(&self) -> &BlobHasher {
        &self.hasher
    }

    /// The seed XORed into the chunker's gear table: secret in an encrypted
    /// repository, so chunk boundaries (and sizes) do not identify files.
    pub fn chunker_seed(&self) -> u64 {
        self.chunker_seed
    }

    /// The key of format 3's cut rule; `None` before format 3.
    pub fn chunker_key(&self) -> Option<&SecretKey> {
        self.chunker_key.as_ref()
    }

    /// Whether packs are padded and their blobs shuffled (format 3).
    pub fn hides_sizes(&self) -> bool {
        self.chunker_key.is_some()
    }

    /// Seals an object's bytes (the identity when unencrypted).
    pub fn seal(&self, aad: Aad<'_>, plaintext: Vec<u8>) -> Result<Vec<u8>> {
        match &self.cipher {
            None => Ok(plaintext),
            Some(cipher) => seal_cipher(cipher, aad, &plaintext),
        }
    }

    /// Opens sealed bytes, refusing any that were altered or sealed as
    /// another object.
    pub fn open<'a>(
        &self,
        aad: Aad<'_>,
        sealed: &'a [u8],
    ) -> std::result::Result<Cow<'a, [u8]>, DecodeError> {
        match &self.cipher {
            None => Ok(Cow::Borrowed(sealed)),
            Some(cipher) => open_cipher(cipher, aad, sealed).map(Cow::Owned),
        }
    }

    /// Bytes sealing adds to an object.
    pub fn overhead(&self) -> usize {
        if self.cipher.is_some() { ENVELOPE_OVERHEAD } else { 0 }
    }

    /// The MAC key files carry over the exact config bytes, so a config
    /// altered by someone without the key is noticed when a key is opened.
    pub fn config_mac(&self, config: &[u8]) -> Option<[u8; 32]> {
        self.config_mac.as_ref().map(|k| *blake3::keyed_hash(k, config).as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::{ChunkId, TreeId};

    fn keys() -> Keys {
        Keys::from_master(&[7; KEY_LEN])
    }

    #[test]
    fn seal_open_round_trip() {
        let k = keys();
        let blob = BlobId::Chunk(ChunkId::from_bytes([1; 32]));
        let sealed = k.seal(Aad::Blob(&blob), b"hello".to_vec()).unwrap();
        assert_eq!(sealed.len(), 5 + ENVELOPE_OVERHEAD);
        assert_eq!(&*k.open(Aad::Blob(&blob), &sealed).unwrap(), b"hello");
        let again = k.seal(Aad::Blob(&blob), b"hello".to_vec()).unwrap();
        assert_ne!(sealed, again, "nonces must be fresh");
    }

    #[test]
    fn every_flipped_bit_is_refused() {
        let k = keys();
        let sealed = k.seal(Aad::PackTrailer, b"trailer".to_vec()).unwrap();
        for i in 0..sealed.len() * 8 {
            let mut bad = sealed.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert_eq!(k.open(Aad::PackTrailer, &bad), Err(DecodeError::Authentication), "bit {i}");
        }
        assert!(k.open(Aad::PackTrailer, &sealed[..ENVELOPE_OVERHEAD - 1]).is_err());
    }

    #[test]
    fn an_object_cannot_be_opened_as_another() {
        let k = keys();
        let chunk = BlobId::Chunk(ChunkId::from_bytes([1; 32]));
        let tree = BlobId::Tree(TreeId::from_bytes([1; 32]));
        let sealed = k.seal(Aad::Blob(&chunk), b"x".to_vec()).unwrap();
        assert!(k.open(Aad::Blob(&tree), &sealed).is_err());
        assert!(k.open(Aad::PackTrailer, &sealed).is_err());
        assert!(k.open(Aad::Snapshot(b""), &sealed).is_err());
        let other = Keys::from_master(&[8; KEY_LEN]);
        assert!(other.open(Aad::Blob(&chunk), &sealed).is_err());
    }

    #[test]
    fn plain_keys_are_the_identity() {
        let k = Keys::plain();
        assert_eq!(k.seal(Aad::PackTrailer, b"abc".to_vec()).unwrap(), b"abc");
        assert_eq!(&*k.open(Aad::PackTrailer, b"abc").unwrap(), b"abc");
        assert_eq!(k.overhead(), 0);
        assert_eq!(k.chunker_seed(), 0);
        assert_eq!(k.scheme(), Scheme::None);
    }

    #[test]
    fn derived_keys_differ_per_master() {
        assert_ne!(keys().chunker_seed(), Keys::from_master(&[8; KEY_LEN]).chunker_seed());
        assert_ne!(keys().config_mac(b"c"), Keys::from_master(&[8; KEY_LEN]).config_mac(b"c"));
    }
}
