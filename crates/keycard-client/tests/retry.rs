//! The client's retry rule against a tiny local HTTP server that answers from a script:
//! concurrency rejections are retried with backoff and a fresh nonce and timestamp each time;
//! a 401 or any other failure is not retried; the error carries the code and request id.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keycard_client::{Call, Client, Clock, Credentials, Error, Randomness, Realm, RetryPolicy};
use keycard_oauth1::AuthorizationHeader;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const BUSY_REST: &str = r#"{"type":"https://www.rfc-editor.org/rfc/rfc6585.html#section-4","title":"Too Many Requests","status":429,"o:errorDetails":[{"detail":"Concurrent request limit exceeded. Request blocked.","o:errorCode":"CONCURRENCY_LIMIT_EXCEEDED"}]}"#;
const BUSY_RESTLET: &str = r#"{"error":{"code":"SSS_REQUEST_LIMIT_EXCEEDED","message":"Concurrent request limit exceeded. Request blocked."}}"#;
const INVALID_LOGIN: &str =
    r#"{"error":{"code":"INVALID_LOGIN_ATTEMPT","message":"Invalid login attempt."}}"#;

/// Serves `script` in order (status, body), one connection per request, and records each
/// request's `Authorization` header and arrival time.
async fn scripted(
    script: Vec<(u16, &'static str)>,
) -> (String, Arc<Mutex<Vec<(String, Instant)>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        for (i, (status, body)) in script.into_iter().enumerate() {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = socket.read(&mut buf).await.unwrap();
                assert!(n > 0, "the client closed early");
                request.extend_from_slice(&buf[..n]);
            }
            let text = String::from_utf8_lossy(&request).into_owned();
            let authorization = text
                .lines()
                .find_map(|l| {
                    l.split_once(':')
                        .filter(|(n, _)| n.eq_ignore_ascii_case("authorization"))
                        .map(|(_, v)| v.trim().to_owned())
                })
                .unwrap_or_default();
            log.lock().unwrap().push((authorization, Instant::now()));
            let response = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\nx-request-id: req{i}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            socket.write_all(response.as_bytes()).await.unwrap();
            socket.shutdown().await.ok();
        }
    });
    (format!("http://127.0.0.1:{}", addr.port()), seen)
}

/// A clock that ticks one second per read.
struct Ticking(AtomicU64);
impl Clock for Ticking {
    fn unix_now(&self) -> u64 {
        self.0.fetch_add(1, Ordering::SeqCst)
    }
}

/// Counting nonces, and the largest jitter (so waits are exactly the cap of each step).
struct Counting(AtomicU64);
impl Randomness for Counting {
    fn nonce(&self) -> String {
        format!("nonce{:06}", self.0.fetch_add(1, Ordering::SeqCst))
    }
    fn next_u32(&self) -> u32 {
        u32::MAX
    }
}

fn client(base: &str, attempts: u32) -> Client {
    Client::builder(base, Credentials::new("ck", "cs").with_token("tk", "ts"))
        .realm(Realm::new("1234567"))
        .clock(Arc::new(Ticking(AtomicU64::new(1_700_000_000))))
        .randomness(Arc::new(Counting(AtomicU64::new(0))))
        .retry(RetryPolicy {
            max_attempts: attempts,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        })
        .build()
        .unwrap()
}

fn params(authorization: &str) -> (String, String) {
    let header = AuthorizationHeader::parse(authorization).unwrap();
    (
        header.get("oauth_nonce").unwrap().to_owned(),
        header.get("oauth_timestamp").unwrap().to_owned(),
    )
}

