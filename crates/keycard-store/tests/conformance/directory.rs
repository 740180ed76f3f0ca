//! The directory's records and NetSuite's rules over them.

use keycard_core::token::check_usable;
use keycard_core::{
    EntityKind, IntegrationFlags, IntegrationState, Level, SetupPermission, TokenState, UserStatus,
};
use keycard_store::accounts::{AccountUpdate, NewAccount};
use keycard_store::integrations::{IntegrationUpdate, NewIntegration};
use keycard_store::roles::{NewRole, PermissionChange};
use keycard_store::tokens::{Creator, NewToken};
use keycard_store::users::NewUser;
use zeroize::Zeroizing;

use crate::{ACCOUNT, Harness, account, on_both_backends};

on_both_backends!(
    accounts_are_validated_and_unique,
    integrations_carry_fresh_credentials_and_limits,
    blocking_resetting_and_deleting_integrations,
    roles_grant_revoke_and_refuse_deletion_in_use,
    users_roles_and_passwords,
    tokens_follow_netsuite_rules,
    token_states_and_inventory,
    refused_changes_write_nothing,
    changes_are_published_after_commit,
    login_records_are_written_in_batches_in_order,
    login_records_match_each_filter_alone_and_together,
    process_numbers_count_up_from_one,
    tokens_are_created_in_bulk_all_or_none,
    rest_records_read_back_every_committed_change,
    names_are_never_ids_and_a_nul_finds_nothing,
    concurrent_changes_see_each_others_writes,
    changes_since_lists_what_other_processes_changed,
    record_merges_at_once_lose_no_field,
);

fn integration(name: &str) -> NewIntegration {
    NewIntegration {
        name: name.into(),
        description: String::new(),
        flags: IntegrationFlags::tba_only(),
        concurrency_limit: None,
        auto_installed: false,
    }
}

fn login_role(name: &str) -> NewRole {
    NewRole {
        name: name.into(),
        setup: [
            SetupPermission::LogInUsingAccessTokens,
            SetupPermission::RestWebServices,
        ]
        .into(),
        records: [("customer".to_owned(), Level::View)].into(),
        ..NewRole::default()
    }
}

fn user(email: &str, roles: &[&str]) -> NewUser {
    NewUser {
        email: email.into(),
        name: email.split('@').next().unwrap().into(),
        password: Some(Zeroizing::new("correct horse battery".into())),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
    }
}

fn token(integration: &str, user: &str, role: &str) -> NewToken {
    NewToken {
        integration: integration.into(),
        user: user.into(),
        role: role.into(),
        name: None,
        expires_at: None,
    }
}

/// Integration, role, user: the minimum for a token.
async fn seed(h: &Harness) {
    let s = &h.store;
    s.create_integration("admin", &account(), integration("Order Sync"))
        .await
        .unwrap();
    s.create_role("admin", &account(), login_role("Integrator"))
        .await
        .unwrap();
    s.create_user(
        "admin",
        &account(),
        user("sync@example.com", &["Integrator"]),
    )
    .await
    .unwrap();
}

async fn accounts_are_validated_and_unique(h: Harness) {
    let s = &h.store;
    let sandbox = keycard_core::AccountId::parse("1234567_sb1").unwrap();
    let created = s
        .create_account(
            "admin",
            NewAccount::new(sandbox.clone(), "Test Co (sandbox)"),
        )
        .await
        .unwrap();
    assert_eq!(created.id.as_str(), "1234567_SB1");
    assert_eq!(created.concurrency_limit(), 5);
    assert!(created.has(keycard_core::Feature::TokenBasedAuthentication));
    let duplicate = s
        .create_account("admin", NewAccount::new(account(), "again"))
        .await
        .unwrap_err();
    assert_eq!(duplicate.code(), "duplicate");
    assert_eq!(s.accounts().await.unwrap().len(), 2);
    let mut no_room = NewAccount::new(keycard_core::AccountId::parse("7777777").unwrap(), "None");
    no_room.concurrency_limit_override = Some(0);
    let refused = s.create_account("admin", no_room).await.unwrap_err();
    assert_eq!(refused.code(), "concurrency_limit_zero");
    assert_eq!(s.accounts().await.unwrap().len(), 2);

    let update = AccountUpdate {
        disable: vec![keycard_core::Feature::SoapWebServices],
        tier: Some(keycard_core::ServiceTier::Premium),
        suitecloud_plus_licenses: Some(2),
        ..AccountUpdate::default()
    };
    let updated = s.update_account("admin", &sandbox, update).await.unwrap();
    assert_eq!(updated.concurrency_limit(), 35);
    assert!(!updated.has(keycard_core::Feature::SoapWebServices));
    assert_eq!(s.account(&sandbox).await.unwrap(), updated);
    let missing = keycard_core::AccountId::parse("7654321").unwrap();
    assert_eq!(s.account(&missing).await.unwrap_err().code(), "not_found");
}

