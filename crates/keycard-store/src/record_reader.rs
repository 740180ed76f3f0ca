//! Reading one REST record on the SQLite directory, on the request's own thread.
//!
//! A record GET is a point lookup by primary key, answered from the page cache in a few
//! microseconds. Through sqlx each SQLite statement runs on the connection's worker thread, so
//! every read paid two thread hops and the pool's bookkeeping: the load benchmark measured a
//! record GET at twice the server CPU of a tokeninfo. So, as [`LoginWriter`](crate::LoginWriter)
//! does for the login audit, reads go through native read-only connections (rusqlite, one
//! cached statement) and run inline. In WAL mode a reader neither waits for nor blocks the
//! writers, and sees every transaction committed before it began, so a write through the pool
//! is visible to the next read. A reader that finds the database busy (SQLite's rare cases:
//! recovery after a crash, a connection in exclusive locking mode) does not wait on the
//! request's thread: it answers [`Read::Busy`] and the caller takes the pool, which waits.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::StoreError;

/// The outcome of a native read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Read<T> {
    Done(T),
    /// The database was locked: read through the pool instead.
    Busy,
}

/// Native read-only connections on the SQLite directory. Cheap to clone; clones share the idle
/// connections.
#[derive(Clone)]
pub(crate) struct RecordReader {
    path: Arc<PathBuf>,
    /// Connections not in use. A read takes one (or opens one when none is idle) and puts it
    /// back, so concurrent reads on several runtime threads never share a connection.
    idle: Arc<Mutex<Vec<Connection>>>,
}

/// Idle connections kept beyond this many are closed: more than the runtime's threads would
/// only hold memory (each has its own page cache).
const MAX_IDLE: usize = 16;

impl RecordReader {
    pub(crate) fn new(path: &Path) -> Self {
        Self {
            path: Arc::new(path.to_path_buf()),
            idle: Arc::default(),
        }
    }

    /// The body of one record, as stored (JSON text); `Done(None)` when there is none.
    pub(crate) fn rest_record(
        &self,
        account: &str,
        record_type: &str,
        id: i64,
    ) -> Result<Read<Option<String>>, StoreError> {
        let pooled = self.idle().pop();
        let connection = match pooled.map_or_else(|| open(&self.path), Ok) {
            Ok(connection) => connection,
            Err(error) if is_busy(&error) => return Ok(Read::Busy),
            Err(error) => return Err(StoreError::Sqlite(error)),
        };
        let result = connection
            .prepare_cached(
                "SELECT body FROM records WHERE account_id = ?1 AND record_type = ?2 AND id = ?3",
            )
            .and_then(|mut statement| {
                statement
                    .query_row((account, record_type, id), |row| row.get::<_, String>(0))
                    .optional()
            });
        match result {
            Ok(body) => {
                self.put_back(connection);
                Ok(Read::Done(body))
            }
            Err(error) if is_busy(&error) => {
                self.put_back(connection);
                Ok(Read::Busy)
            }
            // The connection is dropped: the next read opens a fresh one.
            Err(error) => Err(StoreError::Sqlite(error)),
        }
    }

    fn put_back(&self, connection: Connection) {
        let mut idle = self.idle();
        if idle.len() < MAX_IDLE {
            idle.push(connection);
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// A read-only connection that never waits for a lock (rusqlite's default is to wait 5 s).
/// The database exists and is in WAL mode: [`Store::open`](crate::Store::open) ran the
/// migrations on the pool, whose connections set the mode, before any reader is made.
fn open(path: &Path) -> rusqlite::Result<Connection> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_timeout(Duration::ZERO)?;
    // 8 MiB of page cache per connection keeps the records table's upper pages in memory.
    connection.execute_batch("PRAGMA cache_size = -8192;")?;
    Ok(connection)
}

impl std::fmt::Debug for RecordReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordReader")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn database() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keycard.db");
        let connection = Connection::open(&path).unwrap();
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 CREATE TABLE records (id INTEGER PRIMARY KEY, account_id TEXT, record_type TEXT, body TEXT);
                 INSERT INTO records VALUES (7, '1234567', 'customer', '{\"companyName\":\"Acme\"}');",
            )
            .unwrap();
        (dir, path)
    }

    #[test]
    fn reads_one_record_by_account_type_and_id() {
        let (_dir, path) = database();
        let reader = RecordReader::new(&path);
        assert_eq!(
            reader.rest_record("1234567", "customer", 7).unwrap(),
            Read::Done(Some("{\"companyName\":\"Acme\"}".to_owned()))
        );
        for (account, kind, id) in [
            ("1234567_SB1", "customer", 7),
            ("1234567", "vendor", 7),
            ("1234567", "customer", 8),
        ] {
            assert_eq!(
                reader.rest_record(account, kind, id).unwrap(),
                Read::Done(None)
            );
        }
        // The connection went back to be used again.
        assert_eq!(reader.idle().len(), 1);
    }

    #[test]
    fn sees_what_another_connection_committed_since_the_last_read() {
        let (_dir, path) = database();
        let reader = RecordReader::new(&path);
        assert_eq!(
            reader.rest_record("1234567", "customer", 8).unwrap(),
            Read::Done(None)
        );
        let writer = Connection::open(&path).unwrap();
        writer
            .execute(
                "INSERT INTO records VALUES (8, '1234567', 'customer', '{}')",
                [],
            )
            .unwrap();
        assert_eq!(
            reader.rest_record("1234567", "customer", 8).unwrap(),
            Read::Done(Some("{}".to_owned()))
        );
    }

    #[test]
    fn a_locked_database_answers_busy_at_once_rather_than_waiting() {
        let (_dir, path) = database();
        let reader = RecordReader::new(&path);
        // A connection in exclusive locking mode that has written keeps every other
        // connection out, readers included, until it closes.
        let exclusive = Connection::open(&path).unwrap();
        exclusive
            .execute_batch(
                "PRAGMA locking_mode = EXCLUSIVE;
                 INSERT INTO records VALUES (9, '1234567', 'customer', '{}');",
            )
            .unwrap();
        let started = std::time::Instant::now();
        assert_eq!(
            reader.rest_record("1234567", "customer", 7).unwrap(),
            Read::Busy
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        drop(exclusive);
        assert_eq!(
            reader.rest_record("1234567", "customer", 9).unwrap(),
            Read::Done(Some("{}".to_owned()))
        );
    }
}
