//! A directory ready for TBA calls, for the benchmarks: one TBA integration, a role that logs
//! in with tokens and uses REST web services (Full on customer records), and a user holding
//! it. The caller makes the account (with its limits) and the tokens, by these names.

use keycard_core::{AccountId, IntegrationFlags, Level, SetupPermission};
use keycard_store::integrations::{ConsumerCredentials, NewIntegration};
use keycard_store::roles::NewRole;
use keycard_store::tokens::NewToken;
use keycard_store::users::NewUser;
use keycard_store::{Store, StoreError};

pub const INTEGRATION: &str = "Bench Integration";
pub const ROLE: &str = "Integration Role";
pub const USER: &str = "bench@example.com";

/// Creates the integration, role and user in `account`; the integration's credentials.
pub async fn tba_integration(
    store: &Store,
    actor: &str,
    account: &AccountId,
) -> Result<ConsumerCredentials, StoreError> {
    let role = NewRole {
        name: ROLE.into(),
        setup: [
            SetupPermission::LogInUsingAccessTokens,
            SetupPermission::RestWebServices,
        ]
        .into(),
        records: [("customer".to_owned(), Level::Full)].into(),
        ..NewRole::default()
    };
    store.create_role(actor, account, role).await?;
    let user = NewUser {
        email: USER.into(),
        name: "Bench User".into(),
        password: None,
        roles: vec![ROLE.into()],
    };
    store.create_user(actor, account, user).await?;
    let integration = NewIntegration {
        name: INTEGRATION.into(),
        description: String::new(),
        flags: IntegrationFlags::tba_only(),
        concurrency_limit: None,
        auto_installed: false,
    };
    let (_, consumer) = store
        .create_integration(actor, account, integration)
        .await?;
    Ok(consumer)
}

/// A token of [`USER`] with [`ROLE`] for [`INTEGRATION`].
pub fn new_token(name: Option<String>) -> NewToken {
    NewToken {
        integration: INTEGRATION.into(),
        user: USER.into(),
        role: ROLE.into(),
        name,
        expires_at: None,
    }
}