async fn integrations_carry_fresh_credentials_and_limits(h: Harness) {
    let s = &h.store;
    let (record, credentials) = s
        .create_integration("admin", &account(), integration("Order Sync"))
        .await
        .unwrap();
    let (_, other) = s
        .create_integration("admin", &account(), integration("Shipping"))
        .await
        .unwrap();
    for value in [
        &credentials.consumer_key,
        credentials.consumer_secret.expose(),
        &other.consumer_key,
    ] {
        assert_eq!(value.len(), 64);
        assert!(value.bytes().all(|b| b.is_ascii_hexdigit()));
    }
    assert_ne!(credentials.consumer_key, other.consumer_key);
    assert_eq!(record.state, IntegrationState::Enabled);
    assert_eq!(record.application_id.len(), 36);
    assert_eq!(
        s.create_integration("admin", &account(), integration("Order Sync"))
            .await
            .unwrap_err()
            .code(),
        "duplicate"
    );

    // The server's lookup finds the secret again.
    let (found, secret) = s
        .integration_by_consumer_key(&credentials.consumer_key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, record.id);
    assert_eq!(secret.expose(), credentials.consumer_secret.expose());

    // Limits: the standard tier's 5 leaves at most 4 to one integration, then 5-3-1 = 1.
    let limit = |n| IntegrationUpdate {
        concurrency_limit: Some(Some(n)),
        ..IntegrationUpdate::default()
    };
    assert_eq!(
        s.update_integration("admin", &account(), "Order Sync", limit(5))
            .await
            .unwrap_err()
            .code(),
        "concurrency_limit_too_high"
    );
    s.update_integration("admin", &account(), "Order Sync", limit(3))
        .await
        .unwrap();
    assert_eq!(
        s.update_integration("admin", &account(), "Shipping", limit(2))
            .await
            .unwrap_err()
            .code(),
        "concurrency_limit_too_high"
    );
    s.update_integration("admin", &account(), "Shipping", limit(1))
        .await
        .unwrap();

    // Authorization flow needs a valid callback URL; localhost is allowed over http.
    let flow = |url: Option<&str>| IntegrationUpdate {
        tba_authorization_flow: Some(true),
        callback_url: Some(url.map(str::to_owned)),
        ..IntegrationUpdate::default()
    };
    assert_eq!(
        s.update_integration("admin", &account(), "Shipping", flow(None))
            .await
            .unwrap_err()
            .code(),
        "callback_url_required"
    );
    assert_eq!(
        s.update_integration(
            "admin",
            &account(),
            "Shipping",
            flow(Some("http://example.com/cb"))
        )
        .await
        .unwrap_err()
        .code(),
        "invalid_callback_url"
    );
    let updated = s
        .update_integration(
            "admin",
            &account(),
            "Shipping",
            flow(Some("http://localhost:8765/cb")),
        )
        .await
        .unwrap();
    assert_eq!(
        updated.flags.callback_url.as_deref(),
        Some("http://localhost:8765/cb")
    );

    // Auto-installed integrations wait for approval when the account asks for it.
    let require = AccountUpdate {
        require_approval_for_auto_installed: Some(true),
        ..AccountUpdate::default()
    };
    s.update_account("admin", &account(), require)
        .await
        .unwrap();
    let mut auto = integration("Bundle App");
    auto.auto_installed = true;
    let (waiting, _) = s
        .create_integration("admin", &account(), auto)
        .await
        .unwrap();
    assert_eq!(waiting.state, IntegrationState::WaitingForApproval);
}

async fn blocking_resetting_and_deleting_integrations(h: Harness) {
    seed(&h).await;
    let s = &h.store;
    let (_, creds) = s
        .create_token(
            "admin",
            &account(),
            &Creator::Operator,
            token("Order Sync", "sync@example.com", "Integrator"),
        )
        .await
        .unwrap();

    let blocked = s
        .set_integration_state("admin", &account(), "Order Sync", IntegrationState::Blocked)
        .await
        .unwrap();
    assert_eq!(blocked.state, IntegrationState::Blocked);
    let refused = s
        .create_token(
            "admin",
            &account(),
            &Creator::Operator,
            token("Order Sync", "sync@example.com", "Integrator"),
        )
        .await;
    assert_eq!(refused.unwrap_err().code(), "integration_not_enabled");
    s.set_integration_state("admin", &account(), "Order Sync", IntegrationState::Enabled)
        .await
        .unwrap();

    let before = s.integration(&account(), "Order Sync").await.unwrap();
    let (after, fresh) = s
        .reset_integration_credentials("admin", &account(), "Order Sync")
        .await
        .unwrap();
    assert_ne!(before.consumer_key, fresh.consumer_key);
    assert_eq!(after.consumer_key, fresh.consumer_key);
    assert!(
        s.integration_by_consumer_key(&before.consumer_key)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.integration_by_consumer_key(&fresh.consumer_key)
            .await
            .unwrap()
            .is_some()
    );

    let deleted = s
        .delete_integration("admin", &account(), "Order Sync")
        .await
        .unwrap();
    assert_eq!(deleted.state, IntegrationState::Deleted);
    let (tok, _) = s.token_by_token_id(&creds.token_id).await.unwrap().unwrap();
    assert!(matches!(tok.state, TokenState::Revoked { ref by, .. } if by == "admin"));
    // Still listed, for audit; the name is free again.
    assert_eq!(s.integrations(&account()).await.unwrap().len(), 1);
    s.create_integration("admin", &account(), integration("Order Sync"))
        .await
        .unwrap();
    assert_eq!(
        s.delete_integration("admin", &account(), &deleted.id.to_string())
            .await
            .unwrap_err()
            .code(),
        "conflict"
    );
}

