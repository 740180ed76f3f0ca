//! Roles and their permissions.

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;
use keycard_core::{
    AccountId, AdminAction, EntityKind, Level, Role, SetupPermission, error::check_name,
};
use serde_json::json;
use sqlx::Row;

use crate::rows::{self, ROLE_COLUMNS, to_json};
use crate::{Store, StoreError, change};

#[derive(Debug, Clone, Default)]
pub struct NewRole {
    pub name: String,
    pub records: BTreeMap<String, Level>,
    pub setup: BTreeSet<SetupPermission>,
    pub web_services_only: bool,
    pub two_factor_required: bool,
    pub allowed_ips: Vec<IpNet>,
}

/// A change of permissions: grant adds or raises, revoke removes.
#[derive(Debug, Clone, Default)]
pub struct PermissionChange {
    pub records: BTreeMap<String, Level>,
    pub setup: BTreeSet<SetupPermission>,
    pub web_services_only: Option<bool>,
    pub two_factor_required: Option<bool>,
    /// Replaces the allowed IP ranges when set (empty = any address).
    pub allowed_ips: Option<Vec<IpNet>>,
}

impl Store {
    pub async fn create_role(
        &self,
        actor: &str,
        account: &AccountId,
        new: NewRole,
    ) -> Result<Role, StoreError> {
        let name = check_name("role name", &new.name, 200)?;
        let mut tx = self.begin().await?;
        crate::accounts::fetch(&mut tx, account).await?;
        let inserted = sqlx::query(
            "INSERT INTO roles (account_id, name, records, setup, web_services_only, two_factor_required, allowed_ips) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(account.as_str())
        .bind(&name)
        .bind(to_json(&new.records))
        .bind(to_json(&new.setup))
        .bind(i64::from(new.web_services_only))
        .bind(i64::from(new.two_factor_required))
        .bind(to_json(&new.allowed_ips))
        .fetch_one(&mut *tx)
        .await;
        let id: i64 = match inserted {
            Err(error) if StoreError::is_unique_violation(&error) => {
                return Err(StoreError::Duplicate {
                    kind: "role",
                    key: name,
                });
            }
            other => other?.try_get("id")?,
        };
        let role = fetch(&mut tx, account, &id.to_string()).await?;
        self.record(
            &mut tx,
            actor,
            Some(account),
            AdminAction::RoleCreated,
            &id.to_string(),
            json!({ "name": name, "setup": role.setup, "records": role.records }),
        )
        .await?;
        self.commit(tx, vec![change(Some(account), EntityKind::Role, id)])
            .await?;
        Ok(role)
    }

    /// A role by internal id or name.
    pub async fn role(&self, account: &AccountId, key: &str) -> Result<Role, StoreError> {
        let mut conn = self.pool().acquire().await?;
        fetch(&mut conn, account, key).await
    }

    pub async fn roles(&self, account: &AccountId) -> Result<Vec<Role>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {ROLE_COLUMNS} FROM roles WHERE account_id = $1 ORDER BY id"
        ))
        .bind(account.as_str())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(rows::role).collect()
    }

    /// Adds permissions (a record level replaces the previous one) and sets the flags given.
    pub async fn grant(
        &self,
        actor: &str,
        account: &AccountId,
        key: &str,
        grant: PermissionChange,
    ) -> Result<Role, StoreError> {
        self.change_permissions(actor, account, key, grant, true)
            .await
    }

    /// Removes the record permissions and setup permissions named.
    pub async fn revoke_permissions(
        &self,
        actor: &str,
        account: &AccountId,
        key: &str,
        revoke: PermissionChange,
    ) -> Result<Role, StoreError> {
        self.change_permissions(actor, account, key, revoke, false)
            .await
    }

    async fn change_permissions(
        &self,
        actor: &str,
        account: &AccountId,
        key: &str,
        change_set: PermissionChange,
        grant: bool,
    ) -> Result<Role, StoreError> {
        let mut tx = self.begin().await?;
        let mut role = fetch(&mut tx, account, key).await?;
        for (record, level) in &change_set.records {
            if grant && *level != Level::None {
                role.records.insert(record.clone(), *level);
            } else {
                role.records.remove(record);
            }
        }
        for permission in &change_set.setup {
            if grant {
                role.setup.insert(*permission);
            } else {
                role.setup.remove(permission);
            }
        }
        role.web_services_only = change_set
            .web_services_only
            .unwrap_or(role.web_services_only);
        role.two_factor_required = change_set
            .two_factor_required
            .unwrap_or(role.two_factor_required);
        if let Some(ips) = change_set.allowed_ips {
            role.allowed_ips = ips;
        }
        sqlx::query("UPDATE roles SET records = $1, setup = $2, web_services_only = $3, two_factor_required = $4, allowed_ips = $5 WHERE id = $6")
            .bind(to_json(&role.records))
            .bind(to_json(&role.setup))
            .bind(i64::from(role.web_services_only))
            .bind(i64::from(role.two_factor_required))
            .bind(to_json(&role.allowed_ips))
            .bind(role.id)
            .execute(&mut *tx)
            .await?;
        let action = if grant {
            AdminAction::RolePermissionGranted
        } else {
            AdminAction::RolePermissionRevoked
        };
        let detail = json!({ "records": change_set.records, "setup": change_set.setup });
        self.record(
            &mut tx,
            actor,
            Some(account),
            action,
            &role.id.to_string(),
            detail,
        )
        .await?;
        self.commit(tx, vec![change(Some(account), EntityKind::Role, role.id)])
            .await?;
        Ok(role)
    }

    /// Deletes a role no user holds and no token uses (NetSuite refuses to delete a role in use).
    pub async fn delete_role(
        &self,
        actor: &str,
        account: &AccountId,
        key: &str,
    ) -> Result<Role, StoreError> {
        let mut tx = self.begin().await?;
        let role = fetch(&mut tx, account, key).await?;
        let holders: i64 = sqlx::query("SELECT COUNT(*) AS n FROM user_roles WHERE role_id = $1")
            .bind(role.id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        let tokens: i64 = sqlx::query("SELECT COUNT(*) AS n FROM tokens WHERE role_id = $1")
            .bind(role.id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        if holders > 0 || tokens > 0 {
            return Err(StoreError::Conflict {
                what: format!(
                    "the role `{}` is in use ({holders} users hold it, {tokens} tokens use it); remove it from its users and delete those tokens' users first",
                    role.name
                ),
            });
        }
        sqlx::query("DELETE FROM roles WHERE id = $1")
            .bind(role.id)
            .execute(&mut *tx)
            .await?;
        self.record(
            &mut tx,
            actor,
            Some(account),
            AdminAction::RoleDeleted,
            &role.id.to_string(),
            json!({ "name": role.name }),
        )
        .await?;
        self.commit(tx, vec![change(Some(account), EntityKind::Role, role.id)])
            .await?;
        Ok(role)
    }
}

pub(crate) async fn fetch(
    conn: &mut sqlx::AnyConnection,
    account: &AccountId,
    key: &str,
) -> Result<Role, StoreError> {
    let found = rows::by_key(
        conn,
        account,
        key,
        &format!("SELECT {ROLE_COLUMNS} FROM roles WHERE account_id = $1 AND id = $2"),
        &format!("SELECT {ROLE_COLUMNS} FROM roles WHERE account_id = $1 AND name = $2"),
    )
    .await?;
    let row = found.first().ok_or_else(|| StoreError::NotFound {
        kind: "role",
        key: key.to_owned(),
        hint: " (list them with `keycard role list`)",
    })?;
    rows::role(row)
}
