//! Writing login records, the one write on every request's path.
//!
//! On SQLite the records go through a dedicated native connection (rusqlite) with cached
//! prepared statements: sqlx runs each SQLite statement on its own worker thread and pays a
//! thread hop per row, which the load benchmark measured as most of the server's CPU. They are
//! stored as blocks ([`crate::login_blocks`]), one row per call of [`OpenLoginBatch::insert`]. A
//! [`LoginWriter`] is synchronous on purpose, and never waits for the write lock in
//! [`begin`](LoginWriter::begin): the server's audit writer runs it on the request runtime in
//! short steps ([`OpenLoginBatch`]: one block each, yielding in between), so the steps
//! must not block. On PostgreSQL there is no such writer; records go through the pool
//! ([`Store::insert_login_records`](crate::Store::insert_login_records)).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use keycard_core::LoginRecord;
use rusqlite::Connection;

use crate::StoreError;
use crate::login_blocks;

pub(crate) const LOGIN_COLUMNS: &str = "at, request_id, ip, account_id, integration_name, token_name, user_email, role_name, surface, request_uri, status, detail, diagnosis";

/// A synchronous writer of login records on the SQLite directory. Cheap to clone; clones share
/// one connection.
#[derive(Clone)]
pub struct LoginWriter {
    path: Arc<PathBuf>,
    connection: Arc<Mutex<Option<Connection>>>,
    /// A second connection for [`checkpoint`](Self::checkpoint), so that it never waits on
    /// (or holds up) the writing one.
    checkpointer: Arc<Mutex<Option<Connection>>>,
}

impl std::fmt::Debug for LoginWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginWriter")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl LoginWriter {
    /// A writer on the database file at `path`; the connection opens on the first write (and
    /// again after a failed one).
    pub(crate) fn new(path: &Path) -> Self {
        Self {
            path: Arc::new(path.to_path_buf()),
            connection: Arc::default(),
            checkpointer: Arc::default(),
        }
    }

    /// Writes the records in one transaction, in order. Blocks: waits up to [`BUSY_WAIT`] for
    /// another connection's write lock, so call it from a thread that may block.
    pub fn write(&self, records: &[LoginRecord]) -> Result<(), StoreError> {
        let deadline = Instant::now() + BUSY_WAIT;
        let mut batch = loop {
            if let Some(batch) = self.begin()? {
                break batch;
            }
            if Instant::now() >= deadline {
                return Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                    Some("another connection held the write lock for too long".to_owned()),
                )));
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        batch.insert(records)?;
        batch.commit()
    }

    /// Opens a transaction on the writing connection, to fill with [`OpenLoginBatch::insert`]
    /// and end with [`OpenLoginBatch::commit`]. Never waits: `Ok(None)` when another
    /// connection holds the write lock (try again later). The batch owns the connection until
    /// it is committed or dropped (rolled back), so the server's writer can keep it across
    /// `.await`s and let requests run between statements.
    pub fn begin(&self) -> Result<Option<OpenLoginBatch>, StoreError> {
        let connection = match lock(&self.connection).take() {
            Some(connection) => connection,
            None => open(&self.path, Duration::ZERO)?,
        };
        match connection.execute_batch("BEGIN IMMEDIATE") {
            Ok(()) => Ok(Some(OpenLoginBatch {
                home: self.connection.clone(),
                connection: Some(connection),
            })),
            Err(error) if error.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {
                *lock(&self.connection) = Some(connection);
                Ok(None)
            }
            // The connection is dropped: the next batch starts from a fresh one.
            Err(error) => Err(StoreError::Sqlite(error)),
        }
    }

    /// Copies what the write-ahead log holds into the database file, on a connection of its
    /// own, and restarts the log once it has grown past [`WAL_RESTART_PAGES`]. Call it often
    /// from a thread that may block (the server: every 50 ms): the writing connection leaves
    /// checkpoints to this method until the log reaches [`WAL_SAFETY_PAGES`], so that its
    /// commits, which run on the request runtime, never copy pages or wait for the disk.
    ///
    /// The copying is a passive checkpoint: it neither waits for nor blocks the writer. But a
    /// log written every few milliseconds may never be wholly copied at the moment a passive
    /// checkpoint ends, and SQLite starts the log over only then; so past the threshold the
    /// checkpoint is a RESTART one, which waits for the writer's transaction to end and holds
    /// off the next one (whose [`begin`](Self::begin) answers busy) until the log is copied.
    ///
    /// SQLite starts the log over in the first transaction after a checkpoint that copied all
    /// of it (at 90k req/s, passive ones did about seven times a second), and that transaction
    /// also syncs the log's new header to disk, whatever `synchronous` says. So that this is
    /// not the writer's next commit, on the request runtime (0.05-0.5 ms on this project's
    /// VMs, far more on a network disk), the checkpoint writes that transaction itself: it sets
    /// `user_version` to the value it has, which writes the database header's page and
    /// nothing else.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.on_checkpointer(|connection| {
            let (log_pages, copied): (i64, i64) =
                connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                    Ok((row.get(1)?, row.get(2)?))
                })?;
            let wholly_copied = if log_pages >= i64::from(WAL_RESTART_PAGES) {
                let busy: i64 =
                    connection.query_row("PRAGMA wal_checkpoint(RESTART)", [], |row| row.get(0))?;
                busy == 0
            } else {
                copied == log_pages
            };
            // More than the one page a restart writes: the log has not just been started over
            // (an idle server would otherwise start it over at every call).
            if wholly_copied && log_pages > 1 {
                start_log_over(connection)?;
            }
            Ok(())
        })
    }

    /// Runs `work` on the checkpointing connection, opened on first use; after a failure it is
    /// dropped, so the next call starts from a fresh connection rather than one in an unknown
    /// state.
    fn on_checkpointer<T>(
        &self,
        work: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let mut slot = lock(&self.checkpointer);
        let connection = match &mut *slot {
            Some(connection) => connection,
            empty => empty.insert(open(&self.path, BUSY_WAIT)?),
        };
        let result = work(connection);
        if result.is_err() {
            *slot = None;
        }
        result.map_err(StoreError::Sqlite)
    }
}

