//! Reading rows into domain types, shared by the entity modules.

use std::collections::{BTreeMap, BTreeSet};

use keycard_core::{
    AccessToken, Account, AccountId, Feature, Integration, IntegrationFlags, IntegrationState,
    Level, Role, ServiceTier, SetupPermission, TokenState, User, UserStatus,
};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::StoreError;

/// How a lookup reads the key a user or client names a record by.
pub(crate) enum Key<'a> {
    /// Digits only: the internal id (names may not be only digits: `check_name`).
    Id(i64),
    /// Anything else, trimmed: a name, email, token id or consumer key.
    Text(&'a str),
    /// A key no record can have: it holds a NUL, which no stored text holds (`check_text`
    /// refuses control characters) and PostgreSQL refuses as a parameter.
    Never,
}

pub(crate) fn key(key: &str) -> Key<'_> {
    let key = key.trim();
    if key.contains('\0') {
        Key::Never
    } else if !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit()) {
        key.parse().map_or(Key::Text(key), Key::Id)
    } else {
        Key::Text(key)
    }
}

/// Whether no stored text can be `text` ([`Key::Never`]): a lookup by it finds nothing.
pub(crate) fn never_stored(text: &str) -> bool {
    matches!(key(text), Key::Never)
}

/// The rows of `account` that `key` names: by `by_id` (binding the account and the id) when
/// the key is digits, else by `by_text` (the account and the trimmed key); none for a key that
/// no record can have.
pub(crate) async fn by_key(
    conn: &mut sqlx::AnyConnection,
    account: &AccountId,
    key: &str,
    by_id: &str,
    by_text: &str,
) -> Result<Vec<AnyRow>, StoreError> {
    let query = match self::key(key) {
        Key::Id(id) => sqlx::query(by_id).bind(account.as_str()).bind(id),
        Key::Text(text) => sqlx::query(by_text).bind(account.as_str()).bind(text),
        Key::Never => return Ok(Vec::new()),
    };
    Ok(query.fetch_all(&mut *conn).await?)
}

const CORRUPT: StoreError = StoreError::Corrupt {
    what: "a row does not match the schema",
};

fn account_id(row: &AnyRow, column: &str) -> Result<AccountId, StoreError> {
    AccountId::parse(&row.try_get::<String, _>(column)?).map_err(|_| StoreError::Corrupt {
        what: "an account id",
    })
}

fn json<T: serde::de::DeserializeOwned>(row: &AnyRow, column: &str) -> Result<T, StoreError> {
    serde_json::from_str(&row.try_get::<String, _>(column)?).map_err(|_| StoreError::Corrupt {
        what: "a JSON column",
    })
}

fn flag(row: &AnyRow, column: &str) -> Result<bool, StoreError> {
    Ok(row.try_get::<i64, _>(column)? != 0)
}

fn small(value: Option<i64>) -> Option<u32> {
    value.and_then(|v| u32::try_from(v).ok())
}

pub(crate) const ACCOUNT_COLUMNS: &str = "id, name, features, tier, suitecloud_plus_licenses, concurrency_limit_override, require_approval, created_at";

pub(crate) fn account(row: &AnyRow) -> Result<Account, StoreError> {
    let features: Vec<String> = json(row, "features")?;
    Ok(Account {
        id: account_id(row, "id")?,
        name: row.try_get("name")?,
        features: features
            .iter()
            .filter_map(|f| Feature::parse(f))
            .collect::<BTreeSet<_>>(),
        tier: ServiceTier::parse(&row.try_get::<String, _>("tier")?).ok_or(CORRUPT)?,
        suitecloud_plus_licenses: small(Some(row.try_get("suitecloud_plus_licenses")?))
            .unwrap_or(0),
        concurrency_limit_override: small(row.try_get("concurrency_limit_override")?),
        require_approval_for_auto_installed: flag(row, "require_approval")?,
        created_at: row.try_get("created_at")?,
    })
}

pub(crate) const INTEGRATION_COLUMNS: &str = "id, account_id, name, description, state, application_id, flags, concurrency_limit, consumer_key, created_at";

pub(crate) fn integration(row: &AnyRow) -> Result<Integration, StoreError> {
    let flags: IntegrationFlags = json(row, "flags")?;
    Ok(Integration {
        id: row.try_get("id")?,
        account: account_id(row, "account_id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        state: IntegrationState::parse(&row.try_get::<String, _>("state")?).ok_or(CORRUPT)?,
        application_id: row.try_get("application_id")?,
        flags,
        concurrency_limit: small(row.try_get("concurrency_limit")?),
        consumer_key: row.try_get("consumer_key")?,
        created_at: row.try_get("created_at")?,
    })
}

pub(crate) const ROLE_COLUMNS: &str =
    "id, account_id, name, records, setup, web_services_only, two_factor_required, allowed_ips";

pub(crate) fn role(row: &AnyRow) -> Result<Role, StoreError> {
    let records: BTreeMap<String, Level> = json(row, "records")?;
    let setup: BTreeSet<SetupPermission> = json(row, "setup")?;
    Ok(Role {
        id: row.try_get("id")?,
        account: account_id(row, "account_id")?,
        name: row.try_get("name")?,
        records,
        setup,
        web_services_only: flag(row, "web_services_only")?,
        two_factor_required: flag(row, "two_factor_required")?,
        allowed_ips: json(row, "allowed_ips")?,
    })
}

pub(crate) const USER_COLUMNS: &str =
    "id, account_id, email, name, status, password_hash, totp_secret";

/// A user row; `roles` are filled in by the caller from `user_roles`.
pub(crate) fn user(row: &AnyRow) -> Result<User, StoreError> {
    Ok(User {
        id: row.try_get("id")?,
        account: account_id(row, "account_id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        status: UserStatus::parse(&row.try_get::<String, _>("status")?).ok_or(CORRUPT)?,
        roles: Vec::new(),
        has_password: row.try_get::<Option<String>, _>("password_hash")?.is_some(),
        has_totp: row.try_get::<Option<Vec<u8>>, _>("totp_secret")?.is_some(),
    })
}

pub(crate) const TOKEN_COLUMNS: &str = "id, account_id, name, integration_id, user_id, role_id, token_id, state, revoked_at, revoked_by, created_at, created_by, last_used_at, last_used_ip, expires_at";

pub(crate) fn token(row: &AnyRow) -> Result<AccessToken, StoreError> {
    let state = match row.try_get::<String, _>("state")?.as_str() {
        "active" => TokenState::Active,
        "inactive" => TokenState::Inactive,
        "revoked" => TokenState::Revoked {
            at: row.try_get::<Option<i64>, _>("revoked_at")?.unwrap_or(0),
            by: row
                .try_get::<Option<String>, _>("revoked_by")?
                .unwrap_or_default(),
        },
        _ => return Err(CORRUPT),
    };
    Ok(AccessToken {
        id: row.try_get("id")?,
        account: account_id(row, "account_id")?,
        name: row.try_get("name")?,
        integration_id: row.try_get("integration_id")?,
        user_id: row.try_get("user_id")?,
        role_id: row.try_get("role_id")?,
        token_id: row.try_get("token_id")?,
        state,
        created_at: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
        last_used_at: row.try_get("last_used_at")?,
        last_used_ip: row.try_get("last_used_ip")?,
        expires_at: row.try_get("expires_at")?,
    })
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}
