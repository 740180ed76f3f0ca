//! Every step of the pipeline: what the client sees and what the audit trail records.

use std::sync::atomic::Ordering;

use keycard_core::IntegrationState;
use keycard_server::ServerConfig;
use reqwest::Method;

use crate::{ACCOUNT, Harness, body, fresh_nonce};

#[tokio::test]
async fn a_signed_call_succeeds_and_is_audited() {
    let mut h = Harness::start().await;
    let response = h.signed(Method::GET, "/rest/tokeninfo").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    let info = body(response).await;
    assert_eq!(info["companyId"], ACCOUNT);
    assert_eq!(info["entityEmail"], "sync@example.com");
    assert_eq!(info["roleName"], "Integrator");
    assert_eq!(info["integrationName"], "Order Sync");
    assert!(info["entityId"].is_i64() && info["roleId"].is_i64());
    let names: Vec<&str> = info
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        names,
        [
            "applicationId",
            "companyId",
            "companyName",
            "entityEmail",
            "entityId",
            "entityName",
            "integrationName",
            "roleId",
            "roleName",
            "tokenName"
        ]
    );
    let audit = h.audit().await;
    assert_eq!(audit.len(), 1);
    let record = &audit[0];
    assert_eq!(
        (record.status.as_ref(), record.surface.as_ref()),
        ("Success", "token")
    );
    assert_eq!(record.integration.as_deref(), Some("Order Sync"));
    assert_eq!(record.user.as_deref(), Some("sync@example.com"));
    assert_eq!(record.request_uri, "/rest/tokeninfo");
}

#[tokio::test]
async fn replays_are_refused() {
    let mut h = Harness::start().await;
    let url = h.url("/rest/tokeninfo");
    let auth = h.authorization("GET", &url, None, Some(ACCOUNT));
    let first = h
        .http
        .get(&url)
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    for _ in 0..3 {
        let replay = h
            .http
            .get(&url)
            .header("authorization", &auth)
            .send()
            .await
            .unwrap();
        assert_eq!(replay.status(), 401);
        assert_eq!(body(replay).await["error"]["code"], "INVALID_LOGIN_ATTEMPT");
    }
    let audit = h.audit().await;
    assert_eq!(audit.iter().filter(|r| r.detail == "nonce_used").count(), 3);
}

/// Sends a request that must fail with 401 and returns the detail code recorded.
async fn failure_detail(h: &mut Harness, auth: &str, url: &str) -> (String, serde_json::Value) {
    let response = h
        .http
        .get(url)
        .header("authorization", auth)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "{url}");
    let audit = h.audit().await;
    let last = audit.last().unwrap();
    assert_eq!(last.status, "Failure");
    (last.detail.to_string(), last.diagnosis.clone())
}

#[tokio::test]
async fn each_failure_has_its_detail_code_and_diagnosis() {
    // Wrong signature: the diagnosis shows what the server rebuilt, never a secret.
    let mut h = Harness::start().await;
    let url = h.url("/rest/tokeninfo");
    let signed_for_other_port = h.authorization(
        "GET",
        "http://localhost:1/rest/tokeninfo",
        None,
        Some(ACCOUNT),
    );
    let (detail, diagnosis) = failure_detail(&mut h, &signed_for_other_port, &url).await;
    assert_eq!(detail, "InvalidSignature");
    assert_eq!(diagnosis["rebuilt_base_uri"], url);
    assert!(
        !diagnosis.to_string().contains(&h.creds.token_secret)
            && !diagnosis.to_string().contains(&h.creds.consumer_secret)
    );

    // Clock skew.
    let mut h = Harness::start().await;
    let url = h.url("/rest/tokeninfo");
    let late = h.authorization_at(
        "GET",
        &url,
        None,
        Some(ACCOUNT),
        &fresh_nonce(),
        h.clock.load(Ordering::SeqCst) - 900,
    );
    let (detail, diagnosis) = failure_detail(&mut h, &late, &url).await;
    assert_eq!(detail, "InvalidTimestamp");
    assert_eq!(diagnosis["clock_skew_secs"], -900);

    // Realm in the host form, and in the wrong case.
    for (realm, hint) in [("1234567-sb1", "host form"), ("1234567_sb1", "letter case")] {
        let mut h = Harness::start().await;
        let url = h.url("/rest/tokeninfo");
        let auth = h.authorization("GET", &url, None, Some(realm));
        let (detail, diagnosis) = failure_detail(&mut h, &auth, &url).await;
        assert_eq!(detail, "InvalidAccount");
        assert!(
            diagnosis["realm"].as_str().unwrap().contains(hint),
            "{diagnosis}"
        );
    }

    // Short nonce, unknown consumer, unknown token, no header.
    let mut h = Harness::start().await;
    let url = h.url("/rest/tokeninfo");
    let short = h.authorization_at(
        "GET",
        &url,
        None,
        Some(ACCOUNT),
        "abc",
        h.clock.load(Ordering::SeqCst),
    );
    assert_eq!(
        failure_detail(&mut h, &short, &url).await.0,
        "nonce_rejected"
    );

    let mut h = Harness::start().await;
    h.creds.consumer_key = "0".repeat(64);
    let url = h.url("/rest/tokeninfo");
    let auth = h.authorization("GET", &url, None, Some(ACCOUNT));
    assert_eq!(
        failure_detail(&mut h, &auth, &url).await.0,
        "consumer_key_unknown"
    );

    let mut h = Harness::start().await;
    h.creds.token = "0".repeat(64);
    let url = h.url("/rest/tokeninfo");
    let auth = h.authorization("GET", &url, None, Some(ACCOUNT));
    assert_eq!(failure_detail(&mut h, &auth, &url).await.0, "InvalidToken");

    let mut h = Harness::start().await;
    let url = h.url("/rest/tokeninfo");
    let response = h.http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(h.audit().await[0].detail, "MissingRequiredParameter");
}

