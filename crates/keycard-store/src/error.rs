//! Store errors: each says what went wrong in words a CLI user can act on. None carries a
//! secret.

use std::path::PathBuf;

use keycard_core::RuleError;

use crate::Backend;
use crate::crypto::CryptoError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} `{key}` was not found{hint}")]
    NotFound {
        kind: &'static str,
        key: String,
        hint: &'static str,
    },
    #[error("{kind} `{key}` already exists")]
    Duplicate { kind: &'static str, key: String },
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error("{what}")]
    Conflict { what: String },
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("unsupported database URL scheme `{scheme}`: use postgres://… or a data directory")]
    UnsupportedUrl { scheme: String },
    #[error(
        "an in-memory SQLite database cannot hold a keycard directory (each pooled connection \
         would open its own, empty one): use a data directory or a sqlite: URL naming a file"
    )]
    InMemorySqlite,
    #[error("cannot connect to the {backend:?} database: {source}")]
    Connect {
        backend: Backend,
        source: sqlx::Error,
    },
    #[error("the database schema could not be brought up to date: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the directory holds an unreadable record: {what}")]
    Corrupt { what: &'static str },
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// From the native SQLite connection that writes login records.
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        Self::Database(error)
    }
}

impl StoreError {
    pub fn not_found(kind: &'static str, key: impl Into<String>) -> Self {
        Self::NotFound {
            kind,
            key: key.into(),
            hint: "",
        }
    }

    /// A stable code for scripts and tests.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "not_found",
            Self::Duplicate { .. } => "duplicate",
            Self::Rule(rule) => rule.code(),
            Self::Conflict { .. } => "conflict",
            Self::Crypto(_) => "crypto",
            Self::DataDir { .. } => "data_dir",
            Self::UnsupportedUrl { .. } | Self::InMemorySqlite => "unsupported_url",
            Self::Connect { .. } => "connect",
            Self::Migrate(_) => "migrate",
            Self::Corrupt { .. } => "corrupt",
            Self::Database(_) | Self::Sqlite(_) => "database",
        }
    }

    /// Whether the fault is the server's (the database, the master key, a damaged row), not
    /// the request's: a client is told the service is unavailable (503), not that its
    /// request or login is wrong.
    pub fn is_server_side(&self) -> bool {
        match self {
            Self::NotFound { .. }
            | Self::Duplicate { .. }
            | Self::Rule(_)
            | Self::Conflict { .. } => false,
            Self::Crypto(_)
            | Self::DataDir { .. }
            | Self::UnsupportedUrl { .. }
            | Self::InMemorySqlite
            | Self::Connect { .. }
            | Self::Migrate(_)
            | Self::Corrupt { .. }
            | Self::Database(_)
            | Self::Sqlite(_) => true,
        }
    }

    /// Whether PostgreSQL refused the data itself (SQLSTATE class 22, data exception, or 23,
    /// integrity constraint violation): the same write fails again however often it is
    /// retried, unlike a lost connection or a database that is down.
    pub fn is_refused_data(&self) -> bool {
        match self {
            Self::Database(sqlx::Error::Database(db)) => db.code().is_some_and(|code| {
                // SQLite's codes are numbers of at most four digits; SQLSTATEs have five.
                code.len() == 5 && (code.starts_with("22") || code.starts_with("23"))
            }),
            _ => false,
        }
    }

    /// Whether a database error is a unique-constraint violation (both backends).
    pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
        match error {
            sqlx::Error::Database(db) => db.is_unique_violation(),
            _ => false,
        }
    }
}
