//! Unlocking an encrypted repository and managing its key files. Each key
//! file wraps the same master key under one password; the master key never
//! changes, so adding or removing a password rewrites nothing else.

use serde::Serialize;

use super::Repository;
use crate::backend::{Backend, FileKind};
use crate::crypto::keyfile::{self, KeyOwner, Password};
use crate::crypto::{Keys, Scheme, SecretKey, random_key};
use crate::error::{Error, Result};
use crate::format::config::Config;
use crate::format::keyfile::KeyFile;

/// Asked for the password when (and only when) a repository is encrypted.
pub type PasswordFn<'a> = &'a dyn Fn() -> Result<Password>;

/// The master key and which key file opened it.
pub(super) struct Unlocked {
    master: SecretKey,
    key_name: String,
}

/// One key file, as `snap key list` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct KeyInfo {
    /// The key file's name (hex BLAKE3 of its bytes).
    pub id: String,
    /// When it was added.
    pub created: String,
    /// Host it was added on.
    pub hostname: String,
    /// User who added it.
    pub username: String,
    /// Whether this is the key the repository was opened with.
    pub current: bool,
}

fn put_key(backend: &dyn Backend, key: &KeyFile) -> Result<String> {
    let bytes = key.encode();
    let name = key_name(&bytes);
    backend.put(FileKind::Key, &name, bytes.into())?;
    Ok(name)
}

/// Makes the master key of a new repository and its first key file.
pub(super) fn write_first_key(
    backend: &dyn Backend,
    config: (&Config, &[u8]),
    password: &str,
    owner: &KeyOwner,
) -> Result<(Keys, Unlocked)> {
    let (config, config_bytes) = config;
    let repo_id = &config.id_bytes();
    let master = random_key()?;
    let keys = Keys::from_master_for(&master, config.version);
    let mac = keys.config_mac(config_bytes).expect("encrypted keys have a config MAC key");
    let key = keyfile::create(&master, password, repo_id, mac, owner)?;
    let key_name = put_key(backend, &key)?;
    Ok((keys, Unlocked { master, key_name }))
}

