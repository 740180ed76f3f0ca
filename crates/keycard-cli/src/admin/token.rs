//! `keycard token create|list|show|deactivate|activate|revoke|inventory`.

use anyhow::Result;
use clap::{Args, Subcommand};
use keycard_core::{AccessToken, TokenState};
use keycard_store::Store;
use keycard_store::tokens::{Creator, NewToken, TokenCredentials};
use serde_json::json;

use super::output::{self, SHOWN_ONCE, Table};
use super::{AccountArg, StoreArgs, actor};
use crate::confirm::{self, Yes};

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create an access token for an integration, a user and one of the user's roles; prints the
    /// token id and secret once.
    Create(CreateArgs),
    /// List the tokens.
    List,
    /// Show one token (by internal id, token id or name).
    Show { token: String },
    /// Make a token inactive (reversible).
    Deactivate { token: String },
    /// Make an inactive token active again.
    Activate { token: String },
    /// Revoke a token for good (it stays listed for audit).
    Revoke {
        token: String,
        #[command(flatten)]
        confirm: Yes,
    },
    /// The inventory: integration, consumer key and token (last 4), user, role, created, last used.
    Inventory,
    /// Integrators: replace a saved profile's token with a new one (issuetoken), verify it,
    /// switch the profile, then revoke the old token. Talks to the server, not the directory.
    Rotate(crate::toolkit::rotate::RotateArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Integration (id or name).
    #[arg(long)]
    pub integration: String,
    /// User (id or email).
    #[arg(long)]
    pub user: String,
    /// Role (id or name); the user must hold it.
    #[arg(long)]
    pub role: String,
    /// Token name (default: application, user and role).
    #[arg(long)]
    pub name: Option<String>,
    /// Expire after this many days (tokens never expire by default).
    #[arg(long)]
    pub expires_in_days: Option<u32>,
}

pub async fn run(
    command: TokenCommand,
    store_args: &StoreArgs,
    account: &AccountArg,
) -> Result<()> {
    if let TokenCommand::Rotate(args) = command {
        return crate::toolkit::rotate::run(args).await;
    }
    let store = store_args
        .open_for(matches!(command, TokenCommand::List))
        .await?;
    let account = account.resolve(&store).await?;
    let json = store_args.json;
    let who = actor();
    let token = match command {
        TokenCommand::Create(args) => {
            let new = NewToken {
                integration: args.integration,
                user: args.user,
                role: args.role,
                name: args.name,
                expires_at: args
                    .expires_in_days
                    .map(|days| store.now() + i64::from(days) * 86_400),
            };
            let (token, credentials) = store
                .create_token(&who, &account, &Creator::Operator, new)
                .await?;
            return show_with_credentials(&store, &token, &credentials, json).await;
        }
        TokenCommand::List => {
            let tokens = store.tokens(&account).await?;
            if json {
                return output::json(&tokens);
            }
            let now = store.now();
            let mut table = Table::new(&["ID", "NAME", "STATE", "TOKEN", "CREATED", "LAST USED"]);
            for t in &tokens {
                table.row(vec![
                    t.id.to_string(),
                    t.name.clone(),
                    state_label(t, now),
                    format!("…{}", keycard_core::secret::last4(&t.token_id)),
                    output::time(t.created_at),
                    output::optional_time(t.last_used_at),
                ]);
            }
            table.print();
            return Ok(());
        }
        TokenCommand::Inventory => {
            let rows = store.token_inventory(&account).await?;
            if json {
                return output::json(&rows);
            }
            let mut table = Table::new(&[
                "INTEGRATION",
                "CONSUMER KEY",
                "TOKEN",
                "USER",
                "ROLE",
                "STATE",
                "CREATED",
                "LAST USED",
            ]);
            for r in &rows {
                table.row(vec![
                    r.integration.clone(),
                    format!("…{}", r.consumer_key_last4),
                    format!("…{}", r.token_last4),
                    r.user.clone(),
                    r.role.clone(),
                    r.state.clone(),
                    output::time(r.created_at),
                    match (&r.last_used_at, &r.last_used_ip) {
                        (Some(at), Some(ip)) => format!("{} from {ip}", output::time(*at)),
                        (at, _) => output::optional_time(*at),
                    },
                ]);
            }
            table.print();
            return Ok(());
        }
        TokenCommand::Show { token } => store.token(&account, &token).await?,
        TokenCommand::Deactivate { token } => {
            store
                .set_token_active(&who, &account, &token, false)
                .await?
        }
        TokenCommand::Activate { token } => {
            store.set_token_active(&who, &account, &token, true).await?
        }
        TokenCommand::Revoke { token, confirm } => {
            if confirm.wanted() {
                ask_before_revoking(&store, &account, &token).await?;
            }
            store.revoke_token(&who, &account, &token).await?
        }
        TokenCommand::Rotate(_) => unreachable!("dispatched above"),
    };
    show(&store, &token, json).await
}

