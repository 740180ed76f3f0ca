//! Accounts.

use std::collections::BTreeSet;

use keycard_core::{
    Account, AccountId, AdminAction, EntityKind, Feature, ServiceTier, error::check_text,
};
use serde_json::json;

use crate::rows::{self, ACCOUNT_COLUMNS, to_json};
use crate::{Store, StoreError, change};

/// A new account. Features default to all but OAuth 2.0.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub id: AccountId,
    pub name: String,
    pub features: Option<BTreeSet<Feature>>,
    pub tier: ServiceTier,
    pub suitecloud_plus_licenses: u32,
    pub concurrency_limit_override: Option<u32>,
    pub require_approval_for_auto_installed: bool,
}

impl NewAccount {
    pub fn new(id: AccountId, name: &str) -> Self {
        Self {
            id,
            name: name.to_owned(),
            features: None,
            tier: ServiceTier::Standard,
            suitecloud_plus_licenses: 0,
            concurrency_limit_override: None,
            require_approval_for_auto_installed: false,
        }
    }
}

/// Changes to an account; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct AccountUpdate {
    pub name: Option<String>,
    pub enable: Vec<Feature>,
    pub disable: Vec<Feature>,
    pub tier: Option<ServiceTier>,
    pub suitecloud_plus_licenses: Option<u32>,
    /// `Some(None)` clears the override.
    pub concurrency_limit_override: Option<Option<u32>>,
    pub require_approval_for_auto_installed: Option<bool>,
}

fn feature_json(features: &BTreeSet<Feature>) -> String {
    to_json(&features.iter().map(|f| f.as_str()).collect::<Vec<_>>())
}

impl Store {
    pub async fn create_account(
        &self,
        actor: &str,
        new: NewAccount,
    ) -> Result<Account, StoreError> {
        let name = check_text("account name", &new.name, 200)?;
        if new.concurrency_limit_override == Some(0) {
            // As `update_account` says: no request could ever run.
            return Err(keycard_core::RuleError::ConcurrencyLimitZero.into());
        }
        let features = new.features.unwrap_or_else(|| {
            [
                Feature::TokenBasedAuthentication,
                Feature::RestWebServices,
                Feature::SoapWebServices,
            ]
            .into()
        });
        let mut tx = self.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO accounts (id, name, features, tier, suitecloud_plus_licenses, concurrency_limit_override, require_approval, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(new.id.as_str())
        .bind(&name)
        .bind(feature_json(&features))
        .bind(new.tier.as_str())
        .bind(i64::from(new.suitecloud_plus_licenses))
        .bind(new.concurrency_limit_override.map(i64::from))
        .bind(i64::from(new.require_approval_for_auto_installed))
        .bind(self.now())
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(error) if StoreError::is_unique_violation(&error) => {
                return Err(StoreError::Duplicate {
                    kind: "account",
                    key: new.id.to_string(),
                });
            }
            other => other?,
        };
        self.record(
            &mut tx,
            actor,
            Some(&new.id),
            AdminAction::AccountCreated,
            new.id.as_str(),
            json!({ "name": name }),
        )
        .await?;
        let account = fetch(&mut tx, &new.id).await?;
        self.commit(
            tx,
            vec![change(Some(&new.id), EntityKind::Account, &new.id)],
        )
        .await?;
        Ok(account)
    }

    pub async fn account(&self, id: &AccountId) -> Result<Account, StoreError> {
        let mut conn = self.pool().acquire().await?;
        fetch(&mut conn, id).await
    }

    pub async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY id"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(rows::account).collect()
    }

    pub async fn update_account(
        &self,
        actor: &str,
        id: &AccountId,
        update: AccountUpdate,
    ) -> Result<Account, StoreError> {
        let mut tx = self.begin().await?;
        let mut account = fetch(&mut tx, id).await?;
        if let Some(name) = &update.name {
            account.name = check_text("account name", name, 200)?;
        }
        account.features.extend(update.enable.iter().copied());
        for feature in &update.disable {
            account.features.remove(feature);
        }
        if let Some(tier) = update.tier {
            account.tier = tier;
        }
        if let Some(licenses) = update.suitecloud_plus_licenses {
            account.suitecloud_plus_licenses = licenses;
        }
        if let Some(limit) = update.concurrency_limit_override {
            if limit == Some(0) {
                return Err(keycard_core::RuleError::ConcurrencyLimitZero.into());
            }
            account.concurrency_limit_override = limit;
        }
        if let Some(require) = update.require_approval_for_auto_installed {
            account.require_approval_for_auto_installed = require;
        }
        // Integration limits must still fit under a lowered account limit.
        let allocated = crate::integrations::allocated(&mut tx, id, None).await?;
        if allocated > 0 && allocated >= account.concurrency_limit() {
            return Err(StoreError::Conflict {
                what: format!(
                    "the account limit {} would not leave 1 unallocated slot: integrations hold {allocated}; lower their limits first",
                    account.concurrency_limit()
                ),
            });
        }
        sqlx::query("UPDATE accounts SET name = $1, features = $2, tier = $3, suitecloud_plus_licenses = $4, concurrency_limit_override = $5, require_approval = $6 WHERE id = $7")
            .bind(&account.name)
            .bind(feature_json(&account.features))
            .bind(account.tier.as_str())
            .bind(i64::from(account.suitecloud_plus_licenses))
            .bind(account.concurrency_limit_override.map(i64::from))
            .bind(i64::from(account.require_approval_for_auto_installed))
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        let detail = json!({
            "features": account.features.iter().map(|f| f.as_str()).collect::<Vec<_>>(),
            "concurrency_limit": account.concurrency_limit(),
        });
        self.record(
            &mut tx,
            actor,
            Some(id),
            AdminAction::AccountUpdated,
            id.as_str(),
            detail,
        )
        .await?;
        self.commit(tx, vec![change(Some(id), EntityKind::Account, id)])
            .await?;
        Ok(account)
    }
}

pub(crate) async fn fetch(
    conn: &mut sqlx::AnyConnection,
    id: &AccountId,
) -> Result<Account, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1"
    ))
    .bind(id.as_str())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::NotFound {
        kind: "account",
        key: id.to_string(),
        hint: " (list them with `keycard account list`)",
    })?;
    rows::account(&row)
}
