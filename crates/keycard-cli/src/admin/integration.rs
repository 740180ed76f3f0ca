//! `keycard integration create|list|show|update|block|enable|reset-credentials|delete`.

use anyhow::Result;
use clap::{Args, Subcommand};
use keycard_core::{Integration, IntegrationFlags, IntegrationState};
use keycard_store::integrations::{ConsumerCredentials, IntegrationUpdate, NewIntegration};
use serde_json::json;

use super::output::{self, SHOWN_ONCE, Table};
use super::{AccountArg, StoreArgs, actor, parse_bool, parse_limit};
use crate::confirm::{self, Yes};

#[derive(Subcommand, Debug)]
pub enum IntegrationCommand {
    /// Create an integration record; prints its consumer key and secret once.
    Create(CreateArgs),
    /// List the integration records (deleted ones too, for audit).
    List,
    /// Show one integration (by internal id or name).
    Show { integration: String },
    /// Change names, authentication flags, callback URL or concurrency limit.
    Update(UpdateArgs),
    /// Block: every token of the integration stops working.
    Block { integration: String },
    /// Enable (or approve one waiting for approval).
    Enable { integration: String },
    /// Issue a new consumer key and secret; the old ones stop working at once.
    ResetCredentials {
        integration: String,
        #[command(flatten)]
        confirm: Yes,
    },
    /// Delete: the record stays listed and all its tokens are revoked.
    Delete {
        integration: String,
        #[command(flatten)]
        confirm: Yes,
    },
}

// One flag per checkbox of the integration form.
#[allow(clippy::struct_excessive_bools)]
#[derive(Args, Debug)]
pub struct CreateArgs {
    pub name: String,
    #[arg(long, default_value = "")]
    pub description: String,
    /// Token-based Authentication.
    #[arg(long, default_value = "true", value_parser = parse_bool)]
    pub tba: bool,
    /// TBA: Authorization Flow (needs --callback-url).
    #[arg(long)]
    pub authorization_flow: bool,
    /// https://…, or http://localhost:PORT/… for developer tools.
    #[arg(long)]
    pub callback_url: Option<String>,
    /// TBA: IssueToken Endpoint.
    #[arg(long)]
    pub issue_token_endpoint: bool,
    /// User Credentials (NLAuth).
    #[arg(long)]
    pub user_credentials: bool,
    /// Concurrency limit (at most the account's unallocated limit minus 1).
    #[arg(long)]
    pub concurrency_limit: Option<u32>,
    /// Marks it auto-installed: it waits for approval when the account requires that.
    #[arg(long)]
    pub auto_installed: bool,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    pub integration: String,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    #[arg(long, value_parser = parse_bool)]
    pub tba: Option<bool>,
    #[arg(long, value_parser = parse_bool)]
    pub authorization_flow: Option<bool>,
    /// A URL, or `none` to clear it.
    #[arg(long)]
    pub callback_url: Option<String>,
    #[arg(long, value_parser = parse_bool)]
    pub issue_token_endpoint: Option<bool>,
    #[arg(long, value_parser = parse_bool)]
    pub user_credentials: Option<bool>,
    /// A number, or `none` to use the account's unallocated pool.
    #[arg(long, value_parser = parse_limit)]
    pub concurrency_limit: Option<super::LimitArg>,
}

