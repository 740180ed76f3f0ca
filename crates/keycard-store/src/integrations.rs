//! Integration records and their consumer credentials.

use keycard_core::integration::{application_id_from, check_concurrency_limit};
use keycard_core::{
    AccountId, AdminAction, EntityKind, Integration, IntegrationFlags, IntegrationState, Secret,
    error::check_name,
};
use serde_json::json;
use sqlx::Row;

use crate::crypto::random_hex;
use crate::rows::{self, INTEGRATION_COLUMNS, to_json};
use crate::{Store, StoreError, change};

#[derive(Debug, Clone)]
pub struct NewIntegration {
    pub name: String,
    pub description: String,
    pub flags: IntegrationFlags,
    pub concurrency_limit: Option<u32>,
    /// Installed by a bundle rather than by an administrator: waits for approval when the
    /// account requires it.
    pub auto_installed: bool,
}

/// Changes to an integration; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct IntegrationUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub tba: Option<bool>,
    pub tba_authorization_flow: Option<bool>,
    /// `Some(None)` clears the callback URL.
    pub callback_url: Option<Option<String>>,
    pub tba_issue_token_endpoint: Option<bool>,
    pub user_credentials: Option<bool>,
    /// `Some(None)` clears the limit.
    pub concurrency_limit: Option<Option<u32>>,
}

/// The consumer key and secret, shown once.
#[derive(Debug)]
pub struct ConsumerCredentials {
    pub consumer_key: String,
    pub consumer_secret: Secret,
}

fn secret_aad(consumer_key: &str) -> String {
    format!("integration:{consumer_key}")
}

