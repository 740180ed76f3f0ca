//! SQLite's login trail in blocks (migration 0007): reads page through the blocks newest
//! first, then the rows written before them; lookups by request id go through the key ranges
//! (migration 0008).
//! (PostgreSQL keeps a row per record; the suite's other trail tests run on both.)

use keycard_core::LoginRecord;
use keycard_store::audit::LoginQuery;

use crate::{ACCOUNT, Harness};

fn record(i: u64, request_id: String) -> LoginRecord {
    LoginRecord {
        at: 1_700_000_000 + i64::try_from(i).unwrap(),
        request_id: request_id.into(),
        ip: "10.0.0.1".into(),
        account: Some(if i == 0 { "7654321" } else { ACCOUNT }.into()),
        integration: Some("Order Sync".into()),
        token_name: Some(format!("token{}", i % 3).into()),
        user: Some("ap@acme.example".into()),
        role: None,
        surface: "rest".into(),
        request_uri: "/rest/tokeninfo".into(),
        status: if i.is_multiple_of(5) {
            "Failure"
        } else {
            "Success"
        }
        .into(),
        detail: if i.is_multiple_of(5) {
            "InvalidNonce"
        } else {
            ""
        }
        .into(),
        diagnosis: if i.is_multiple_of(5) {
            serde_json::json!({ "problem": "replay", "i": i })
        } else {
            serde_json::Value::Null
        },
    }
}

/// keycard's own form: process 7, counter `i`.
fn keycard_id(i: u64) -> String {
    format!("{:016x}", (7 << 40) | i)
}

/// A row as the trail held them before its blocks.
fn insert_legacy_row(h: &Harness, request_id: &str, at: i64) {
    let connection = rusqlite::Connection::open(h.sqlite_file().unwrap()).unwrap();
    connection
        .execute(
            "INSERT INTO login_audit (at, request_id, ip, account_id, surface, request_uri, status, detail, diagnosis) \
             VALUES (?1, ?2, '10.0.0.9', ?3, 'soap', '/services/NetSuitePort_2025_2', 'Success', '', 'null')",
            (at, request_id, ACCOUNT),
        )
        .unwrap();
}

