//! Secrets at rest: XChaCha20-Poly1305 under a master key that carries a key id, so keys can be
//! rotated; argon2id for user passwords; and the OS CSPRNG for every credential keycard issues.
//!
//! Sealed layout: `[1][id length][id][24-byte nonce][ciphertext + tag]`. The additional data
//! names the row a secret belongs to (`token:<token id>`), so a sealed value copied onto another
//! row does not open.

use std::io::Write;
use std::path::{Path, PathBuf};

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
/// The key file's name in the data directory.
pub const KEY_FILE: &str = "master.key";

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
    #[error(
        "the sealed secret was made with key {id}, which is not in the key ring: add that key to KEYCARD_MASTER_KEY or the key file"
    )]
    MissingKey { id: String },
    #[error("a sealed secret is damaged or belongs to another record (authentication failed)")]
    Tampered,
    #[error("a sealed secret has an unknown format")]
    BadFormat,
    #[error("the master key text is invalid at entry {entry}: {reason}")]
    BadKeyText { entry: usize, reason: &'static str },
    #[error("no master key was given")]
    NoKey,
    #[error("cannot {action} the master key file {path}: {source}")]
    KeyFile {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the master keys come from KEYCARD_MASTER_KEY, which keycard cannot change: put the new key text there yourself"
    )]
    EnvKeysAreReadOnly,
    #[error("the password could not be hashed")]
    PasswordHash,
}

/// One master key and its id (8 hex characters derived from the key).
#[derive(Clone)]
pub struct MasterKey {
    id: String,
    key: Zeroizing<[u8; 32]>,
}

impl MasterKey {
    pub fn generate() -> Result<Self, CryptoError> {
        let mut key = Zeroizing::new([0u8; 32]);
        fill_random(key.as_mut())?;
        Ok(Self::from_zeroizing(key))
    }

    pub fn from_bytes(mut key: [u8; 32]) -> Self {
        let held = Zeroizing::new(key);
        key.zeroize();
        Self::from_zeroizing(held)
    }

    fn from_zeroizing(key: Zeroizing<[u8; 32]>) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"keycard key id\0");
        hasher.update(key.as_ref());
        let digest = hasher.finalize();
        let id = hex_lower(digest.get(..4).unwrap_or_default());
        Self { id, key }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&(*self.key).into())
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The master keys in order; the last one seals, any of them opens.
#[derive(Clone, Debug)]
pub struct KeyRing {
    keys: Vec<MasterKey>,
}

/// Where a key ring came from, so rotation can write it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Env,
    File(PathBuf),
    /// Generated into the data directory just now: the caller warns the user to back it up.
    Generated(PathBuf),
}

impl KeyRing {
    pub fn new(current: MasterKey) -> Self {
        Self {
            keys: vec![current],
        }
    }

    /// Key text: entries `<id>:<base64 of 32 bytes>` (or bare base64), separated by newlines or
    /// commas; blank entries and `#` comments are ignored; the last entry is current.
    pub fn parse(text: &str) -> Result<Self, CryptoError> {
        let mut keys = Vec::new();
        let entries = text
            .lines()
            .filter(|line| !line.trim_start().starts_with('#'))
            .flat_map(|line| line.split(','));
        for (index, entry) in entries.map(str::trim).filter(|e| !e.is_empty()).enumerate() {
            let bad = |reason| CryptoError::BadKeyText {
                entry: index + 1,
                reason,
            };
            let (given_id, encoded) = entry
                .split_once(':')
                .map_or((None, entry), |(id, key)| (Some(id.trim()), key.trim()));
            let decoded = Zeroizing::new(BASE64.decode(encoded).map_err(|_| bad("not base64"))?);
            let mut bytes = Zeroizing::new([0u8; 32]);
            if decoded.len() != bytes.len() {
                return Err(bad("a key must be 32 bytes"));
            }
            bytes.copy_from_slice(&decoded);
            let key = MasterKey::from_zeroizing(bytes);
            if given_id.is_some_and(|id| id != key.id) {
                return Err(bad(
                    "the key id does not match the key (is the key mangled?)",
                ));
            }
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(CryptoError::NoKey);
        }
        Ok(Self { keys })
    }