impl Store {
    pub async fn create_integration(
        &self,
        actor: &str,
        account: &AccountId,
        new: NewIntegration,
    ) -> Result<(Integration, ConsumerCredentials), StoreError> {
        let name = check_name("integration name", &new.name, 200)?;
        new.flags.validate()?;
        let mut tx = self.begin().await?;
        let account_record = crate::accounts::fetch(&mut tx, account).await?;
        let others = allocated(&mut tx, account, None).await?;
        check_concurrency_limit(
            new.concurrency_limit,
            account_record.concurrency_limit(),
            others,
        )?;
        let state = if new.auto_installed && account_record.require_approval_for_auto_installed {
            IntegrationState::WaitingForApproval
        } else {
            IntegrationState::Enabled
        };
        let consumer_key = random_hex(32)?;
        let consumer_secret = Secret::new(random_hex(32)?);
        let mut app_bytes = [0u8; 16];
        crate::crypto::fill_random(&mut app_bytes)?;
        let sealed = self.seal(consumer_secret.expose(), &secret_aad(&consumer_key))?;
        let inserted = sqlx::query(
            "INSERT INTO integrations (account_id, name, description, state, application_id, flags, concurrency_limit, consumer_key, consumer_secret, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(account.as_str())
        .bind(&name)
        .bind(new.description.trim())
        .bind(state.as_str())
        .bind(application_id_from(app_bytes))
        .bind(to_json(&new.flags))
        .bind(new.concurrency_limit.map(i64::from))
        .bind(&consumer_key)
        .bind(sealed)
        .bind(self.now())
        .fetch_one(&mut *tx)
        .await;
        let id: i64 = match inserted {
            Err(error) if StoreError::is_unique_violation(&error) => {
                return Err(StoreError::Duplicate {
                    kind: "integration",
                    key: name,
                });
            }
            other => other?.try_get("id")?,
        };
        self.record(
            &mut tx,
            actor,
            Some(account),
            AdminAction::IntegrationCreated,
            &id.to_string(),
            json!({ "name": name, "state": state.as_str() }),
        )
        .await?;
        let integration = fetch(&mut tx, account, &id.to_string()).await?;
        self.commit(tx, vec![change(Some(account), EntityKind::Integration, id)])
            .await?;
        Ok((
            integration,
            ConsumerCredentials {
                consumer_key,
                consumer_secret,
            },
        ))
    }

    /// An integration by internal id or name.
    pub async fn integration(
        &self,
        account: &AccountId,
        key: &str,
    ) -> Result<Integration, StoreError> {
        let mut conn = self.pool().acquire().await?;
        fetch(&mut conn, account, key).await
    }

    /// Every integration of the account, deleted ones included (they stay for audit).
    pub async fn integrations(&self, account: &AccountId) -> Result<Vec<Integration>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE account_id = $1 ORDER BY id"
        ))
        .bind(account.as_str())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(rows::integration).collect()
    }

    pub async fn update_integration(
        &self,
        actor: &str,
        account: &AccountId,
        key: &str,
        update: IntegrationUpdate,
    ) -> Result<Integration, StoreError> {
        let mut tx = self.begin().await?;
        let mut integration = fetch_live(&mut tx, account, key).await?;
        if let Some(name) = &update.name {
            integration.name = check_name("integration name", name, 200)?;
        }
        if let Some(description) = &update.description {
            description.trim().clone_into(&mut integration.description);
        }
        let flags = &mut integration.flags;
        flags.tba = update.tba.unwrap_or(flags.tba);
        flags.tba_authorization_flow = update
            .tba_authorization_flow
            .unwrap_or(flags.tba_authorization_flow);
        if let Some(url) = update.callback_url {
            flags.callback_url = url;
        }
        flags.tba_issue_token_endpoint = update
            .tba_issue_token_endpoint
            .unwrap_or(flags.tba_issue_token_endpoint);
        flags.user_credentials = update.user_credentials.unwrap_or(flags.user_credentials);
        flags.validate()?;
        if let Some(limit) = update.concurrency_limit {
            let account_record = crate::accounts::fetch(&mut tx, account).await?;
            let others = allocated(&mut tx, account, Some(integration.id)).await?;
            check_concurrency_limit(limit, account_record.concurrency_limit(), others)?;
            integration.concurrency_limit = limit;
        }
        let renamed = sqlx::query("UPDATE integrations SET name = $1, description = $2, flags = $3, concurrency_limit = $4 WHERE id = $5")
            .bind(&integration.name)
            .bind(&integration.description)
            .bind(to_json(&integration.flags))
            .bind(integration.concurrency_limit.map(i64::from))
            .bind(integration.id)
            .execute(&mut *tx)
            .await;
        match renamed {
            Err(error) if StoreError::is_unique_violation(&error) => {
                return Err(StoreError::Duplicate {
                    kind: "integration",
                    key: integration.name,
                });
            }
            other => other?,
        };
        let detail = json!({ "flags": integration.flags, "concurrency_limit": integration.concurrency_limit });
        self.record(
            &mut tx,
            actor,
            Some(account),
            AdminAction::IntegrationUpdated,
            &integration.id.to_string(),
            detail,
        )
        .await?;
        self.commit(
            tx,
            vec![change(
                Some(account),
                EntityKind::Integration,
                integration.id,
            )],
        )
        .await?;
        Ok(integration)
    }

    /// Blocks, enables (also approves one waiting for approval).
    pub async fn set_integration_state(
        &self,
        actor: &str,
        account: &AccountId,
        key: &str,
        state: IntegrationState,
    ) -> Result<Integration, StoreError> {
        let action = match state {
            IntegrationState::Enabled => AdminAction::IntegrationEnabled,
            IntegrationState::Blocked => AdminAction::IntegrationBlocked,
            IntegrationState::WaitingForApproval | IntegrationState::Deleted => {
                return Err(StoreError::Conflict {
                    what: "an integration can only be set to enabled or blocked".into(),
                });
            }
        };
        let mut tx = self.begin().await?;
        let mut integration = fetch_live(&mut tx, account, key).await?;
        sqlx::query("UPDATE integrations SET state = $1 WHERE id = $2")
            .bind(state.as_str())
            .bind(integration.id)
            .execute(&mut *tx)
            .await?;
        integration.state = state;
        self.record(
            &mut tx,
            actor,
            Some(account),
            action,
            &integration.id.to_string(),
            json!({ "name": integration.name }),
        )
        .await?;
        self.commit(
            tx,
            vec![change(
                Some(account),
                EntityKind::Integration,
                integration.id,
            )],
        )
        .await?;
        Ok(integration)
    }

    /// Issues a new consumer key and secret; the old pair stops working at once.
    pub async fn reset_integration_credentials(
        &self,
        actor: &str,
        account: &AccountId,
        key: &str,
    ) -> Result<(Integration, ConsumerCredentials), StoreError> {
        let mut tx = self.begin().await?;
        let mut integration = fetch_live(&mut tx, account, key).await?;
        let old_key = integration.consumer_key.clone();
        let consumer_key = random_hex(32)?;
        let consumer_secret = Secret::new(random_hex(32)?);
        let sealed = self.seal(consumer_secret.expose(), &secret_aad(&consumer_key))?;
        sqlx::query(
            "UPDATE integrations SET consumer_key = $1, consumer_secret = $2 WHERE id = $3",
        )
        .bind(&consumer_key)
        .bind(sealed)
        .bind(integration.id)
        .execute(&mut *tx)
        .await?;
        integration.consumer_key.clone_from(&consumer_key);
        let detail = json!({ "old_consumer_key_last4": keycard_core::secret::last4(&old_key) });
        self.record(
            &mut tx,
            actor,
            Some(account),
            AdminAction::IntegrationCredentialsReset,
            &integration.id.to_string(),
            detail,
        )
        .await?;
        self.commit(
            tx,
            vec![
                change(Some(account), EntityKind::Integration, integration.id),
                change(Some(account), EntityKind::Integration, old_key),
            ],
        )
        .await?;
        Ok((
            integration,
            ConsumerCredentials {
                consumer_key,
                consumer_secret,
            },
        ))
    }

    /// Deletes an integration: its record stays (state `deleted`) and all its tokens are revoked.
    pub async fn delete_integration(
        &self,
        actor: &str,
        account: &AccountId,
        key: &str,
    ) -> Result<Integration, StoreError> {
        let mut tx = self.begin().await?;
        let mut integration = fetch_live(&mut tx, account, key).await?;
        sqlx::query(
            "UPDATE integrations SET state = 'deleted', concurrency_limit = NULL WHERE id = $1",
        )
        .bind(integration.id)
        .execute(&mut *tx)
        .await?;
        let revoked = sqlx::query(
            "UPDATE tokens SET state = 'revoked', revoked_at = $1, revoked_by = $2 WHERE integration_id = $3 AND state <> 'revoked' RETURNING id",
        )
        .bind(self.now())
        .bind(actor)
        .bind(integration.id)
        .fetch_all(&mut *tx)
        .await?;
        integration.state = IntegrationState::Deleted;
        let detail = json!({ "name": integration.name, "tokens_revoked": revoked.len() });
        self.record(
            &mut tx,
            actor,
            Some(account),
            AdminAction::IntegrationDeleted,
            &integration.id.to_string(),
            detail,
        )
        .await?;
        let mut changed = vec![change(
            Some(account),
            EntityKind::Integration,
            integration.id,
        )];
        for row in &revoked {
            changed.push(change(
                Some(account),
                EntityKind::Token,
                row.try_get::<i64, _>("id")?,
            ));
        }
        self.commit(tx, changed).await?;
        Ok(integration)
    }

    /// The integration holding a consumer key, with its secret (the server's lookup).
    pub async fn integration_by_consumer_key(
        &self,
        consumer_key: &str,
    ) -> Result<Option<(Integration, Secret)>, StoreError> {
        if rows::never_stored(consumer_key) {
            return Ok(None);
        }
        let row = sqlx::query(&format!("SELECT {INTEGRATION_COLUMNS}, consumer_secret FROM integrations WHERE consumer_key = $1"))
            .bind(consumer_key)
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let integration = rows::integration(&row)?;
        let secret = self.open_secret(
            &row.try_get::<Vec<u8>, _>("consumer_secret")?,
            &secret_aad(consumer_key),
        )?;
        Ok(Some((integration, secret)))
    }
}

