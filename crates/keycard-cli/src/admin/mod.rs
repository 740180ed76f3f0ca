//! Server-side administration, straight against the store: accounts, integrations, roles,
//! users, tokens, master keys, and `init`. Each entity has its own module; this one holds what
//! they share (opening the store, choosing the account, the actor recorded in the audit trail).

pub mod account;
pub mod audit;
pub mod init;
pub mod integration;
pub mod keys;
pub mod output;
pub mod role;
pub mod token;
pub mod user;

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use keycard_core::AccountId;
use keycard_store::{KeyRing, KeySource, Location, Store};

/// Where the directory is, shared by every admin command.
#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// Data directory: holds the embedded SQLite directory and the master key file.
    /// Default: $XDG_DATA_HOME/keycard or ~/.local/share/keycard.
    #[arg(long, env = "KEYCARD_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL (postgres://…) to use instead of the embedded SQLite directory.
    #[arg(
        long,
        env = "KEYCARD_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Print JSON instead of tables, for scripts.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The account a command acts on.
#[derive(Args, Debug, Clone)]
pub struct AccountArg {
    /// Account id (e.g. 1234567 or 1234567_SB1). May be left out when there is only one account.
    #[arg(long, env = "KEYCARD_ACCOUNT", global = true)]
    pub account: Option<String>,
}

impl StoreArgs {
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(Location::default_data_dir)
    }

    /// Loads the master keys (generating the key file on first use, with a warning).
    pub fn keys(&self) -> Result<(KeyRing, KeySource)> {
        let env_key = std::env::var("KEYCARD_MASTER_KEY")
            .ok()
            .filter(|v| !v.is_empty());
        let env_file = std::env::var_os("KEYCARD_MASTER_KEY_FILE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        let (ring, source) =
            KeyRing::load(env_key.as_deref(), env_file.as_deref(), &self.data_dir())?;
        if let KeySource::Generated(path) = &source {
            eprintln!(
                "warning: generated a new master key in {}; back it up: without it the stored secrets cannot be read",
                path.display()
            );
        }
        Ok((ring, source))
    }

    pub fn location(&self) -> Location {
        match &self.database_url {
            Some(url) => Location::Url(url.clone()),
            None => Location::DataDir(self.data_dir()),
        }
    }

    pub async fn open(&self) -> Result<Store> {
        let (ring, source) = self.keys()?;
        let mut store = self.open_with(ring).await?;
        refuse_a_foreign_directory(&store, &source).await?;
        // A server follows `keycard keys rotate` run elsewhere by reading its key file again.
        if let KeySource::File(path) | KeySource::Generated(path) = &source {
            store = store.with_key_file(path);
        }
        Ok(store)
    }

    /// Opens the directory; for a command that only reads (`list`, `audit`) it must exist
    /// already: such a command would otherwise leave an empty database and a new master key
    /// wherever a mistyped `--data-dir` pointed.
    pub async fn open_for(&self, only_reads: bool) -> Result<Store> {
        if let Some(file) = self.location().sqlite_file().filter(|_| only_reads) {
            if !file.exists() {
                bail!(
                    "there is no keycard directory at {}: pass the --data-dir (or --database-url) \
                     that holds it, or create one with `keycard init`",
                    file.display()
                );
            }
        }
        self.open().await
    }

    pub async fn open_with(&self, ring: KeyRing) -> Result<Store> {
        Store::open(&self.location(), ring)
            .await
            .with_context(|| match &self.database_url {
                Some(_) => "cannot open the directory on PostgreSQL (check --database-url / KEYCARD_DATABASE_URL)".to_owned(),
                None => format!("cannot open the directory in {}", self.data_dir().display()),
            })
    }
}

/// A key generated just now has sealed nothing: if the directory already holds sealed secrets,
/// they are under a key this process lacks, and whatever it sealed would be unreadable where
/// the directory's key is used (a token created so answered every login with 503 on the
/// nodes). Refuses, and removes the generated key file so that it is not taken for the
/// directory's key later.
pub async fn refuse_a_foreign_directory(store: &Store, source: &KeySource) -> Result<()> {
    let KeySource::Generated(path) = source else {
        return Ok(());
    };
    let sealed = store.sealed_secret_count().await?;
    if sealed == 0 {
        return Ok(());
    }
    let _ = std::fs::remove_file(path);
    bail!(
        "this directory holds {sealed} secrets sealed under a master key this command was not given \
         (the key it just generated in {} was removed again): pass the directory's key with \
         KEYCARD_MASTER_KEY or KEYCARD_MASTER_KEY_FILE, or the --data-dir that holds its master.key",
        path.display()
    )
}

impl AccountArg {
    /// The account named, or the only one.
    pub async fn resolve(&self, store: &Store) -> Result<AccountId> {
        if let Some(id) = &self.account {
            let id = AccountId::parse(id)?;
            store.account(&id).await?;
            return Ok(id);
        }
        let accounts = store.accounts().await?;
        match accounts.as_slice() {
            [only] => Ok(only.id.clone()),
            [] => bail!(
                "there is no account yet: create one with `keycard account create ID --name NAME` or run `keycard init`"
            ),
            many => bail!(
                "there are {} accounts ({}); say which with --account or KEYCARD_ACCOUNT",
                many.len(),
                many.iter()
                    .map(|a| a.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// Who the audit trail records for CLI changes: the operator and their OS user.
pub fn actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_owned());
    format!("cli:{user}")
}

/// Parses `true`/`false`/`yes`/`no`/`on`/`off`.
pub fn parse_bool(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(format!("`{value}` is not true or false")),
    }
}

/// A limit given on the command line: a number, or `none` to clear it.
#[derive(Debug, Clone, Copy)]
pub struct LimitArg(pub Option<u32>);

/// Parses a limit or `none`.
pub fn parse_limit(value: &str) -> Result<LimitArg, String> {
    if value.eq_ignore_ascii_case("none") {
        return Ok(LimitArg(None));
    }
    value
        .parse::<u32>()
        .map(|n| LimitArg(Some(n)))
        .map_err(|_| format!("`{value}` is not a number or `none`"))
}

/// Runs an async admin command on a small runtime.
pub fn block_on<F: std::future::Future<Output = Result<()>>>(future: F) -> Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(future)
}