    /// The key text (the key file's content).
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut text = Zeroizing::new(String::from(
            "# keycard master keys: <id>:<base64>. The last one seals new secrets. Keep this file secret and backed up.\n",
        ));
        for key in &self.keys {
            let encoded = Zeroizing::new(BASE64.encode(key.key.as_ref()));
            text.push_str(&key.id);
            text.push(':');
            text.push_str(&encoded);
            text.push('\n');
        }
        text
    }

    fn current(&self) -> &MasterKey {
        // A ring is never empty: `new` and `parse` guarantee one key, nothing removes the last.
        self.keys
            .last()
            .unwrap_or_else(|| unreachable!("a key ring always holds a key"))
    }

    pub fn current_id(&self) -> &str {
        self.current().id()
    }

    pub fn ids(&self) -> Vec<&str> {
        self.keys.iter().map(MasterKey::id).collect()
    }

    /// Adds a key, which becomes current.
    pub fn push(&mut self, key: MasterKey) {
        self.keys.retain(|k| k.id != key.id);
        self.keys.push(key);
    }

    /// Drops every key but the current one (after every secret was re-sealed).
    pub fn retain_only_current(&mut self) {
        let split = self.keys.len().saturating_sub(1);
        self.keys.drain(..split);
    }

    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let key = self.current();
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce)?;
        let ciphertext = key
            .cipher()
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| CryptoError::BadFormat)?;
        let id = key.id.as_bytes();
        let mut sealed = Vec::with_capacity(2 + id.len() + NONCE_LEN + ciphertext.len());
        sealed.push(VERSION);
        sealed.push(u8::try_from(id.len()).map_err(|_| CryptoError::BadFormat)?);
        sealed.extend_from_slice(id);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let (id, rest) = split_sealed(sealed).ok_or(CryptoError::BadFormat)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| CryptoError::MissingKey { id: id.to_owned() })?;
        let (nonce, ciphertext) = rest
            .split_at_checked(NONCE_LEN)
            .ok_or(CryptoError::BadFormat)?;
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CryptoError::BadFormat)?;
        key.cipher()
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Tampered)
    }

    /// The id of the key that sealed `sealed`.
    pub fn sealed_key_id(sealed: &[u8]) -> Option<&str> {
        split_sealed(sealed).map(|(id, _)| id)
    }

    pub fn is_current(&self, sealed: &[u8]) -> bool {
        Self::sealed_key_id(sealed) == Some(self.current_id())
    }

    /// Loads the keys: `env_key` (`KEYCARD_MASTER_KEY`'s text), else the file `env_key_file`
    /// (`KEYCARD_MASTER_KEY_FILE`), else `<data_dir>/master.key`, generated with mode 0600 when
    /// it does not exist yet.
    pub fn load(
        env_key: Option<&str>,
        env_key_file: Option<&Path>,
        data_dir: &Path,
    ) -> Result<(Self, KeySource), CryptoError> {
        if let Some(text) = env_key {
            return Ok((Self::parse(text)?, KeySource::Env));
        }
        let (path, explicit) = match env_key_file {
            Some(path) => (path.to_owned(), true),
            None => (data_dir.join(KEY_FILE), false),
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok((Self::parse(&Zeroizing::new(text))?, KeySource::File(path))),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound && !explicit => {
                let ring = Self::new(MasterKey::generate()?);
                std::fs::create_dir_all(data_dir).map_err(|source| CryptoError::KeyFile {
                    action: "create the directory of",
                    path: path.clone(),
                    source,
                })?;
                write_private(&path, &ring.to_text(), true)?;
                Ok((ring, KeySource::Generated(path)))
            }
            Err(source) => Err(CryptoError::KeyFile {
                action: "read",
                path,
                source,
            }),
        }
    }

    /// Writes the ring back to its file (atomically: a 0600 temporary file, then a rename).
    pub fn save(&self, source: &KeySource) -> Result<(), CryptoError> {
        let path = match source {
            KeySource::Env => return Err(CryptoError::EnvKeysAreReadOnly),
            KeySource::File(path) | KeySource::Generated(path) => path,
        };
        let temporary = path.with_extension("key.new");
        let _ = std::fs::remove_file(&temporary);
        write_private(&temporary, &self.to_text(), true)?;
        std::fs::rename(&temporary, path).map_err(|source| CryptoError::KeyFile {
            action: "replace",
            path: path.clone(),
            source,
        })
    }
}

fn split_sealed(sealed: &[u8]) -> Option<(&str, &[u8])> {
    let (&version, rest) = sealed.split_first()?;
    if version != VERSION {
        return None;
    }
    let (&id_len, rest) = rest.split_first()?;
    let (id, rest) = rest.split_at_checked(usize::from(id_len))?;
    Some((std::str::from_utf8(id).ok()?, rest))
}

fn write_private(path: &Path, text: &str, create_new: bool) -> Result<(), CryptoError> {
    use std::os::unix::fs::OpenOptionsExt;
    let error = |action| {
        move |source| CryptoError::KeyFile {
            action,
            path: path.to_owned(),
            source,
        }
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(create_new)
        .mode(0o600)
        .open(path)
        .map_err(error("create"))?;
    file.write_all(text.as_bytes()).map_err(error("write"))?;
    file.sync_all().map_err(error("sync"))
}

/// Fills `buffer` from the OS CSPRNG.
pub fn fill_random(buffer: &mut [u8]) -> Result<(), CryptoError> {
    getrandom::fill(buffer).map_err(|e| CryptoError::Random(e.to_string()))
}

/// `bytes` random bytes as lower-case hex (32 bytes = NetSuite's 64-character keys and secrets).
pub fn random_hex(bytes: usize) -> Result<String, CryptoError> {
    let mut buffer = Zeroizing::new(vec![0u8; bytes]);
    fill_random(&mut buffer)?;
    Ok(hex_lower(&buffer))
}

fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        for nibble in [byte >> 4, byte & 0x0f] {
            out.push(char::from(
                DIGITS.get(usize::from(nibble)).copied().unwrap_or(b'0'),
            ));
        }
    }
    out
}

