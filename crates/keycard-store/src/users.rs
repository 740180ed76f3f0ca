//! Users and the roles they hold.

use keycard_core::user::check_email;
use keycard_core::{AccountId, AdminAction, EntityKind, User, UserStatus, error::check_text};
use serde_json::json;
use sqlx::Row;
use zeroize::Zeroizing;

use crate::crypto::{hash_password, verify_password};
use crate::rows::{self, USER_COLUMNS};
use crate::{Store, StoreError, change};

#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: String,
    pub name: String,
    pub password: Option<Zeroizing<String>>,
    /// Role ids or names to assign at once.
    pub roles: Vec<String>,
}

impl Store {
    pub async fn create_user(
        &self,
        actor: &str,
        account: &AccountId,
        new: NewUser,
    ) -> Result<User, StoreError> {
        let email = check_email(&new.email)?;
        let name = check_text("user name", &new.name, 200)?;
        let hash = new
            .password
            .as_deref()
            .map(|p| check_password(p).and_then(|()| Ok(hash_password(p)?)))
            .transpose()?;
        let mut tx = self.begin().await?;
        crate::accounts::fetch(&mut tx, account).await?;
        let inserted = sqlx::query(
            "INSERT INTO users (account_id, email, name, status, password_hash, created_at) VALUES ($1, $2, $3, 'active', $4, $5) RETURNING id",
        )
        .bind(account.as_str())
        .bind(&email)
        .bind(&name)
        .bind(hash)
        .bind(self.now())
        .fetch_one(&mut *tx)
        .await;
        let id: i64 = match inserted {
            Err(error) if StoreError::is_unique_violation(&error) => {
                return Err(StoreError::Duplicate {
                    kind: "user",
                    key: email,
                });
            }
            other => other?.try_get("id")?,
        };
        for role in &new.roles {
            let role = crate::roles::fetch(&mut tx, account, role).await?;
            sqlx::query("INSERT INTO user_roles (user_id, role_id) VALUES ($1, $2)")
                .bind(id)
                .bind(role.id)
                .execute(&mut *tx)
                .await?;
        }
        self.record(
            &mut tx,
            actor,
            Some(account),
            AdminAction::UserCreated,
            &id.to_string(),
            json!({ "email": email, "roles": new.roles }),
        )
        .await?;
        let user = fetch(&mut tx, account, &id.to_string()).await?;
        self.commit(tx, vec![change(Some(account), EntityKind::User, id)])
            .await?;
        Ok(user)
    }

    /// A user by internal id or email.
    pub async fn user(&self, account: &AccountId, key: &str) -> Result<User, StoreError> {
        let mut conn = self.pool().acquire().await?;
        fetch(&mut conn, account, key).await
    }

