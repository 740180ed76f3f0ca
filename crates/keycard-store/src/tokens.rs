//! Access tokens: creation under NetSuite's rules, state changes, the inventory, and the
//! server's lookup.

use keycard_core::token::{check_create, default_token_name};
use keycard_core::{
    AccessToken, AccountId, Actor, AdminAction, EntityKind, RuleError, Secret, TokenState,
    UnixTime, error::check_name,
};
use serde::Serialize;
use serde_json::json;
use sqlx::{Any, Row, Transaction};

use crate::crypto::random_hex;
use crate::rows::{self, TOKEN_COLUMNS};
use crate::{Store, StoreError, change};

/// Who creates a token, for the permission rules.
#[derive(Debug, Clone)]
pub enum Creator {
    /// The installation's operator (CLI against the store).
    Operator,
    /// A user acting through a role they hold (id or name/email keys).
    User { user: String, role: String },
}

#[derive(Debug, Clone)]
pub struct NewToken {
    /// Integration id or name.
    pub integration: String,
    /// User id or email.
    pub user: String,
    /// Role id or name.
    pub role: String,
    /// Defaults to "application user role".
    pub name: Option<String>,
    pub expires_at: Option<UnixTime>,
}

/// The token id and secret, shown once.
#[derive(Debug)]
pub struct TokenCredentials {
    pub token_id: String,
    pub token_secret: Secret,
}

/// One row of the token inventory (the seeds' table).
#[derive(Debug, Clone, Serialize)]
pub struct InventoryRow {
    pub id: i64,
    pub name: String,
    pub integration: String,
    pub consumer_key_last4: String,
    pub token_last4: String,
    pub user: String,
    pub role: String,
    pub state: String,
    pub created_at: UnixTime,
    pub created_by: String,
    pub last_used_at: Option<UnixTime>,
    pub last_used_ip: Option<String>,
}

fn secret_aad(token_id: &str) -> String {
    format!("token:{token_id}")
}

impl Store {
    pub async fn create_token(
        &self,
        actor: &str,
        account: &AccountId,
        creator: &Creator,
        new: NewToken,
    ) -> Result<(AccessToken, TokenCredentials), StoreError> {
        let mut created = self
            .create_tokens(actor, account, creator, vec![new])
            .await?;
        created.pop().ok_or(StoreError::Corrupt {
            what: "a created token",
        })
    }

    /// Creates several tokens in one transaction (all or none), each under the same rules and
    /// with its own admin audit record: for provisioning many integrations at once, where a
    /// transaction per token would dominate.
    pub async fn create_tokens(
        &self,
        actor: &str,
        account: &AccountId,
        creator: &Creator,
        tokens: Vec<NewToken>,
    ) -> Result<Vec<(AccessToken, TokenCredentials)>, StoreError> {
        let now = self.now();
        if tokens
            .iter()
            .any(|new| new.expires_at.is_some_and(|at| at <= now))
        {
            return Err(RuleError::ExpiryInPast.into());
        }
        let mut tx = self.begin().await?;
        let mut created = Vec::with_capacity(tokens.len());
        let mut changed = Vec::with_capacity(tokens.len());
        for new in tokens {
            let made = self
                .insert_token(&mut tx, actor, account, creator, new)
                .await?;
            changed.push(change(Some(account), EntityKind::Token, made.0.id));
            created.push(made);
        }
        self.commit(tx, changed).await?;
        Ok(created)
    }

