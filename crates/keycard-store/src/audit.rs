//! Reading the admin audit trail.

use keycard_core::{AccountId, AdminAction, AdminEvent, Text};
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

use crate::login_blocks;
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
            let replaced: Vec<_>;
            let records = if records.iter().any(holds_nul) {
                replaced = records.iter().map(without_nul).collect();
                &replaced
            } else {
                records
            };
            return insert_on_postgres(pool, records).await;
        }
        // Unreachable: an SQLite store always has a file, hence the native writer
        // (`Store::open` refuses in-memory databases), and PostgreSQL its pool.
        Err(StoreError::Conflict {
            what: "this store has no login record writer".to_owned(),
        })
    }

    /// The next process number (1, 2, …): `keycard serve` takes one at startup as the prefix of
    /// its request ids, which makes them unique across the processes sharing this trail.
    pub async fn next_process_number(&self) -> Result<i64, StoreError> {
        let row =
            sqlx::query("UPDATE process_numbers SET last = last + 1 WHERE id = 1 RETURNING last")
                .fetch_one(self.pool())
                .await?;
        Ok(row.try_get("last")?)
    }

    /// The login audit trail, newest first: on SQLite its blocks, then the rows written
    /// before them; on PostgreSQL its rows.
    pub async fn login_records(
        &self,
        query: &LoginQuery,
    ) -> Result<Vec<keycard_core::LoginRecord>, StoreError> {
        let limit = usize::try_from(query.limit)
            .ok()
            .filter(|limit| *limit > 0)
            .unwrap_or(usize::MAX);
        let mut found = Vec::new();
        if self.backend() == crate::Backend::Sqlite {
            self.block_records(query, limit, &mut found).await?;
        }
        if found.len() < limit {
            let rest = i64::try_from(limit - found.len()).unwrap_or(i64::MAX);
            found.extend(self.row_records(query, rest).await?);
        }
        Ok(found)
    }

    /// Appends the records of SQLite's blocks that `query` selects, newest first, until
    /// `found` holds `limit`. A request id reads only the blocks its key names; otherwise
    /// blocks are read a page at a time from the newest, skipping (undecoded) those whose
    /// times lie outside `since`..`until`.
    async fn block_records(
        &self,
        query: &LoginQuery,
        limit: usize,
        found: &mut Vec<keycard_core::LoginRecord>,
    ) -> Result<(), StoreError> {
        const PAGE: i64 = 64;
        // Filtered as stored: only the records kept are copied out of the block.
        let keep = |block: &[u8], found: &mut Vec<keycard_core::LoginRecord>| {
            let stored = login_blocks::read(block)?;
            for record in stored.iter().rev() {
                if found.len() >= limit {
                    break;
                }
                if login_blocks::matches(query, record) {
                    found.push(record.to_record()?);
                }
            }
            Ok::<_, StoreError>(())
        };
        if let Some(request_id) = &query.request_id {
            let key = login_blocks::request_key(request_id);
            let reach = i64::try_from(login_blocks::MAX_KEY_RANGE_WIDTH).unwrap_or(i64::MAX);
            let mut blocks = sqlx::query(BLOCKS_BY_KEY)
                .bind(key.saturating_sub(reach))
                .bind(key)
                .fetch_all(self.pool())
                .await?
                .into_iter()
                .map(|block| Ok((block.try_get::<i64, _>("id")?, block)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            // Newest first; sorted here, as the index is in key order.
            blocks.sort_unstable_by_key(|(id, _)| std::cmp::Reverse(*id));
            for (_, block) in &blocks {
                keep(&block.try_get::<Vec<u8>, _>("records")?, found)?;
                if found.len() >= limit {
                    break;
                }
            }
            return Ok(());
        }
        let mut before = i64::MAX;
        loop {
            let blocks = sqlx::query(BLOCKS_BEFORE)
                .bind(before)
                .bind(query.since.unwrap_or(i64::MIN))
                .bind(query.until.unwrap_or(i64::MAX))
                .bind(PAGE)
                .fetch_all(self.pool())
                .await?;
            for block in &blocks {
                before = block.try_get("id")?;
                keep(&block.try_get::<Vec<u8>, _>("records")?, found)?;
                if found.len() >= limit {
                    return Ok(());
                }
            }
            if i64::try_from(blocks.len()).unwrap_or(i64::MAX) < PAGE {
                return Ok(());
            }
        }
    }

    /// Up to `limit` rows of the row table that `query` selects, newest first.
    ///
    /// Only the filters given enter the statement: a catch-all `($n IS NULL OR column = $n)`
    /// hides the columns from the query planner, so every read scanned the whole trail, a
    /// lookup by request id included (SQLite's `EXPLAIN QUERY PLAN`: `SCAN login_audit`).
    async fn row_records(
        &self,
        query: &LoginQuery,
        limit: i64,
    ) -> Result<Vec<keycard_core::LoginRecord>, StoreError> {
        let (sql, filters) = login_query(query);
        let mut statement = sqlx::query(&sql);
        for value in filters {
            statement = match value {
                Filter::Text(v) => statement.bind(v),
                Filter::Time(v) => statement.bind(v),
            };
        }
        let rows = statement.bind(limit).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|row| {
                let text = |column: &str| row.try_get::<String, _>(column).map(Text::from);
                let optional = |column: &str| {
                    row.try_get::<Option<String>, _>(column)
                        .map(|value| value.map(Text::from))
                };
                Ok(keycard_core::LoginRecord {
                    at: row.try_get("at")?,
                    request_id: text("request_id")?,
                    ip: text("ip")?,
                    account: optional("account_id")?,
                    integration: optional("integration_name")?,
                    token_name: optional("token_name")?,
                    user: optional("user_email")?,
                    role: optional("role_name")?,
                    surface: text("surface")?,
                    request_uri: text("request_uri")?,
                    status: text("status")?,
                    detail: text("detail")?,
                    diagnosis: serde_json::from_str(&row.try_get::<String, _>("diagnosis")?)
                        .unwrap_or_default(),
                })
            })
            .collect()
    }
}