    pub async fn users(&self, account: &AccountId) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE account_id = $1 ORDER BY id"
        ))
        .bind(account.as_str())
        .fetch_all(self.pool())
        .await?;
        let mut users = rows.iter().map(rows::user).collect::<Result<Vec<_>, _>>()?;
        let links = sqlx::query("SELECT ur.user_id, ur.role_id FROM user_roles ur JOIN users u ON u.id = ur.user_id WHERE u.account_id = $1 ORDER BY ur.role_id")
            .bind(account.as_str())
            .fetch_all(self.pool())
            .await?;
        for link in links {
            let (user_id, role_id): (i64, i64) =
                (link.try_get("user_id")?, link.try_get("role_id")?);
            if let Some(user) = users.iter_mut().find(|u| u.id == user_id) {
                user.roles.push(role_id);
            }
        }
        Ok(users)
    }

    pub async fn assign_role(
        &self,
        actor: &str,
        account: &AccountId,
        user: &str,
        role: &str,
    ) -> Result<User, StoreError> {
        let mut tx = self.begin().await?;
        let user = fetch(&mut tx, account, user).await?;
        let role = crate::roles::fetch(&mut tx, account, role).await?;
        if user.holds(role.id) {
            return Err(StoreError::Conflict {
                what: format!("`{}` already holds the role `{}`", user.email, role.name),
            });
        }
        sqlx::query("INSERT INTO user_roles (user_id, role_id) VALUES ($1, $2)")
            .bind(user.id)
            .bind(role.id)
            .execute(&mut *tx)
            .await?;
        self.record(
            &mut tx,
            actor,
            Some(account),
            AdminAction::UserRoleAssigned,
            &user.id.to_string(),
            json!({ "role": role.name }),
        )
        .await?;
        let updated = fetch(&mut tx, account, &user.id.to_string()).await?;
        self.commit(tx, vec![change(Some(account), EntityKind::User, user.id)])
            .await?;
        Ok(updated)
    }

    /// Removes a role from a user. Tokens for that role stay active but can no longer log in.
    pub async fn remove_role(
        &self,
        actor: &str,
        account: &AccountId,
        user: &str,
        role: &str,
    ) -> Result<User, StoreError> {
        let mut tx = self.begin().await?;
        let user = fetch(&mut tx, account, user).await?;
        let role = crate::roles::fetch(&mut tx, account, role).await?;
        if !user.holds(role.id) {
            return Err(StoreError::Conflict {
                what: format!("`{}` does not hold the role `{}`", user.email, role.name),
            });
        }
        sqlx::query("DELETE FROM user_roles WHERE user_id = $1 AND role_id = $2")
            .bind(user.id)
            .bind(role.id)
            .execute(&mut *tx)
            .await?;
        self.record(
            &mut tx,
            actor,
            Some(account),
            AdminAction::UserRoleRemoved,
            &user.id.to_string(),
            json!({ "role": role.name }),
        )
        .await?;
        let updated = fetch(&mut tx, account, &user.id.to_string()).await?;
        self.commit(tx, vec![change(Some(account), EntityKind::User, user.id)])
            .await?;
        Ok(updated)
    }

    pub async fn set_user_status(
        &self,
        actor: &str,
        account: &AccountId,
        user: &str,
        status: UserStatus,
    ) -> Result<User, StoreError> {
        let mut tx = self.begin().await?;
        let mut user = fetch(&mut tx, account, user).await?;
        sqlx::query("UPDATE users SET status = $1 WHERE id = $2")
            .bind(status.as_str())
            .bind(user.id)
            .execute(&mut *tx)
            .await?;
        user.status = status;
        let action = if status == UserStatus::Active {
            AdminAction::UserEnabled
        } else {
            AdminAction::UserDisabled
        };
        self.record(
            &mut tx,
            actor,
            Some(account),
            action,
            &user.id.to_string(),
            json!({ "status": status.as_str() }),
        )
        .await?;
        self.commit(tx, vec![change(Some(account), EntityKind::User, user.id)])
            .await?;
        Ok(user)
    }

    pub async fn set_password(
        &self,
        actor: &str,
        account: &AccountId,
        user: &str,
        password: &str,
    ) -> Result<User, StoreError> {
        check_password(password)?;
        let hash = hash_password(password)?;
        let mut tx = self.begin().await?;
        let mut user = fetch(&mut tx, account, user).await?;
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(hash)
            .bind(user.id)
            .execute(&mut *tx)
            .await?;
        user.has_password = true;
        self.record(
            &mut tx,
            actor,
            Some(account),
            AdminAction::UserPasswordSet,
            &user.id.to_string(),
            json!({}),
        )
        .await?;
        self.commit(tx, vec![change(Some(account), EntityKind::User, user.id)])
            .await?;
        Ok(user)
    }

    /// Checks a user's password (NLAuth, issuetoken). `None` when the user is unknown, has no
    /// password, or the password is wrong.
    pub async fn check_password(
        &self,
        account: &AccountId,
        email: &str,
        password: &str,
    ) -> Result<Option<User>, StoreError> {
        if rows::never_stored(email) {
            return Ok(None);
        }
        let row =
            sqlx::query("SELECT id, password_hash FROM users WHERE account_id = $1 AND email = $2")
                .bind(account.as_str())
                .bind(email.trim().to_ascii_lowercase())
                .fetch_optional(self.pool())
                .await?;
        let Some(row) = row else { return Ok(None) };
        let Some(hash) = row.try_get::<Option<String>, _>("password_hash")? else {
            return Ok(None);
        };
        if !verify_password(password, &hash) {
            return Ok(None);
        }
        let id: i64 = row.try_get("id")?;
        Ok(Some(self.user(account, &id.to_string()).await?))
    }

    /// Deletes a user and, as NetSuite does, the user's tokens.
    pub async fn delete_user(
        &self,
        actor: &str,
        account: &AccountId,
        user: &str,
    ) -> Result<User, StoreError> {
        let mut tx = self.begin().await?;
        let user = fetch(&mut tx, account, user).await?;
        let tokens = sqlx::query("DELETE FROM tokens WHERE user_id = $1 RETURNING id")
            .bind(user.id)
            .fetch_all(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM user_roles WHERE user_id = $1")
            .bind(user.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(user.id)
            .execute(&mut *tx)
            .await?;
        self.record(
            &mut tx,
            actor,
            Some(account),
            AdminAction::UserDeleted,
            &user.id.to_string(),
            json!({ "email": user.email, "tokens_deleted": tokens.len() }),
        )
        .await?;
        let mut changed = vec![change(Some(account), EntityKind::User, user.id)];
        for row in &tokens {
            changed.push(change(
                Some(account),
                EntityKind::Token,
                row.try_get::<i64, _>("id")?,
            ));
        }
        self.commit(tx, changed).await?;
        Ok(user)
    }
}

fn check_password(password: &str) -> Result<(), StoreError> {
    if password.chars().count() < 8 {
        return Err(StoreError::Conflict {
            what: "a password must have at least 8 characters".into(),
        });
    }
    Ok(())
}

/// By internal id or email, with the roles the user holds.
pub(crate) async fn fetch(
    conn: &mut sqlx::AnyConnection,
    account: &AccountId,
    key: &str,
) -> Result<User, StoreError> {
    // Emails are kept in lower case (lowering digits changes nothing).
    let found = rows::by_key(
        conn,
        account,
        &key.to_ascii_lowercase(),
        &format!("SELECT {USER_COLUMNS} FROM users WHERE account_id = $1 AND id = $2"),
        &format!("SELECT {USER_COLUMNS} FROM users WHERE account_id = $1 AND email = $2"),
    )
    .await?;
    let row = found.first().ok_or_else(|| StoreError::NotFound {
        kind: "user",
        key: key.to_owned(),
        hint: " (list them with `keycard user list`)",
    })?;
    let mut user = rows::user(row)?;
    let roles = sqlx::query("SELECT role_id FROM user_roles WHERE user_id = $1 ORDER BY role_id")
        .bind(user.id)
        .fetch_all(&mut *conn)
        .await?;
    for role in roles {
        user.roles.push(role.try_get("role_id")?);
    }
    Ok(user)
}
