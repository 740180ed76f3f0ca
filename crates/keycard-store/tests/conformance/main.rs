//! The store conformance suite: every test runs against SQLite (a fresh data directory) and
//! against a real PostgreSQL (a fresh database on the server that `scripts/test` starts; its
//! URL comes in `KEYCARD_TEST_DATABASE_URL`). Without that variable the PostgreSQL half fails,
//! loudly: it is never skipped.
// Tests fail by panicking; scenario tests read best as one long story.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::too_many_lines
)]

mod changes;
mod directory;
mod login_blocks;
mod secrets;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use keycard_core::AccountId;
use keycard_store::accounts::NewAccount;
use keycard_store::crypto::{KeyRing, MasterKey};
use keycard_store::{Location, Store};

/// A store under test and what keeps it alive.
pub struct Harness {
    pub store: Store,
    pub ring: KeyRing,
    pub clock: Arc<AtomicI64>,
    pub data_dir: Option<tempfile::TempDir>,
    pub database_url: Option<String>,
}

impl Harness {
    /// Where the directory is, for another store on it (another process's view).
    pub fn location(&self) -> Location {
        match (&self.data_dir, &self.database_url) {
            (Some(dir), _) => Location::DataDir(dir.path().to_owned()),
            (None, Some(url)) => Location::Url(url.clone()),
            (None, None) => unreachable!("a harness has a data directory or a database URL"),
        }
    }

    pub fn sqlite_file(&self) -> Option<PathBuf> {
        self.data_dir
            .as_ref()
            .map(|dir| dir.path().join("keycard.db"))
    }
}

pub const ACCOUNT: &str = "1234567";

pub fn account() -> AccountId {
    AccountId::parse(ACCOUNT).unwrap()
}

async fn finish(
    location: Location,
    data_dir: Option<tempfile::TempDir>,
    database_url: Option<String>,
) -> Harness {
    let ring = KeyRing::new(MasterKey::generate().unwrap());
    let clock = Arc::new(AtomicI64::new(1_700_000_000));
    let reader = clock.clone();
    let store = Store::open(&location, ring.clone())
        .await
        .unwrap()
        .with_clock(Arc::new(move || reader.load(Ordering::SeqCst)));
    store
        .create_account("test", NewAccount::new(account(), "Test Co"))
        .await
        .unwrap();
    Harness {
        store,
        ring,
        clock,
        data_dir,
        database_url,
    }
}

pub async fn sqlite() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let location = Location::DataDir(dir.path().to_owned());
    finish(location, Some(dir), None).await
}

/// A fresh database on the test PostgreSQL server.
pub async fn postgres() -> Harness {
    let url = keycard_testkit::fresh_postgres_database().await;
    finish(Location::Url(url.clone()), None, Some(url)).await
}

/// Runs each listed test on both backends.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::sqlite().await).await;
                }
            )*
        }
        mod postgres_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::postgres().await).await;
                }
            )*
        }
    };
}
pub(crate) use on_both_backends;

#[test]
fn migrations_have_the_same_names_on_both_backends() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let names = |backend: &str| {
        let mut names: Vec<String> = std::fs::read_dir(root.join(backend))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let sqlite = names("sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, names("postgres"));
}

/// An in-memory SQLite database would be one per pooled connection (the migrations on one,
/// the reads on another): refused with a message that says what to use instead.
#[tokio::test]
async fn in_memory_sqlite_is_refused_with_a_clear_error() {
    for url in [
        "sqlite::memory:",
        "sqlite://:memory:",
        "sqlite:",
        "sqlite:file:trail?mode=memory&cache=shared",
    ] {
        let ring = KeyRing::new(MasterKey::generate().unwrap());
        let error = Store::open(&Location::Url(url.to_owned()), ring)
            .await
            .err()
            .unwrap_or_else(|| panic!("{url} was accepted"));
        assert_eq!(error.code(), "unsupported_url", "{url}");
        assert!(
            error.to_string().contains("data directory"),
            "{url}: {error}"
        );
    }
}
