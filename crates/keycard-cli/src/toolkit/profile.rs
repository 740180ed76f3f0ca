//! Profiles by authentication ID: server, account, role and the four credentials, kept in
//! `profiles.json` in the config directory (0700) with mode 0600, the credentials sealed with
//! XChaCha20-Poly1305 under `profiles.key` (0600, beside it) and bound to their authentication
//! ID. `keycard profile list|show|add|delete`; nothing here ever prints a secret.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{KeyInit, Tag, XChaCha20Poly1305, XNonce};
use clap::{Args, Subcommand};
use keycard_client::Credentials;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::ConfigDir;
use crate::admin::output::{self, Table};

const FILE: &str = "profiles.json";
const KEY_FILE: &str = "profiles.key";
/// Held (flock) while the file is read, changed and written: two `keycard` processes saving at
/// once each kept the profile file they read, and one's profile was lost.
const LOCK_FILE: &str = "profiles.lock";
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// One saved profile, as listed (no secrets in memory until [`Profile::credentials`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Profile {
    #[serde(skip)]
    pub auth_id: String,
    /// The server's base URL (`https://1234567.restlets.api.netsuite.com`, `http://localhost:8910`).
    pub server: String,
    /// The account id, sent as the realm.
    pub account: String,
    /// The token's role (name), when known.
    #[serde(default)]
    pub role: Option<String>,
    /// The token's role id, when known (issuetoken's `nlauth_role`).
    #[serde(default)]
    pub role_id: Option<String>,
    /// The token's user, when known (issuetoken's `nlauth_email`).
    #[serde(default)]
    pub email: Option<String>,
    /// `…` and the last four characters of the consumer key and token id, for display.
    pub consumer_key_hint: String,
    pub token_hint: String,
    /// base64(nonce ‖ ciphertext ‖ tag) of the four credentials as JSON.
    sealed: String,
    pub updated_at: u64,
}

#[derive(Serialize, Deserialize)]
struct SealedCredentials {
    consumer_key: String,
    consumer_secret: String,
    token_id: String,
    token_secret: String,
}

impl Drop for SealedCredentials {
    fn drop(&mut self) {
        use zeroize::Zeroize as _;
        self.consumer_secret.zeroize();
        self.token_secret.zeroize();
    }
}

#[derive(Default, Serialize, Deserialize)]
struct File {
    version: u32,
    profiles: BTreeMap<String, Profile>,
}

/// `…` and the last four characters: all `show` ever prints of a key or token id.
pub fn hint(value: &str) -> String {
    format!("…{}", keycard_core::secret::last4(value))
}

fn cipher(key: &Zeroizing<[u8; 32]>) -> XChaCha20Poly1305 {
    // By reference: no temporary copy of the key.
    let key: &[u8; 32] = key;
    XChaCha20Poly1305::new(key.into())
}

/// The profiles in one config directory.
pub struct ProfileStore {
    dir: PathBuf,
}

