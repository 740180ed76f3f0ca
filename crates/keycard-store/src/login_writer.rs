//! Writing login records, the one write on every request's path.
//!
//! On SQLite the records go through a dedicated native connection (rusqlite) with one cached
//! prepared statement: sqlx runs each SQLite statement on its own worker thread and pays a
//! thread hop per row, which the load benchmark measured as most of the server's CPU. A
//! [`LoginWriter`] is synchronous on purpose: the server's audit writer owns it on its own
//! thread and hands it whole batches. On PostgreSQL there is no such writer; records go
//! through the pool ([`Store::insert_login_records`](crate::Store::insert_login_records)).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use keycard_core::LoginRecord;
use rusqlite::{Connection, TransactionBehavior};

use crate::StoreError;

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

    /// Writes the records in one transaction, in order. Blocks (the SQLite write lock waits
    /// up to 5 s for another writer): call it from a thread that may block.
    pub fn write(&self, records: &[LoginRecord]) -> Result<(), StoreError> {
        self.write_pausing(records, || {})
    }

    /// [`write`](Self::write), calling `pause` between the transaction's statements (every
    /// [`ROWS_PER_STATEMENT`] rows). A writer that shares its core with request handling yields
    /// there, so a large transaction never holds the core for long. Large transactions are
    /// what make the trail cheap: each commit rewrites the partly filled last pages of the
    /// table and its indexes into the log, whatever the number of rows.
    pub fn write_pausing(
        &self,
        records: &[LoginRecord],
        pause: impl FnMut(),
    ) -> Result<(), StoreError> {
        self.on(&self.connection, |connection| {
            insert(connection, records, pause)
        })
    }

    /// Copies what the write-ahead log holds into the database file (a passive checkpoint: it
    /// neither waits for nor blocks the writer). The server calls this from a thread of its
    /// own, at a lower priority than request handling, so most of the copying stays out of the
    /// writer's commits; the writing connection still checkpoints at [`WAL_SAFETY_PAGES`].
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.on(&self.checkpointer, |connection| {
            connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
        })
    }

    /// Runs `work` on the connection in `slot`, opened on first use; after a failure the slot
    /// is emptied, so the next call starts from a fresh connection rather than one in an
    /// unknown state.
    fn on<T>(
        &self,
        slot: &Mutex<Option<Connection>>,
        work: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
        let connection = match &mut *slot {
            Some(connection) => connection,
            empty => empty.insert(open(&self.path)?),
        };
        let result = work(connection);
        if result.is_err() {
            *slot = None;
        }
        result.map_err(StoreError::Sqlite)
    }
}

/// The writing connection's own checkpoint threshold, SQLite's default (about 4 MiB of log).
/// With [`LoginWriter::checkpoint`] called often, the frames are mostly copied already when
/// it is reached, so the writer's checkpoint is short and lets the log restart from the
/// beginning (a passive checkpointer alone never catches a log that is written every few ms).
/// When request handling leaves no idle time for the checkpointer (full load), the writer
/// does the copying, in steps of this size: a larger threshold measured 30-60 ms stalls.
const WAL_SAFETY_PAGES: u32 = 1000;

fn open(path: &Path) -> Result<Connection, StoreError> {
    let connection = Connection::open(path).map_err(StoreError::Sqlite)?;
    connection
        .execute_batch(
            // A 64 MiB page cache keeps the trail's index pages in memory between batches.
            "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536;",
        )
        .map_err(StoreError::Sqlite)?;
    connection
        .pragma_update(None, "wal_autocheckpoint", WAL_SAFETY_PAGES)
        .map_err(StoreError::Sqlite)?;
    Ok(connection)
}

/// Rows per INSERT statement: one statement (and one VDBE run) for many rows costs less per
/// row than a statement per row; the remainder of a batch goes one row per statement. Both
/// statements are prepared once and cached.
const ROWS_PER_STATEMENT: usize = 32;
const COLUMNS: usize = 13;

fn insert(
    connection: &mut Connection,
    records: &[LoginRecord],
    mut pause: impl FnMut(),
) -> rusqlite::Result<()> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut chunks = records.chunks_exact(ROWS_PER_STATEMENT);
        if chunks.len() > 0 {
            let mut many = tx.prepare_cached(&insert_sql(ROWS_PER_STATEMENT))?;
            for chunk in &mut chunks {
                bind_rows(&mut many, chunk)?;
                many.raw_execute()?;
                pause();
            }
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut one = tx.prepare_cached(&insert_sql(1))?;
            for record in rest {
                bind_rows(&mut one, std::slice::from_ref(record))?;
                one.raw_execute()?;
            }
        }
    }
    tx.commit()
}

fn insert_sql(rows: usize) -> String {
    let row = format!("({})", vec!["?"; COLUMNS].join(", "));
    format!(
        "INSERT INTO login_audit ({LOGIN_COLUMNS}) VALUES {}",
        vec![row; rows].join(", ")
    )
}

/// Binds `records` to consecutive parameters, in the column order of [`LOGIN_COLUMNS`].
fn bind_rows(
    statement: &mut rusqlite::CachedStatement<'_>,
    records: &[LoginRecord],
) -> rusqlite::Result<()> {
    for (i, r) in records.iter().enumerate() {
        let at = i * COLUMNS;
        statement.raw_bind_parameter(at + 1, r.at)?;
        statement.raw_bind_parameter(at + 2, &r.request_id)?;
        statement.raw_bind_parameter(at + 3, &r.ip)?;
        statement.raw_bind_parameter(at + 4, &r.account)?;
        statement.raw_bind_parameter(at + 5, &r.integration)?;
        statement.raw_bind_parameter(at + 6, &r.token_name)?;
        statement.raw_bind_parameter(at + 7, &r.user)?;
        statement.raw_bind_parameter(at + 8, &r.role)?;
        statement.raw_bind_parameter(at + 9, &r.surface)?;
        statement.raw_bind_parameter(at + 10, &r.request_uri)?;
        statement.raw_bind_parameter(at + 11, &r.status)?;
        statement.raw_bind_parameter(at + 12, &r.detail)?;
        statement.raw_bind_parameter(at + 13, r.diagnosis.to_string())?;
    }
    Ok(())
}