    async fn insert_token(
        &self,
        tx: &mut Transaction<'static, Any>,
        actor: &str,
        account: &AccountId,
        creator: &Creator,
        new: NewToken,
    ) -> Result<(AccessToken, TokenCredentials), StoreError> {
        let integration = crate::integrations::fetch(tx, account, &new.integration).await?;
        let user = crate::users::fetch(tx, account, &new.user).await?;
        let role = crate::roles::fetch(tx, account, &new.role).await?;
        match creator {
            Creator::Operator => check_create(Actor::Operator, &integration, &user, &role)?,
            Creator::User {
                user: actor_user,
                role: actor_role,
            } => {
                let actor_user = crate::users::fetch(tx, account, actor_user).await?;
                let actor_role = crate::roles::fetch(tx, account, actor_role).await?;
                if !actor_user.holds(actor_role.id) {
                    return Err(RuleError::RoleNotHeld {
                        user: actor_user.email,
                        role: actor_role.name,
                    }
                    .into());
                }
                check_create(
                    Actor::User {
                        user: &actor_user,
                        role: &actor_role,
                    },
                    &integration,
                    &user,
                    &role,
                )?;
            }
        }
        let name = match &new.name {
            Some(name) => check_name("token name", name, 300)?,
            None => default_token_name(&integration, &user, &role),
        };
        let token_id = random_hex(32)?;
        let token_secret = Secret::new(random_hex(32)?);
        let sealed = self.seal(token_secret.expose(), &secret_aad(&token_id))?;
        let id: i64 = sqlx::query(
            "INSERT INTO tokens (account_id, name, integration_id, user_id, role_id, token_id, token_secret, state, created_at, created_by, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8, $9, $10) RETURNING id",
        )
        .bind(account.as_str())
        .bind(&name)
        .bind(integration.id)
        .bind(user.id)
        .bind(role.id)
        .bind(&token_id)
        .bind(sealed)
        .bind(self.now())
        .bind(actor)
        .bind(new.expires_at)
        .fetch_one(&mut **tx)
        .await?
        .try_get("id")?;
        let detail = json!({ "name": name, "integration": integration.name, "user": user.email, "role": role.name, "token_last4": keycard_core::secret::last4(&token_id) });
        self.record(
            tx,
            actor,
            Some(account),
            AdminAction::TokenCreated,
            &id.to_string(),
            detail,
        )
        .await?;
        let token = fetch(tx, account, &id.to_string()).await?;
        Ok((
            token,
            TokenCredentials {
                token_id,
                token_secret,
            },
        ))
    }

    /// A token by internal id, token id or name.
    pub async fn token(&self, account: &AccountId, key: &str) -> Result<AccessToken, StoreError> {
        let mut conn = self.pool().acquire().await?;
        fetch(&mut conn, account, key).await
    }

