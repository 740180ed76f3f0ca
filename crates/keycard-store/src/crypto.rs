//! Secrets at rest: XChaCha20-Poly1305 under a master key that carries a key id, so keys can be
//! rotated while older secrets stay readable; argon2id for user passwords; and the OS CSPRNG for
//! every credential keycard issues.
//!
//! Sealed layout: `[1][id length][id][24-byte nonce][ciphertext + 16-byte tag]`. The id says
//! which key of the ring opens it; the nonce is random (`XChaCha`'s 192 bits make collisions a
//! non-issue, so no counter has to survive restarts). The additional data names the row a
//! secret belongs to (`token:<token id>`), so a sealed value copied onto another row does not
//! open.
//!
//! Key text (the key file, or `KEYCARD_MASTER_KEY`): one `<id>:<base64 of 32 bytes>` per line
//! or comma-separated; the last key is current.

use std::io::Write;
use std::path::{Path, PathBuf};

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{KeyInit, Tag, XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

/// The sealed format's version byte: lets a later keycard change the layout or cipher.
const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const KEY_LEN: usize = 32;
/// Base64 length of a 32-byte key (with padding).
const KEY_B64_LEN: usize = 44;
/// Domain separation for key ids: the id must never equal any other hash of the key.
const KEY_ID_CONTEXT: &[u8] = b"keycard key id\0";
/// The key file's name in the data directory.
pub const KEY_FILE: &str = "master.key";
const KEY_TEXT_HEADER: &str = "# keycard master keys, one `<id>:<base64>` per line; the last one seals new secrets. Keep this file secret and backed up.\n";

/// What went wrong. Messages never carry key bytes or plaintext, and each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error(
        "the operating system's random number generator failed ({0}): keycard needs getrandom / /dev/urandom; check the sandbox or container seccomp policy"
    )]
    Random(getrandom::Error),
    #[error(
        "the sealed secret was made with key {id}, which is not in the key ring: add that key to KEYCARD_MASTER_KEY or the key file"
    )]
    MissingKey { id: String },
    #[error(
        "a sealed secret failed authentication: it is damaged or was copied from another record; reset that secret or restore the row from a backup"
    )]
    Tampered,
    #[error(
        "a sealed secret is malformed ({what}): the stored value is damaged; reset that secret or restore the row from a backup"
    )]
    BadFormat { what: &'static str },
    #[error(
        "a sealed secret has format version {version}, which this keycard does not know: it was written by a newer keycard, so upgrade this one"
    )]
    UnknownVersion { version: u8 },
    #[error("the secret is too long to seal: keep secrets under 256 GiB")]
    TooLong,
    #[error(
        "master key entry {entry} (line {line}) is invalid: {reason}; write each key as `<id>:<base64 of 32 bytes>` (or bare base64), one per line or separated by commas"
    )]
    BadKeyText {
        entry: usize,
        line: usize,
        reason: String,
    },
    #[error(
        "no master key was found: the key text holds no `<id>:<base64>` entry; restore the key file from a backup or set KEYCARD_MASTER_KEY"
    )]
    NoKey,
    #[error("{origin}: {error}")]
    InvalidKeySource {
        /// Where the bad text came from (`KEYCARD_MASTER_KEY`, or the key file and its path).
        origin: String,
        error: Box<CryptoError>,
    },
    #[error(
        "cannot {action} the master key file {path}: {source}; check the path and its permissions (or set KEYCARD_MASTER_KEY_FILE)"
    )]
    KeyFile {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the master keys come from KEYCARD_MASTER_KEY, which keycard cannot change: generate a key, add its `<id>:<base64>` entry to KEYCARD_MASTER_KEY yourself (comma-separated, last is current) and run again"
    )]
    EnvKeysAreReadOnly,
    #[error("the password could not be hashed ({0}); try again, and check the OS random generator")]
    PasswordHash(argon2::password_hash::Error),
}

/// One master key and its public id: 8 lowercase hex characters derived from the key, so a
/// sealed value names its key without revealing anything about it.
#[derive(Clone)]
pub struct MasterKey {
    id: String,
    key: Zeroizing<[u8; KEY_LEN]>,
}

