//! Secrets at rest: sealed, never readable from a copy of the database, re-sealed by rotation.

use keycard_core::{IntegrationFlags, Level, SetupPermission};
use keycard_store::crypto::MasterKey;
use keycard_store::integrations::NewIntegration;
use keycard_store::roles::NewRole;
use keycard_store::tokens::{Creator, NewToken};
use keycard_store::users::NewUser;
use keycard_store::{KeySource, Location, Store};

use crate::{Harness, account, on_both_backends};

on_both_backends!(
    no_secret_in_a_database_copy,
    rotation_reseals_every_secret,
    a_rotation_elsewhere_reaches_a_store_that_follows_the_key_file,
);

/// Creates one integration and one token; returns every secret value that now exists.
async fn make_secrets(h: &Harness) -> Vec<String> {
    let s = &h.store;
    let (_, consumer) = s
        .create_integration(
            "admin",
            &account(),
            NewIntegration {
                name: "Order Sync".into(),
                description: String::new(),
                flags: IntegrationFlags::tba_only(),
                concurrency_limit: None,
                auto_installed: false,
            },
        )
        .await
        .unwrap();
    s.create_role(
        "admin",
        &account(),
        NewRole {
            name: "Integrator".into(),
            setup: [SetupPermission::LogInUsingAccessTokens].into(),
            records: [("customer".to_owned(), Level::View)].into(),
            ..NewRole::default()
        },
    )
    .await
    .unwrap();
    s.create_user(
        "admin",
        &account(),
        NewUser {
            email: "sync@example.com".into(),
            name: "Sync".into(),
            password: Some("a long password".to_owned().into()),
            roles: vec!["Integrator".into()],
        },
    )
    .await
    .unwrap();
    let (_, token) = s
        .create_token(
            "admin",
            &account(),
            &Creator::Operator,
            NewToken {
                integration: "Order Sync".into(),
                user: "sync@example.com".into(),
                role: "Integrator".into(),
                name: None,
                expires_at: None,
            },
        )
        .await
        .unwrap();
    vec![
        consumer.consumer_secret.expose().to_owned(),
        token.token_secret.expose().to_owned(),
        "a long password".to_owned(),
    ]
}

/// Every byte the database holds on disk (SQLite: the file and its WAL) or dumps (PostgreSQL).
fn database_copy(h: &Harness) -> Vec<u8> {
    if let Some(file) = h.sqlite_file() {
        let mut bytes = std::fs::read(&file).unwrap();
        let wal = file.with_extension("db-wal");
        if let Ok(more) = std::fs::read(wal) {
            bytes.extend(more);
        }
        assert!(
            bytes.len() > 4096,
            "the SQLite file should hold the directory"
        );
        return bytes;
    }
    let url = h.database_url.as_ref().unwrap();
    let output = std::process::Command::new("pg_dump")
        .arg("--dbname")
        .arg(url)
        .output()
        .expect("pg_dump must be installed for this test");
    assert!(
        output.status.success(),
        "pg_dump failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("CREATE TABLE public.tokens"));
    output.stdout
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

async fn no_secret_in_a_database_copy(h: Harness) {
    let secrets = make_secrets(&h).await;
    let copy = database_copy(&h);
    for secret in &secrets {
        assert!(
            !contains(&copy, secret),
            "a secret is readable in the database copy"
        );
    }
    // The identifiers are there (so the check can see plaintext at all).
    let integration = h.store.integration(&account(), "Order Sync").await.unwrap();
    assert!(contains(&copy, &integration.consumer_key));
    // The audit trail never holds a secret either.
    let audit = serde_json::to_string(
        &h.store
            .admin_events(100)
            .await
            .unwrap()
            .iter()
            .map(|e| &e.detail)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    for secret in &secrets {
        assert!(!audit.contains(secret.as_str()));
    }
}

async fn rotation_reseals_every_secret(h: Harness) {
    let secrets = make_secrets(&h).await;
    let token_id = h.store.tokens(&account()).await.unwrap()[0]
        .token_id
        .clone();
    let mut ring = h.ring.clone();
    let old_id = ring.current_id().to_owned();
    ring.push(MasterKey::generate().unwrap());
    let total = h.store.sealed_secret_count().await.unwrap();
    let mut seen = Vec::new();
    let done = h
        .store
        .rotate_keys("admin", ring.clone(), |n| seen.push(n))
        .await
        .unwrap();
    assert_eq!((done, total), (2, 2));
    assert_eq!(seen, [1, 2]);

    // A store that only knows the new key reads everything.
    ring.retain_only_current();
    assert_ne!(ring.current_id(), old_id);
    let location = match (&h.data_dir, &h.database_url) {
        (Some(dir), _) => Location::DataDir(dir.path().to_owned()),
        (None, Some(url)) => Location::Url(url.clone()),
        _ => unreachable!(),
    };
    let reopened = Store::open(&location, ring).await.unwrap();
    let (_, secret) = reopened
        .token_by_token_id(&token_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(secret.expose(), secrets[1]);
    // And one that only knows the old key cannot.
    let old_only = Store::open(&location, h.ring.clone()).await.unwrap();
    assert_eq!(
        old_only
            .token_by_token_id(&token_id)
            .await
            .unwrap_err()
            .code(),
        "crypto"
    );
}

/// `keycard keys rotate` run by another process (the CLI beside a running server, or another
/// node) as the CLI runs it: both keys saved, every secret re-sealed, then only the new key
/// kept in the file. A server whose store follows the key file reads the re-sealed secrets
/// and seals new ones under the new key. Before, a running server kept its old ring: every
/// re-sealed secret failed to open (503 on logins) and the tokens it created were sealed
/// under a key the file no longer held.
async fn a_rotation_elsewhere_reaches_a_store_that_follows_the_key_file(h: Harness) {
    let secrets = make_secrets(&h).await;
    let token_id = h.store.tokens(&account()).await.unwrap()[0]
        .token_id
        .clone();
    let keys = tempfile::tempdir().unwrap();
    let path = keys.path().join("master.key");
    let source = KeySource::File(path.clone());
    h.ring.save(&source).unwrap();
    let server = Store::open(&h.location(), h.ring.clone())
        .await
        .unwrap()
        .with_key_file(&path);
    // The server has read the token (and would cache it) before the rotation.
    assert!(server.token_by_token_id(&token_id).await.unwrap().is_some());

    let mut ring = h.ring.clone();
    ring.push(MasterKey::generate().unwrap());
    ring.save(&source).unwrap();
    h.store
        .rotate_keys("admin", ring.clone(), |_| {})
        .await
        .unwrap();
    ring.retain_only_current();
    ring.save(&source).unwrap();

    let (_, secret) = server.token_by_token_id(&token_id).await.unwrap().unwrap();
    assert_eq!(secret.expose(), secrets[1]);
    // A token the server creates now is sealed under the new key: a store that holds only
    // that key (a node started after the rotation) reads it.
    let (_, created) = server
        .create_token(
            "admin",
            &account(),
            &Creator::Operator,
            NewToken {
                integration: "Order Sync".into(),
                user: "sync@example.com".into(),
                role: "Integrator".into(),
                name: Some("after rotation".into()),
                expires_at: None,
            },
        )
        .await
        .unwrap();
    let fresh = Store::open(&h.location(), ring).await.unwrap();
    let (_, secret) = fresh
        .token_by_token_id(&created.token_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(secret.expose(), created.token_secret.expose());
}
