//! The authorize page in a real browser: Chromium (Debian's, found through
//! `KEYCARD_TEST_CHROMIUM`, which `scripts/test` sets after `tools/browser/setup.sh`), driven by
//! `tools/browser/authorize.mjs` with puppeteer-core (`keycard_testkit::browser`). What a form-posting test cannot see is
//! checked here: the page's Content-Security-Policy lets its own forms and the redirect to the
//! application through, the buttons submit what the server expects, and the browser reports
//! no errors on the way.

use std::net::SocketAddr;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::flow::{get, pairs};
use crate::{ACCOUNT, Harness, body};

/// The application's side of the redirect: a local HTTP server that answers every request
/// with a small page and passes on each request's target.
struct CallbackApp {
    addr: SocketAddr,
    targets: mpsc::UnboundedReceiver<String>,
}

impl CallbackApp {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (sender, targets) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let sender = sender.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buffer = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buffer[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head);
                    let target = head.split(' ').nth(1).unwrap_or_default().to_owned();
                    let _ = sender.send(target);
                    let page = "<!doctype html><title>Back in the app</title><p>Connected.</p>";
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                        page.len()
                    );
                    let _ = socket.write_all(answer.as_bytes()).await;
                });
            }
        });
        Self { addr, targets }
    }

    fn callback(&self) -> String {
        format!("http://localhost:{}/callback?from=app", self.addr.port())
    }

    /// The query of the request that reached `/callback` (other requests, such as the
    /// browser's favicon, are passed over).
    fn callback_query(&mut self) -> String {
        while let Ok(target) = self.targets.try_recv() {
            if let Some(query) = target.strip_prefix("/callback?from=app&") {
                return query.to_owned();
            }
        }
        panic!("the browser never reached /callback");
    }
}

/// Runs `tools/browser/authorize.mjs` with `options` and returns its report. It runs on a
/// blocking thread: the server answers the browser on this runtime.
async fn drive(options: Value) -> Value {
    tokio::task::spawn_blocking(move || keycard_testkit::browser::drive_authorize_page(&options))
        .await
        .unwrap()
}

/// What a page showed, as the browser rendered it.
fn text(page: &Value) -> &str {
    page["text"].as_str().unwrap_or_default()
}

fn page<'a>(report: &'a Value, step: &str) -> &'a Value {
    report["pages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["step"] == step)
        .unwrap_or_else(|| panic!("no {step} page in {report}"))
}

/// A request token for `app`'s callback: (token, secret).
async fn request_token(h: &Harness, app: &CallbackApp) -> (String, String) {
    let issued = h.request_token(&app.callback()).await;
    assert_eq!(issued.status(), 200);
    let issued = pairs(&issued.text().await.unwrap());
    (
        get(&issued, "oauth_token").to_owned(),
        get(&issued, "oauth_token_secret").to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_allows_on_the_authorize_page_and_the_token_works() {
    let mut h = Harness::start().await;
    let mut app = CallbackApp::start().await;
    let (request_token, request_secret) = request_token(&h, &app).await;

    let report = drive(json!({
        "url": h.url(&format!("/app/login/secure/authorizetoken.nl?oauth_token={request_token}&state=xyz123")),
        "email": "sync@example.com",
        "wrongPassword": "not it",
        "password": "a long password",
        "role": "Integrator",
        "action": "allow",
        "screenshots": std::env::var("KEYCARD_TEST_SCREENSHOTS").ok(),
    }))
    .await;

    let login = page(&report, "login");
    assert_eq!(login["status"], 200, "{report}");
    assert_eq!(login["title"], "Log in · keycard");
    assert!(text(login).contains("Order Sync"), "{report}");
    let wrong = page(&report, "wrong-password");
    assert_eq!(wrong["status"], 401, "{report}");
    assert!(
        text(wrong).contains("You entered an invalid email or password."),
        "{report}"
    );
    let consent = page(&report, "consent");
    assert_eq!(consent["status"], 200, "{report}");
    assert_eq!(consent["title"], "Allow access? · keycard");
    assert!(text(consent).contains("as sync@example.com"), "{report}");
    let back = page(&report, "callback");
    assert_eq!(back["status"], 200, "{report}");
    assert_eq!(back["title"], "Back in the app");
    assert!(
        report["finalUrl"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}&oauth_token=", app.callback())),
        "{report}"
    );
    // A CSP that blocked the redirect, a console error, a failed request: all land here. The
    // one expected is the wrong password's 401, which Chromium logs as a failed load.
    assert_eq!(
        report["complaints"],
        json!([
            "console error: Failed to load resource: the server responded with a status of 401 (Unauthorized)"
        ]),
        "{report}"
    );

    let redirect = pairs(&app.callback_query());
    assert_eq!(get(&redirect, "oauth_token"), request_token);
    assert_eq!(get(&redirect, "state"), "xyz123");
    assert_eq!(get(&redirect, "company"), ACCOUNT);
    let verifier = get(&redirect, "oauth_verifier");
    assert_eq!(verifier.len(), 32);

    let exchanged = h
        .access_token(&request_token, &request_secret, verifier)
        .await;
    assert_eq!(exchanged.status(), 200);
    let access = pairs(&exchanged.text().await.unwrap());
    h.creds.token = get(&access, "oauth_token").to_owned();
    h.creds.token_secret = get(&access, "oauth_token_secret").to_owned();
    let info = h.signed(reqwest::Method::GET, "/rest/tokeninfo").await;
    assert_eq!(info.status(), 200);
    let info = body(info).await;
    assert_eq!(info["entityEmail"], "sync@example.com");
    assert_eq!(info["roleName"], "Integrator");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_denies_on_the_authorize_page_and_no_token_comes_of_it() {
    let h = Harness::start().await;
    let mut app = CallbackApp::start().await;
    let (request_token, request_secret) = request_token(&h, &app).await;

    let report = drive(json!({
        "url": h.url(&format!("/app/login/secure/authorizetoken.nl?oauth_token={request_token}")),
        "email": "sync@example.com",
        "password": "a long password",
        "action": "deny",
    }))
    .await;
    assert_eq!(page(&report, "callback")["status"], 200, "{report}");
    assert_eq!(report["complaints"], json!([]), "{report}");

    let redirect = pairs(&app.callback_query());
    assert_eq!(get(&redirect, "oauth_token"), request_token);
    assert_eq!(get(&redirect, "oauth_verifier"), "");
    let exchanged = h.access_token(&request_token, &request_secret, "").await;
    assert_eq!(exchanged.status(), 401);
}