impl MasterKey {
    /// A fresh key from the OS CSPRNG.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(key.as_mut_slice())?;
        Ok(Self::from_zeroizing(key))
    }

    /// Takes the key bytes; the by-value copy is wiped here, the caller's own copy is theirs.
    pub fn from_bytes(mut key: [u8; KEY_LEN]) -> Self {
        let held = Zeroizing::new(key);
        key.zeroize();
        Self::from_zeroizing(held)
    }

    fn from_zeroizing(key: Zeroizing<[u8; KEY_LEN]>) -> Self {
        let digest = Sha256::new()
            .chain_update(KEY_ID_CONTEXT)
            .chain_update(key.as_slice())
            .finalize();
        let id = hex_lower(digest.get(..4).unwrap_or_default());
        Self { id, key }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        // By reference: no temporary copy of the key on the stack.
        let key: &[u8; KEY_LEN] = &self.key;
        XChaCha20Poly1305::new(key.into())
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The master keys in order: the current one seals, any of them opens. Holding the current key
/// apart makes "a ring always has a current key" a fact of the type, not a runtime check.
#[derive(Clone)]
pub struct KeyRing {
    older: Vec<MasterKey>,
    current: MasterKey,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Through `MasterKey`'s Debug, which shows ids only.
        f.debug_struct("KeyRing")
            .field("older", &self.older)
            .field("current", &self.current)
            .finish()
    }
}

/// Where a key ring came from, so rotation can write it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `KEYCARD_MASTER_KEY`: read-only to keycard.
    Env,
    /// An existing key file (`KEYCARD_MASTER_KEY_FILE` or `<data dir>/master.key`).
    File(PathBuf),
    /// Generated into the data directory just now: the caller warns the user to back it up.
    Generated(PathBuf),
}

/// A sealed value split into its parts (borrowing from it).
struct Sealed<'a> {
    key_id: &'a str,
    nonce: XNonce,
    ciphertext: &'a [u8],
    tag: Tag,
}

impl<'a> Sealed<'a> {
    fn parse(sealed: &'a [u8]) -> Result<Self, CryptoError> {
        let bad = |what| CryptoError::BadFormat { what };
        let (&version, rest) = sealed.split_first().ok_or(bad("empty"))?;
        if version != VERSION {
            return Err(CryptoError::UnknownVersion { version });
        }
        let (&id_len, rest) = rest.split_first().ok_or(bad("no key id"))?;
        let (key_id, rest) = rest
            .split_at_checked(usize::from(id_len))
            .ok_or(bad("truncated key id"))?;
        let key_id = std::str::from_utf8(key_id).map_err(|_| bad("the key id is not text"))?;
        let (nonce, rest) = rest
            .split_first_chunk::<NONCE_LEN>()
            .ok_or(bad("truncated nonce"))?;
        let (ciphertext, tag) = rest
            .split_last_chunk::<TAG_LEN>()
            .ok_or(bad("truncated tag"))?;
        Ok(Self {
            key_id,
            nonce: XNonce::from(*nonce),
            ciphertext,
            tag: Tag::from(*tag),
        })
    }
}

impl KeyRing {
    pub fn new(current: MasterKey) -> Self {
        Self {
            older: Vec::new(),
            current,
        }
    }