/// A page of blocks older than `$1` whose times reach into `$2`..=`$3`, newest first. The
/// bounds need no index: the walk goes by id and stops at the limit.
const BLOCKS_BEFORE: &str = "SELECT id, records FROM login_audit_blocks \
    WHERE id < $1 AND last_at >= $2 AND first_at <= $3 ORDER BY id DESC LIMIT $4";

/// The blocks whose key ranges hold key `$2`: ranges start at most their greatest width
/// below it (`$1`), so the index is read from there to the key.
const BLOCKS_BY_KEY: &str = "SELECT b.id, b.records FROM login_audit_key_ranges r \
    JOIN login_audit_blocks b ON b.id = r.block \
    WHERE r.first_key BETWEEN $1 AND $2 AND r.last_key >= $2";

/// A value one of [`Store::login_records`]'s filters compares with.
enum Filter<'a> {
    Text(&'a str),
    Time(i64),
}

/// The statement [`Store::login_records`] runs for `query`, and the values of its filters in
/// the order of their placeholders (the limit, last, is not among them).
fn login_query<'q>(query: &'q LoginQuery) -> (String, Vec<Filter<'q>>) {
    use std::fmt::Write as _;

    let text = |column, value: Option<&'q str>| value.map(|v| (column, "=", Filter::Text(v)));
    let time = |op, value: Option<i64>| value.map(|v| ("at", op, Filter::Time(v)));
    let conditions = [
        text("request_id", query.request_id.as_deref()),
        text("account_id", query.account.as_deref()),
        time(">=", query.since),
        time("<=", query.until),
        text("status", query.status.as_deref()),
        text("detail", query.detail.as_deref()),
        text("user_email", query.user.as_deref()),
        text("integration_name", query.integration.as_deref()),
        text("token_name", query.token_name.as_deref()),
        text("ip", query.ip.as_deref()),
        text("surface", query.surface.as_deref()),
    ];
    let mut sql = format!("SELECT {LOGIN_COLUMNS} FROM login_audit");
    let mut values = Vec::new();
    for (column, op, value) in conditions.into_iter().flatten() {
        let joint = if values.is_empty() { "WHERE" } else { "AND" };
        values.push(value);
        let _ = write!(sql, " {joint} {column} {op} ${}", values.len());
    }
    let _ = write!(sql, " ORDER BY id DESC LIMIT ${}", values.len() + 1);
    (sql, values)
}

