//! `keycard init`: a demo account with an administrator, an integration, a role and a token,
//! and the four credentials printed once.

use anyhow::{Result, bail};
use clap::Args;
use keycard_core::{AccountId, IntegrationFlags, Level, SetupPermission};
use keycard_store::accounts::NewAccount;
use keycard_store::integrations::NewIntegration;
use keycard_store::roles::NewRole;
use keycard_store::tokens::{Creator, NewToken};
use keycard_store::users::NewUser;
use serde_json::json;

use super::output::{self, SHOWN_ONCE};
use super::{StoreArgs, actor};

#[derive(Args, Debug)]
pub struct InitArgs {
    /// The demo account's id.
    #[arg(long, default_value = "1234567")]
    pub account: String,
}

// One arm per subcommand (or one step per demo record): long, but flat.
#[allow(clippy::too_many_lines)]
pub async fn run(args: &InitArgs, store_args: &StoreArgs) -> Result<()> {
    let store = store_args.open().await?;
    let id = AccountId::parse(&args.account)?;
    if store.account(&id).await.is_ok() {
        bail!("account {id} already exists; pick another with --account, or use a new --data-dir");
    }
    let who = actor();
    let password = keycard_store::crypto::random_hex(12)?;
    store
        .create_account(&who, NewAccount::new(id.clone(), "Demo Company"))
        .await?;
    let mut admin = NewRole {
        name: "Administrator".into(),
        ..NewRole::default()
    };
    admin.setup.insert(SetupPermission::Administrator);
    store.create_role(&who, &id, admin).await?;
    let integrator = NewRole {
        name: "Integration Role".into(),
        setup: [
            SetupPermission::LogInUsingAccessTokens,
            SetupPermission::RestWebServices,
            SetupPermission::SoapWebServices,
            SetupPermission::UserAccessTokens,
        ]
        .into(),
        records: [
            ("customer".to_owned(), Level::Full),
            ("salesorder".to_owned(), Level::Edit),
            ("item".to_owned(), Level::View),
        ]
        .into(),
        ..NewRole::default()
    };
    store.create_role(&who, &id, integrator).await?;
    store
        .create_user(
            &who,
            &id,
            NewUser {
                email: "admin@example.com".into(),
                name: "Demo Administrator".into(),
                // A password, so `keycard login` (the authorize page) and `keycard token
                // rotate` (issuetoken) work on the demo directory as they come.
                password: Some(zeroize::Zeroizing::new(password.clone())),
                roles: vec!["Administrator".into(), "Integration Role".into()],
            },
        )
        .await?;
    let flags = IntegrationFlags {
        tba: true,
        tba_authorization_flow: true,
        callback_url: Some("http://localhost:8910/callback".into()),
        tba_issue_token_endpoint: true,
        // issuetoken logs the user in with NLAuth, which needs User Credentials.
        user_credentials: true,
        ..IntegrationFlags::default()
    };
    let (integration, consumer) = store
        .create_integration(
            &who,
            &id,
            NewIntegration {
                name: "Demo Integration".into(),
                description: "Created by keycard init".into(),
                flags,
                concurrency_limit: None,
                auto_installed: false,
            },
        )
        .await?;
    let (token, credentials) = store
        .create_token(
            &who,
            &id,
            &Creator::Operator,
            NewToken {
                integration: integration.name.clone(),
                user: "admin@example.com".into(),
                role: "Integration Role".into(),
                name: None,
                expires_at: None,
            },
        )
        .await?;
    if store_args.json {
        return output::json(&json!({
            "account": id,
            "integration": integration.name,
            "token": token.name,
            "consumer_key": consumer.consumer_key,
            "consumer_secret": consumer.consumer_secret.expose(),
            "token_id": credentials.token_id,
            "token_secret": credentials.token_secret.expose(),
            "password": password,
        }));
    }
    println!("Created demo account {id} (host slug {}):", id.host_slug());
    println!("  user admin@example.com with roles Administrator and Integration Role,");
    println!(
        "  integration `{}` and token `{}`.\n",
        integration.name, token.name
    );
    output::fields(&[
        ("Account ID (realm)", id.to_string()),
        ("Consumer key", consumer.consumer_key.clone()),
        (
            "Consumer secret",
            consumer.consumer_secret.expose().to_owned(),
        ),
        ("Token ID", credentials.token_id.clone()),
        ("Token secret", credentials.token_secret.expose().to_owned()),
        ("Password of admin@example.com", password),
    ]);
    println!("\n{SHOWN_ONCE}");
    Ok(())
}