#[tokio::test]
async fn revoking_deactivating_or_blocking_takes_effect_on_the_next_request() {
    let h = Harness::start().await;
    let a = crate::account();
    assert_eq!(h.signed(Method::GET, "/rest/tokeninfo").await.status(), 200);
    h.store
        .set_token_active("admin", &a, &h.creds.token, false)
        .await
        .unwrap();
    assert_eq!(h.signed(Method::GET, "/rest/tokeninfo").await.status(), 401);
    h.store
        .set_token_active("admin", &a, &h.creds.token, true)
        .await
        .unwrap();
    assert_eq!(h.signed(Method::GET, "/rest/tokeninfo").await.status(), 200);
    h.store
        .set_integration_state("admin", &a, "Order Sync", IntegrationState::Blocked)
        .await
        .unwrap();
    assert_eq!(h.signed(Method::GET, "/rest/tokeninfo").await.status(), 401);
    h.store
        .set_integration_state("admin", &a, "Order Sync", IntegrationState::Enabled)
        .await
        .unwrap();
    h.store
        .remove_role("admin", &a, "sync@example.com", "Integrator")
        .await
        .unwrap();
    assert_eq!(h.signed(Method::GET, "/rest/tokeninfo").await.status(), 401);
    h.store
        .assign_role("admin", &a, "sync@example.com", "Integrator")
        .await
        .unwrap();
    assert_eq!(h.signed(Method::GET, "/rest/tokeninfo").await.status(), 200);
    h.store
        .revoke_token("admin", &a, &h.creds.token)
        .await
        .unwrap();
    assert_eq!(h.signed(Method::GET, "/rest/tokeninfo").await.status(), 401);
}