async fn ids(h: &Harness, query: LoginQuery) -> Vec<String> {
    h.store
        .login_records(&query)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.request_id.into())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_are_read_newest_first_across_pages_then_the_older_rows() {
    let h = crate::sqlite().await;
    insert_legacy_row(&h, "legacy-1", 1_600_000_000);
    insert_legacy_row(&h, "legacy-2", 1_600_000_001);
    let writer = h.store.login_writer().unwrap();
    // 70 blocks of one record, more than a page of blocks, then one of three.
    let records: Vec<_> = (0..73).map(|i| record(i, keycard_id(i))).collect();
    for one in records.iter().take(70) {
        writer.write(std::slice::from_ref(one)).unwrap();
    }
    writer.write(&records[70..]).unwrap();

    let newest_first: Vec<String> = (0..73)
        .rev()
        .map(keycard_id)
        .chain(["legacy-2".to_owned(), "legacy-1".to_owned()])
        .collect();
    assert_eq!(ids(&h, LoginQuery::default()).await, newest_first);
    let all = h.store.login_records(&LoginQuery::default()).await.unwrap();
    assert_eq!(
        all.iter().take(73).rev().cloned().collect::<Vec<_>>(),
        records
    );
    // A limit inside the second page of blocks, and one that reaches into the rows.
    let limited = |limit| LoginQuery {
        limit,
        ..LoginQuery::default()
    };
    assert_eq!(ids(&h, limited(66)).await, newest_first[..66]);
    assert_eq!(ids(&h, limited(74)).await, newest_first[..74]);
    // The oldest block alone matches: every page is read to find it.
    assert_eq!(
        ids(
            &h,
            LoginQuery {
                account: Some("7654321".into()),
                ..LoginQuery::default()
            }
        )
        .await,
        [keycard_id(0)]
    );
    // A time window selects inside blocks and skips the rest.
    assert_eq!(
        ids(
            &h,
            LoginQuery {
                since: Some(1_700_000_010),
                until: Some(1_700_000_012),
                ..LoginQuery::default()
            }
        )
        .await,
        [keycard_id(12), keycard_id(11), keycard_id(10)]
    );
    assert_eq!(
        ids(
            &h,
            LoginQuery {
                until: Some(1_600_000_000),
                ..LoginQuery::default()
            }
        )
        .await,
        ["legacy-1"]
    );
    let failures = ids(
        &h,
        LoginQuery {
            detail: Some("InvalidNonce".into()),
            token_name: Some("token1".into()),
            ..LoginQuery::default()
        },
    )
    .await;
    // i % 5 == 0 and i % 3 == 1: 70, 55, 40, 25, 10.
    assert_eq!(failures, [70, 55, 40, 25, 10].map(keycard_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_find_their_block_or_row() {
    let h = crate::sqlite().await;
    insert_legacy_row(&h, "legacy-1", 1_600_000_000);
    let writer = h.store.login_writer().unwrap();
    let records: Vec<_> = (1..=40).map(|i| record(i, keycard_id(i))).collect();
    // One block of 32 and one of 8 (the server's writer), then text ids in a block of their own.
    let mut open = writer.begin().unwrap().unwrap();
    for block in records.chunks(keycard_store::OpenLoginBatch::BLOCK_RECORDS) {
        open.insert(block).unwrap();
    }
    open.commit().unwrap();
    writer
        .write(&[
            record(41, "text-id".into()),
            record(42, "text-id".into()),
            record(43, "other".into()),
        ])
        .unwrap();
    let by_id = |id: &str| LoginQuery {
        request_id: Some(id.to_owned()),
        ..LoginQuery::default()
    };
    for i in [1, 32, 33, 40] {
        let found = h.store.login_records(&by_id(&keycard_id(i))).await.unwrap();
        assert_eq!(found, [records[usize::try_from(i).unwrap() - 1].clone()]);
    }
    assert!(ids(&h, by_id(&keycard_id(41))).await.is_empty());
    assert!(ids(&h, by_id("nope")).await.is_empty());
    assert_eq!(ids(&h, by_id("legacy-1")).await, ["legacy-1"]);
    // An id twice (only text ids can be): both records, newest first.
    let twice = h.store.login_records(&by_id("text-id")).await.unwrap();
    assert_eq!(
        twice.iter().map(|r| r.at).collect::<Vec<_>>(),
        [1_700_000_042, 1_700_000_041]
    );
    // Blocks whose key ranges interleave (a block's range covers another's key) and a block
    // spread wider than one range: each id finds its own record only.
    let spread = [1_000, 1_002, 1_000 + (1 << 20), 5_000_000];
    let interleaved = [1_001, 1_003];
    let mut open = writer.begin().unwrap().unwrap();
    for ids in [&spread[..], &interleaved[..]] {
        let block: Vec<_> = ids.iter().map(|&i| record(i, keycard_id(i))).collect();
        open.insert(&block).unwrap();
    }
    open.commit().unwrap();
    for i in spread.into_iter().chain(interleaved) {
        assert_eq!(ids(&h, by_id(&keycard_id(i))).await, [keycard_id(i)], "{i}");
    }
    assert!(ids(&h, by_id(&keycard_id(1_004))).await.is_empty());
    // The other filters still apply.
    let wrong_account = LoginQuery {
        account: Some("7654321".into()),
        ..by_id(&keycard_id(3))
    };
    assert!(ids(&h, wrong_account).await.is_empty());
}

/// The salts in the write-ahead log's header: SQLite draws new ones each time it starts the
/// log over.
fn log_salts(h: &Harness) -> [u8; 8] {
    let mut log = h.sqlite_file().unwrap().into_os_string();
    log.push("-wal");
    let header = std::fs::read(log).unwrap();
    header[16..24].try_into().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_that_copies_the_whole_log_starts_it_over_itself() {
    let h = crate::sqlite().await;
    let writer = h.store.login_writer().unwrap();
    let records: Vec<_> = (1..=40).map(|i| record(i, keycard_id(i))).collect();
    writer.write(&records[..20]).unwrap();
    writer.checkpoint().unwrap();
    let restarted = log_salts(&h);
    // The writer's next transaction goes on in the log the checkpoint started (starting it
    // over itself would have drawn new salts, and synced the header on the writer's thread).
    writer.write(&records[20..]).unwrap();
    assert_eq!(log_salts(&h), restarted);
    // Idle: the first checkpoint copies that and starts over once more, later ones find
    // nothing to copy and leave the log alone.
    writer.checkpoint().unwrap();
    let idle = log_salts(&h);
    assert_ne!(idle, restarted);
    writer.checkpoint().unwrap();
    writer.checkpoint().unwrap();
    assert_eq!(log_salts(&h), idle);
    let written = ids(&h, LoginQuery::default()).await;
    assert_eq!(written.len(), 40);
}
