//! Helpers for the workspace's test binaries: the store's conformance suite, the server's HTTP
//! tests and the CLI's cluster tests all need a fresh PostgreSQL database of their own; the
//! server's and the CLI's browser tests drive Chromium ([`browser`]); the benchmarks seed a
//! directory with [`directory`].

pub mod browser;
pub mod directory;

/// Creates a new, empty database on the test PostgreSQL server (`KEYCARD_TEST_DATABASE_URL`,
/// which `scripts/test` starts) and returns its URL. Panics with a hint when the variable is
/// missing: these helpers serve tests only.
pub async fn fresh_postgres_database() -> String {
    let admin_url = std::env::var("KEYCARD_TEST_DATABASE_URL").expect(
        "KEYCARD_TEST_DATABASE_URL is not set: run the tests with scripts/test, which starts a throwaway PostgreSQL",
    );
    let name = format!("kc_{}", keycard_store::crypto::random_hex(8).unwrap());
    sqlx::any::install_default_drivers();
    let mut admin = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin_url)
        .await
        .unwrap();
    sqlx::Executor::execute(&mut admin, format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url.as_str(), |(base, _)| base);
    format!("{base}/{name}")
}