async fn roles_grant_revoke_and_refuse_deletion_in_use(h: Harness) {
    seed(&h).await;
    let s = &h.store;
    let grant = PermissionChange {
        records: [("salesorder".to_owned(), Level::Edit)].into(),
        setup: [SetupPermission::SoapWebServices].into(),
        allowed_ips: Some(vec![
            keycard_core::role::parse_ip_range("203.0.113.0/24").unwrap(),
        ]),
        ..PermissionChange::default()
    };
    let role = s
        .grant("admin", &account(), "Integrator", grant)
        .await
        .unwrap();
    assert!(role.allows("salesorder", Level::Edit) && role.has(SetupPermission::SoapWebServices));
    assert!(!role.ip_allowed("198.51.100.1".parse().unwrap()));
    let revoke = PermissionChange {
        setup: [SetupPermission::SoapWebServices].into(),
        ..PermissionChange::default()
    };
    let role = s
        .revoke_permissions("admin", &account(), &role.id.to_string(), revoke)
        .await
        .unwrap();
    assert!(!role.has(SetupPermission::SoapWebServices));
    assert_eq!(s.role(&account(), "Integrator").await.unwrap(), role);
    assert_eq!(
        s.create_role("admin", &account(), login_role("Integrator"))
            .await
            .unwrap_err()
            .code(),
        "duplicate"
    );
    assert_eq!(
        s.delete_role("admin", &account(), "Integrator")
            .await
            .unwrap_err()
            .code(),
        "conflict"
    );
    s.create_role("admin", &account(), login_role("Unused"))
        .await
        .unwrap();
    s.delete_role("admin", &account(), "Unused").await.unwrap();
    assert_eq!(
        s.role(&account(), "Unused").await.unwrap_err().code(),
        "not_found"
    );
}

async fn users_roles_and_passwords(h: Harness) {
    seed(&h).await;
    let s = &h.store;
    assert_eq!(
        s.create_user("admin", &account(), user("SYNC@example.com", &[]))
            .await
            .unwrap_err()
            .code(),
        "duplicate"
    );
    assert_eq!(
        s.create_user("admin", &account(), user("not-an-email", &[]))
            .await
            .unwrap_err()
            .code(),
        "invalid_email"
    );
    let found = s
        .check_password(&account(), "Sync@Example.com", "correct horse battery")
        .await
        .unwrap();
    assert_eq!(found.unwrap().email, "sync@example.com");
    assert!(
        s.check_password(&account(), "sync@example.com", "wrong password")
            .await
            .unwrap()
            .is_none()
    );
    s.set_password("admin", &account(), "sync@example.com", "another long one")
        .await
        .unwrap();
    assert!(
        s.check_password(&account(), "sync@example.com", "another long one")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        s.set_password("admin", &account(), "sync@example.com", "short")
            .await
            .unwrap_err()
            .code(),
        "conflict"
    );

    s.create_role("admin", &account(), login_role("Viewer"))
        .await
        .unwrap();
    let u = s
        .assign_role("admin", &account(), "sync@example.com", "Viewer")
        .await
        .unwrap();
    assert_eq!(u.roles.len(), 2);
    assert_eq!(
        s.assign_role("admin", &account(), "sync@example.com", "Viewer")
            .await
            .unwrap_err()
            .code(),
        "conflict"
    );
    let u = s
        .remove_role("admin", &account(), &u.id.to_string(), "Viewer")
        .await
        .unwrap();
    assert_eq!(u.roles.len(), 1);
    let u = s
        .set_user_status(
            "admin",
            &account(),
            "sync@example.com",
            UserStatus::Inactive,
        )
        .await
        .unwrap();
    assert_eq!(s.users(&account()).await.unwrap(), vec![u]);
}

