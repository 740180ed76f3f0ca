//! Change events between processes: PostgreSQL LISTEN/NOTIFY between two stores on one
//! directory. SQLite has no listener (one process serves a file).

use std::time::Duration;

use keycard_core::{ChangeEvent, EntityKind, IntegrationFlags, Level, SetupPermission};
use keycard_store::integrations::NewIntegration;
use keycard_store::roles::NewRole;
use keycard_store::tokens::{Creator, NewToken};
use keycard_store::users::NewUser;
use keycard_store::{ChangeListener, Location, Remote, Store};

use crate::{Harness, account};

fn integration(name: &str) -> NewIntegration {
    NewIntegration {
        name: name.into(),
        description: String::new(),
        flags: IntegrationFlags::tba_only(),
        concurrency_limit: None,
        auto_installed: false,
    }
}

fn role(name: &str) -> NewRole {
    NewRole {
        name: name.into(),
        setup: [SetupPermission::LogInUsingAccessTokens].into(),
        records: [("customer".to_owned(), Level::View)].into(),
        ..NewRole::default()
    }
}

/// A second store on the harness's database: another process's view.
async fn second_store(h: &Harness) -> Store {
    let url = h.database_url.clone().expect("a PostgreSQL harness");
    Store::open(&Location::Url(url), h.ring.clone())
        .await
        .unwrap()
}

/// The listener's next report, which must come within 2 s.
async fn next_within(listener: &mut ChangeListener) -> Remote {
    tokio::time::timeout(Duration::from_secs(2), listener.next())
        .await
        .expect("no change reported within 2 s")
}

fn changed(entity: EntityKind, id: i64) -> Remote {
    Remote::Changed(vec![ChangeEvent {
        account: Some(account()),
        entity,
        entity_id: id.to_string(),
    }])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_has_no_listener() {
    let h = crate::sqlite().await;
    assert!(h.store.listen_changes().await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_changes_reach_other_stores_only() {
    let h = crate::postgres().await;
    let a = &h.store;
    let b = second_store(&h).await;
    let mut a_listens = a
        .listen_changes()
        .await
        .unwrap()
        .expect("PostgreSQL listens");
    let mut b_listens = b
        .listen_changes()
        .await
        .unwrap()
        .expect("PostgreSQL listens");

    // A's change reaches B, naming the entity.
    let (created, _) = a
        .create_integration("admin", &account(), integration("Order Sync"))
        .await
        .unwrap();
    assert_eq!(
        next_within(&mut b_listens).await,
        changed(EntityKind::Integration, created.id)
    );

    // A refused change (rolled back) sends nothing: B's next report is A's next real change.
    let duplicate = a
        .create_integration("admin", &account(), integration("Order Sync"))
        .await
        .unwrap_err();
    assert_eq!(duplicate.code(), "duplicate");
    let made = a
        .create_role("admin", &account(), role("Integrator"))
        .await
        .unwrap();
    assert_eq!(
        next_within(&mut b_listens).await,
        changed(EntityKind::Role, made.id)
    );

    // A does not hear its own changes: its first report is B's change, sent after A's two.
    let other = b
        .create_role("admin", &account(), role("Other"))
        .await
        .unwrap();
    assert_eq!(
        next_within(&mut a_listens).await,
        changed(EntityKind::Role, other.id)
    );
    // Nor does B hear its own.
    let quiet = tokio::time::timeout(Duration::from_millis(200), b_listens.next()).await;
    assert!(quiet.is_err(), "B heard its own change: {quiet:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_many_changes_become_a_resync() {
    let h = crate::postgres().await;
    let a = &h.store;
    let b = second_store(&h).await;
    a.create_integration("admin", &account(), integration("Order Sync"))
        .await
        .unwrap();
    a.create_role("admin", &account(), role("Integrator"))
        .await
        .unwrap();
    a.create_user(
        "admin",
        &account(),
        NewUser {
            email: "sync@example.com".into(),
            name: "Sync".into(),
            password: None,
            roles: vec!["Integrator".into()],
        },
    )
    .await
    .unwrap();
    let mut b_listens = b
        .listen_changes()
        .await
        .unwrap()
        .expect("PostgreSQL listens");
    // 200 token events would pass PostgreSQL's 8000-byte payload limit.
    let batch = (0..200)
        .map(|i| NewToken {
            integration: "Order Sync".into(),
            user: "sync@example.com".into(),
            role: "Integrator".into(),
            name: Some(format!("t{i}")),
            expires_at: None,
        })
        .collect();
    let made = a
        .create_tokens("admin", &account(), &Creator::Operator, batch)
        .await
        .unwrap();
    assert_eq!(made.len(), 200);
    assert_eq!(next_within(&mut b_listens).await, Remote::Resync);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_lost_listener_reconnects_and_resyncs() {
    let h = crate::postgres().await;
    let a = &h.store;
    let b = second_store(&h).await;
    let mut b_listens = b
        .listen_changes()
        .await
        .unwrap()
        .expect("PostgreSQL listens");

    // Cut the listener's connection from the server side (this test's database only).
    let url = h.database_url.clone().unwrap();
    let mut admin = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let cut = sqlx::Executor::execute(
        &mut admin,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE 'LISTEN%'",
    )
    .await
    .unwrap();
    assert_eq!(cut.rows_affected(), 1, "one listening connection");

    // Events may have been missed while it was away: the listener says so once it is back.
    assert_eq!(next_within(&mut b_listens).await, Remote::Resync);
    // And it listens again.
    let (created, _) = a
        .create_integration("admin", &account(), integration("Order Sync"))
        .await
        .unwrap();
    assert_eq!(
        next_within(&mut b_listens).await,
        changed(EntityKind::Integration, created.id)
    );
}
