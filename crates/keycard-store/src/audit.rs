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

/// Filters for reading the login audit trail; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct LoginQuery {
    pub account: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub status: Option<String>,
    pub detail: Option<String>,
    pub user: Option<String>,
    pub integration: Option<String>,
    pub token_name: Option<String>,
    pub ip: Option<String>,
    pub surface: Option<String>,
    pub request_id: Option<String>,
    /// At most this many (newest first); 0 means no limit.
    pub limit: i64,
}

use crate::login_writer::LOGIN_COLUMNS;

impl Store {
    /// Writes a batch of login records in one transaction, in order (on an SQLite file through
    /// the native [`LoginWriter`](crate::LoginWriter), on a blocking thread).
    pub async fn insert_login_records(
        &self,
        records: &[keycard_core::LoginRecord],
    ) -> Result<(), StoreError> {
        if let Some(writer) = self.login_writer() {
            let records = records.to_vec();
            return tokio::task::spawn_blocking(move || writer.write(&records))
                .await
                .map_err(|_| StoreError::Conflict {
                    what: "the login audit writer stopped".to_owned(),
                })?;
        }
        if let Some(pool) = self.login_pool() {
            return insert_on_postgres(pool, records).await;
        }
        let mut tx = self.begin().await?;
        // One prepared statement reused per row: measured faster under load than multi-row
        // INSERTs of varying length through sqlx `Any` (bench, 2026-11-23).
        for r in records {
            sqlx::query(&format!("INSERT INTO login_audit ({LOGIN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"))
                .bind(r.at)
                .bind(&r.request_id)
                .bind(&r.ip)
                .bind(r.account.as_deref())
                .bind(r.integration.as_deref())
                .bind(r.token_name.as_deref())
                .bind(r.user.as_deref())
                .bind(r.role.as_deref())
                .bind(&r.surface)
                .bind(&r.request_uri)
                .bind(&r.status)
                .bind(&r.detail)
                .bind(r.diagnosis.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The login audit trail, newest first.
    pub async fn login_records(
        &self,
        query: &LoginQuery,
    ) -> Result<Vec<keycard_core::LoginRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {LOGIN_COLUMNS} FROM login_audit WHERE ($1 IS NULL OR account_id = $1) AND ($2 IS NULL OR at >= $2) AND ($3 IS NULL OR at <= $3) AND ($4 IS NULL OR status = $4) AND ($5 IS NULL OR detail = $5) AND ($6 IS NULL OR user_email = $6) AND ($7 IS NULL OR integration_name = $7) AND ($8 IS NULL OR token_name = $8) AND ($9 IS NULL OR ip = $9) AND ($10 IS NULL OR surface = $10) AND ($11 IS NULL OR request_id = $11) ORDER BY id DESC LIMIT $12"
        ))
        .bind(query.account.as_deref())
        .bind(query.since)
        .bind(query.until)
        .bind(query.status.as_deref())
        .bind(query.detail.as_deref())
        .bind(query.user.as_deref())
        .bind(query.integration.as_deref())
        .bind(query.token_name.as_deref())
        .bind(query.ip.as_deref())
        .bind(query.surface.as_deref())
        .bind(query.request_id.as_deref())
        .bind(if query.limit > 0 { query.limit } else { i64::MAX })
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(keycard_core::LoginRecord {
                    at: row.try_get("at")?,
                    request_id: row.try_get("request_id")?,
                    ip: row.try_get("ip")?,
                    account: row.try_get("account_id")?,
                    integration: row.try_get("integration_name")?,
                    token_name: row.try_get("token_name")?,
                    user: row.try_get("user_email")?,
                    role: row.try_get("role_name")?,
                    surface: row.try_get("surface")?,
                    request_uri: row.try_get("request_uri")?,
                    status: row.try_get("status")?,
                    detail: row.try_get("detail")?,
                    diagnosis: serde_json::from_str(&row.try_get::<String, _>("diagnosis")?)
                        .unwrap_or_default(),
                })
            })
            .collect()
    }
}

/// A whole batch in one statement and one round trip: each column bound as an array, the rows
/// rebuilt by `UNNEST` in the batch's order (ids follow it). One INSERT per row cost a round
/// trip each, which held a node on PostgreSQL to about 10k logins/s.
async fn insert_on_postgres(
    pool: &sqlx::PgPool,
    records: &[keycard_core::LoginRecord],
) -> Result<(), StoreError> {
    fn column<'a, T>(
        records: &'a [keycard_core::LoginRecord],
        pick: impl Fn(&'a keycard_core::LoginRecord) -> T,
    ) -> Vec<T> {
        records.iter().map(pick).collect()
    }
    sqlx::query(&format!(
        "INSERT INTO login_audit ({LOGIN_COLUMNS}) SELECT {LOGIN_COLUMNS} FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[]) WITH ORDINALITY AS batch({LOGIN_COLUMNS}, n) ORDER BY n"
    ))
    .bind(column(records, |r| r.at))
    .bind(column(records, |r| r.request_id.as_str()))
    .bind(column(records, |r| r.ip.as_str()))
    .bind(column(records, |r| r.account.as_deref()))
    .bind(column(records, |r| r.integration.as_deref()))
    .bind(column(records, |r| r.token_name.as_deref()))
    .bind(column(records, |r| r.user.as_deref()))
    .bind(column(records, |r| r.role.as_deref()))
    .bind(column(records, |r| r.surface.as_str()))
    .bind(column(records, |r| r.request_uri.as_str()))
    .bind(column(records, |r| r.status.as_str()))
    .bind(column(records, |r| r.detail.as_str()))
    .bind(column(records, |r| r.diagnosis.to_string()))
    .execute(pool)
    .await?;
    Ok(())
}