async fn tokens_follow_netsuite_rules(h: Harness) {
    seed(&h).await;
    let s = &h.store;
    // A role without "Log in using Access Tokens".
    s.create_role(
        "admin",
        &account(),
        NewRole {
            name: "No Login".into(),
            ..NewRole::default()
        },
    )
    .await
    .unwrap();
    s.assign_role("admin", &account(), "sync@example.com", "No Login")
        .await
        .unwrap();
    let refused = s
        .create_token(
            "admin",
            &account(),
            &Creator::Operator,
            token("Order Sync", "sync@example.com", "No Login"),
        )
        .await;
    assert_eq!(refused.unwrap_err().code(), "role_cannot_use_tokens");
    // A role the user does not hold.
    s.create_role("admin", &account(), login_role("Other"))
        .await
        .unwrap();
    let refused = s
        .create_token(
            "admin",
            &account(),
            &Creator::Operator,
            token("Order Sync", "sync@example.com", "Other"),
        )
        .await;
    assert_eq!(refused.unwrap_err().code(), "role_not_held");
    // TBA off on the integration.
    let no_tba = IntegrationUpdate {
        tba: Some(false),
        ..IntegrationUpdate::default()
    };
    s.update_integration("admin", &account(), "Order Sync", no_tba)
        .await
        .unwrap();
    let refused = s
        .create_token(
            "admin",
            &account(),
            &Creator::Operator,
            token("Order Sync", "sync@example.com", "Integrator"),
        )
        .await;
    assert_eq!(refused.unwrap_err().code(), "integration_tba_disabled");
    s.update_integration(
        "admin",
        &account(),
        "Order Sync",
        IntegrationUpdate {
            tba: Some(true),
            ..IntegrationUpdate::default()
        },
    )
    .await
    .unwrap();

    // Access Token Management: for others, not Administrator-role tokens of others.
    s.create_role(
        "admin",
        &account(),
        NewRole {
            name: "Token Manager".into(),
            setup: [SetupPermission::AccessTokenManagement].into(),
            ..NewRole::default()
        },
    )
    .await
    .unwrap();
    s.create_role(
        "admin",
        &account(),
        NewRole {
            name: "Administrator".into(),
            setup: [SetupPermission::Administrator].into(),
            ..NewRole::default()
        },
    )
    .await
    .unwrap();
    s.create_user(
        "admin",
        &account(),
        user("manager@example.com", &["Token Manager"]),
    )
    .await
    .unwrap();
    s.assign_role("admin", &account(), "sync@example.com", "Administrator")
        .await
        .unwrap();
    let manager = Creator::User {
        user: "manager@example.com".into(),
        role: "Token Manager".into(),
    };
    s.create_token(
        "manager@example.com",
        &account(),
        &manager,
        token("Order Sync", "sync@example.com", "Integrator"),
    )
    .await
    .unwrap();
    let refused = s
        .create_token(
            "manager@example.com",
            &account(),
            &manager,
            token("Order Sync", "sync@example.com", "Administrator"),
        )
        .await;
    assert_eq!(refused.unwrap_err().code(), "administrator_token_for_other");

    // The operator creates one with the default name; it works until the role is removed.
    let (created, creds) = s
        .create_token(
            "admin",
            &account(),
            &Creator::Operator,
            token("Order Sync", "sync@example.com", "Integrator"),
        )
        .await
        .unwrap();
    assert_eq!(created.name, "Order Sync sync Integrator");
    assert_eq!(creds.token_id.len(), 64);
    let (found, secret) = s.token_by_token_id(&creds.token_id).await.unwrap().unwrap();
    assert_eq!(secret.expose(), creds.token_secret.expose());
    let integration = s.integration(&account(), "Order Sync").await.unwrap();
    let role = s.role(&account(), "Integrator").await.unwrap();
    let holder = s.user(&account(), "sync@example.com").await.unwrap();
    check_usable(
        &found.state,
        found.expires_at,
        &integration,
        &holder,
        &role,
        s.now(),
    )
    .unwrap();
    let holder = s
        .remove_role("admin", &account(), "sync@example.com", "Integrator")
        .await
        .unwrap();
    let still = s.token(&account(), &creds.token_id).await.unwrap();
    assert_eq!(still.state, TokenState::Active);
    assert_eq!(
        check_usable(
            &still.state,
            still.expires_at,
            &integration,
            &holder,
            &role,
            s.now()
        ),
        Err(keycard_core::Unusable::RoleNotHeld)
    );

    // Expiry must lie ahead; deleting the user deletes its tokens.
    let mut expired = token("Order Sync", "manager@example.com", "Token Manager");
    expired.expires_at = Some(s.now() - 1);
    assert_eq!(
        s.create_token("admin", &account(), &Creator::Operator, expired)
            .await
            .unwrap_err()
            .code(),
        "expiry_in_past"
    );
    s.delete_user("admin", &account(), "sync@example.com")
        .await
        .unwrap();
    assert!(
        s.token_by_token_id(&creds.token_id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(s.tokens(&account()).await.unwrap().is_empty());
}

async fn token_states_and_inventory(h: Harness) {
    seed(&h).await;
    let s = &h.store;
    let (created, creds) = s
        .create_token(
            "admin",
            &account(),
            &Creator::Operator,
            token("Order Sync", "sync@example.com", "Integrator"),
        )
        .await
        .unwrap();
    let key = created.id.to_string();
    assert_eq!(
        s.set_token_active("admin", &account(), &key, false)
            .await
            .unwrap()
            .state,
        TokenState::Inactive
    );
    assert_eq!(
        s.set_token_active("admin", &account(), &key, true)
            .await
            .unwrap()
            .state,
        TokenState::Active
    );
    s.touch_token(created.id, 1_700_000_100, "203.0.113.9")
        .await
        .unwrap();
    let revoked = s
        .revoke_token("admin", &account(), &creds.token_id)
        .await
        .unwrap();
    assert!(matches!(
        revoked.state,
        TokenState::Revoked {
            at: 1_700_000_000,
            ..
        }
    ));
    assert_eq!(
        s.revoke_token("admin", &account(), &key)
            .await
            .unwrap_err()
            .code(),
        "token_revoked"
    );
    assert_eq!(
        s.set_token_active("admin", &account(), &key, true)
            .await
            .unwrap_err()
            .code(),
        "token_revoked"
    );

    let inventory = s.token_inventory(&account()).await.unwrap();
    assert_eq!(inventory.len(), 1);
    let row = &inventory[0];
    let integration = s.integration(&account(), "Order Sync").await.unwrap();
    assert_eq!(row.consumer_key_last4, integration.consumer_key[60..]);
    assert_eq!(row.token_last4, creds.token_id[60..]);
    assert_eq!(
        (row.user.as_str(), row.role.as_str(), row.state.as_str()),
        ("sync@example.com", "Integrator", "revoked")
    );
    assert_eq!(
        (row.last_used_at, row.last_used_ip.as_deref()),
        (Some(1_700_000_100), Some("203.0.113.9"))
    );
}

async fn refused_changes_write_nothing(h: Harness) {
    seed(&h).await;
    let s = &h.store;
    let events_before = s.admin_events(1000).await.unwrap().len();
    // Fails after the user's roles were read: the transaction rolls back whole.
    let refused = s
        .create_user(
            "admin",
            &account(),
            user("new@example.com", &["Integrator", "No Such Role"]),
        )
        .await;
    assert_eq!(refused.unwrap_err().code(), "not_found");
    assert_eq!(
        s.user(&account(), "new@example.com")
            .await
            .unwrap_err()
            .code(),
        "not_found"
    );
    let refused = s
        .create_token(
            "admin",
            &account(),
            &Creator::Operator,
            token("Order Sync", "sync@example.com", "Nope"),
        )
        .await;
    assert_eq!(refused.unwrap_err().code(), "not_found");
    assert!(s.tokens(&account()).await.unwrap().is_empty());
    assert_eq!(s.admin_events(1000).await.unwrap().len(), events_before);
}

async fn changes_are_published_after_commit(h: Harness) {
    let s = &h.store;
    let mut events = s.subscribe();
    let (record, _) = s
        .create_integration("admin", &account(), integration("Order Sync"))
        .await
        .unwrap();
    let event = events.try_recv().unwrap();
    assert_eq!(
        (event.entity, event.entity_id),
        (EntityKind::Integration, record.id.to_string())
    );
    assert!(
        s.create_integration("admin", &account(), integration("Order Sync"))
            .await
            .is_err()
    );
    assert!(
        events.try_recv().is_err(),
        "a refused change publishes nothing"
    );
    let audit = s.admin_events(10).await.unwrap();
    assert_eq!(
        audit[0].action,
        keycard_core::AdminAction::IntegrationCreated
    );
    assert_eq!(audit[0].actor, "admin");
}

async fn process_numbers_count_up_from_one(h: Harness) {
    let mut taken = Vec::new();
    for _ in 0..3 {
        taken.push(h.store.next_process_number().await.unwrap());
    }
    assert_eq!(taken, [1, 2, 3]);
}

/// Each filter of the trail's query on its own, then several at once, then with a limit: the
/// statement holds only the filters given, so each must select exactly its rows.
async fn login_records_match_each_filter_alone_and_together(h: Harness) {
    use keycard_store::audit::LoginQuery;
    let records: Vec<keycard_core::LoginRecord> = (0..12)
        .map(|i| keycard_core::LoginRecord {
            at: 1_700_000_000 + i,
            request_id: format!("f{i:02}").into(),
            ip: format!("10.0.0.{}", i % 2).into(),
            account: Some(if i < 8 { ACCOUNT } else { "7654321" }.into()),
            integration: Some(format!("app{}", i % 3).into()),
            token_name: Some(format!("token{}", i % 4).into()),
            user: Some(format!("u{}@example.com", i % 2).into()),
            role: None,
            surface: if i % 2 == 0 { "rest" } else { "soap" }.into(),
            request_uri: "/".into(),
            status: if i % 3 == 0 { "Failure" } else { "Success" }.into(),
            detail: if i % 3 == 0 { "InvalidSignature" } else { "" }.into(),
            diagnosis: serde_json::Value::Null,
        })
        .collect();
    h.store.insert_login_records(&records).await.unwrap();
    let ids = |query: LoginQuery| {
        let store = h.store.clone();
        async move {
            let found = store.login_records(&query).await.unwrap();
            found.into_iter().map(|r| r.request_id).collect::<Vec<_>>()
        }
    };
    let newest_first = |pick: &dyn Fn(i64) -> bool| {
        (0..12)
            .rev()
            .filter(|i| pick(*i))
            .map(|i| format!("f{i:02}"))
            .collect::<Vec<_>>()
    };
    let text = |value: &str| Some(value.to_owned());
    let cases: Vec<(LoginQuery, Vec<String>)> = vec![
        (
            LoginQuery {
                request_id: text("f05"),
                ..Default::default()
            },
            vec!["f05".into()],
        ),
        (
            LoginQuery {
                request_id: text("nope"),
                ..Default::default()
            },
            vec![],
        ),
        (
            LoginQuery {
                account: text(ACCOUNT),
                ..Default::default()
            },
            newest_first(&|i| i < 8),
        ),
        (
            LoginQuery {
                since: Some(1_700_000_009),
                ..Default::default()
            },
            newest_first(&|i| i >= 9),
        ),
        (
            LoginQuery {
                until: Some(1_700_000_002),
                ..Default::default()
            },
            newest_first(&|i| i <= 2),
        ),
        (
            LoginQuery {
                status: text("Failure"),
                ..Default::default()
            },
            newest_first(&|i| i % 3 == 0),
        ),
        (
            LoginQuery {
                detail: text("InvalidSignature"),
                ..Default::default()
            },
            newest_first(&|i| i % 3 == 0),
        ),
        (
            LoginQuery {
                user: text("u1@example.com"),
                ..Default::default()
            },
            newest_first(&|i| i % 2 == 1),
        ),
        (
            LoginQuery {
                integration: text("app2"),
                ..Default::default()
            },
            newest_first(&|i| i % 3 == 2),
        ),
        (
            LoginQuery {
                token_name: text("token3"),
                ..Default::default()
            },
            newest_first(&|i| i % 4 == 3),
        ),
        (
            LoginQuery {
                ip: text("10.0.0.0"),
                ..Default::default()
            },
            newest_first(&|i| i % 2 == 0),
        ),
        (
            LoginQuery {
                surface: text("soap"),
                ..Default::default()
            },
            newest_first(&|i| i % 2 == 1),
        ),
        (
            LoginQuery {
                account: text(ACCOUNT),
                since: Some(1_700_000_002),
                until: Some(1_700_000_007),
                surface: text("rest"),
                ..Default::default()
            },
            newest_first(&|i| (2..=7).contains(&i) && i % 2 == 0),
        ),
        (
            LoginQuery {
                request_id: text("f09"),
                account: text(ACCOUNT),
                ..Default::default()
            },
            vec![],
        ),
        (
            LoginQuery {
                status: text("Success"),
                limit: 3,
                ..Default::default()
            },
            vec!["f11".into(), "f10".into(), "f08".into()],
        ),
    ];
    for (query, expected) in cases {
        let shown = format!("{query:?}");
        assert_eq!(ids(query).await, expected, "{shown}");
    }
}

async fn login_records_are_written_in_batches_in_order(h: Harness) {
    let version = h.store.directory_version().await.unwrap();
    // 150 records in one call, one transaction.
    let records: Vec<keycard_core::LoginRecord> = (0..150)
        .map(|i| keycard_core::LoginRecord {
            at: 1_700_000_000 + i,
            request_id: format!("req{i:03}").into(),
            ip: "127.0.0.1".into(),
            account: Some(ACCOUNT.into()),
            integration: Some("Order Sync".into()),
            token_name: None,
            user: (i % 2 == 0).then(|| "a@example.com".into()),
            role: None,
            surface: "rest".into(),
            request_uri: "/rest/tokeninfo?x='1'".into(),
            status: if i % 3 == 0 { "Failure" } else { "Success" }.into(),
            detail: if i % 3 == 0 { "InvalidSignature" } else { "" }.into(),
            diagnosis: serde_json::json!({ "n": i }),
        })
        .collect();
    h.store.insert_login_records(&records).await.unwrap();
    let all = h
        .store
        .login_records(&keycard_store::audit::LoginQuery::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 150);
    let newest_first: Vec<String> = records
        .iter()
        .rev()
        .map(|r| r.request_id.to_string())
        .collect();
    assert_eq!(
        all.iter().map(|r| r.request_id.clone()).collect::<Vec<_>>(),
        newest_first
    );
    assert_eq!(all[0], records[149]);
    // Every column of every row, in both the multi-row statements and the remainder.
    assert_eq!(all.iter().rev().cloned().collect::<Vec<_>>(), records);
    let failures = h
        .store
        .login_records(&keycard_store::audit::LoginQuery {
            detail: Some("InvalidSignature".into()),
            user: Some("a@example.com".into()),
            since: Some(1_700_000_100),
            ..Default::default()
        })
        .await
        .unwrap();
    // i in 100..150, even, multiple of 3: 102, 108, ..., 144.
    assert_eq!(failures.len(), 8);
    // The login trail is not a directory change.
    assert_eq!(h.store.directory_version().await.unwrap(), version);

    // SQLite files have the native writer (the server's hot path); PostgreSQL goes through
    // the pool. Its batches land after the earlier ones, on the same connection after a reuse.
    match h.store.backend() {
        keycard_store::Backend::Sqlite => {
            let writer = h
                .store
                .login_writer()
                .expect("an SQLite file has a native writer");
            let more: Vec<_> = records
                .iter()
                .take(3)
                .cloned()
                .map(|mut r| {
                    r.request_id.insert_str(0, "native-");
                    r
                })
                .collect();
            writer.write(&more[..2]).unwrap();
            // A checkpoint from the second connection, between two writes, loses nothing.
            writer.checkpoint().unwrap();
            writer.write(&more[2..]).unwrap();
            writer.checkpoint().unwrap();
            // A batch abandoned before its commit leaves nothing.
            let mut abandoned = writer.begin().unwrap().expect("nothing else is writing");
            abandoned.insert(&more).unwrap();
            drop(abandoned);
            // A batch written a statement at a time, as the server's writer does: one
            // transaction, during which the write lock is the batch's. A second begin (on a
            // second connection) says so at once rather than waiting.
            let many: Vec<_> = records
                .iter()
                .take(70)
                .cloned()
                .map(|mut r| {
                    r.request_id.insert_str(0, "stepped-");
                    r
                })
                .collect();
            let mut open = writer.begin().unwrap().expect("nothing else is writing");
            for statement in many.chunks(keycard_store::OpenLoginBatch::BLOCK_RECORDS) {
                open.insert(statement).unwrap();
                assert!(writer.begin().unwrap().is_none(), "the lock is taken");
            }
            open.commit().unwrap();
            let all = h
                .store
                .login_records(&keycard_store::audit::LoginQuery::default())
                .await
                .unwrap();
            assert_eq!(all.len(), 223);
            assert!(
                all.iter()
                    .take(70)
                    .all(|r| r.request_id.starts_with("stepped-"))
            );
            let all: Vec<_> = all.into_iter().skip(70).collect();
            assert_eq!(
                all.iter()
                    .take(3)
                    .map(|r| r.request_id.as_str())
                    .collect::<Vec<_>>(),
                ["native-req002", "native-req001", "native-req000"]
            );
        }
        keycard_store::Backend::Postgres => assert!(h.store.login_writer().is_none()),
    }
}

async fn tokens_are_created_in_bulk_all_or_none(h: Harness) {
    seed(&h).await;
    let s = &h.store;
    let mut events = s.subscribe();
    let batch = |names: &[&str]| -> Vec<NewToken> {
        names
            .iter()
            .map(|name| NewToken {
                name: Some((*name).to_owned()),
                ..token("Order Sync", "sync@example.com", "Integrator")
            })
            .collect()
    };
    let made = s
        .create_tokens(
            "admin",
            &account(),
            &Creator::Operator,
            batch(&["a", "b", "c"]),
        )
        .await
        .unwrap();
    assert_eq!(
        made.iter()
            .map(|(t, _)| t.name.as_str())
            .collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
    for (token, credentials) in &made {
        let (found, secret) = s
            .token_by_token_id(&credentials.token_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.id, token.id);
        assert_eq!(secret.expose(), credentials.token_secret.expose());
    }
    for (token, _) in &made {
        let event = events.recv().await.unwrap();
        assert_eq!(
            (event.entity, event.entity_id),
            (EntityKind::Token, token.id.to_string())
        );
    }
    // One refused token refuses the whole batch: nothing of it is written.
    let mut bad = batch(&["d", "e"]);
    bad[1].user = "nobody@example.com".into();
    assert!(
        s.create_tokens("admin", &account(), &Creator::Operator, bad)
            .await
            .is_err()
    );
    assert_eq!(s.tokens(&account()).await.unwrap().len(), 3);
    assert_eq!(
        s.admin_events(100)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.action == keycard_core::AdminAction::TokenCreated)
            .count(),
        3
    );
}

async fn rest_records_read_back_every_committed_change(h: Harness) {
    let s = &h.store;
    let acme = serde_json::json!({ "companyName": "Acme", "email": "ap@acme.example" });
    let id = s
        .create_rest_record(&account(), "customer", &acme)
        .await
        .unwrap();
    assert_eq!(
        s.rest_record(&account(), "customer", id).await.unwrap(),
        Some(acme.clone())
    );
    // Numbers come back exactly: this one read back 1 ULP off before serde_json's
    // `float_roundtrip`.
    let priced = serde_json::json!({ "amount": 7.285_475_920_775_431e-13 });
    let priced_id = s
        .create_rest_record(&account(), "customer", &priced)
        .await
        .unwrap();
    assert_eq!(
        s.rest_record(&account(), "customer", priced_id)
            .await
            .unwrap(),
        Some(priced)
    );
    // Stored as serde_json writes the document (the REST surface answers that text as is).
    assert_eq!(
        s.rest_record_text(&account(), "customer", id)
            .await
            .unwrap(),
        Some(acme.to_string())
    );
    // The id belongs to one account and one record type.
    let sandbox = keycard_core::AccountId::parse("1234567_SB1").unwrap();
    assert_eq!(s.rest_record(&sandbox, "customer", id).await.unwrap(), None);
    assert_eq!(s.rest_record(&account(), "vendor", id).await.unwrap(), None);
    // Each change is visible to the next read (on SQLite, a read on another connection).
    let change = serde_json::json!({ "email": "billing@acme.example" });
    assert!(
        s.update_rest_record(&account(), "customer", id, &change, true)
            .await
            .unwrap()
    );
    assert_eq!(
        s.rest_record(&account(), "customer", id).await.unwrap(),
        Some(serde_json::json!({ "companyName": "Acme", "email": "billing@acme.example" }))
    );
    assert!(
        s.update_rest_record(&account(), "customer", id, &change, false)
            .await
            .unwrap()
    );
    assert_eq!(
        s.rest_record(&account(), "customer", id).await.unwrap(),
        Some(change)
    );
    assert!(
        s.delete_rest_record(&account(), "customer", id)
            .await
            .unwrap()
    );
    assert_eq!(
        s.rest_record(&account(), "customer", id).await.unwrap(),
        None
    );
    assert!(
        !s.delete_rest_record(&account(), "customer", id)
            .await
            .unwrap()
    );
}

/// A key of digits is an internal id, so a name may not be only digits (before, a token named
/// "17" and the token with id 17 made every lookup of "17" a conflict, and a role lookup took
/// whichever row came first). A key holding a NUL finds nothing, on PostgreSQL too (before,
/// PostgreSQL refused the parameter: a database error, a 503 to the client).
async fn names_are_never_ids_and_a_nul_finds_nothing(h: Harness) {
    seed(&h).await;
    let s = &h.store;
    let mut numeric = token("Order Sync", "sync@example.com", "Integrator");
    numeric.name = Some(" 17 ".into());
    let refused = s
        .create_token("admin", &account(), &Creator::Operator, numeric)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "numeric_name");
    let refused = s
        .create_role("admin", &account(), login_role("3"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "numeric_name");
    for name in ["Order\nSync", "Order\0Sync"] {
        let refused = s
            .create_integration("admin", &account(), integration(name))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), "control_character", "{name:?}");
    }
    // "+1" is a name, not the id 1.
    let signed = s
        .create_role("admin", &account(), login_role("+1"))
        .await
        .unwrap();
    assert_eq!(s.role(&account(), "+1").await.unwrap().id, signed.id);
    let first = s.role(&account(), "Integrator").await.unwrap();
    assert_eq!(
        s.role(&account(), &first.id.to_string()).await.unwrap(),
        first
    );

    let mut named = token("Order Sync", "sync@example.com", "Integrator");
    named.name = Some("Nightly".into());
    let (created, secrets) = s
        .create_token("admin", &account(), &Creator::Operator, named)
        .await
        .unwrap();
    for key in [
        created.id.to_string(),
        "Nightly".to_owned(),
        created.token_id.clone(),
    ] {
        assert_eq!(
            s.token(&account(), &key).await.unwrap().id,
            created.id,
            "{key}"
        );
    }
    let user = s.user(&account(), "sync@example.com").await.unwrap();
    assert_eq!(
        s.user(&account(), &user.id.to_string()).await.unwrap(),
        user
    );

    for key in ["\0", "Nightly\0", "1\0"] {
        assert_eq!(
            s.token(&account(), key).await.unwrap_err().code(),
            "not_found"
        );
        assert_eq!(
            s.role(&account(), key).await.unwrap_err().code(),
            "not_found"
        );
        assert_eq!(
            s.user(&account(), key).await.unwrap_err().code(),
            "not_found"
        );
        assert_eq!(
            s.integration(&account(), key).await.unwrap_err().code(),
            "not_found"
        );
        assert!(s.integration_by_consumer_key(key).await.unwrap().is_none());
        assert!(s.token_by_token_id(key).await.unwrap().is_none());
        assert!(
            s.check_password(&account(), key, "correct horse battery")
                .await
                .unwrap()
                .is_none()
        );
    }
    drop(secrets);

    // A login record keeps what the client sent; PostgreSQL text cannot hold a NUL, so there
    // it is replaced.
    let record = keycard_core::LoginRecord {
        at: 1_700_000_000,
        request_id: "nul".into(),
        ip: "127.0.0.1".into(),
        account: Some(ACCOUNT.into()),
        integration: None,
        token_name: None,
        user: Some("sync\0@example.com".into()),
        role: None,
        surface: "rest".into(),
        request_uri: "/rest/roles".into(),
        status: "Failure".into(),
        detail: "InvalidCredentials".into(),
        diagnosis: serde_json::json!({ "email": "sync\0@example.com" }),
    };
    s.insert_login_records(std::slice::from_ref(&record))
        .await
        .unwrap();
    let stored = s
        .login_records(&keycard_store::audit::LoginQuery::default())
        .await
        .unwrap();
    let expected = if h.database_url.is_some() {
        "sync\u{fffd}@example.com"
    } else {
        "sync\0@example.com"
    };
    assert_eq!(stored[0].user.as_deref(), Some(expected));
    assert_eq!(stored[0].diagnosis, record.diagnosis);
}