impl ProfileStore {
    pub fn open(config: &ConfigDir) -> Result<Self> {
        Ok(Self {
            dir: config.path()?,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn file_path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    fn read(&self) -> Result<File> {
        let path = self.file_path();
        match fs::read(&path) {
            Ok(bytes) => {
                let mut file: File = serde_json::from_slice(&bytes).with_context(|| {
                    format!(
                        "{} is not a keycard profile file; move it away and log in again",
                        path.display()
                    )
                })?;
                for (id, profile) in &mut file.profiles {
                    profile.auth_id.clone_from(id);
                }
                Ok(file)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(File {
                version: 1,
                profiles: BTreeMap::new(),
            }),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Writes `file` whole to a temporary file of this process's own and renames it over the
    /// profile file: readers see the old file or the new one, never part of one. Called with
    /// the lock held ([`ProfileStore::lock`]).
    fn write(&self, file: &File) -> Result<()> {
        self.ensure_dir()?;
        let path = self.file_path();
        let temporary = self.temporary(FILE)?;
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)
            .with_context(|| format!("cannot write {}", temporary.display()))?;
        let written = out
            .write_all(&serde_json::to_vec_pretty(file)?)
            .and_then(|()| out.sync_all());
        drop(out);
        let renamed = written.and_then(|()| fs::rename(&temporary, &path));
        if renamed.is_err() {
            let _ = fs::remove_file(&temporary);
        }
        renamed.with_context(|| format!("cannot replace {}", path.display()))
    }

    /// A name beside `name` that no other process uses.
    fn temporary(&self, name: &str) -> Result<PathBuf> {
        let mut tag = [0u8; 8];
        getrandom::fill(&mut tag)
            .map_err(|_| anyhow!("the operating system's random source failed"))?;
        Ok(self.dir.join(format!(
            "{name}.{}.{}.tmp",
            std::process::id(),
            u64::from_le_bytes(tag)
        )))
    }

    /// Takes the store's lock (released when the file is dropped): changes are read, made and
    /// written by one process at a time.
    fn lock(&self) -> Result<fs::File> {
        self.ensure_dir()?;
        crate::lockfile::exclusive(&self.dir.join(LOCK_FILE))
    }

    /// Whether a profile `auth_id` could be saved: a valid ID, a writable directory, a
    /// readable profile file and key. Checked before asking a server for a token, so that
    /// a token is not issued only to be lost when it cannot be saved.
    pub fn check_can_save(&self, auth_id: &str) -> Result<()> {
        check_auth_id(auth_id)?;
        let _lock = self.lock()?;
        self.read()?;
        self.key()?;
        Ok(())
    }

    fn ensure_dir(&self) -> Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .with_context(|| {
                format!("cannot create the config directory {}", self.dir.display())
            })?;
        fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict {} to its owner", self.dir.display()))?;
        Ok(())
    }

    /// The key that seals the credentials, made on first use.
    fn key(&self) -> Result<Zeroizing<[u8; 32]>> {
        let path = self.dir.join(KEY_FILE);
        let mut key = Zeroizing::new([0u8; 32]);
        match fs::read(&path) {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                if bytes.len() != 32 {
                    bail!(
                        "{} is not a 32-byte key; without the right key the saved profiles cannot be opened (delete {} and log in again)",
                        path.display(),
                        self.file_path().display()
                    );
                }
                key.copy_from_slice(&bytes);
                Ok(key)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.ensure_dir()?;
                getrandom::fill(key.as_mut_slice())
                    .map_err(|_| anyhow!("the operating system's random source failed"))?;
                // Written whole under a name of its own, then linked into place: a reader never
                // sees a key file that is still empty, and of two processes making a key at
                // once, the second finds the first's and uses it.
                let temporary = self.temporary(KEY_FILE)?;
                let mut out = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&temporary)
                    .with_context(|| format!("cannot create {}", temporary.display()))?;
                let linked = out
                    .write_all(key.as_slice())
                    .and_then(|()| out.sync_all())
                    .and_then(|()| fs::hard_link(&temporary, &path));
                let _ = fs::remove_file(&temporary);
                match linked {
                    Ok(()) => Ok(key),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => self.key(),
                    Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
                }
            }
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    fn aad(auth_id: &str) -> Vec<u8> {
        format!("keycard-profile:v1:{auth_id}").into_bytes()
    }

    fn seal(&self, auth_id: &str, credentials: &Credentials) -> Result<String> {
        let key = self.key()?;
        let plain = SealedCredentials {
            consumer_key: credentials.consumer_key().to_owned(),
            consumer_secret: credentials.consumer_secret().to_owned(),
            token_id: credentials.token_id().unwrap_or_default().to_owned(),
            token_secret: credentials.token_secret().unwrap_or_default().to_owned(),
        };
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce)
            .map_err(|_| anyhow!("the operating system's random source failed"))?;
        let mut sealed = Zeroizing::new(Vec::new());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&serde_json::to_vec(&plain)?);
        let cipher = cipher(&key);
        let body = sealed.get_mut(NONCE_LEN..).unwrap_or_default();
        let tag = cipher
            .encrypt_inout_detached(&XNonce::from(nonce), &Self::aad(auth_id), body.into())
            .map_err(|_| anyhow!("cannot seal the credentials"))?;
        sealed.extend_from_slice(&tag);
        Ok(BASE64.encode(sealed.as_slice()))
    }

    fn open_sealed(&self, profile: &Profile) -> Result<Credentials> {
        let key = self.key()?;
        let broken = || {
            anyhow!(
                "the credentials of profile `{}` cannot be opened with {} (the key changed or the file was edited); log in again with `keycard login --auth-id {}`",
                profile.auth_id,
                self.dir.join(KEY_FILE).display(),
                profile.auth_id
            )
        };
        let sealed = BASE64.decode(&profile.sealed).map_err(|_| broken())?;
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(broken());
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        let mut plain = Zeroizing::new(ciphertext.to_vec());
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| broken())?;
        let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| broken())?;
        cipher(&key)
            .decrypt_inout_detached(
                &XNonce::from(nonce),
                &Self::aad(&profile.auth_id),
                plain.as_mut_slice().into(),
                &Tag::from(tag),
            )
            .map_err(|_| broken())?;
        let opened: SealedCredentials = serde_json::from_slice(&plain).map_err(|_| broken())?;
        Ok(
            Credentials::new(&opened.consumer_key, opened.consumer_secret.as_str())
                .with_token(&opened.token_id, opened.token_secret.as_str()),
        )
    }

