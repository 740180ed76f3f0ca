//! Master key rotation: re-seal every secret under the current key.

use keycard_core::{AdminAction, EntityKind};
use serde_json::json;
use sqlx::Row;

use crate::{KeyRing, Store, StoreError, change};

/// Which sealed columns exist, with the row key that their AAD binds.
const SEALED: [(&str, &str, &str, &str); 3] = [
    (
        "integrations",
        "consumer_secret",
        "consumer_key",
        "integration:",
    ),
    ("tokens", "token_secret", "token_id", "token:"),
    ("users", "totp_secret", "id", "totp:"),
];

impl Store {
    /// The number of sealed secrets in the directory (for progress).
    pub async fn sealed_secret_count(&self) -> Result<u64, StoreError> {
        let mut total = 0u64;
        for (table, column, _, _) in SEALED {
            let n: i64 = sqlx::query(&format!(
                "SELECT COUNT(*) AS n FROM {table} WHERE {column} IS NOT NULL"
            ))
            .fetch_one(self.pool())
            .await?
            .try_get("n")?;
            total += u64::try_from(n).unwrap_or(0);
        }
        Ok(total)
    }

    /// Switches to `ring` (whose last key is the new current one) and re-seals every secret not
    /// yet under it, in one transaction. `progress` is called after each secret.
    pub async fn rotate_keys(
        &self,
        actor: &str,
        ring: KeyRing,
        mut progress: impl FnMut(u64),
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let mut done = 0u64;
        for (table, column, key_column, prefix) in SEALED {
            let rows = sqlx::query(&format!("SELECT id, CAST({key_column} AS TEXT) AS row_key, {column} AS sealed FROM {table} WHERE {column} IS NOT NULL"))
                .fetch_all(&mut *tx)
                .await?;
            for row in rows {
                let id: i64 = row.try_get("id")?;
                let aad = format!("{prefix}{}", row.try_get::<String, _>("row_key")?);
                let sealed: Vec<u8> = row.try_get("sealed")?;
                if !ring.is_current(&sealed) {
                    let plain = ring.open(&sealed, aad.as_bytes())?;
                    let resealed = ring.seal(&plain, aad.as_bytes())?;
                    sqlx::query(&format!("UPDATE {table} SET {column} = $1 WHERE id = $2"))
                        .bind(resealed)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                done += 1;
                progress(done);
            }
        }
        self.record(
            &mut tx,
            actor,
            None,
            AdminAction::KeysRotated,
            ring.current_id(),
            json!({ "secrets": done, "keys": ring.ids() }),
        )
        .await?;
        // Sent like every other change (in the transaction, so other nodes hear of it with the
        // commit): their caches then drop at once what their version poll would drop later.
        let changed = vec![change(None, EntityKind::MasterKey, "rotated")];
        self.log_changes(&mut tx, &changed).await?;
        self.notify(&mut tx, &changed).await?;
        tx.commit().await?;
        self.replace_keys(ring);
        self.publish(changed);
        Ok(done)
    }
}