    /// Key text, also the key file format: one key per entry, `<id>:<base64 of 32 bytes>`;
    /// entries are separated by newlines or commas (so one env var can hold several keys);
    /// blank entries and `#` comments are ignored; the LAST key is current. A bare base64 entry
    /// gets its derived id. A given id must match the derived one: it catches a mangled key
    /// before it silently seals under the wrong bytes.
    pub fn parse(text: &str) -> Result<Self, CryptoError> {
        let mut keys = Vec::new();
        for (line_index, line) in text.lines().enumerate() {
            // Neither ids nor base64 contain `#`, so everything after one is a comment.
            let content = line.split('#').next().unwrap_or_default();
            for entry in content.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                let bad = |reason: String| CryptoError::BadKeyText {
                    entry: keys.len() + 1,
                    line: line_index + 1,
                    reason,
                };
                let (given_id, encoded) = entry
                    .split_once(':')
                    .map_or((None, entry), |(id, key)| (Some(id.trim()), key.trim()));
                let key = MasterKey::from_zeroizing(decode_key(encoded).map_err(bad)?);
                if let Some(given) = given_id.filter(|given| *given != key.id) {
                    return Err(bad(format!(
                        "the id `{given}` does not match its key (whose id is {}): the key is mangled or paired with the wrong id",
                        key.id
                    )));
                }
                keys.push(key);
            }
        }
        let current = keys.pop().ok_or(CryptoError::NoKey)?;
        Ok(Self {
            older: keys,
            current,
        })
    }

    /// The key text (the key file's content): a header comment, then one `<id>:<base64>` line
    /// per key, current last. [`KeyRing::parse`] reads it back.
    pub fn to_text(&self) -> Zeroizing<String> {
        let line_len = |key: &MasterKey| key.id.len() + 1 + KEY_B64_LEN + 1;
        let capacity = KEY_TEXT_HEADER.len() + self.keys().map(line_len).sum::<usize>();
        // Sized up front: a reallocation would leave an unwiped copy of the keys behind.
        let mut text = Zeroizing::new(String::with_capacity(capacity));
        text.push_str(KEY_TEXT_HEADER);
        for key in self.keys() {
            let mut encoded = Zeroizing::new([0u8; KEY_B64_LEN]);
            let written = BASE64
                .encode_slice(key.key.as_slice(), encoded.as_mut_slice())
                .unwrap_or_default();
            text.push_str(&key.id);
            text.push(':');
            text.push_str(
                encoded
                    .get(..written)
                    .and_then(|b| std::str::from_utf8(b).ok())
                    .unwrap_or_default(),
            );
            text.push('\n');
        }
        text
    }

    /// All keys, oldest first, current last.
    fn keys(&self) -> impl Iterator<Item = &MasterKey> {
        self.older.iter().chain(std::iter::once(&self.current))
    }

    pub fn current_id(&self) -> &str {
        self.current.id()
    }

    /// Key ids, oldest first, current last.
    pub fn ids(&self) -> Vec<&str> {
        self.keys().map(MasterKey::id).collect()
    }

    /// Adds a key, which becomes current. Pushing a key already in the ring moves it to current
    /// instead of holding it twice.
    pub fn push(&mut self, key: MasterKey) {
        let previous = std::mem::replace(&mut self.current, key);
        self.older.push(previous);
        let current = &self.current;
        self.older.retain(|k| k.key != current.key);
    }

    /// Drops every key but the current one: only after every secret was re-sealed under it.
    pub fn retain_only_current(&mut self) {
        self.older.clear();
    }

    /// Seals `plaintext` under the current key. `aad` binds the result to its row (e.g.
    /// `b"token:<token id>"`): opening it with any other `aad` fails.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let key = &self.current;
        let id = key.id.as_bytes();
        let id_len = u8::try_from(id.len()).map_err(|_| CryptoError::BadFormat {
            what: "the key id is too long",
        })?;
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce)?;
        let body_start = 2 + id.len() + NONCE_LEN;
        // Sized up front so the plaintext copy below is never left behind by a reallocation;
        // it is encrypted in place.
        let mut sealed = Vec::with_capacity(body_start + plaintext.len() + TAG_LEN);
        sealed.push(VERSION);
        sealed.push(id_len);
        sealed.extend_from_slice(id);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(plaintext);
        let body = sealed.get_mut(body_start..).unwrap_or_default();
        let cipher = key.cipher();
        if let Ok(tag) = cipher.encrypt_inout_detached(&XNonce::from(nonce), aad, body.into()) {
            sealed.extend_from_slice(&tag);
            Ok(sealed)
        } else {
            // Only a message over ChaCha's 256 GiB limit fails; wipe its plaintext copy.
            sealed.zeroize();
            Err(CryptoError::TooLong)
        }
    }

    /// Opens a value made by [`KeyRing::seal`] with any key of the ring and the same `aad`.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let parts = Sealed::parse(sealed)?;
        let mut candidates = self.keys().filter(|k| k.id == parts.key_id).peekable();
        if candidates.peek().is_none() {
            return Err(CryptoError::MissingKey {
                id: parts.key_id.to_owned(),
            });
        }
        // Ids are 32 bits, so two keys of a ring may share one: try each (newest last is fine).
        for key in candidates {
            let mut plaintext = Zeroizing::new(parts.ciphertext.to_vec());
            let opened = key.cipher().decrypt_inout_detached(
                &parts.nonce,
                aad,
                plaintext.as_mut_slice().into(),
                &parts.tag,
            );
            if opened.is_ok() {
                return Ok(plaintext);
            }
        }
        Err(CryptoError::Tampered)
    }

    /// The id of the key that sealed `sealed` (`None` when it is not a sealed value).
    pub fn sealed_key_id(sealed: &[u8]) -> Option<&str> {
        Sealed::parse(sealed).ok().map(|parts| parts.key_id)
    }

    /// Whether `sealed` was made with the current key (rotation re-seals the others).
    pub fn is_current(&self, sealed: &[u8]) -> bool {
        Self::sealed_key_id(sealed) == Some(self.current_id())
    }

    /// Loads the keys, from the first of: `env_key` (`KEYCARD_MASTER_KEY`'s key text), the file
    /// `env_key_file` (`KEYCARD_MASTER_KEY_FILE`, which must exist), or `<data_dir>/master.key`.
    /// That last file is generated (mode 0600) when it does not exist yet, and the source says
    /// [`KeySource::Generated`] so the caller can tell the user to back it up. The env values
    /// are parameters so callers (and tests) decide how the environment is read.
    pub fn load(
        env_key: Option<&str>,
        env_key_file: Option<&Path>,
        data_dir: &Path,
    ) -> Result<(Self, KeySource), CryptoError> {
        if let Some(text) = env_key {
            let ring = Self::parse(text).map_err(|error| CryptoError::InvalidKeySource {
                origin: "KEYCARD_MASTER_KEY".to_owned(),
                error: Box::new(error),
            })?;
            return Ok((ring, KeySource::Env));
        }
        if let Some(path) = env_key_file {
            // An explicit file that is missing is an error, never a reason to invent a key.
            return Ok((read_key_file(path)?, KeySource::File(path.to_owned())));
        }
        let path = data_dir.join(KEY_FILE);
        if path.exists() {
            return Ok((read_key_file(&path)?, KeySource::File(path)));
        }
        create_private_dir(data_dir).map_err(|source| CryptoError::KeyFile {
            action: "create the directory of",
            path: path.clone(),
            source,
        })?;
        let ring = Self::new(MasterKey::generate()?);
        match write_new_private(&path, &ring.to_text()) {
            Ok(()) => Ok((ring, KeySource::Generated(path))),
            // Another keycard process generated it first: use theirs, so both agree.
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                Ok((read_key_file(&path)?, KeySource::File(path)))
            }
            Err(source) => Err(CryptoError::KeyFile {
                action: "create",
                path,
                source,
            }),
        }
    }

    /// Writes the ring back to the file it came from, atomically: a 0600 temporary file in the
    /// same directory, then a rename, so a crash never leaves a half-written key file.
    /// Keys from `KEYCARD_MASTER_KEY` cannot be written: [`CryptoError::EnvKeysAreReadOnly`].
    pub fn save(&self, source: &KeySource) -> Result<(), CryptoError> {
        let path = match source {
            KeySource::Env => return Err(CryptoError::EnvKeysAreReadOnly),
            KeySource::File(path) | KeySource::Generated(path) => path,
        };
        let error = |action| {
            move |source| CryptoError::KeyFile {
                action,
                path: path.clone(),
                source,
            }
        };
        // Through a symlink to the real file: replacing the link itself would leave the target
        // (which other tools may read) on the old keys.
        let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
        let name = target.file_name().ok_or_else(|| CryptoError::KeyFile {
            action: "name",
            path: path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"),
        })?;
        // A random suffix: concurrent saves never write into each other's temporary file.
        let temporary = target.with_file_name(format!(
            ".{}.{}.tmp",
            name.to_string_lossy(),
            random_hex(4)?
        ));
        write_new_private(&temporary, &self.to_text()).map_err(error("write a new"))?;
        if let Err(source) = std::fs::rename(&temporary, &target) {
            let _ = std::fs::remove_file(&temporary);
            return Err(error("replace")(source));
        }
        // Best effort: makes the rename itself durable; not every filesystem can sync a directory.
        if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(())
    }
}

