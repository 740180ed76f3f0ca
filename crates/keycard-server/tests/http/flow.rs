//! The three-step flow over HTTP, driving the authorize page's forms as a browser would
//! (without JavaScript, which the page does not need). `browser.rs` drives the same pages in
//! Chromium.

use keycard_oauth1::client::{ClientRequest, Credentials, SignOptions, sign};
use reqwest::redirect::Policy;

use crate::{ACCOUNT, Harness, body, fresh_nonce};

const CALLBACK: &str = "http://localhost:5555/callback?from=app";

/// Parses `a=1&b=2` into pairs.
pub(crate) fn pairs(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let decode = |s: &str| {
                String::from_utf8(
                    keycard_oauth1::encode::percent_decode_bytes(s.as_bytes(), true)
                        .unwrap()
                        .into_owned(),
                )
                .unwrap()
            };
            (decode(k), decode(v))
        })
        .collect()
}

pub(crate) fn get<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// The value of `<input name="NAME" value="…">` or the first `<option value="…">`.
fn html_value(html: &str, name: &str) -> String {
    let marker = if name == "option" {
        "<option value=\"".to_owned()
    } else {
        format!("name=\"{name}\" value=\"")
    };
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

impl Harness {
    /// A signed three-step call: requesttoken (token None) or accesstoken.
    fn flow_auth(
        &self,
        url: &str,
        token: Option<(&str, &str)>,
        callback: Option<&str>,
        verifier: Option<&str>,
    ) -> String {
        let nonce = fresh_nonce();
        let ts = self
            .clock
            .load(std::sync::atomic::Ordering::SeqCst)
            .to_string();
        let mut options = SignOptions::new(&nonce, &ts);
        options.callback = callback;
        options.verifier = verifier;
        let creds = Credentials {
            consumer_key: &self.creds.consumer_key,
            consumer_secret: &self.creds.consumer_secret,
            token: token.map(|t| t.0),
            token_secret: token.map_or("", |t| t.1),
        };
        sign(
            &ClientRequest {
                method: "POST",
                url,
                form_body: None,
            },
            &creds,
            &options,
        )
        .unwrap()
        .authorization
    }

    pub(crate) async fn request_token(&self, callback: &str) -> reqwest::Response {
        let url = self.url("/rest/requesttoken");
        self.http
            .post(&url)
            .header(
                "authorization",
                self.flow_auth(&url, None, Some(callback), None),
            )
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn access_token(
        &self,
        token: &str,
        secret: &str,
        verifier: &str,
    ) -> reqwest::Response {
        let url = self.url("/rest/accesstoken");
        self.http
            .post(&url)
            .header(
                "authorization",
                self.flow_auth(&url, Some((token, secret)), None, Some(verifier)),
            )
            .send()
            .await
            .unwrap()
    }

    /// Logs in on the authorize page and answers `action`; returns the redirect's query pairs.
    async fn authorize(&self, token: &str, action: &str) -> Vec<(String, String)> {
        let browser = reqwest::Client::builder()
            .redirect(Policy::none())
            .build()
            .unwrap();
        let page_url = self.url("/app/login/secure/authorizetoken.nl");
        let login = browser
            .get(format!("{page_url}?oauth_token={token}&state=xyz123"))
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), 200);
        assert_eq!(login.headers()["x-frame-options"], "DENY");
        let html = login.text().await.unwrap();
        assert!(html.contains("Order Sync"), "{html}");
        let wrong = browser
            .post(&page_url)
            .form(&[
                ("oauth_token", token),
                ("state", "xyz123"),
                ("email", "sync@example.com"),
                ("password", "not it"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401);
        assert!(
            wrong
                .text()
                .await
                .unwrap()
                .contains("invalid email or password")
        );
        let consent = browser
            .post(&page_url)
            .form(&[
                ("oauth_token", html_value(&html, "oauth_token").as_str()),
                ("state", html_value(&html, "state").as_str()),
                ("email", "sync@example.com"),
                ("password", "a long password"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(consent.status(), 200);
        let html = consent.text().await.unwrap();
        assert!(
            html.contains("Allow") && html.contains("Integrator"),
            "{html}"
        );
        let answered = browser
            .post(&page_url)
            .form(&[
                ("oauth_token", token),
                ("state", "xyz123"),
                ("session", html_value(&html, "session").as_str()),
                ("role", html_value(&html, "option").as_str()),
                ("action", action),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(answered.status(), 302);
        let location = answered.headers()["location"].to_str().unwrap().to_owned();
        let (base, query) = location.split_once("?from=app&").unwrap();
        assert_eq!(base, "http://localhost:5555/callback");
        pairs(query)
    }
}

#[tokio::test]
async fn three_step_flow_issues_an_ordinary_token_once() {
    let mut h = Harness::start().await;
    let issued = h.request_token(CALLBACK).await;
    assert_eq!(issued.status(), 200);
    assert_eq!(
        issued.headers()["content-type"],
        "application/x-www-form-urlencoded"
    );
    let issued = pairs(&issued.text().await.unwrap());
    assert_eq!(get(&issued, "oauth_callback_confirmed"), "true");
    let (request_token, request_secret) = (
        get(&issued, "oauth_token").to_owned(),
        get(&issued, "oauth_token_secret").to_owned(),
    );

    let redirect = h.authorize(&request_token, "allow").await;
    assert_eq!(get(&redirect, "oauth_token"), request_token);
    assert_eq!(get(&redirect, "company"), ACCOUNT);
    assert_eq!(get(&redirect, "state"), "xyz123");
    assert!(!get(&redirect, "role").is_empty() && !get(&redirect, "entity").is_empty());
    let verifier = get(&redirect, "oauth_verifier").to_owned();
    assert_eq!(verifier.len(), 32);

    let wrong = h
        .access_token(&request_token, &request_secret, "0000")
        .await;
    assert_eq!(wrong.status(), 401, "a wrong verifier fails");
    // ... and burned the request token: the right verifier no longer works either.
    let burned = h
        .access_token(&request_token, &request_secret, &verifier)
        .await;
    assert_eq!(burned.status(), 401);

    // Again, properly this time.
    let issued = pairs(&h.request_token(CALLBACK).await.text().await.unwrap());
    let (request_token, request_secret) = (
        get(&issued, "oauth_token").to_owned(),
        get(&issued, "oauth_token_secret").to_owned(),
    );
    let redirect = h.authorize(&request_token, "allow").await;
    let verifier = get(&redirect, "oauth_verifier").to_owned();
    let exchanged = h
        .access_token(&request_token, &request_secret, &verifier)
        .await;
    assert_eq!(exchanged.status(), 200);
    let access = pairs(&exchanged.text().await.unwrap());
    let (token, secret) = (
        get(&access, "oauth_token"),
        get(&access, "oauth_token_secret"),
    );
    assert_eq!((token.len(), secret.len()), (64, 64));
    let replayed = h
        .access_token(&request_token, &request_secret, &verifier)
        .await;
    assert_eq!(replayed.status(), 401, "the verifier is single use");

    // The new token is an ordinary access token.
    h.creds.token = token.to_owned();
    h.creds.token_secret = secret.to_owned();
    let info = h.signed(reqwest::Method::GET, "/rest/tokeninfo").await;
    assert_eq!(info.status(), 200);
    assert_eq!(body(info).await["entityEmail"], "sync@example.com");

    let details: Vec<String> = h
        .audit()
        .await
        .into_iter()
        .filter(|r| r.status == "Failure")
        .map(|r| r.detail.to_string())
        .collect();
    assert_eq!(
        details,
        [
            "InvalidCredentials",
            "InvalidVerifier",
            "InvalidToken",
            "InvalidCredentials",
            "InvalidToken"
        ]
    );
}

#[tokio::test]
async fn three_step_refusals_deny_callback_flag_and_expiry() {
    let mut h = Harness::start().await;
    // Deny: the callback gets an empty verifier, and the exchange fails.
    let issued = pairs(&h.request_token(CALLBACK).await.text().await.unwrap());
    let (rt, rs) = (
        get(&issued, "oauth_token").to_owned(),
        get(&issued, "oauth_token_secret").to_owned(),
    );
    let redirect = h.authorize(&rt, "deny").await;
    assert_eq!(get(&redirect, "oauth_verifier"), "");
    assert_eq!(h.access_token(&rt, &rs, "").await.status(), 401);

    // A callback the integration does not list.
    let refused = h.request_token("https://evil.example/callback").await;
    assert_eq!(refused.status(), 401);
    assert_eq!(
        body(refused).await["error"]["code"],
        "INVALID_LOGIN_ATTEMPT"
    );

    // Request tokens expire.
    let issued = pairs(&h.request_token(CALLBACK).await.text().await.unwrap());
    let rt = get(&issued, "oauth_token").to_owned();
    h.clock.fetch_add(601, std::sync::atomic::Ordering::SeqCst);
    let page = h
        .http
        .get(h.url(&format!(
            "/app/login/secure/authorizetoken.nl?oauth_token={rt}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 400);
    assert!(page.text().await.unwrap().contains("expired"));
    let bad_state = h
        .http
        .get(h.url(&format!(
            "/app/login/secure/authorizetoken.nl?oauth_token={rt}&state=a-b"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_state.status(), 400);

    // An integration without TBA: Authorization Flow.
    let a = crate::account();
    h.store
        .update_integration(
            "admin",
            &a,
            "Order Sync",
            keycard_store::integrations::IntegrationUpdate {
                tba_authorization_flow: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(h.request_token(CALLBACK).await.status(), 401);
    // GET is not the method.
    let get_status = h
        .http
        .get(h.url("/rest/requesttoken"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(get_status, 405);

    let details: Vec<String> = h
        .audit()
        .await
        .into_iter()
        .filter(|r| r.status == "Failure")
        .map(|r| r.detail.to_string())
        .collect();
    assert_eq!(
        details,
        [
            "InvalidCredentials",
            "AuthorizationDenied",
            "InvalidCallback",
            "AuthorizationFlowRequired"
        ]
    );
}

/// The user is disabled between Allow and the exchange: no token can be made for them, so
/// the exchange fails and the trail says so, with why. Before, the attempt was recorded as a
/// Success before the token was created, and the failure left no record at all.
#[tokio::test]
async fn an_exchange_whose_token_cannot_be_made_is_audited_as_a_failure() {
    let mut h = Harness::start().await;
    let issued = pairs(&h.request_token(CALLBACK).await.text().await.unwrap());
    let (request_token, request_secret) = (
        get(&issued, "oauth_token").to_owned(),
        get(&issued, "oauth_token_secret").to_owned(),
    );
    let redirect = h.authorize(&request_token, "allow").await;
    let verifier = get(&redirect, "oauth_verifier").to_owned();
    h.store
        .set_user_status(
            "admin",
            &crate::account(),
            "sync@example.com",
            keycard_core::UserStatus::Inactive,
        )
        .await
        .unwrap();
    let exchanged = h
        .access_token(&request_token, &request_secret, &verifier)
        .await;
    assert_eq!(exchanged.status(), 401);
    assert_eq!(
        body(exchanged).await["error"]["code"],
        "INVALID_LOGIN_ATTEMPT"
    );
    assert_eq!(
        h.store
            .token_inventory(&crate::account())
            .await
            .unwrap()
            .len(),
        1
    );

    let audit = h.audit().await;
    let exchange: Vec<_> = audit
        .iter()
        .filter(|r| r.request_uri.starts_with("/rest/accesstoken"))
        .collect();
    assert_eq!(exchange.len(), 1, "{audit:?}");
    assert_eq!(exchange[0].status, "Failure");
    assert_eq!(exchange[0].detail, "TokenNotCreated");
    assert_eq!(exchange[0].diagnosis["code"], "user_not_active");
}
