//! The directory's storage seam: one [`Store`] over SQLite (the embedded default, a file in the
//! data directory, WAL) or PostgreSQL, chosen by URL at run time. Both backends run the same
//! queries (through sqlx's `Any` driver) against schemas created by migrations with identical
//! names in `migrations/sqlite` and `migrations/postgres`.
//!
//! Every operation is one transaction that also writes its admin audit record, so a refused or
//! failed command leaves nothing behind. After a commit, a [`ChangeEvent`] is published for
//! this process's caches; on PostgreSQL it is also notified, with the commit, to every other
//! process's [`ChangeListener`]. Secrets are sealed with the [`crypto::KeyRing`] before they
//! reach SQL and are handed back exactly once, at creation or reset.

pub mod crypto;
mod error;
mod rows;

pub mod accounts;
pub mod audit;
mod changes;
pub mod integrations;
pub mod keys;
mod login_blocks;
mod login_writer;
mod record_reader;
pub mod records;
pub mod roles;
pub mod tokens;
pub mod users;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use keycard_core::{AdminAction, AdminEvent, ChangeEvent, UnixTime};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{Any, AnyPool, Executor, Row, Transaction};
use tokio::sync::broadcast;

pub use crate::changes::{ChangeListener, Remote};
pub use crate::crypto::{KeyRing, KeySource};
pub use crate::error::StoreError;
pub use crate::login_writer::{LoginWriter, OpenLoginBatch};

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where the directory lives.
#[derive(Debug, Clone)]
pub enum Location {
    /// `keycard.db` in this directory, created on first use.
    DataDir(PathBuf),
    /// A `postgres://` (or `sqlite:`) URL.
    Url(String),
}

impl Location {
    /// The SQLite database file this location names (`None` for PostgreSQL).
    pub fn sqlite_file(&self) -> Option<PathBuf> {
        sqlite_path(self)
    }

    /// The data directory from `--data-dir` / `KEYCARD_DATA_DIR`, else the user's data dir.
    pub fn default_data_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir).join("keycard");
        }
        std::env::var_os("HOME").map_or_else(
            || PathBuf::from(".keycard"),
            |home| PathBuf::from(home).join(".local/share/keycard"),
        )
    }
}

/// Reads the time: injected so tests can move it.
pub type Clock = Arc<dyn Fn() -> UnixTime + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    })
}