#[tokio::test]
async fn concurrency_rejections_are_retried_with_backoff_and_fresh_nonces() {
    let (base, seen) = scripted(vec![
        (429, BUSY_REST),
        (400, BUSY_RESTLET),
        (200, r#"{"ok":true}"#),
    ])
    .await;
    let notices = Arc::new(Mutex::new(Vec::new()));
    let hook = notices.clone();
    let client = Client::builder(
        base.clone(),
        Credentials::new("ck", "cs").with_token("tk", "ts"),
    )
    .realm(Realm::new("1234567"))
    .clock(Arc::new(Ticking(AtomicU64::new(1_700_000_000))))
    .randomness(Arc::new(Counting(AtomicU64::new(0))))
    .retry(RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
    })
    .on_retry(move |n| {
        hook.lock()
            .unwrap()
            .push((n.attempt, n.delay, n.error.code.clone()));
    })
    .build()
    .unwrap();
    let answer = client.send(&Call::get("/rest/tokeninfo")).await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.attempts, 3);
    assert_eq!(answer.request_id.as_deref(), Some("req2"));
    assert_eq!(answer.json().unwrap()["ok"], true);

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    let signed: Vec<_> = seen.iter().map(|(a, _)| params(a)).collect();
    // A fresh nonce and timestamp for every attempt, and a different signature.
    assert_eq!(signed[0].0, "nonce000000");
    assert_eq!(signed[1].0, "nonce000001");
    assert_eq!(signed[2].0, "nonce000002");
    assert_eq!(signed[0].1, "1700000000");
    assert_eq!(signed[1].1, "1700000001");
    assert_eq!(signed[2].1, "1700000002");
    assert_ne!(seen[0].0, seen[1].0);
    // Exponential backoff: 100 ms, then 200 ms (the jitter source gives the full step).
    let first_wait = seen[1].1 - seen[0].1;
    let second_wait = seen[2].1 - seen[1].1;
    assert!(first_wait >= Duration::from_millis(100), "{first_wait:?}");
    assert!(second_wait >= Duration::from_millis(200), "{second_wait:?}");
    let notices = notices.lock().unwrap().clone();
    assert_eq!(
        notices,
        vec![
            (
                1,
                Duration::from_millis(100),
                Some("CONCURRENCY_LIMIT_EXCEEDED".into())
            ),
            (
                2,
                Duration::from_millis(200),
                Some("SSS_REQUEST_LIMIT_EXCEEDED".into())
            ),
        ]
    );
}

#[tokio::test]
async fn a_401_is_not_retried_and_carries_the_code_and_request_id() {
    // A second scripted answer that would succeed: the client must never ask for it.
    let (base, seen) = scripted(vec![(401, INVALID_LOGIN), (200, "{}")]).await;
    let error = client(&base, 5)
        .send(&Call::get("/rest/tokeninfo"))
        .await
        .unwrap_err();
    let Error::Api(api) = &error else {
        panic!("{error}")
    };
    assert_eq!(api.status, 401);
    assert_eq!(api.code.as_deref(), Some("INVALID_LOGIN_ATTEMPT"));
    assert_eq!(api.request_id.as_deref(), Some("req0"));
    assert_eq!(api.attempts, 1);
    assert!(api.is_invalid_login());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn other_400s_are_not_retried() {
    let (base, seen) = scripted(vec![
        (400, r#"{"error":{"code":"INVALID_REQUEST","message":"m"}}"#),
        (200, "{}"),
    ])
    .await;
    let error = client(&base, 5).send(&Call::get("/x")).await.unwrap_err();
    assert_eq!(
        error.api().unwrap().code.as_deref(),
        Some("INVALID_REQUEST")
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn retries_stop_at_the_limit_with_the_last_rejection() {
    let (base, seen) = scripted(vec![(429, BUSY_REST), (429, BUSY_REST), (200, "{}")]).await;
    let error = client(&base, 2).send(&Call::get("/x")).await.unwrap_err();
    let api = error.api().unwrap();
    assert_eq!(api.code.as_deref(), Some("CONCURRENCY_LIMIT_EXCEEDED"));
    assert_eq!(api.attempts, 2);
    assert_eq!(api.request_id.as_deref(), Some("req1"));
    assert!(error.to_string().contains("after 2 attempts"), "{error}");
    assert_eq!(seen.lock().unwrap().len(), 2);
}