    pub fn list(&self) -> Result<Vec<Profile>> {
        Ok(self.read()?.profiles.into_values().collect())
    }

    pub fn get(&self, auth_id: &str) -> Result<Profile> {
        let file = self.read()?;
        file.profiles.get(auth_id).cloned().ok_or_else(|| {
            let known: Vec<&str> = file.profiles.keys().map(String::as_str).collect();
            if known.is_empty() {
                anyhow!(
                    "there is no profile `{auth_id}` (no profiles in {} yet): create one with `keycard login --auth-id {auth_id}` or `keycard profile add`",
                    self.dir.display()
                )
            } else {
                anyhow!(
                    "there is no profile `{auth_id}`; the saved ones are: {} (`keycard profile list`)",
                    known.join(", ")
                )
            }
        })
    }

    /// The named profile, or the only one when no name is given.
    pub fn resolve(&self, auth_id: Option<&str>) -> Result<Profile> {
        if let Some(id) = auth_id {
            return self.get(id);
        }
        let profiles = self.list()?;
        match profiles.as_slice() {
            [only] => Ok(only.clone()),
            [] => bail!(
                "no profiles in {} yet: create one with `keycard login --auth-id ID` or `keycard profile add`",
                self.dir.display()
            ),
            many => bail!(
                "there are {} profiles ({}); say which with --auth-id or KEYCARD_AUTH_ID",
                many.len(),
                many.iter()
                    .map(|p| p.auth_id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    pub fn credentials(&self, profile: &Profile) -> Result<Credentials> {
        self.open_sealed(profile)
    }

    /// Saves (creates or replaces) `profile` with `credentials`.
    pub fn save(&self, mut profile: Profile, credentials: &Credentials) -> Result<Profile> {
        check_auth_id(&profile.auth_id)?;
        let _lock = self.lock()?;
        profile.sealed = self.seal(&profile.auth_id, credentials)?;
        profile.consumer_key_hint = hint(credentials.consumer_key());
        profile.token_hint = hint(credentials.token_id().unwrap_or_default());
        profile.updated_at = crate::nonce::unix_now()?;
        let mut file = self.read()?;
        file.version = 1;
        file.profiles
            .insert(profile.auth_id.clone(), profile.clone());
        self.write(&file)?;
        Ok(profile)
    }

    pub fn delete(&self, auth_id: &str) -> Result<()> {
        let _lock = self.lock()?;
        self.get(auth_id)?;
        let mut file = self.read()?;
        file.profiles.remove(auth_id);
        self.write(&file)
    }
}

impl Profile {
    /// A new profile (sealed and hinted when saved).
    pub fn new(auth_id: &str, server: &str, account: &str) -> Self {
        Self {
            auth_id: auth_id.to_owned(),
            server: normalize_server(server),
            account: account.trim().to_owned(),
            role: None,
            role_id: None,
            email: None,
            consumer_key_hint: String::new(),
            token_hint: String::new(),
            sealed: String::new(),
            updated_at: 0,
        }
    }
}

/// A base URL: `https://` is added to a bare host, a trailing `/` dropped.
pub fn normalize_server(server: &str) -> String {
    let server = server.trim().trim_end_matches('/');
    if server.starts_with("http://") || server.starts_with("https://") {
        server.to_owned()
    } else {
        format!("https://{server}")
    }
}

fn check_auth_id(id: &str) -> Result<()> {
    if id.is_empty()
        || id.len() > 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        bail!("the authentication ID `{id}` must be 1 to 64 letters, digits, `-`, `_` or `.`");
    }
    Ok(())
}

#[derive(Subcommand, Debug)]
pub enum ProfileCommand {
    /// List the saved profiles (no secrets).
    List,
    /// Show one profile; key and token ids are masked, secrets never shown.
    Show { auth_id: String },
    /// Save a profile from credentials you already have (flags or KEYCARD_* variables), and
    /// check them with a tokeninfo call.
    Add(AddArgs),
    /// Delete a profile (the token itself stays valid on the server: revoke it there).
    Delete {
        auth_id: String,
        #[command(flatten)]
        confirm: crate::confirm::Yes,
    },
}

#[derive(Args, Debug)]
pub struct AddArgs {
    #[arg(long)]
    pub auth_id: String,
    /// The server's base URL or account host, e.g. https://1234567.restlets.api.netsuite.com.
    #[arg(long, env = "KEYCARD_SERVER")]
    pub server: String,
    /// The account id (the realm), e.g. 1234567 or 1234567_SB1.
    #[arg(long, env = "KEYCARD_ACCOUNT")]
    pub account: String,
    #[arg(long, env = "KEYCARD_CONSUMER_KEY", hide_env_values = true)]
    pub consumer_key: String,
    #[arg(long, env = "KEYCARD_CONSUMER_SECRET", hide_env_values = true)]
    pub consumer_secret: String,
    #[arg(long, env = "KEYCARD_TOKEN_ID", hide_env_values = true)]
    pub token_id: String,
    #[arg(long, env = "KEYCARD_TOKEN_SECRET", hide_env_values = true)]
    pub token_secret: String,
    /// Save without checking the token against the server.
    #[arg(long)]
    pub no_check: bool,
}

pub async fn run(command: ProfileCommand, config: &ConfigDir, json: bool) -> Result<()> {
    let store = ProfileStore::open(config)?;
    match command {
        ProfileCommand::List => {
            let profiles = store.list()?;
            if json {
                return output::json(&profiles.iter().map(public).collect::<Vec<_>>());
            }
            if profiles.is_empty() {
                eprintln!(
                    "No profiles in {} yet: create one with `keycard login --auth-id ID`.",
                    store.dir().display()
                );
                return Ok(());
            }
            let mut table = Table::new(&["AUTH ID", "SERVER", "ACCOUNT", "ROLE", "TOKEN"]);
            for p in &profiles {
                table.row(vec![
                    p.auth_id.clone(),
                    p.server.clone(),
                    p.account.clone(),
                    p.role.clone().unwrap_or_else(|| "-".into()),
                    p.token_hint.clone(),
                ]);
            }
            table.print();
            Ok(())
        }
        ProfileCommand::Show { auth_id } => {
            let p = store.get(&auth_id)?;
            if json {
                return output::json(&public(&p));
            }
            output::fields(&[
                ("Authentication ID", p.auth_id.clone()),
                ("Server", p.server.clone()),
                ("Account (realm)", p.account.clone()),
                ("Role", describe_role(&p)),
                ("User", p.email.clone().unwrap_or_else(|| "-".into())),
                ("Consumer key", p.consumer_key_hint.clone()),
                ("Consumer secret", "(sealed)".into()),
                ("Token ID", p.token_hint.clone()),
                ("Token secret", "(sealed)".into()),
                ("Stored in", store.file_path().display().to_string()),
            ]);
            Ok(())
        }
        ProfileCommand::Add(args) => {
            let credentials = Credentials::new(args.consumer_key, args.consumer_secret)
                .with_token(args.token_id, args.token_secret);
            let mut profile = Profile::new(&args.auth_id, &args.server, &args.account);
            if !args.no_check {
                let client = super::client_for(&profile, &credentials)?;
                match client.token_info().await {
                    Ok(info) => super::fill_from_token_info(&mut profile, &info),
                    Err(error) => {
                        return Err(super::explain(
                            &error,
                            &profile,
                            "the token check (GET /rest/tokeninfo)",
                        ))
                        .context("the profile was not saved (use --no-check to save it anyway)");
                    }
                }
            }
            let saved = store.save(profile, &credentials)?;
            eprintln!(
                "Saved profile `{}` ({} as {}) in {}.",
                saved.auth_id,
                saved.account,
                describe_role(&saved),
                store.file_path().display()
            );
            Ok(())
        }
        ProfileCommand::Delete { auth_id, confirm } => {
            if confirm.wanted() {
                crate::confirm::ask(&format!(
                    "Delete profile `{auth_id}`? Its token secret is kept nowhere else."
                ))?;
            }
            store.delete(&auth_id)?;
            eprintln!(
                "Deleted profile `{auth_id}`. Its token still works on the server: revoke it there if it is no longer needed."
            );
            Ok(())
        }
    }
}

pub fn describe_role(p: &Profile) -> String {
    match (&p.role, &p.role_id) {
        (Some(name), Some(id)) => format!("{name} (id {id})"),
        (Some(name), None) => name.clone(),
        (None, Some(id)) => format!("id {id}"),
        (None, None) => "-".into(),
    }
}

fn public(p: &Profile) -> serde_json::Value {
    serde_json::json!({
        "auth_id": p.auth_id,
        "server": p.server,
        "account": p.account,
        "role": p.role,
        "role_id": p.role_id,
        "email": p.email,
        "consumer_key": p.consumer_key_hint,
        "token_id": p.token_hint,
        "updated_at": p.updated_at,
    })
}
