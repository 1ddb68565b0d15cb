//! Wrapping the master key with a password: Argon2id turns the password and
//! a random salt into a key-encryption key, which seals the master key with
//! the repository id as associated data (a key file copied into another
//! repository does not open there).

use argon2::{Algorithm, Argon2, Block, Params, Version};
use zeroize::Zeroizing;

use super::{Aad, KEY_LEN, SecretKey, open_with, random_key, seal_with};
use crate::error::{Error, Result};
use crate::format::keyfile::{KEYFILE_VERSION, Kdf, KeyFile};

/// Argon2id cost of new key files: 64 MiB and 3 passes, about a quarter of
/// a second per password try on a current core; above OWASP's minimum
/// (19 MiB, 2 passes) by a wide margin.
pub const KDF_MEMORY_KIB: u32 = 64 << 10;
/// Argon2id passes of new key files.
pub const KDF_ITERATIONS: u32 = 3;

/// Who added a key, for `snap key list`.
#[derive(Clone, Debug)]
pub struct KeyOwner {
    /// Host name.
    pub hostname: String,
    /// User name.
    pub username: String,
}

/// A password, wiped from memory when dropped.
pub type Password = Zeroizing<String>;

fn wrapping_key(password: &str, kdf: &Kdf) -> Result<SecretKey> {
    let params = Params::new(kdf.memory_kib, kdf.iterations, kdf.parallelism, Some(KEY_LEN))
        .map_err(|e| Error::Crypto(format!("Argon2 parameters: {e}")))?;
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    // Argon2's working memory (64 MiB) holds values derived from the
    // password; the crate frees its own allocation unwiped, so it works in
    // ours, which is wiped when dropped.
    let mut memory = Zeroizing::new(vec![Block::default(); params.block_count()]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into_with_memory(password.as_bytes(), &kdf.salt, out.as_mut(), memory.as_mut_slice())
        .map_err(|e| Error::Crypto(format!("Argon2: {e}")))?;
    Ok(out)
}

/// A new key file that opens `master` with `password`.
pub fn create(
    master: &[u8; KEY_LEN],
    password: &str,
    repo_id: &[u8],
    config_mac: [u8; 32],
    owner: &KeyOwner,
) -> Result<KeyFile> {
    let kdf = Kdf {
        algorithm: "argon2id".into(),
        memory_kib: KDF_MEMORY_KIB,
        iterations: KDF_ITERATIONS,
        parallelism: 1,
        salt: random_key()?.to_vec(),
    };
    let kek = wrapping_key(password, &kdf)?;
    Ok(KeyFile {
        version: KEYFILE_VERSION,
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        hostname: owner.hostname.clone(),
        username: owner.username.clone(),
        kdf,
        master_key: seal_with(&kek, Aad::MasterKey(repo_id), master.as_ref())?,
        config_mac: config_mac.to_vec(),
    })
}

/// The master key `key` holds, if `password` opens it; `None` when the
/// password is not this key's (or the key file was altered).
pub fn unlock(key: &KeyFile, password: &str, repo_id: &[u8]) -> Result<Option<SecretKey>> {
    let kek = wrapping_key(password, &key.kdf)?;
    let Ok(plain) = open_with(&kek, Aad::MasterKey(repo_id), &key.master_key) else {
        return Ok(None);
    };
    let plain = Zeroizing::new(plain);
    let master: [u8; KEY_LEN] = plain
        .as_slice()
        .try_into()
        .map_err(|_| Error::corrupt("key file", format!("master key of {} bytes", plain.len())))?;
    Ok(Some(Zeroizing::new(master)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn right_password_opens_wrong_one_does_not() {
        let master = random_key().unwrap();
        let owner = KeyOwner { hostname: "h".into(), username: "u".into() };
        let key = create(&master, "secret", b"repo", [0; 32], &owner).unwrap();
        let back = KeyFile::decode(&key.encode()).unwrap();
        assert_eq!(*unlock(&back, "secret", b"repo").unwrap().unwrap(), *master);
        assert!(unlock(&back, "Secret", b"repo").unwrap().is_none());
        assert!(
            unlock(&back, "secret", b"other repo").unwrap().is_none(),
            "key file bound to its repository"
        );
    }
}
