//! Reading the admin audit trail.

use keycard_core::{AccountId, AdminAction, AdminEvent};
use sqlx::Row;

use crate::{Store, StoreError};

const ACTIONS: [AdminAction; 25] = [
    AdminAction::AccountCreated,
    AdminAction::AccountUpdated,
    AdminAction::IntegrationCreated,
    AdminAction::IntegrationUpdated,
    AdminAction::IntegrationBlocked,
    AdminAction::IntegrationEnabled,
    AdminAction::IntegrationCredentialsReset,
    AdminAction::IntegrationDeleted,
    AdminAction::RoleCreated,
    AdminAction::RolePermissionGranted,
    AdminAction::RolePermissionRevoked,
    AdminAction::RoleUpdated,
    AdminAction::RoleDeleted,
    AdminAction::UserCreated,
    AdminAction::UserRoleAssigned,
    AdminAction::UserRoleRemoved,
    AdminAction::UserDisabled,
    AdminAction::UserEnabled,
    AdminAction::UserPasswordSet,
    AdminAction::UserDeleted,
    AdminAction::TokenCreated,
    AdminAction::TokenDeactivated,
    AdminAction::TokenActivated,
    AdminAction::TokenRevoked,
    AdminAction::KeysRotated,
];

pub(crate) async fn admin_events(store: &Store, limit: i64) -> Result<Vec<AdminEvent>, StoreError> {
    let rows = sqlx::query("SELECT at, actor, account_id, action, entity_id, detail FROM admin_audit ORDER BY id DESC LIMIT $1")
        .bind(limit)
        .fetch_all(store.pool())
        .await?;
    rows.iter()
        .map(|row| {
            let action: String = row.try_get("action")?;
            let account: Option<String> = row.try_get("account_id")?;
            Ok(AdminEvent {
                at: row.try_get("at")?,
                actor: row.try_get("actor")?,
                account: account.and_then(|a| AccountId::parse(&a).ok()),
                action: ACTIONS.into_iter().find(|a| a.as_str() == action).ok_or(
                    StoreError::Corrupt {
                        what: "an audit action",
                    },
                )?,
                entity_id: row.try_get("entity_id")?,
                detail: serde_json::from_str(&row.try_get::<String, _>("detail")?)
                    .unwrap_or_default(),
            })
        })
        .collect()
}