/// A key file's name: the hex BLAKE3 of its bytes.
fn key_name(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// Reads a key file, checking its bytes against its name.
fn load_key(backend: &dyn Backend, name: &str) -> Result<KeyFile> {
    let bytes = backend.get_capped(FileKind::Key, name, crate::format::keyfile::MAX_KEYFILE_LEN)?;
    if key_name(&bytes) != name {
        return Err(Error::corrupt(format!("key {name}"), "contents do not match the name"));
    }
    KeyFile::decode(&bytes).map_err(|e| Error::decode(format!("key {name}"), e))
}

/// Refuses an unencrypted config beside encrypted data: the header of one
/// snapshot file (or, without any, one pack) says how the repository's
/// objects are sealed. One listing and one 8-byte read; a header that
/// cannot be read proves nothing, and opening goes on.
fn refuse_encrypted_objects(backend: &dyn Backend) -> Result<()> {
    let first = |kind| backend.list(kind).map(|names| names.into_iter().next().map(|(name, _)| (kind, name)));
    let Some((kind, name)) = first(FileKind::Snapshot)?.or(first(FileKind::Pack)?) else { return Ok(()) };
    let Ok(header) = backend.get_range(kind, &name, 0, crate::format::HEADER_LEN) else { return Ok(()) };
    if crate::format::header_scheme(&header).is_some_and(|code| code != Scheme::None.code()) {
        return Err(Error::corrupt(
            "config",
            format!(
                "it says the repository is unencrypted, but {} {name} is encrypted; the config may have \
                 been replaced, so snap will not read or write it",
                kind.describe()
            ),
        ));
    }
    Ok(())
}

/// The keys of a repository: plain ones for an unencrypted repository, or
/// the master key opened by the first key file `password` fits.
pub(super) fn unlock(
    backend: &dyn Backend,
    config: &Config,
    config_bytes: &[u8],
    password: PasswordFn<'_>,
) -> Result<(Keys, Option<Unlocked>)> {
    let names: Vec<String> = backend.list(FileKind::Key)?.into_iter().map(|(name, _)| name).collect();
    if config.scheme() == crate::crypto::Scheme::None {
        if !names.is_empty() {
            // Someone with write access could swap in an unencrypted config
            // to make the next backup write plaintext; refuse instead.
            return Err(Error::corrupt(
                "config",
                "it says the repository is unencrypted, but the repository has key files; \
                 the config may have been replaced, so snap will not read or write it",
            ));
        }
        super::remembered::refuse_downgrade(&config.local_name(), &backend.place())?;
        refuse_encrypted_objects(backend)?;
        return Ok((Keys::plain(), None));
    }
    if names.is_empty() {
        return Err(Error::corrupt("repository", "it is encrypted but has no key files"));
    }
    let password = password()?;
    let repo_id = config.id_bytes();
    for name in names {
        // A damaged key file is skipped: another may still open.
        let Ok(key) = load_key(backend, &name) else { continue };
        let Some(master) = keyfile::unlock(&key, &password, &repo_id)? else { continue };
        let keys = Keys::from_master_for(&master, config.version);
        if keys.config_mac(config_bytes).as_ref().map(|m| &m[..]) != Some(&key.config_mac[..]) {
            return Err(Error::corrupt(
                "config",
                "it was altered since the repository was created (its authentication code does not match)",
            ));
        }
        super::remembered::note_encrypted(&config.local_name(), &backend.place());
        return Ok((keys, Some(Unlocked { master, key_name: name })));
    }
    Err(Error::WrongPassword)
}

impl Repository {
    fn unlocked(&self) -> Result<&Unlocked> {
        self.unlocked.as_ref().ok_or_else(|| {
            Error::InvalidInput(
                "the repository is not encrypted, so it has no keys (encryption is chosen at `snap init`)"
                    .into(),
            )
        })
    }

    /// An error unless the repository is encrypted (and so has keys).
    pub fn ensure_encrypted(&self) -> Result<()> {
        self.unlocked().map(drop)
    }

    /// Every key file, oldest first. Unreadable key files are listed with
    /// what went wrong in place of their owner.
    pub fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        let current = &self.unlocked()?.key_name;
        let mut out = Vec::new();
        for (name, _) in self.backend.list(FileKind::Key)? {
            let info = match load_key(self.backend(), &name) {
                Ok(k) => KeyInfo {
                    current: &name == current,
                    id: name,
                    created: k.created,
                    hostname: k.hostname,
                    username: k.username,
                },
                Err(e) => KeyInfo {
                    current: false,
                    id: name,
                    created: String::new(),
                    hostname: format!("(unreadable: {})", e.detail()),
                    username: String::new(),
                },
            };
            out.push(info);
        }
        out.sort_by(|a, b| (&a.created, &a.id).cmp(&(&b.created, &b.id)));
        Ok(out)
    }

    /// Adds a key file for another password; returns its id.
    pub fn add_key(&self, password: &str, owner: &KeyOwner) -> Result<String> {
        let unlocked = self.unlocked()?;
        let config_bytes =
            self.backend.get_capped(FileKind::Config, "config", crate::format::config::MAX_CONFIG_LEN)?;
        let mac = self.keys.config_mac(&config_bytes).expect("an unlocked repository has a config MAC key");
        let key = keyfile::create(&unlocked.master, password, &self.config.id_bytes(), mac, owner)?;
        put_key(self.backend(), &key)
    }

    /// Removes the key whose id starts with `prefix`. The key the
    /// repository was opened with cannot be removed (so the last key never
    /// can): open it with another password first.
    pub fn remove_key(&self, prefix: &str) -> Result<String> {
        let name = self.resolve_key(prefix)?;
        if name == self.unlocked()?.key_name {
            return Err(Error::InvalidInput(format!(
                "key {} is the one in use; open the repository with another password to remove it",
                &name[..8]
            )));
        }
        self.backend.remove(FileKind::Key, &name)?;
        Ok(name)
    }

    /// Replaces the key in use by one for `password`: the new key file is
    /// written before the old one is removed, so a crash leaves both.
    pub fn change_password(&self, password: &str, owner: &KeyOwner) -> Result<String> {
        let old = self.unlocked()?.key_name.clone();
        let new = self.add_key(password, owner)?;
        self.backend.remove(FileKind::Key, &old)?;
        Ok(new)
    }

    fn resolve_key(&self, prefix: &str) -> Result<String> {
        let lower = prefix.to_ascii_lowercase();
        let matches: Vec<String> = self
            .backend
            .list(FileKind::Key)?
            .into_iter()
            .map(|(name, _)| name)
            .filter(|name| !lower.is_empty() && name.starts_with(&lower))
            .collect();
        match matches.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(Error::NotFound { kind: "key", id: prefix.to_owned() }),
            _ => Err(Error::InvalidInput(format!(
                "key id {prefix:?} is ambiguous ({} keys match)",
                matches.len()
            ))),
        }
    }
}