/// Decodes one base64 key straight into wiped memory (no intermediate `Vec` to leak).
fn decode_key(encoded: &str) -> Result<Zeroizing<[u8; KEY_LEN]>, String> {
    let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
    match BASE64.decode_slice(encoded, bytes.as_mut_slice()) {
        Ok(KEY_LEN) => Ok(bytes),
        Ok(n) => Err(format!("the key is {n} bytes, not {KEY_LEN}")),
        Err(base64::DecodeSliceError::OutputSliceTooSmall) => {
            Err(format!("the key is longer than {KEY_LEN} bytes"))
        }
        Err(base64::DecodeSliceError::DecodeError(_)) => {
            Err("the key is not standard base64".to_owned())
        }
    }
}

pub(crate) fn read_key_file(path: &Path) -> Result<KeyRing, CryptoError> {
    let text = std::fs::read_to_string(path).map_err(|source| CryptoError::KeyFile {
        action: "read",
        path: path.to_owned(),
        source,
    })?;
    let text = Zeroizing::new(text);
    KeyRing::parse(&text).map_err(|error| CryptoError::InvalidKeySource {
        origin: format!("the master key file {}", path.display()),
        error: Box::new(error),
    })
}

/// Creates `dir` (and parents) readable by the owner only, as it will hold the key file.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Creates `path` (failing if it exists) with mode 0600 from the start, so the key is never
/// readable by others, not even between creation and a later chmod. A partial file is removed.
fn write_new_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| file.sync_all());
    if written.is_err() {
        let _ = std::fs::remove_file(path);
    }
    written
}