#[tokio::test]
async fn the_sixth_concurrent_request_is_refused_and_slots_come_back() {
    let h = Harness::start().await;
    let path = "/app/site/hosting/restlet.nl?script=echo&deploy=1&delay_ms=1500";
    let mut held = Vec::new();
    for _ in 0..5 {
        let url = h.url(path);
        let auth = h.authorization("GET", &url, None, Some(crate::ACCOUNT));
        held.push(tokio::spawn(
            h.http.get(url).header("authorization", auth).send(),
        ));
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let sixth = h
        .signed(
            Method::GET,
            "/app/site/hosting/restlet.nl?script=echo&deploy=1",
        )
        .await;
    assert_eq!(sixth.status(), 400);
    assert_eq!(
        body(sixth).await["error"]["code"],
        "SSS_REQUEST_LIMIT_EXCEEDED"
    );
    let rest = h
        .signed(Method::GET, "/services/rest/record/v1/customer")
        .await;
    assert_eq!(rest.status(), 429);
    assert_eq!(
        body(rest).await["o:errorDetails"][0]["o:errorCode"],
        "CONCURRENCY_LIMIT_EXCEEDED"
    );
    let (status, fault) = h.soap(h.envelope("<msg:getServerTime/>", "")).await;
    assert_eq!(status, 500);
    assert!(
        fault.contains("exceededConcurrentRequestLimitFault")
            && fault.contains("WS_REQUEST_BLOCKED"),
        "{fault}"
    );
    for request in held {
        assert_eq!(request.await.unwrap().unwrap().status(), 200);
    }
    assert_eq!(
        h.signed(
            Method::GET,
            "/app/site/hosting/restlet.nl?script=echo&deploy=1"
        )
        .await
        .status(),
        200
    );
}

#[tokio::test]
async fn account_hosts_route_without_a_realm() {
    let mut h = Harness::start().await;
    let port = h.server.as_ref().unwrap().addr.port();
    let host = format!("1234567-sb1.restlets.api.localhost:{port}");
    let url = format!("http://{host}/rest/tokeninfo");
    let auth = h.authorization("GET", &url, None, None);
    let response = h
        .http
        .get(h.url("/rest/tokeninfo"))
        .header("host", &host)
        .header("authorization", auth)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(h.audit().await[0].account.as_deref(), Some(ACCOUNT));
}

#[tokio::test]
async fn malformed_requests_get_a_4xx_and_the_server_stays_up() {
    let mut h = Harness::start().await;
    let url = h.url("/rest/tokeninfo");
    let long = format!("OAuth oauth_nonce=\"{}\"", "a".repeat(9000));
    for (auth, expected) in [
        ("OAuth oauth_nonce=\"unterminated", 400),
        ("OAuth oauth_nonce=\"a\", oauth_nonce=\"b\"", 400),
        ("OAuth oauth_nonce=\"%zz\"", 400),
        (long.as_str(), 400),
        ("Bearer abc", 401),
        ("OAuth realm=\"1234567_SB1\"", 401),
        ("NLAuth nlauth_account=1234567_SB1", 401),
        // A value in UTF-8 outside ASCII is a malformed header, said so, not a missing one.
        ("OAuth oauth_nonce=\"é\"", 400),
    ] {
        // As bytes: a header value may carry bytes outside visible ASCII.
        let value = reqwest::header::HeaderValue::from_bytes(auth.as_bytes()).unwrap();
        let response = h
            .http
            .get(&url)
            .header("authorization", value)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected, "{auth:.60}");
        assert!(body(response).await["error"]["code"].is_string());
    }
    let rest = h
        .http
        .get(h.url("/services/rest/record/v1/customer"))
        .header("authorization", "OAuth x")
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), 400);
    assert_eq!(
        body(rest).await["o:errorDetails"][0]["o:errorCode"],
        "INVALID_REQUEST"
    );
    let unauthenticated = h
        .http
        .get(h.url("/services/rest/record/v1/customer"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    assert!(
        unauthenticated.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("token_rejected")
    );
    assert_eq!(
        h.http.get(h.url("/nowhere")).send().await.unwrap().status(),
        404
    );
    assert_eq!(h.signed(Method::GET, "/rest/tokeninfo").await.status(), 200);
    // Stops the server: last.
    let audit = h.audit().await;
    assert!(
        audit.iter().any(|r| r.detail == "MalformedRequest"
            && r.diagnosis["problem"]
                .as_str()
                .is_some_and(|p| p.contains("outside ASCII"))),
        "no record says the header is not ASCII"
    );
}

#[tokio::test]
async fn a_change_made_by_another_process_takes_effect_within_the_resync_interval() {
    let h = Harness::start_with(ServerConfig {
        resync_ms: 50,
        ..ServerConfig::default()
    })
    .await;
    assert_eq!(h.signed(Method::GET, "/rest/tokeninfo").await.status(), 200);
    // A second handle on the same SQLite file: what `keycard token revoke` in another
    // process does. The server's store never hears of it except through the directory.
    let other = h.another_store().await;
    other
        .revoke_token("admin", &crate::account(), &h.creds.token)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    loop {
        let status = h.signed(Method::GET, "/rest/tokeninfo").await.status();
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "the revocation was not noticed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn the_remaining_detail_codes_each_have_their_cause() {
    use keycard_store::roles::PermissionChange;
    let mut h = Harness::start().await;
    let a = crate::account();
    let url = h.url("/rest/tokeninfo");
    let restlet = "/app/site/hosting/restlet.nl?script=echo&deploy=1";
    let send = |auth: String, body: Option<&'static str>| {
        let mut request = h.http.get(&url).header("authorization", auth);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        request.send()
    };
    // Method and version are checked before the signature.
    let sha1 = h
        .authorization("GET", &url, None, Some(ACCOUNT))
        .replace("HMAC-SHA256", "HMAC-SHA1");
    assert_eq!(send(sha1, None).await.unwrap().status(), 401);
    let v2 = h
        .authorization("GET", &url, None, Some(ACCOUNT))
        .replace(r#"oauth_version="1.0""#, r#"oauth_version="2.0""#);
    assert_eq!(send(v2, None).await.unwrap().status(), 401);
    // A body hash that does not match the body sent.
    let hashed = {
        use keycard_oauth1::client::{ClientRequest, Credentials, SignOptions, sign};
        let (nonce, ts) = (fresh_nonce(), h.clock.load(Ordering::SeqCst).to_string());
        let mut options = SignOptions::new(&nonce, &ts);
        options.realm = Some(ACCOUNT);
        options.body_for_hash = Some(br#"{"signed":"body"}"#);
        let creds = Credentials {
            consumer_key: &h.creds.consumer_key,
            consumer_secret: &h.creds.consumer_secret,
            token: Some(&h.creds.token),
            token_secret: &h.creds.token_secret,
        };
        let request = ClientRequest {
            method: "GET",
            url: &url,
            form_body: None,
        };
        sign(&request, &creds, &options).unwrap().authorization
    };
    assert_eq!(send(hashed, Some("{}")).await.unwrap().status(), 401);

    // The role allows only another network.
    h.store
        .grant(
            "admin",
            &a,
            "Integrator",
            PermissionChange {
                allowed_ips: Some(vec!["10.9.0.0/16".parse().unwrap()]),
                ..PermissionChange::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(h.signed(Method::GET, "/rest/tokeninfo").await.status(), 401);
    h.store
        .grant(
            "admin",
            &a,
            "Integrator",
            PermissionChange {
                allowed_ips: Some(Vec::new()),
                web_services_only: Some(true),
                ..PermissionChange::default()
            },
        )
        .await
        .unwrap();
    // Web Services Only roles cannot call RESTlets.
    assert_eq!(h.signed(Method::GET, restlet).await.status(), 403);
    h.store
        .set_integration_state("admin", &a, "Order Sync", IntegrationState::Blocked)
        .await
        .unwrap();
    assert_eq!(h.signed(Method::GET, "/rest/tokeninfo").await.status(), 401);
    h.store
        .set_integration_state("admin", &a, "Order Sync", IntegrationState::Enabled)
        .await
        .unwrap();
    h.store
        .remove_role("admin", &a, "sync@example.com", "Integrator")
        .await
        .unwrap();
    assert_eq!(h.signed(Method::GET, "/rest/tokeninfo").await.status(), 401);
    h.store
        .assign_role("admin", &a, "sync@example.com", "Integrator")
        .await
        .unwrap();
    h.store
        .update_account(
            "admin",
            &a,
            keycard_store::accounts::AccountUpdate {
                disable: vec![keycard_core::Feature::TokenBasedAuthentication],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(h.signed(Method::GET, "/rest/tokeninfo").await.status(), 401);

    let details: Vec<String> = h
        .audit()
        .await
        .into_iter()
        .map(|r| {
            let problem = r.diagnosis["problem"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            format!("{}: {problem}", r.detail)
        })
        .collect();
    let expected = [
        ("UnsupportedSignatureMethod", "HMAC-SHA1"),
        ("version_rejected", "1.0"),
        ("InvalidSignature", "oauth_body_hash"),
        ("IpAddressNotAllowed", "127.0.0.1"),
        ("InsufficientPermission", "Web Services Only"),
        ("consumer_key_refused", "Blocked"),
        ("EntityOrRoleDisabled", "role"),
        ("FeatureDisabled", "Token-Based Authentication"),
    ];
    assert_eq!(details.len(), expected.len(), "{details:#?}");
    for (line, (detail, words)) in details.iter().zip(expected) {
        assert!(
            line.starts_with(&format!("{detail}: ")) && line.contains(words),
            "{line} should be {detail} about {words}"
        );
    }
}

/// The default server, trusting the test's own address (and 10.0.0.1, a proxy before it) as
/// proxies or not.
fn proxied_config(trusted: bool) -> ServerConfig {
    ServerConfig {
        trusted_proxies: if trusted {
            vec!["127.0.0.1".parse().unwrap(), "10.0.0.1".parse().unwrap()]
        } else {
            Vec::new()
        },
        ..ServerConfig::default()
    }
}

#[tokio::test]
async fn the_trail_names_the_peer_or_the_client_a_trusted_proxy_forwards() {
    // The connection's text is made once and reused on a kept-alive connection; a trusted
    // proxy's `X-Forwarded-For` replaces it for that request alone: its addresses (every line,
    // in order) read from the right past trusted proxies. What the client wrote itself, left
    // of the address the first proxy saw, is not believed (before, the leftmost address was:
    // anyone could name an address on a role's allow-list).
    let forwarded: [&[&str]; 7] = [
        &["203.0.113.7, 10.0.0.1"],
        &[],
        &["2001:db8::7"],
        &["198.51.100.9, 203.0.113.7"],
        &["198.51.100.9", "203.0.113.8:4711, 10.0.0.1"],
        &["not an address, 10.0.0.1"],
        &["[2001:db8::9]:4711"],
    ];
    for (trusted, expected) in [
        (
            true,
            [
                "203.0.113.7",
                "127.0.0.1",
                "2001:db8::7",
                "203.0.113.7",
                "203.0.113.8",
                "10.0.0.1",
                "2001:db8::9",
            ],
        ),
        (false, ["127.0.0.1"; 7]),
    ] {
        let config = proxied_config(trusted);
        let mut h = Harness::start_with(config).await;
        let url = h.url("/rest/tokeninfo");
        for lines in forwarded {
            let auth = h.authorization("GET", &url, None, Some(ACCOUNT));
            let mut request = h.http.get(&url).header("authorization", auth);
            for line in lines {
                request = request.header("x-forwarded-for", *line);
            }
            assert_eq!(request.send().await.unwrap().status(), 200);
        }
        let ips: Vec<String> = h
            .audit()
            .await
            .into_iter()
            .map(|record| record.ip.to_string())
            .collect();
        assert_eq!(ips, expected, "trusted: {trusted}");
    }
}

#[tokio::test]
async fn a_trusted_proxy_names_the_url_the_client_signed() {
    // Behind a proxy that ends TLS, the client signs the public URL; keycard sees plain HTTP
    // on its own address, and verifies against the proxy's X-Forwarded-Proto and -Host only
    // when it trusts the proxy.
    for (trusted, status) in [(true, 200), (false, 401)] {
        let config = proxied_config(trusted);
        let h = Harness::start_with(config).await;
        let public = "https://1234567-sb1.restlets.api.netsuite.com/rest/tokeninfo";
        let auth = h.authorization("GET", public, None, Some(ACCOUNT));
        let response = h
            .http
            .get(h.url("/rest/tokeninfo"))
            .header("authorization", auth)
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "1234567-sb1.restlets.api.netsuite.com")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "trusted: {trusted}");
    }
}

/// The smallest i64 as a timestamp, with a wrong signature: the diagnosis's clock skew
/// (`timestamp - now`) overflowed, a panic that dropped the connection in a debug build.
/// Now the skew is computed only for a timestamp `parse_timestamp` accepts.
#[tokio::test]
async fn a_timestamp_of_the_smallest_integer_is_a_login_failure_not_a_panic() {
    let mut h = Harness::start().await;
    let url = h.url("/rest/tokeninfo");
    let auth = h.authorization_at(
        "GET",
        "http://localhost:1/rest/tokeninfo",
        None,
        Some(ACCOUNT),
        &fresh_nonce(),
        i64::MIN,
    );
    let (detail, diagnosis) = failure_detail(&mut h, &auth, &url).await;
    assert_eq!(detail, "InvalidSignature");
    assert_eq!(diagnosis["clock_skew_secs"], serde_json::Value::Null);

    // The same in a SOAP passport (signed for the real timestamp, so the signature fails).
    let mut h = Harness::start().await;
    let now = h.clock.load(Ordering::SeqCst);
    let envelope = h.envelope("<msg:getServerTime/>", "").replace(
        &format!("<core:timestamp>{now}</core:timestamp>"),
        &format!("<core:timestamp>{}</core:timestamp>", i64::MIN),
    );
    assert!(envelope.contains(&i64::MIN.to_string()));
    let (status, text) = h.soap(envelope).await;
    assert_eq!(status, 500);
    assert!(text.contains("Invalid login attempt."), "{text}");
    let audit = h.audit().await;
    assert_eq!(audit.last().unwrap().detail, "InvalidSignature");
}