/// The record's text fields: what a client sent (a decoded NLAuth email, say) may hold a NUL.
fn texts(record: &keycard_core::LoginRecord) -> impl Iterator<Item = &str> {
    let optional = [
        &record.account,
        &record.integration,
        &record.token_name,
        &record.user,
        &record.role,
    ];
    [
        &record.request_id,
        &record.ip,
        &record.surface,
        &record.request_uri,
        &record.status,
        &record.detail,
    ]
    .into_iter()
    .chain(optional.into_iter().flatten())
    .map(keycard_core::Text::as_str)
}

fn holds_nul(record: &keycard_core::LoginRecord) -> bool {
    texts(record).any(|text| text.contains('\0'))
}

/// The record with each NUL replaced by U+FFFD: PostgreSQL text cannot hold a NUL, and a
/// batch it refuses would be retried for ever, holding back the whole trail.
fn without_nul(record: &keycard_core::LoginRecord) -> keycard_core::LoginRecord {
    let replace = |text: &keycard_core::Text| -> keycard_core::Text {
        if text.contains('\0') {
            text.replace('\0', "\u{fffd}").into()
        } else {
            text.clone()
        }
    };
    let optional = |text: &Option<keycard_core::Text>| text.as_ref().map(replace);
    keycard_core::LoginRecord {
        at: record.at,
        request_id: replace(&record.request_id),
        ip: replace(&record.ip),
        account: optional(&record.account),
        integration: optional(&record.integration),
        token_name: optional(&record.token_name),
        user: optional(&record.user),
        role: optional(&record.role),
        surface: replace(&record.surface),
        request_uri: replace(&record.request_uri),
        status: replace(&record.status),
        detail: replace(&record.detail),
        diagnosis: record.diagnosis.clone(),
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// SQLite's plan for `query` on the schema the migrations build, one line per step.
    fn sqlite_plan(query: &LoginQuery) -> String {
        let (sql, filters) = login_query(query);
        let mut values: Vec<rusqlite::types::Value> = filters
            .into_iter()
            .map(|filter| match filter {
                Filter::Text(v) => v.to_owned().into(),
                Filter::Time(v) => v.into(),
            })
            .collect();
        values.push(50.into());
        statement_plan(&sql, values)
    }

    /// Runs SQLite's migrations whose file names `pick` accepts, in order.
    fn migrate(connection: &rusqlite::Connection, pick: impl Fn(&str) -> bool) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
        let mut migrations: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| pick(&path.file_name().unwrap().to_string_lossy()))
            .collect();
        migrations.sort();
        for migration in migrations {
            connection
                .execute_batch(&std::fs::read_to_string(migration).unwrap())
                .unwrap();
        }
    }

    /// SQLite's plan for `sql` with `values` bound, on the schema the migrations build.
    fn statement_plan(sql: &str, values: Vec<rusqlite::types::Value>) -> String {
        let connection = rusqlite::Connection::open_in_memory().unwrap();
        migrate(&connection, |_| true);
        let mut statement = connection
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let steps = statement
            .query_map(rusqlite::params_from_iter(values), |row| {
                row.get::<_, String>(3)
            })
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        steps.join("\n")
    }

    #[test]
    fn a_request_key_reads_only_its_blocks() {
        let plan = statement_plan(BLOCKS_BY_KEY, vec![0.into(), 42.into()]);
        assert!(
            plan.contains("SEARCH r USING PRIMARY KEY (first_key>? AND first_key<?)")
                && plan.contains("SEARCH b USING INTEGER PRIMARY KEY (rowid=?)")
                && !plan.contains("TEMP B-TREE"),
            "{plan}"
        );
    }

    /// A trail indexed by request keys before migration 0008 is found through the ranges.
    #[test]
    fn keys_indexed_before_the_ranges_are_still_found() {
        let connection = rusqlite::Connection::open_in_memory().unwrap();
        migrate(&connection, |name| name < "0008");
        connection
            .execute_batch(
                "INSERT INTO login_audit_blocks (id, first_at, last_at, records) VALUES (5, 1, 2, x'01'); \
                 INSERT INTO login_audit_request_keys (request_key, block) VALUES (41, 5), (-3, 5);",
            )
            .unwrap();
        migrate(&connection, |name| name >= "0008");
        let blocks_of = |key: i64| -> Vec<i64> {
            let reach = i64::try_from(login_blocks::MAX_KEY_RANGE_WIDTH).unwrap();
            let mut statement = connection.prepare(BLOCKS_BY_KEY).unwrap();
            statement
                .query_map((key.saturating_sub(reach), key), |row| row.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        assert_eq!(blocks_of(41), [5]);
        assert_eq!(blocks_of(-3), [5]);
        assert!(blocks_of(40).is_empty());
        assert!(blocks_of(42).is_empty());
    }

    #[test]
    fn pages_of_blocks_walk_by_id_without_sorting() {
        let plan = statement_plan(
            BLOCKS_BEFORE,
            vec![i64::MAX.into(), 0.into(), i64::MAX.into(), 64.into()],
        );
        assert!(
            plan.contains("SEARCH login_audit_blocks USING INTEGER PRIMARY KEY (rowid<?)")
                && !plan.contains("TEMP B-TREE"),
            "{plan}"
        );
    }

    #[test]
    fn a_request_id_is_looked_up_through_its_index() {
        for account in [None, Some("1234567".to_owned())] {
            let plan = sqlite_plan(&LoginQuery {
                request_id: Some("0123456789abcdef".into()),
                account,
                ..LoginQuery::default()
            });
            assert!(plan.contains("USING INDEX login_audit_request"), "{plan}");
        }
    }

    #[test]
    fn listings_walk_the_trail_newest_first_without_sorting_it() {
        let queries = [
            LoginQuery::default(),
            LoginQuery {
                account: Some("1234567".into()),
                ..LoginQuery::default()
            },
            LoginQuery {
                account: Some("1234567".into()),
                since: Some(1_700_000_000),
                until: Some(1_800_000_000),
                status: Some("Failure".into()),
                ..LoginQuery::default()
            },
        ];
        for query in &queries {
            let plan = sqlite_plan(query);
            // A temporary B-tree would be a sort of every matching row before the limit.
            assert!(
                plan.starts_with("SCAN login_audit") && !plan.contains("TEMP B-TREE"),
                "{query:?}: {plan}"
            );
        }
    }

    #[test]
    fn only_the_filters_given_enter_the_statement() {
        let query = LoginQuery {
            user: Some("a@example.com".into()),
            since: Some(5),
            limit: 10,
            ..LoginQuery::default()
        };
        let (sql, values) = login_query(&query);
        assert!(
            sql.ends_with(
                " FROM login_audit WHERE at >= $1 AND user_email = $2 ORDER BY id DESC LIMIT $3"
            ),
            "{sql}"
        );
        assert!(matches!(
            values[..],
            [Filter::Time(5), Filter::Text("a@example.com")]
        ));
    }
}