/// A reactivation racing a revocation: whichever runs first, the token ends revoked (a
/// revocation is for good). On PostgreSQL under READ COMMITTED both read the token active
/// and the reactivation wrote `active` over the committed revocation, until every
/// directory change took one advisory lock first (`Store::begin`).
async fn concurrent_changes_see_each_others_writes(h: Harness) {
    seed(&h).await;
    let s = &h.store;
    for round in 0..25 {
        let (token, secrets) = s
            .create_token(
                "admin",
                &account(),
                &Creator::Operator,
                token("Order Sync", "sync@example.com", "Integrator"),
            )
            .await
            .unwrap();
        drop(secrets);
        let (key, a) = (token.id.to_string(), account());
        let (activated, revoked) = tokio::join!(
            s.set_token_active("admin", &a, &key, true),
            s.revoke_token("admin", &a, &key),
        );
        revoked.unwrap();
        if let Err(error) = activated {
            assert_eq!(error.code(), "token_revoked", "round {round}");
        }
        let state = s.token(&account(), &key).await.unwrap().state;
        assert!(
            matches!(state, TokenState::Revoked { .. }),
            "round {round}: {state:?}"
        );
    }
}

/// The directory's change log: what other processes changed since a version, this process's
/// own changes left out (it applied them when it committed), and `None` when the log cannot
/// say (versions it does not hold, or a version that went back).
async fn changes_since_lists_what_other_processes_changed(h: Harness) {
    seed(&h).await;
    let s = &h.store;
    let start = s.directory_version().await.unwrap();
    let other = keycard_store::Store::open(&h.location(), h.ring.clone())
        .await
        .unwrap();
    let role = other
        .create_role("admin", &account(), login_role("Other"))
        .await
        .unwrap();
    s.create_role("admin", &account(), login_role("Mine"))
        .await
        .unwrap();
    let (version, events) = s.changes_since(start).await.unwrap();
    assert_eq!(version, start + 2, "one version a change");
    let events = events.unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].entity, EntityKind::Role);
    assert_eq!(events[0].entity_id, role.id.to_string());
    assert_eq!(
        s.changes_since(version).await.unwrap(),
        (version, Some(Vec::new()))
    );
    assert_eq!(
        s.changes_since(-5).await.unwrap().1,
        None,
        "versions never logged"
    );
    assert_eq!(
        s.changes_since(version + 10).await.unwrap().1,
        None,
        "gone back"
    );
}

/// Merges into one record at once each add their field: each update reads, merges and writes
/// under the record's row lock (PostgreSQL) or the write lock (SQLite), so none is lost, and
/// none waits for the directory's lock.
async fn record_merges_at_once_lose_no_field(h: Harness) {
    let s = &h.store;
    let id = s
        .create_rest_record(
            &account(),
            "customer",
            &serde_json::json!({ "companyName": "Acme" }),
        )
        .await
        .unwrap();
    let mut merges = tokio::task::JoinSet::new();
    for n in 0..8 {
        let (store, a) = (s.clone(), account());
        merges.spawn(async move {
            let change = serde_json::json!({ format!("f{n}"): n });
            store
                .update_rest_record(&a, "customer", id, &change, true)
                .await
        });
    }
    while let Some(merged) = merges.join_next().await {
        assert!(merged.unwrap().unwrap());
    }
    let record = s
        .rest_record(&account(), "customer", id)
        .await
        .unwrap()
        .unwrap();
    for n in 0..8 {
        assert_eq!(record[format!("f{n}")], n, "{record}");
    }
    assert_eq!(record["companyName"], "Acme");
}