/// The directory.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    keys: Arc<std::sync::RwLock<KeyRing>>,
    /// The key file the keys came from, when they did ([`Store::with_key_file`]).
    key_file: Option<Arc<Path>>,
    events: broadcast::Sender<ChangeEvent>,
    /// Committed administrative changes made through this handle (and its clones).
    local_changes: Arc<std::sync::atomic::AtomicU64>,
    clock: Clock,
    /// SQLite on a file: the native writer for login records.
    login_writer: Option<LoginWriter>,
    /// SQLite on a file: native read-only connections for record reads.
    record_reader: Option<record_reader::RecordReader>,
    /// Names this process's store in change notifications, so its listener skips its own.
    origin: Arc<str>,
    /// PostgreSQL: where change listeners connect. May hold a password: never printed.
    listen_url: Option<Arc<str>>,
    /// PostgreSQL: a native pool for login records, which go in one array-bound statement
    /// per batch (the `Any` driver has no arrays).
    login_pool: Option<sqlx::PgPool>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating when needed) the directory and brings its schema up to date.
    pub async fn open(location: &Location, keys: KeyRing) -> Result<Self, StoreError> {
        install_default_drivers();
        let (url, backend) = match location {
            Location::DataDir(dir) => {
                std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
                    path: dir.clone(),
                    source,
                })?;
                (sqlite_url(&sqlite_file(dir)), Backend::Sqlite)
            }
            Location::Url(url)
                if url.starts_with("postgres://") || url.starts_with("postgresql://") =>
            {
                (url.clone(), Backend::Postgres)
            }
            Location::Url(url) if url.starts_with("sqlite:") => {
                if sqlite_path(location).is_none() || url.contains("mode=memory") {
                    return Err(StoreError::InMemorySqlite);
                }
                (url.clone(), Backend::Sqlite)
            }
            Location::Url(url) => {
                return Err(StoreError::UnsupportedUrl {
                    scheme: url.split(':').next().unwrap_or_default().to_owned(),
                });
            }
        };
        let mut options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
        if backend == Backend::Sqlite {
            options = options.max_connections(4).after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL;")
                        .await?;
                    Ok(())
                })
            });
        } else {
            options = options.max_connections(16);
        }
        let pool = options
            .connect(&url)
            .await
            .map_err(|source| StoreError::Connect { backend, source })?;
        let migrator = match backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("migrations/postgres"),
        };
        migrator.run(&pool).await?;
        let (events, _) = broadcast::channel(1024);
        let origin = crypto::random_hex(8)?;
        Ok(Self {
            pool,
            backend,
            keys: Arc::new(std::sync::RwLock::new(keys)),
            key_file: None,
            events,
            local_changes: Arc::default(),
            clock: system_clock(),
            login_writer: sqlite_path(location).map(|path| LoginWriter::new(&path)),
            record_reader: sqlite_path(location)
                .map(|path| record_reader::RecordReader::new(&path)),
            origin: origin.into(),
            login_pool: (backend == Backend::Postgres)
                .then(|| {
                    sqlx::postgres::PgPoolOptions::new()
                        .max_connections(2)
                        .acquire_timeout(Duration::from_secs(10))
                        .connect_lazy(&url)
                })
                .transpose()
                .map_err(|source| StoreError::Connect { backend, source })?,
            listen_url: (backend == Backend::Postgres).then(|| url.into()),
        })
    }

    /// Names the key file the keys came from. The store then reads it again when a directory
    /// change begins (so it seals under the newest key) and when a secret names a key it does
    /// not hold: a `keycard keys rotate` by another process (the CLI, another node) reaches a
    /// running server without a restart. Keys from `KEYCARD_MASTER_KEY` cannot be read again.
    #[must_use]
    pub fn with_key_file(mut self, path: &Path) -> Self {
        self.key_file = Some(path.into());
        self
    }

    /// Reads the key file again ([`Store::with_key_file`]); whether the keys changed. A file
    /// that cannot be read leaves the keys as they were (logged): it is mid-replace, or gone.
    pub fn follow_key_file(&self) -> bool {
        let Some(path) = &self.key_file else {
            return false;
        };
        let ring = match crypto::read_key_file(path) {
            Ok(ring) => ring,
            Err(error) => {
                tracing::warn!(%error, "cannot read the master key file again; keeping the keys held");
                return false;
            }
        };
        if ring.ids() == self.keys().ids() {
            return false;
        }
        tracing::info!(
            current = ring.current_id(),
            "the master key file changed; using its keys"
        );
        self.replace_keys(ring);
        true
    }

    /// Replaces the clock (tests).
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The native login-record writer (SQLite on a file); `None` means records go through
    /// [`Store::insert_login_records`] on the pool.
    pub fn login_writer(&self) -> Option<LoginWriter> {
        self.login_writer.clone()
    }

    pub fn now(&self) -> UnixTime {
        (self.clock)()
    }

    /// How many administrative changes this process has committed; caches compare it on
    /// every read.
    pub fn local_changes(&self) -> u64 {
        self.local_changes.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Change events published after each commit of this process (other processes' arrive
    /// through [`Store::listen_changes`]). Sent before `local_changes` moves, so a reader that
    /// sees the new count finds the events already queued.
    pub fn subscribe(&self) -> broadcast::Receiver<ChangeEvent> {
        self.events.subscribe()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The native PostgreSQL pool for login records (`None` on SQLite).
    pub(crate) fn login_pool(&self) -> Option<&sqlx::PgPool> {
        self.login_pool.as_ref()
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub(crate) async fn begin(&self) -> Result<Transaction<'static, Any>, StoreError> {
        // SQLite: take the write lock up front. A deferred transaction that reads and then
        // writes fails with SQLITE_BUSY_SNAPSHOT when another connection wrote in between,
        // and busy_timeout cannot help it; BEGIN IMMEDIATE waits for the lock instead.
        //
        // PostgreSQL: the same one-writer-at-a-time, from a transaction-scoped advisory lock
        // taken first. Every directory change reads, checks its rules, then writes; under
        // READ COMMITTED two such transactions read the same state, so a revoked token could
        // be reactivated, a deleted integration re-enabled, or a limit over-allocated.
        // Directory changes are rare; the hot path never writes here.
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(DIRECTORY_WRITE_LOCK)
                .execute(&mut *tx)
                .await?;
        }
        // Under the lock, so after any rotation that committed before: what this change
        // seals is sealed under the newest key.
        self.follow_key_file();
        Ok(tx)
    }

    /// A transaction that will write, without the directory's lock ([`Store::begin`]): for
    /// writes that lock what they change themselves (a REST record's row). SQLite still takes
    /// its one write lock up front (`BEGIN IMMEDIATE`, as above).
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Any>, StoreError> {
        match self.backend {
            Backend::Sqlite => Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?),
            Backend::Postgres => Ok(self.pool.begin().await?),
        }
    }

    pub(crate) fn keys(&self) -> std::sync::RwLockReadGuard<'_, KeyRing> {
        // A poisoned lock only means a panic elsewhere while holding it; the ring is still whole.
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn replace_keys(&self, ring: KeyRing) {
        *self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = ring;
    }

    /// Seals a secret for the row named by `aad`.
    pub(crate) fn seal(&self, plaintext: &str, aad: &str) -> Result<Vec<u8>, StoreError> {
        Ok(self.keys().seal(plaintext.as_bytes(), aad.as_bytes())?)
    }

    /// Seals short-lived state kept outside the directory (pending authorizations on Redis)
    /// under the master key, bound to `aad`.
    pub fn seal_transient(&self, plaintext: &[u8], aad: &str) -> Result<Vec<u8>, StoreError> {
        Ok(self.keys().seal(plaintext, aad.as_bytes())?)
    }

    /// Opens what [`Store::seal_transient`] sealed for the same `aad`.
    pub fn open_transient(
        &self,
        sealed: &[u8],
        aad: &str,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, StoreError> {
        self.open_sealed(sealed, aad)
    }

    /// Opens `sealed`; when it names a key this store does not hold, after reading the key
    /// file again (another process rotated the keys).
    fn open_sealed(
        &self,
        sealed: &[u8],
        aad: &str,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, StoreError> {
        let opened = self.keys().open(sealed, aad.as_bytes());
        match opened {
            Err(crypto::CryptoError::MissingKey { .. }) if self.follow_key_file() => {
                Ok(self.keys().open(sealed, aad.as_bytes())?)
            }
            other => Ok(other?),
        }
    }

    pub(crate) fn open_secret(
        &self,
        sealed: &[u8],
        aad: &str,
    ) -> Result<keycard_core::Secret, StoreError> {
        let plain = self.open_sealed(sealed, aad)?;
        let text = String::from_utf8(plain.to_vec()).map_err(|_| StoreError::Corrupt {
            what: "a sealed secret is not UTF-8",
        })?;
        Ok(keycard_core::Secret::new(text))
    }

    /// Writes the admin audit record inside the caller's transaction.
    pub(crate) async fn record(
        &self,
        tx: &mut Transaction<'static, Any>,
        actor: &str,
        account: Option<&keycard_core::AccountId>,
        action: AdminAction,
        entity_id: &str,
        detail: serde_json::Value,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO admin_audit (at, actor, account_id, action, entity_id, detail) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(self.now())
            .bind(actor)
            .bind(account.map(keycard_core::AccountId::as_str))
            .bind(action.as_str())
            .bind(entity_id)
            .bind(detail.to_string())
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Bumps the directory version once for the caller's transaction and logs what it
    /// changed under the new version (`directory_changes`), pruning the oldest rows.
    pub(crate) async fn log_changes(
        &self,
        tx: &mut Transaction<'static, Any>,
        changed: &[ChangeEvent],
    ) -> Result<(), StoreError> {
        let bumped = sqlx::query(
            "UPDATE directory_version SET version = version + 1 WHERE id = 1 RETURNING version",
        )
        .fetch_optional(&mut **tx)
        .await?;
        // No version row (a damaged directory, or a test holding it back): nothing to log
        // under; pollers drop everything when a version comes back that the log cannot explain.
        let Some(bumped) = bumped else {
            return Ok(());
        };
        let version: i64 = bumped.try_get("version")?;
        let events = serde_json::to_string(changed).map_err(|_| StoreError::Corrupt {
            what: "a change event cannot be written as JSON",
        })?;
        sqlx::query("INSERT INTO directory_changes (version, origin, events) VALUES ($1, $2, $3)")
            .bind(version)
            .bind(&*self.origin)
            .bind(events)
            .execute(&mut **tx)
            .await?;
        sqlx::query("DELETE FROM directory_changes WHERE version <= $1")
            .bind(version - CHANGES_KEPT)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// The current directory version and, when the log still holds every change since
    /// `seen`, the events of those made by other processes (this one applied its own when it
    /// committed them); `None`: some were pruned, or made by a keycard that logs none.
    pub async fn changes_since(
        &self,
        seen: i64,
    ) -> Result<(i64, Option<Vec<ChangeEvent>>), StoreError> {
        let version = self.directory_version().await?;
        if version == seen {
            return Ok((version, Some(Vec::new())));
        }
        if version < seen {
            // Gone back: another database (a restore) behind the same address.
            return Ok((version, None));
        }
        // Only up to the version read: a change committed since is read with its version.
        let rows = sqlx::query(
            "SELECT version, origin, events FROM directory_changes WHERE version > $1 AND version <= $2 ORDER BY version",
        )
        .bind(seen)
        .bind(version)
        .fetch_all(self.pool())
        .await?;
        if i64::try_from(rows.len()).ok() != Some(version - seen) {
            return Ok((version, None));
        }
        let mut events = Vec::new();
        for row in rows {
            if row.try_get::<String, _>("origin")? == *self.origin {
                continue;
            }
            let logged: Vec<ChangeEvent> =
                serde_json::from_str(&row.try_get::<String, _>("events")?).map_err(|_| {
                    StoreError::Corrupt {
                        what: "a logged directory change",
                    }
                })?;
            events.extend(logged);
        }
        Ok((version, Some(events)))
    }

    /// A number that grows with every committed administrative change, whichever process or
    /// node made it: servers poll it to drop caches that change events did not reach.
    pub async fn directory_version(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT version FROM directory_version WHERE id = 1")
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get("version")?)
    }

    /// Commits, telling other processes (PostgreSQL notifications, delivered with the commit)
    /// and then this one's subscribers what changed.
    pub(crate) async fn commit(
        &self,
        mut tx: Transaction<'static, Any>,
        changed: Vec<ChangeEvent>,
    ) -> Result<(), StoreError> {
        self.log_changes(&mut tx, &changed).await?;
        self.notify(&mut tx, &changed).await?;
        tx.commit().await?;
        self.publish(changed);
        Ok(())
    }

    /// Tells this process's subscribers about a committed change. The events go first and the
    /// counter after, so a cache that sees the new count on its next read also finds them.
    pub(crate) fn publish(&self, changed: Vec<ChangeEvent>) {
        for event in changed {
            // No subscribers is fine: nothing caches.
            let _ = self.events.send(event);
        }
        self.local_changes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// The admin audit trail, newest first.
    pub async fn admin_events(&self, limit: i64) -> Result<Vec<AdminEvent>, StoreError> {
        audit::admin_events(self, limit).await
    }
}

/// How many versions `directory_changes` keeps: a server polls every `resync_ms`, so only
/// one that could not read the directory for that many changes drops its whole cache.
const CHANGES_KEPT: i64 = 10_000;

/// The PostgreSQL advisory lock key every directory change holds ([`Store::begin`]): "kcdir".
const DIRECTORY_WRITE_LOCK: i64 = 0x6b_63_64_69_72;

fn sqlite_file(dir: &Path) -> PathBuf {
    dir.join("keycard.db")
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

/// The database file of an SQLite location (`None` for PostgreSQL, and for in-memory databases,
/// which [`Store::open`] refuses).
fn sqlite_path(location: &Location) -> Option<PathBuf> {
    match location {
        Location::DataDir(dir) => Some(sqlite_file(dir)),
        Location::Url(url) => {
            let rest = url.strip_prefix("sqlite:")?;
            let path = rest.strip_prefix("//").unwrap_or(rest);
            let path = path.split('?').next().unwrap_or_default();
            (!path.is_empty() && !path.contains(":memory:")).then(|| PathBuf::from(path))
        }
    }
}

pub(crate) fn change(
    account: Option<&keycard_core::AccountId>,
    entity: keycard_core::EntityKind,
    id: impl std::fmt::Display,
) -> ChangeEvent {
    ChangeEvent {
        account: account.cloned(),
        entity,
        entity_id: id.to_string(),
    }
}