/// A transaction of login records in progress (from [`LoginWriter::begin`]). Dropped without
/// [`commit`](Self::commit), it rolls back and nothing of it is stored.
pub struct OpenLoginBatch {
    /// Where the connection goes back after a commit.
    home: Arc<Mutex<Option<Connection>>>,
    /// `None` once an insert failed: the connection was closed, which rolled it back.
    connection: Option<Connection>,
}

impl std::fmt::Debug for OpenLoginBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenLoginBatch")
            .field("spoiled", &self.connection.is_none())
            .finish_non_exhaustive()
    }
}

impl OpenLoginBatch {
    /// Records per block, the most a writer that yields between blocks should hand
    /// [`insert`](Self::insert) at once: each call stores one block.
    pub const BLOCK_RECORDS: usize = RECORDS_PER_BLOCK;

    /// Inserts the records after those already in the batch, in order, as one block. A
    /// failure spoils the batch (it is rolled back; committing it fails too): drop it and
    /// begin again.
    pub fn insert(&mut self, records: &[LoginRecord]) -> Result<(), StoreError> {
        let connection = self.connection.as_mut().ok_or_else(spoiled)?;
        let result = insert(connection, records);
        if result.is_err() {
            self.connection = None;
        }
        result.map_err(StoreError::Sqlite)
    }

    /// Commits the batch: every record in it is stored, in order.
    pub fn commit(mut self) -> Result<(), StoreError> {
        let connection = self.connection.take().ok_or_else(spoiled)?;
        // On failure the connection is dropped, which rolls the transaction back.
        connection
            .execute_batch("COMMIT")
            .map_err(StoreError::Sqlite)?;
        *lock(&self.home) = Some(connection);
        Ok(())
    }
}

impl Drop for OpenLoginBatch {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            // Abandoned: roll back and keep the connection, or drop it if even that fails.
            if connection.execute_batch("ROLLBACK").is_ok() {
                *lock(&self.home) = Some(connection);
            }
        }
    }
}