async fn ask_before_revoking(
    store: &Store,
    account: &keycard_core::AccountId,
    token: &str,
) -> Result<()> {
    let record = store.token(account, token).await?;
    confirm::ask(&format!(
        "Revoke token `{}` (…{})? Applications using it fail at once; this cannot be undone.",
        record.name,
        keycard_core::secret::last4(&record.token_id)
    ))
}

async fn show(store: &Store, token: &AccessToken, json: bool) -> Result<()> {
    if json {
        return output::json(token);
    }
    let integration = store
        .integration(&token.account, &token.integration_id.to_string())
        .await?;
    let user = store
        .user(&token.account, &token.user_id.to_string())
        .await?;
    let role = store
        .role(&token.account, &token.role_id.to_string())
        .await?;
    let state = match (&token.state, token.expires_at) {
        (TokenState::Revoked { at, by }, _) => format!("revoked {} by {by}", output::time(*at)),
        (TokenState::Active, Some(at)) if at > store.now() => {
            format!("active (expires {})", output::time(at))
        }
        _ => state_label(token, store.now()),
    };
    output::fields(&[
        ("Token", format!("{} (id {})", token.name, token.id)),
        ("Token ID", token.token_id.clone()),
        ("State", state),
        ("Application", integration.name),
        ("User", user.email),
        ("Role", role.name),
        (
            "Created",
            format!("{} by {}", output::time(token.created_at), token.created_by),
        ),
        (
            "Last used",
            match &token.last_used_ip {
                Some(ip) => format!("{} from {ip}", output::optional_time(token.last_used_at)),
                None => output::optional_time(token.last_used_at),
            },
        ),
        (
            "Expires",
            token
                .expires_at
                .map_or_else(|| "never".to_owned(), output::time),
        ),
    ]);
    Ok(())
}

async fn show_with_credentials(
    store: &Store,
    token: &AccessToken,
    credentials: &TokenCredentials,
    json: bool,
) -> Result<()> {
    if json {
        return output::json(&json!({
            "token": token,
            "token_id": credentials.token_id,
            "token_secret": credentials.token_secret.expose(),
        }));
    }
    show(store, token, false).await?;
    println!();
    output::fields(&[
        ("Token ID", credentials.token_id.clone()),
        ("Token secret", credentials.token_secret.expose().to_owned()),
    ]);
    println!("{SHOWN_ONCE}");
    Ok(())
}

/// A token's state as the table shows it: an active token past its expiry is `expired` (it
/// was shown `active` while every login with it failed with `token_expired`).
fn state_label(token: &keycard_core::AccessToken, now: i64) -> String {
    match token.state {
        TokenState::Active if token.expires_at.is_some_and(|at| at <= now) => "expired".to_owned(),
        ref other => other.as_str().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_active_token_past_its_expiry_is_listed_as_expired() {
        let mut token = keycard_core::AccessToken {
            id: 1,
            account: keycard_core::AccountId::parse("1234567").unwrap(),
            name: "t".into(),
            integration_id: 1,
            user_id: 1,
            role_id: 1,
            token_id: "0".repeat(64),
            state: TokenState::Active,
            created_at: 0,
            created_by: "admin".into(),
            last_used_at: None,
            last_used_ip: None,
            expires_at: Some(1_000),
        };
        assert_eq!(state_label(&token, 999), "active");
        assert_eq!(state_label(&token, 1_000), "expired");
        token.state = TokenState::Inactive;
        assert_eq!(state_label(&token, 2_000), "inactive");
        token.expires_at = None;
        token.state = TokenState::Active;
        assert_eq!(state_label(&token, 2_000), "active");
    }
}