/// Fills `buffer` from the OS CSPRNG.
pub fn fill_random(buffer: &mut [u8]) -> Result<(), CryptoError> {
    getrandom::fill(buffer).map_err(CryptoError::Random)
}

/// `bytes` random bytes as lowercase hex (32 bytes = the 64 hex characters of NetSuite's
/// consumer and token keys and secrets).
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

/// An argon2id PHC string (`$argon2id$v=19$m=…`) with a random salt and argon2's default
/// (OWASP-recommended) cost; the parameters travel in the string, so they can change later.
pub fn hash_password(password: &str) -> Result<String, CryptoError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(CryptoError::PasswordHash)
}

/// Checks a password against its PHC string, with the parameters stored in it; the final
/// comparison is constant-time inside argon2. A malformed string never matches.
pub fn verify_password(password: &str, phc: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn ring() -> KeyRing {
        KeyRing::new(MasterKey::generate().unwrap())
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn round_trip() {
        let ring = ring();
        let sealed = ring.seal(b"s3cret", b"token:abc").unwrap();
        assert_eq!(&*ring.open(&sealed, b"token:abc").unwrap(), b"s3cret");
        assert_eq!(sealed.len(), 2 + 8 + NONCE_LEN + b"s3cret".len() + TAG_LEN);
        assert!(!sealed.windows(6).any(|w| w == b"s3cret"));
        // Random nonces: sealing twice never gives the same bytes.
        assert_ne!(sealed, ring.seal(b"s3cret", b"token:abc").unwrap());
        let empty = ring.seal(b"", b"").unwrap();
        assert!(ring.open(&empty, b"").unwrap().is_empty());
    }

    #[test]
    fn wrong_aad_fails() {
        let ring = ring();
        let sealed = ring.seal(b"s3cret", b"token:abc").unwrap();
        assert!(matches!(
            ring.open(&sealed, b"token:abd"),
            Err(CryptoError::Tampered)
        ));
    }

    #[test]
    fn any_tampered_byte_fails() {
        let ring = ring();
        let sealed = ring.seal(b"s3cret", b"token:abc").unwrap();
        let header = 2 + ring.current_id().len();
        for index in header..sealed.len() {
            let mut damaged = sealed.clone();
            damaged[index] ^= 1;
            assert!(
                matches!(
                    ring.open(&damaged, b"token:abc"),
                    Err(CryptoError::Tampered)
                ),
                "byte {index}"
            );
        }
        let mut version = sealed.clone();
        version[0] = 2;
        assert!(matches!(
            ring.open(&version, b"token:abc"),
            Err(CryptoError::UnknownVersion { version: 2 })
        ));
        for cut in 0..header + NONCE_LEN + TAG_LEN {
            assert!(
                matches!(
                    ring.open(&sealed[..cut], b"token:abc"),
                    Err(CryptoError::BadFormat { .. })
                ),
                "cut at {cut}"
            );
        }
        assert_eq!(KeyRing::sealed_key_id(&sealed[..5]), None);
    }

    #[test]
    fn missing_key_names_the_id() {
        let ring = ring();
        let sealed = ring.seal(b"s3cret", b"a").unwrap();
        let error = self::ring().open(&sealed, b"a").unwrap_err();
        assert!(
            matches!(&error, CryptoError::MissingKey { id } if id == ring.current_id()),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(message.contains(ring.current_id()), "{message}");
        assert!(message.contains("KEYCARD_MASTER_KEY"), "{message}");
    }

    #[test]
    fn rotation_keeps_old_secrets_readable() {
        let mut ring = ring();
        let first = ring.current_id().to_owned();
        let old = ring.seal(b"one", b"a").unwrap();
        assert!(ring.is_current(&old));
        ring.push(MasterKey::generate().unwrap());
        assert_eq!(ring.ids().first().copied(), Some(first.as_str()));
        assert_ne!(ring.current_id(), first);
        assert_eq!(KeyRing::sealed_key_id(&old), Some(first.as_str()));
        assert!(!ring.is_current(&old));
        assert_eq!(&*ring.open(&old, b"a").unwrap(), b"one");
        let new = ring.seal(b"two", b"b").unwrap();
        assert!(ring.is_current(&new));
        assert_eq!(KeyRing::sealed_key_id(&new), Some(ring.current_id()));
        ring.retain_only_current();
        assert_eq!(ring.ids(), vec![ring.current_id()]);
        assert_eq!(&*ring.open(&new, b"b").unwrap(), b"two");
        assert!(matches!(
            ring.open(&old, b"a"),
            Err(CryptoError::MissingKey { .. })
        ));
    }

    #[test]
    fn pushing_a_known_key_moves_it_to_current() {
        let (a, b) = (
            MasterKey::from_bytes([1; 32]),
            MasterKey::from_bytes([2; 32]),
        );
        let mut ring = KeyRing::new(a.clone());
        ring.push(b.clone());
        ring.push(a.clone());
        assert_eq!(ring.ids(), vec![b.id(), a.id()]);
    }

    #[test]
    fn key_ids_are_derived_and_stable() {
        let key = MasterKey::from_bytes([7; 32]);
        assert_eq!(key.id().len(), 8);
        assert!(
            key.id()
                .bytes()
                .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
        );
        let digest = Sha256::digest([KEY_ID_CONTEXT, &[7u8; 32]].concat());
        assert_eq!(key.id(), hex_lower(&digest[..4]));
        assert_ne!(key.id(), MasterKey::from_bytes([8; 32]).id());
    }

    #[test]
    fn key_text_round_trip() {
        let mut ring = KeyRing::new(MasterKey::from_bytes([7; 32]));
        ring.push(MasterKey::from_bytes([8; 32]));
        let text = ring.to_text();
        assert!(text.starts_with('#'));
        let parsed = KeyRing::parse(&text).unwrap();
        assert_eq!(parsed.ids(), ring.ids());
        assert_eq!(parsed.current_id(), ring.current_id());
        assert_eq!(parsed.to_text(), text);
        // Same keys, not only same ids: what one seals the other opens.
        let sealed = ring.seal(b"x", b"y").unwrap();
        assert_eq!(&*parsed.open(&sealed, b"y").unwrap(), b"x");
    }

    #[test]
    fn key_text_forms() {
        let (seven, eight) = (BASE64.encode([7u8; 32]), BASE64.encode([8u8; 32]));
        let eight_id = MasterKey::from_bytes([8; 32]).id().to_owned();
        let expected = vec![
            MasterKey::from_bytes([7; 32]).id().to_owned(),
            eight_id.clone(),
        ];
        let forms = [
            format!("{seven}\n{eight_id}:{eight}"),
            format!("# keys\n\n  {seven}  # the old one\n\n{eight_id}:{eight}\n# end\n"),
            format!("{seven},{eight_id}:{eight}"),
            format!(" {seven} , {eight_id} : {eight} ,"),
            format!("{seven}\r\n{eight}\r\n"),
        ];
        for text in forms {
            let ring = KeyRing::parse(&text).unwrap();
            assert_eq!(ring.ids(), expected, "{text:?}");
            assert_eq!(ring.current_id(), eight_id);
        }
    }

    #[test]
    fn bad_key_text_is_rejected() {
        let seven = BASE64.encode([7u8; 32]);
        let bad = |text: &str| match KeyRing::parse(text) {
            Err(CryptoError::BadKeyText {
                entry,
                line,
                reason,
            }) => (entry, line, reason),
            other => panic!("{text:?} gave {other:?}"),
        };
        let (entry, line, reason) = bad(&format!("{seven}\n# x\ndeadbeef:{seven}"));
        assert_eq!((entry, line), (2, 3));
        assert!(reason.contains("deadbeef"), "{reason}");
        assert!(bad("!!!not base64").2.contains("base64"));
        assert!(bad(&BASE64.encode([1u8; 16])).2.contains("16 bytes"));
        assert!(bad(&BASE64.encode([1u8; 33])).2.contains("longer"));
        assert!(bad(&BASE64.encode([1u8; 64])).2.contains("longer"));
        assert_eq!(bad(&format!("{seven},x")).0, 2);
        for empty in ["", "  \n", "# nothing\n", " , ,"] {
            assert!(matches!(KeyRing::parse(empty), Err(CryptoError::NoKey)));
        }
        // Error messages never echo the key.
        let message = KeyRing::parse(&format!("deadbeef:{seven}"))
            .unwrap_err()
            .to_string();
        assert!(!message.contains(&seven), "{message}");
    }

    #[test]
    fn debug_never_shows_key_bytes() {
        let bytes = [0x5a; 32];
        let mut ring = KeyRing::new(MasterKey::from_bytes(bytes));
        ring.push(MasterKey::from_bytes([0xa5; 32]));
        let encoded = BASE64.encode(bytes);
        for debug in [
            format!("{ring:?}"),
            format!("{ring:#?}"),
            format!("{:?}", MasterKey::from_bytes(bytes)),
        ] {
            assert!(!debug.contains(&encoded), "{debug}");
            assert!(!debug.contains("90, 90"), "{debug}");
            assert!(
                !debug.contains("5a5a") && !debug.contains("0x5a"),
                "{debug}"
            );
        }
        let debug = format!("{ring:?}");
        for id in ring.ids() {
            assert!(debug.contains(id), "{debug}");
        }
    }

    #[test]
    fn load_generates_a_private_key_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data").join("nested");
        let (ring, source) = KeyRing::load(None, None, &data).unwrap();
        let path = data.join(KEY_FILE);
        assert_eq!(source, KeySource::Generated(path.clone()));
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&data), 0o700);
        let (again, source) = KeyRing::load(None, None, &data).unwrap();
        assert_eq!(source, KeySource::File(path.clone()));
        assert_eq!(again.ids(), ring.ids());
        let sealed = ring.seal(b"kept", b"r").unwrap();
        assert_eq!(&*again.open(&sealed, b"r").unwrap(), b"kept");
    }

    #[test]
    fn load_prefers_env_text_then_env_file() {
        let dir = tempfile::tempdir().unwrap();
        let (from_dir, _) = KeyRing::load(None, None, dir.path()).unwrap();
        let file = dir.path().join("other.key");
        let file_ring = KeyRing::new(MasterKey::from_bytes([4; 32]));
        std::fs::write(&file, file_ring.to_text().as_bytes()).unwrap();
        let env_text = KeyRing::new(MasterKey::from_bytes([3; 32])).to_text();

        let (ring, source) = KeyRing::load(Some(&env_text), Some(&file), dir.path()).unwrap();
        assert_eq!(source, KeySource::Env);
        assert_eq!(ring.current_id(), MasterKey::from_bytes([3; 32]).id());

        let (ring, source) = KeyRing::load(None, Some(&file), dir.path()).unwrap();
        assert_eq!(source, KeySource::File(file.clone()));
        assert_eq!(ring.ids(), file_ring.ids());
        assert_ne!(ring.ids(), from_dir.ids());

        // A named key file that is missing is an error, not a reason to generate one.
        let missing = dir.path().join("missing.key");
        assert!(matches!(
            KeyRing::load(None, Some(&missing), dir.path()),
            Err(CryptoError::KeyFile { .. })
        ));
        assert!(!missing.exists());

        let error = KeyRing::load(Some("garbage"), None, dir.path()).unwrap_err();
        assert!(
            error.to_string().starts_with("KEYCARD_MASTER_KEY: "),
            "{error}"
        );
        std::fs::write(&file, "# empty\n").unwrap();
        let error = KeyRing::load(None, Some(&file), dir.path()).unwrap_err();
        assert!(error.to_string().contains("other.key"), "{error}");
    }

    #[test]
    fn save_writes_back_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let (mut ring, source) = KeyRing::load(None, None, dir.path()).unwrap();
        let path = dir.path().join(KEY_FILE);
        ring.push(MasterKey::generate().unwrap());
        ring.save(&source).unwrap();
        let (loaded, _) = KeyRing::load(None, None, dir.path()).unwrap();
        assert_eq!(loaded.ids(), ring.ids());
        assert_eq!(mode(&path), 0o600);
        ring.retain_only_current();
        ring.save(&KeySource::File(path.clone())).unwrap();
        assert_eq!(
            KeyRing::load(None, None, dir.path()).unwrap().0.ids(),
            ring.ids()
        );
        // No temporary files left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

        let error = ring.save(&KeySource::Env).unwrap_err();
        assert!(matches!(error, CryptoError::EnvKeysAreReadOnly));
        assert!(error.to_string().contains("KEYCARD_MASTER_KEY"));
    }

    #[test]
    fn passwords() {
        let phc = hash_password("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("wrong horse", &phc));
        assert!(!verify_password("", &phc));
        assert!(!verify_password("correct horse", "not a phc string"));
        // A random salt: the same password hashes differently each time.
        let again = hash_password("correct horse").unwrap();
        assert_ne!(phc, again);
        assert!(verify_password("correct horse", &again));
    }

    #[test]
    fn errors_cross_threads() {
        // Callers wrap these in `anyhow` and move them across tasks.
        fn check<T: Send + Sync + 'static>() {}
        check::<CryptoError>();
        check::<KeyRing>();
    }

    #[test]
    fn random_hex_shape() {
        let (a, b) = (random_hex(32).unwrap(), random_hex(32).unwrap());
        assert_eq!(a.len(), 64);
        assert!(
            a.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')),
            "{a}"
        );
        assert_ne!(a, b);
        assert_eq!(random_hex(0).unwrap(), "");
        assert_eq!(random_hex(3).unwrap().len(), 6);
    }
}