fn spoiled() -> StoreError {
    StoreError::Conflict {
        what: "a login batch whose insert failed was used again; begin a new one".to_owned(),
    }
}

fn lock(slot: &Mutex<Option<Connection>>) -> std::sync::MutexGuard<'_, Option<Connection>> {
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How long a blocking write (and the checkpointer) waits for another connection's write lock.
const BUSY_WAIT: Duration = Duration::from_secs(5);

/// The log size (pages) past which [`LoginWriter::checkpoint`] restarts the log: SQLite's
/// default checkpoint threshold (about 4 MiB).
const WAL_RESTART_PAGES: u32 = 1000;

/// The writing connection's own checkpoint threshold, a safety net for when nothing calls
/// [`LoginWriter::checkpoint`] (or it cannot keep up): ten times the restart threshold, so that
/// while the checkpointer runs, the writer never checkpoints (a checkpoint inside a commit
/// held the request runtime for up to 3.6 ms at 60k req/s).
const WAL_SAFETY_PAGES: u32 = 10 * WAL_RESTART_PAGES;

/// Writes the first transaction into a log that a checkpoint has wholly copied, so that the
/// sync of its new header happens on this connection ([`LoginWriter::checkpoint`]). Should
/// another connection write first, this is one page more in the log, and nothing else.
fn start_log_over(connection: &mut Connection) -> rusqlite::Result<()> {
    let transaction =
        connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    // Read under the write lock, so the value written back is the one the file holds.
    let version: i64 = transaction.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    // A PRAGMA takes no parameters; the value is the integer just read.
    transaction.execute_batch(&format!("PRAGMA user_version = {version}"))?;
    transaction.commit()
}

/// Opens a connection that waits up to `busy` for another connection's lock (zero: fails at
/// once with `SQLITE_BUSY`).
fn open(path: &Path, busy: Duration) -> Result<Connection, StoreError> {
    let connection = Connection::open(path).map_err(StoreError::Sqlite)?;
    connection.busy_timeout(busy).map_err(StoreError::Sqlite)?;
    connection
        .execute_batch(
            // A 64 MiB page cache keeps the trail's index pages in memory between batches.
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536;",
        )
        .map_err(StoreError::Sqlite)?;
    connection
        .pragma_update(None, "wal_autocheckpoint", WAL_SAFETY_PAGES)
        .map_err(StoreError::Sqlite)?;
    Ok(connection)
}

/// Records per block for the server's writer ([`OpenLoginBatch::BLOCK_RECORDS`]): larger
/// blocks cost less per record, but each is one step the request runtime waits for.
const RECORDS_PER_BLOCK: usize = 32;

/// A block's row: its records encoded, and the time range they cover.
const INSERT_BLOCK: &str =
    "INSERT INTO login_audit_blocks (first_at, last_at, records) VALUES (?1, ?2, ?3)";
/// A range of the block's request keys ([`login_blocks::key_ranges`]).
const INSERT_KEY_RANGE: &str =
    "INSERT INTO login_audit_key_ranges (first_key, last_key, block) VALUES (?1, ?2, ?3)";

/// Writes `records` as one block of the trail ([`crate::login_blocks`]) and indexes the
/// block's request keys as ranges. Statements are prepared once and cached.
fn insert(connection: &Connection, records: &[LoginRecord]) -> rusqlite::Result<()> {
    let times = records.iter().map(|r| r.at);
    let (Some(first_at), Some(last_at)) = (times.clone().min(), times.max()) else {
        return Ok(()); // A block is never empty.
    };
    let mut encoded = Vec::with_capacity(records.len() * 192);
    let keys = login_blocks::encode(records, &mut encoded);
    connection
        .prepare_cached(INSERT_BLOCK)?
        .execute((first_at, last_at, &encoded))?;
    let block = connection.last_insert_rowid();
    let mut range = connection.prepare_cached(INSERT_KEY_RANGE)?;
    for (first, last) in login_blocks::key_ranges(keys) {
        range.execute((first, last, block))?;
    }
    Ok(())
}