/// An argon2id PHC string with a random salt.
pub fn hash_password(password: &str) -> Result<String, CryptoError> {
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|_| CryptoError::PasswordHash)
}

/// Checks a password against its PHC string (constant time inside argon2).
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn seal_open_and_tamper() {
        let ring = KeyRing::new(MasterKey::generate().unwrap());
        let sealed = ring.seal(b"s3cret", b"token:abc").unwrap();
        assert_eq!(&*ring.open(&sealed, b"token:abc").unwrap(), b"s3cret");
        assert!(matches!(
            ring.open(&sealed, b"token:abd"),
            Err(CryptoError::Tampered)
        ));
        let mut damaged = sealed.clone();
        *damaged.last_mut().unwrap() ^= 1;
        assert!(matches!(
            ring.open(&damaged, b"token:abc"),
            Err(CryptoError::Tampered)
        ));
        assert!(matches!(
            ring.open(&[9, 0], b""),
            Err(CryptoError::BadFormat)
        ));
        let other = KeyRing::new(MasterKey::generate().unwrap());
        let error = other.open(&sealed, b"token:abc").unwrap_err();
        assert!(error.to_string().contains(ring.current_id()), "{error}");
    }

    #[test]
    fn rotation_keeps_old_secrets_readable() {
        let mut ring = KeyRing::new(MasterKey::generate().unwrap());
        let old = ring.seal(b"one", b"a").unwrap();
        ring.push(MasterKey::generate().unwrap());
        assert!(!ring.is_current(&old));
        assert_eq!(&*ring.open(&old, b"a").unwrap(), b"one");
        let new = ring.seal(b"two", b"b").unwrap();
        assert!(ring.is_current(&new));
        assert_eq!(KeyRing::sealed_key_id(&new), Some(ring.current_id()));
        ring.retain_only_current();
        assert_eq!(ring.ids().len(), 1);
        assert!(matches!(
            ring.open(&old, b"a"),
            Err(CryptoError::MissingKey { .. })
        ));
    }

    #[test]
    fn key_text_round_trip_and_validation() {
        let mut ring = KeyRing::new(MasterKey::from_bytes([7; 32]));
        ring.push(MasterKey::from_bytes([8; 32]));
        let text = ring.to_text();
        let parsed = KeyRing::parse(&text).unwrap();
        assert_eq!(parsed.ids(), ring.ids());
        let bare = BASE64.encode([7u8; 32]);
        let with_comma = format!(
            "# comment\n{bare}, {}:{}",
            ring.current_id(),
            BASE64.encode([8u8; 32])
        );
        assert_eq!(KeyRing::parse(&with_comma).unwrap().ids(), ring.ids());
        assert!(matches!(
            KeyRing::parse(&format!("deadbeef:{bare}")),
            Err(CryptoError::BadKeyText { .. })
        ));
        assert!(matches!(
            KeyRing::parse("!!!"),
            Err(CryptoError::BadKeyText { .. })
        ));
        assert!(matches!(
            KeyRing::parse(&BASE64.encode([1u8; 16])),
            Err(CryptoError::BadKeyText { .. })
        ));
        assert!(matches!(
            KeyRing::parse("# nothing"),
            Err(CryptoError::NoKey)
        ));
        // Debug never shows key bytes.
        let debug = format!("{ring:?}");
        assert!(!debug.contains(&bare) && debug.contains(ring.current_id()));
    }

    #[test]
    fn load_generates_a_private_key_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let (ring, source) = KeyRing::load(None, None, &data).unwrap();
        let path = data.join(KEY_FILE);
        assert_eq!(source, KeySource::Generated(path.clone()));
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (again, source) = KeyRing::load(None, None, &data).unwrap();
        assert_eq!(
            (again.ids(), source),
            (ring.ids(), KeySource::File(path.clone()))
        );
        let env_text = KeyRing::new(MasterKey::from_bytes([3; 32])).to_text();
        let (from_env, source) = KeyRing::load(Some(&env_text), Some(&path), &data).unwrap();
        assert_eq!(source, KeySource::Env);
        assert_ne!(from_env.ids(), ring.ids());
        assert!(matches!(
            from_env.save(&KeySource::Env),
            Err(CryptoError::EnvKeysAreReadOnly)
        ));
        assert!(KeyRing::load(None, Some(&dir.path().join("missing.key")), &data).is_err());
        let mut rotated = again.clone();
        rotated.push(MasterKey::generate().unwrap());
        rotated.save(&KeySource::File(path.clone())).unwrap();
        assert_eq!(
            KeyRing::load(None, None, &data).unwrap().0.ids(),
            rotated.ids()
        );
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn passwords_and_random_hex() {
        let phc = hash_password("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &phc) && !verify_password("wrong horse", &phc));
        assert!(!verify_password("x", "not a phc string"));
        let (a, b) = (random_hex(32).unwrap(), random_hex(32).unwrap());
        assert_eq!(a.len(), 64);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
    }
}