// One arm per subcommand (or one step per demo record): long, but flat.
#[allow(clippy::too_many_lines)]
pub async fn run(
    command: IntegrationCommand,
    store_args: &StoreArgs,
    account: &AccountArg,
) -> Result<()> {
    let store = store_args
        .open_for(matches!(command, IntegrationCommand::List))
        .await?;
    let account = account.resolve(&store).await?;
    let json = store_args.json;
    let who = actor();
    match command {
        IntegrationCommand::Create(args) => {
            let new = NewIntegration {
                name: args.name,
                description: args.description,
                flags: IntegrationFlags {
                    tba: args.tba,
                    tba_authorization_flow: args.authorization_flow,
                    callback_url: args.callback_url,
                    tba_issue_token_endpoint: args.issue_token_endpoint,
                    user_credentials: args.user_credentials,
                    ..IntegrationFlags::default()
                },
                concurrency_limit: args.concurrency_limit,
                auto_installed: args.auto_installed,
            };
            let (integration, credentials) = store.create_integration(&who, &account, new).await?;
            show_with_credentials(&integration, &credentials, json)
        }
        IntegrationCommand::List => {
            let integrations = store.integrations(&account).await?;
            if json {
                return output::json(&integrations);
            }
            let mut table = Table::new(&[
                "ID",
                "NAME",
                "STATE",
                "TBA",
                "AUTH FLOW",
                "LIMIT",
                "CONSUMER KEY",
            ]);
            for i in &integrations {
                table.row(vec![
                    i.id.to_string(),
                    i.name.clone(),
                    i.state.label().to_owned(),
                    yes(i.flags.tba),
                    yes(i.flags.tba_authorization_flow),
                    i.concurrency_limit
                        .map_or_else(|| "-".to_owned(), |l| l.to_string()),
                    format!("…{}", keycard_core::secret::last4(&i.consumer_key)),
                ]);
            }
            table.print();
            Ok(())
        }
        IntegrationCommand::Show { integration } => {
            show(&store.integration(&account, &integration).await?, json)
        }
        IntegrationCommand::Update(args) => {
            let update = IntegrationUpdate {
                name: args.name,
                description: args.description,
                tba: args.tba,
                tba_authorization_flow: args.authorization_flow,
                callback_url: args
                    .callback_url
                    .map(|url| Some(url).filter(|u| !u.eq_ignore_ascii_case("none"))),
                tba_issue_token_endpoint: args.issue_token_endpoint,
                user_credentials: args.user_credentials,
                concurrency_limit: args.concurrency_limit.map(|l| l.0),
            };
            show(
                &store
                    .update_integration(&who, &account, &args.integration, update)
                    .await?,
                json,
            )
        }
        IntegrationCommand::Block { integration } => show(
            &store
                .set_integration_state(&who, &account, &integration, IntegrationState::Blocked)
                .await?,
            json,
        ),
        IntegrationCommand::Enable { integration } => show(
            &store
                .set_integration_state(&who, &account, &integration, IntegrationState::Enabled)
                .await?,
            json,
        ),
        IntegrationCommand::ResetCredentials {
            integration,
            confirm,
        } => {
            if confirm.wanted() {
                let record = store.integration(&account, &integration).await?;
                confirm::ask(&format!(
                    "Issue a new consumer key and secret for `{}` (id {})? Applications using the current ones fail until they are given the new ones.",
                    record.name, record.id
                ))?;
            }
            let (integration, credentials) = store
                .reset_integration_credentials(&who, &account, &integration)
                .await?;
            show_with_credentials(&integration, &credentials, json)
        }
        IntegrationCommand::Delete {
            integration,
            confirm,
        } => {
            if confirm.wanted() {
                let record = store.integration(&account, &integration).await?;
                let live = confirm::live_tokens(&store.tokens(&account).await?, |t| {
                    t.integration_id == record.id
                });
                confirm::ask(&format!(
                    "Delete integration `{}` (id {}) and revoke its {}? Applications using them fail at once; this cannot be undone.",
                    record.name,
                    record.id,
                    confirm::tokens(live)
                ))?;
            }
            let deleted = store
                .delete_integration(&who, &account, &integration)
                .await?;
            if json {
                return output::json(&deleted);
            }
            println!(
                "Deleted integration `{}` (id {}); its tokens are revoked. It stays listed for audit.",
                deleted.name, deleted.id
            );
            Ok(())
        }
    }
}

fn yes(value: bool) -> String {
    if value { "yes" } else { "no" }.to_owned()
}

fn show(integration: &Integration, json: bool) -> Result<()> {
    if json {
        return output::json(integration);
    }
    let f = &integration.flags;
    output::fields(&[
        (
            "Integration",
            format!("{} (id {})", integration.name, integration.id),
        ),
        ("Account", integration.account.to_string()),
        ("State", integration.state.label().to_owned()),
        ("Application ID", integration.application_id.clone()),
        ("Description", integration.description.clone()),
        ("Token-based Authentication", yes(f.tba)),
        ("TBA: Authorization Flow", yes(f.tba_authorization_flow)),
        (
            "Callback URL",
            f.callback_url.clone().unwrap_or_else(|| "-".into()),
        ),
        ("TBA: IssueToken Endpoint", yes(f.tba_issue_token_endpoint)),
        ("User Credentials", yes(f.user_credentials)),
        (
            "Concurrency limit",
            integration
                .concurrency_limit
                .map_or_else(|| "account pool".to_owned(), |l| l.to_string()),
        ),
        ("Consumer key", integration.consumer_key.clone()),
        ("Created", output::time(integration.created_at)),
    ]);
    Ok(())
}

fn show_with_credentials(
    integration: &Integration,
    credentials: &ConsumerCredentials,
    json: bool,
) -> Result<()> {
    if json {
        return output::json(&json!({
            "integration": integration,
            "consumer_key": credentials.consumer_key,
            "consumer_secret": credentials.consumer_secret.expose(),
        }));
    }
    show(integration, false)?;
    println!();
    output::fields(&[
        ("Consumer key", credentials.consumer_key.clone()),
        (
            "Consumer secret",
            credentials.consumer_secret.expose().to_owned(),
        ),
    ]);
    println!("{SHOWN_ONCE}");
    Ok(())
}