/// By internal id or name (names are unique among live records; deleted ones are found by id).
pub(crate) async fn fetch(
    conn: &mut sqlx::AnyConnection,
    account: &AccountId,
    key: &str,
) -> Result<Integration, StoreError> {
    let found = rows::by_key(
        conn,
        account,
        key,
        &format!("SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE account_id = $1 AND id = $2"),
        &format!("SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE account_id = $1 AND name = $2 AND state <> 'deleted'"),
    )
    .await?;
    let row = found.first().ok_or_else(|| StoreError::NotFound {
        kind: "integration",
        key: key.to_owned(),
        hint: " (list them with `keycard integration list`)",
    })?;
    rows::integration(row)
}

async fn fetch_live(
    conn: &mut sqlx::AnyConnection,
    account: &AccountId,
    key: &str,
) -> Result<Integration, StoreError> {
    let integration = fetch(conn, account, key).await?;
    if integration.state == IntegrationState::Deleted {
        return Err(StoreError::Conflict {
            what: format!(
                "the integration `{}` was deleted; deleted records are kept for audit only",
                integration.name
            ),
        });
    }
    Ok(integration)
}

/// The sum of the integration limits in the account, leaving out `except`.
pub(crate) async fn allocated(
    conn: &mut sqlx::AnyConnection,
    account: &AccountId,
    except: Option<i64>,
) -> Result<u32, StoreError> {
    let rows = sqlx::query("SELECT concurrency_limit FROM integrations WHERE account_id = $1 AND state <> 'deleted' AND concurrency_limit IS NOT NULL AND id <> $2")
        .bind(account.as_str())
        .bind(except.unwrap_or(-1))
        .fetch_all(&mut *conn)
        .await?;
    let mut total: u32 = 0;
    for row in rows {
        let limit: i64 = row.try_get("concurrency_limit")?;
        total = total.saturating_add(u32::try_from(limit).unwrap_or(0));
    }
    Ok(total)
}
