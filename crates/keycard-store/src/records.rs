//! Records for the REST web services surface: JSON documents per account and record type.

use keycard_core::AccountId;
use serde_json::Value;
use sqlx::Row;

use crate::record_reader::Read;
use crate::{Store, StoreError};

impl Store {
    /// A page of records of one type, oldest first, and the total count.
    pub async fn rest_records(
        &self,
        account: &AccountId,
        record_type: &str,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<(i64, Value)>, i64), StoreError> {
        let rows = sqlx::query("SELECT id, body FROM records WHERE account_id = $1 AND record_type = $2 ORDER BY id LIMIT $3 OFFSET $4")
            .bind(account.as_str())
            .bind(record_type)
            .bind(limit)
            .bind(offset)
            .fetch_all(self.pool())
            .await?;
        let total: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM records WHERE account_id = $1 AND record_type = $2",
        )
        .bind(account.as_str())
        .bind(record_type)
        .fetch_one(self.pool())
        .await?
        .try_get("n")?;
        let items = rows
            .iter()
            .map(|row| {
                Ok((
                    row.try_get("id")?,
                    parse_body(&row.try_get::<String, _>("body")?),
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok((items, total))
    }

    /// One record, or `None`.
    pub async fn rest_record(
        &self,
        account: &AccountId,
        record_type: &str,
        id: i64,
    ) -> Result<Option<Value>, StoreError> {
        Ok(self
            .rest_record_text(account, record_type, id)
            .await?
            .map(|body| parse_body(&body)))
    }

    /// One record as stored, or `None`: the compact JSON text of an object, as
    /// `serde_json` writes a `Value` (keys in order, no spaces), for a caller that answers it
    /// without building the document. On SQLite it is read inline on a native connection
    /// (see `record_reader`), through the pool only when that finds the database locked.
    pub async fn rest_record_text(
        &self,
        account: &AccountId,
        record_type: &str,
        id: i64,
    ) -> Result<Option<String>, StoreError> {
        if let Some(reader) = &self.record_reader {
            if let Read::Done(body) = reader.rest_record(account.as_str(), record_type, id)? {
                return Ok(body);
            }
        }
        let row = sqlx::query(
            "SELECT body FROM records WHERE account_id = $1 AND record_type = $2 AND id = $3",
        )
        .bind(account.as_str())
        .bind(record_type)
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| r.try_get::<String, _>("body")).transpose()?)
    }

    pub async fn create_rest_record(
        &self,
        account: &AccountId,
        record_type: &str,
        body: &Value,
    ) -> Result<i64, StoreError> {
        let now = self.now();
        Ok(sqlx::query("INSERT INTO records (account_id, record_type, body, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) RETURNING id")
            .bind(account.as_str())
            .bind(record_type)
            .bind(body.to_string())
            .bind(now)
            .fetch_one(self.pool())
            .await?
            .try_get("id")?)
    }

    /// Replaces (`merge = false`) or merges the top-level fields of (`merge = true`) a record;
    /// false when it does not exist.
    pub async fn update_rest_record(
        &self,
        account: &AccountId,
        record_type: &str,
        id: i64,
        body: &Value,
        merge: bool,
    ) -> Result<bool, StoreError> {
        // The record's row alone is locked (PostgreSQL: FOR UPDATE; SQLite's transaction holds
        // its one write lock), so that two updates at once merge in turn and neither is lost,
        // while other records and the directory are written side by side.
        let mut tx = self.begin_write().await?;
        let lock = if self.backend() == crate::Backend::Postgres {
            " FOR UPDATE"
        } else {
            ""
        };
        let row = sqlx::query(&format!(
            "SELECT body FROM records WHERE account_id = $1 AND record_type = $2 AND id = $3{lock}"
        ))
        .bind(account.as_str())
        .bind(record_type)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(false) };
        let mut current = parse_body(&row.try_get::<String, _>("body")?);
        match (merge, &mut current, body) {
            (true, Value::Object(existing), Value::Object(changes)) => {
                for (key, value) in changes {
                    existing.insert(key.clone(), value.clone());
                }
            }
            _ => current = body.clone(),
        }
        sqlx::query("UPDATE records SET body = $1, updated_at = $2 WHERE id = $3")
            .bind(current.to_string())
            .bind(self.now())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn delete_rest_record(
        &self,
        account: &AccountId,
        record_type: &str,
        id: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "DELETE FROM records WHERE account_id = $1 AND record_type = $2 AND id = $3",
        )
        .bind(account.as_str())
        .bind(record_type)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }
}

/// A stored body as a document: JSON text written by this module from a `Value`, so it always
/// parses; `Null` should it ever not.
pub fn parse_body(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}