    pub async fn tokens(&self, account: &AccountId) -> Result<Vec<AccessToken>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE account_id = $1 ORDER BY id"
        ))
        .bind(account.as_str())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(rows::token).collect()
    }

    /// Deactivates (`active = false`) or reactivates a token. Revoked tokens cannot change.
    pub async fn set_token_active(
        &self,
        actor: &str,
        account: &AccountId,
        key: &str,
        active: bool,
    ) -> Result<AccessToken, StoreError> {
        let mut tx = self.begin().await?;
        let mut token = fetch(&mut tx, account, key).await?;
        if matches!(token.state, TokenState::Revoked { .. }) {
            return Err(RuleError::TokenRevoked.into());
        }
        token.state = if active {
            TokenState::Active
        } else {
            TokenState::Inactive
        };
        sqlx::query("UPDATE tokens SET state = $1 WHERE id = $2")
            .bind(token.state.as_str())
            .bind(token.id)
            .execute(&mut *tx)
            .await?;
        let action = if active {
            AdminAction::TokenActivated
        } else {
            AdminAction::TokenDeactivated
        };
        self.record(
            &mut tx,
            actor,
            Some(account),
            action,
            &token.id.to_string(),
            json!({ "name": token.name }),
        )
        .await?;
        self.commit(tx, vec![change(Some(account), EntityKind::Token, token.id)])
            .await?;
        Ok(token)
    }

    /// Revokes a token for good; it stays listed for audit.
    pub async fn revoke_token(
        &self,
        actor: &str,
        account: &AccountId,
        key: &str,
    ) -> Result<AccessToken, StoreError> {
        let mut tx = self.begin().await?;
        let mut token = fetch(&mut tx, account, key).await?;
        if matches!(token.state, TokenState::Revoked { .. }) {
            return Err(RuleError::TokenRevoked.into());
        }
        let now = self.now();
        sqlx::query(
            "UPDATE tokens SET state = 'revoked', revoked_at = $1, revoked_by = $2 WHERE id = $3",
        )
        .bind(now)
        .bind(actor)
        .bind(token.id)
        .execute(&mut *tx)
        .await?;
        token.state = TokenState::Revoked {
            at: now,
            by: actor.to_owned(),
        };
        self.record(
            &mut tx,
            actor,
            Some(account),
            AdminAction::TokenRevoked,
            &token.id.to_string(),
            json!({ "name": token.name }),
        )
        .await?;
        self.commit(tx, vec![change(Some(account), EntityKind::Token, token.id)])
            .await?;
        Ok(token)
    }

    /// The token inventory: integration, consumer key and token (last 4 each), user, role,
    /// created, last used.
    pub async fn token_inventory(
        &self,
        account: &AccountId,
    ) -> Result<Vec<InventoryRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.id, t.name, t.token_id, t.state, t.created_at, t.created_by, t.last_used_at, t.last_used_ip, i.name AS integration, i.consumer_key, u.email, r.name AS role FROM tokens t JOIN integrations i ON i.id = t.integration_id JOIN users u ON u.id = t.user_id JOIN roles r ON r.id = t.role_id WHERE t.account_id = $1 ORDER BY t.id",
        )
        .bind(account.as_str())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(InventoryRow {
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    integration: row.try_get("integration")?,
                    consumer_key_last4: keycard_core::secret::last4(
                        &row.try_get::<String, _>("consumer_key")?,
                    )
                    .to_owned(),
                    token_last4: keycard_core::secret::last4(
                        &row.try_get::<String, _>("token_id")?,
                    )
                    .to_owned(),
                    user: row.try_get("email")?,
                    role: row.try_get("role")?,
                    state: row.try_get("state")?,
                    created_at: row.try_get("created_at")?,
                    created_by: row.try_get("created_by")?,
                    last_used_at: row.try_get("last_used_at")?,
                    last_used_ip: row.try_get("last_used_ip")?,
                })
            })
            .collect()
    }

    /// The token with this token id, and its secret (the server's lookup).
    pub async fn token_by_token_id(
        &self,
        token_id: &str,
    ) -> Result<Option<(AccessToken, Secret)>, StoreError> {
        if rows::never_stored(token_id) {
            return Ok(None);
        }
        let row = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS}, token_secret FROM tokens WHERE token_id = $1"
        ))
        .bind(token_id)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let token = rows::token(&row)?;
        let secret = self.open_secret(
            &row.try_get::<Vec<u8>, _>("token_secret")?,
            &secret_aad(token_id),
        )?;
        Ok(Some((token, secret)))
    }

    /// Records a successful use (the server calls this off the hot path).
    pub async fn touch_token(&self, id: i64, at: UnixTime, ip: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE tokens SET last_used_at = $1, last_used_ip = $2 WHERE id = $3")
            .bind(at)
            .bind(ip)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

pub(crate) async fn fetch(
    conn: &mut sqlx::AnyConnection,
    account: &AccountId,
    key: &str,
) -> Result<AccessToken, StoreError> {
    let row = rows::by_key(
        conn,
        account,
        key,
        &format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE account_id = $1 AND id = $2"),
        // Two indexed lookups (unique token id, account + name): written as an OR, both
        // databases scanned the account's tokens instead.
        &format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE account_id = $1 AND id IN (SELECT id FROM tokens WHERE token_id = $2 UNION SELECT id FROM tokens WHERE account_id = $1 AND name = $2) ORDER BY id"),
    )
    .await?;
    match row.as_slice() {
        [one] => rows::token(one),
        [] => Err(StoreError::NotFound {
            kind: "token",
            key: key.to_owned(),
            hint: " (list them with `keycard token list`)",
        }),
        _ => Err(StoreError::Conflict {
            what: format!(
                "several tokens are named `{key}`; use the internal id from `keycard token list`"
            ),
        }),
    }
}
