//! The surfaces: REST records with role levels, the RESTlet echo, issuetoken and revoketoken.

use reqwest::Method;
use serde_json::json;

use crate::{ACCOUNT, Harness, body};

#[tokio::test]
async fn rest_records_follow_the_role_levels() {
    let h = Harness::start().await;
    let url = h.url("/services/rest/record/v1/customer");
    let auth = h.authorization("POST", &url, None, Some(ACCOUNT));
    let created = h
        .http
        .post(&url)
        .header("authorization", auth)
        .json(&json!({ "companyName": "Acme", "email": "a@example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 204);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let id = location.rsplit('/').next().unwrap().to_owned();
    let path = format!("/services/rest/record/v1/customer/{id}");
    let fetched = body(h.signed(Method::GET, &path).await).await;
    assert_eq!(
        (fetched["companyName"].as_str(), fetched["id"].as_str()),
        (Some("Acme"), Some(id.as_str()))
    );

    let patch_url = h.url(&path);
    let auth = h.authorization("PATCH", &patch_url, None, Some(ACCOUNT));
    let patched = h
        .http
        .patch(&patch_url)
        .header("authorization", auth)
        .json(&json!({ "email": "b@example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 204);
    let fetched = body(h.signed(Method::GET, &path).await).await;
    assert_eq!(
        (fetched["companyName"].as_str(), fetched["email"].as_str()),
        (Some("Acme"), Some("b@example.com"))
    );

    let list = body(
        h.signed(Method::GET, "/services/rest/record/v1/customer?limit=10")
            .await,
    )
    .await;
    assert_eq!(list["totalResults"], 1);
    // View only on sales orders: reading works, creating is forbidden.
    assert_eq!(
        h.signed(Method::GET, "/services/rest/record/v1/salesorder")
            .await
            .status(),
        200
    );
    let url = h.url("/services/rest/record/v1/salesorder");
    let auth = h.authorization("POST", &url, None, Some(ACCOUNT));
    let refused = h
        .http
        .post(&url)
        .header("authorization", auth)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(
        body(refused).await["o:errorDetails"][0]["o:errorCode"],
        "INSUFFICIENT_PERMISSION"
    );
    assert_eq!(
        h.signed(Method::GET, "/services/rest/record/v1/invoice")
            .await
            .status(),
        403
    );
    assert_eq!(h.signed(Method::DELETE, &path).await.status(), 204);
    assert_eq!(h.signed(Method::GET, &path).await.status(), 404);
    // Governance limits are for administrators.
    assert_eq!(
        h.signed(Method::GET, "/services/rest/system/v1/governanceLimits")
            .await
            .status(),
        403
    );
}

/// Form parameters are signed; a RESTlet then refuses the form itself (NetSuite: "this
/// content type is not allowed by RESTlets"), after the login, which the trail shows
/// succeeded. Methods a RESTlet has no entry point for are 405, an empty deploy unknown.
#[tokio::test]
async fn the_restlet_echo_signs_query_and_form_parameters() {
    let mut h = Harness::start().await;
    let url = h.url("/app/site/hosting/restlet.nl?script=echo&deploy=1&q=a%20b");
    let form = "name=J%C3%BCrgen&note=1%2B1";
    let auth = h.authorization("POST", &url, Some(form), Some(ACCOUNT));
    let response = h
        .http
        .post(&url)
        .header("authorization", auth)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    let json = r#"{"name":"Jürgen"}"#;
    let auth = h.authorization("POST", &url, None, Some(ACCOUNT));
    let response = h
        .http
        .post(&url)
        .header("authorization", auth)
        .header("content-type", "application/json")
        .body(json)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let echo = body(response).await;
    assert_eq!(echo["user"], "sync@example.com");
    assert_eq!(echo["query"], "script=echo&deploy=1&q=a%20b");
    assert_eq!(echo["body"]["name"], "Jürgen");
    for (method, path, status) in [
        (
            Method::GET,
            "/app/site/hosting/restlet.nl?script=nope&deploy=1",
            404,
        ),
        (
            Method::GET,
            "/app/site/hosting/restlet.nl?script=echo&deploy=",
            404,
        ),
        (
            Method::PATCH,
            "/app/site/hosting/restlet.nl?script=echo&deploy=1",
            405,
        ),
    ] {
        assert_eq!(
            h.signed(method.clone(), path).await.status(),
            status,
            "{method} {path}"
        );
    }
    let audit = h.audit().await;
    assert_eq!(
        (audit[0].status.as_str(), audit[0].request_uri.as_str()),
        (
            "Success",
            "/app/site/hosting/restlet.nl?script=echo&deploy=1&q=a%20b"
        ),
        "the form's signature verified"
    );
}

#[tokio::test]
async fn issuetoken_and_revoketoken() {
    let mut h = Harness::start().await;
    let issue = |password: &str| {
        format!(
            "NLAuth nlauth_account={ACCOUNT}, nlauth_email=sync%40example.com, nlauth_signature={password}, nlauth_role=Integrator"
        )
    };
    let url = h.url(&format!(
        "/rest/issuetoken?consumerKey={}",
        h.creds.consumer_key
    ));
    let wrong = h
        .http
        .get(&url)
        .header("authorization", issue("wrong%20password"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let issued = h
        .http
        .get(&url)
        .header("authorization", issue("a%20long%20password"))
        .send()
        .await
        .unwrap();
    assert_eq!(issued.status(), 200);
    let issued = body(issued).await;
    h.creds.token = issued["tokenId"].as_str().unwrap().to_owned();
    h.creds.token_secret = issued["tokenSecret"].as_str().unwrap().to_owned();
    assert_eq!(h.signed(Method::GET, "/rest/tokeninfo").await.status(), 200);

    let revoke = h.url(&format!(
        "/rest/revoketoken?consumerKey={}&token={}",
        h.creds.consumer_key, h.creds.token
    ));
    let auth = h.authorization("GET", &revoke, None, Some(ACCOUNT));
    assert_eq!(
        h.http
            .get(&revoke)
            .header("authorization", auth)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(h.signed(Method::GET, "/rest/tokeninfo").await.status(), 401);

    // A name that is only digits (it would read as an internal id) is the client's mistake:
    // 400, not a login failure.
    let named = h
        .http
        .get(format!("{url}&name=17"))
        .header("authorization", issue("a%20long%20password"))
        .send()
        .await
        .unwrap();
    assert_eq!(named.status(), 400);
    // Raw UTF-8 in the header is read as the pipeline reads it (before, anything but visible
    // ASCII made the header count as missing).
    let raw = reqwest::header::HeaderValue::from_bytes(
        format!("NLAuth nlauth_account={ACCOUNT}, nlauth_email=sync@exämple.com, nlauth_signature=x, nlauth_role=Integrator").as_bytes(),
    )
    .unwrap();
    let unknown = h
        .http
        .get(&url)
        .header("authorization", raw)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 401);

    let audit = h.audit().await;
    assert_eq!(audit[0].detail, "InvalidCredentials");
    assert!(audit.iter().any(|r| r.surface == "token"
        && r.status == "Success"
        && r.request_uri.starts_with("/rest/issuetoken")));
    let last: Vec<(&str, Option<&str>)> = audit[audit.len() - 2..]
        .iter()
        .map(|r| (r.detail.as_str(), r.user.as_deref()))
        .collect();
    assert_eq!(
        last,
        [
            ("InvalidTokenName", Some("sync@example.com")),
            ("InvalidCredentials", Some("sync@exämple.com"))
        ]
    );
}

#[tokio::test]
async fn discovery_datacenterurls_without_login_and_roles_with_nlauth() {
    let mut h = Harness::start().await;
    let port = h.base.rsplit(':').next().unwrap().to_owned();
    // No authentication; the account's hosts on this server, as the client reached it.
    let urls = h
        .http
        .get(h.url(&format!("/rest/datacenterurls?account={ACCOUNT}")))
        .send()
        .await
        .unwrap();
    assert_eq!(urls.status(), 200);
    assert!(urls.headers().contains_key("x-request-id"));
    assert_eq!(
        body(urls).await,
        json!({
            "restDomain": format!("http://1234567-sb1.restlets.api.localhost:{port}"),
            "webservicesDomain": format!("http://1234567-sb1.suitetalk.api.localhost:{port}"),
            "systemDomain": format!("http://1234567-sb1.app.localhost:{port}"),
        })
    );
    for (query, status) in [("account=7654321", 400), ("", 400), ("c=1234567-sb1", 200)] {
        let response = h
            .http
            .get(h.url(&format!("/rest/datacenterurls?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{query}");
    }

    let roles = |header: &'static str| {
        h.http
            .get(h.url("/rest/roles"))
            .header("authorization", header)
            .send()
    };
    let listed =
        roles("NLAuth nlauth_email=sync%40example.com, nlauth_signature=a%20long%20password")
            .await
            .unwrap();
    assert_eq!(listed.status(), 200);
    let listed = body(listed).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["account"]["internalId"], ACCOUNT);
    assert_eq!(listed[0]["account"]["type"], "SANDBOX");
    assert_eq!(listed[0]["role"]["name"], "Integrator");
    assert_eq!(
        listed[0]["dataCenterURLs"]["restDomain"],
        format!("http://1234567-sb1.restlets.api.localhost:{port}")
    );
    let refused = roles("NLAuth nlauth_email=sync%40example.com, nlauth_signature=wrong")
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(
        body(refused).await["error"]["code"],
        "INVALID_LOGIN_ATTEMPT"
    );
    let malformed = roles("NLAuth nlauth_signature=x").await.unwrap();
    assert_eq!(malformed.status(), 401);

    let audit = h.audit().await;
    let details: Vec<(&str, &str)> = audit
        .iter()
        .map(|r| (r.status.as_ref(), r.detail.as_ref()))
        .collect();
    assert_eq!(
        details,
        [
            ("Success", ""),
            ("Failure", "InvalidCredentials"),
            ("Failure", "MissingRequiredParameter")
        ]
    );
    assert!(audit.iter().all(|r| !r.request_uri.contains("signature")));
}

#[tokio::test]
async fn metrics_count_requests_logins_and_slots_in_prometheus_format() {
    let h = Harness::start().await;
    assert_eq!(h.signed(Method::GET, "/rest/tokeninfo").await.status(), 200);
    let url = h.url("/rest/tokeninfo");
    let refused = h
        .http
        .get(&url)
        .header(
            "authorization",
            h.authorization("POST", &url, None, Some(ACCOUNT)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    // Login counts come from the audit writer: wait until it has written both.
    let mut text = String::new();
    for _ in 0..100 {
        let response = h.http.get(h.url("/metrics")).send().await.unwrap();
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
        text = response.text().await.unwrap();
        if text.contains("keycard_audit_written_total 2") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for expected in [
        r#"keycard_http_requests_total{surface="token",status="2xx"} 1"#,
        r#"keycard_http_requests_total{surface="token",status="4xx"} 1"#,
        r#"keycard_http_request_duration_seconds_count{surface="token"} 2"#,
        r#"keycard_http_request_duration_seconds_bucket{surface="token",le="+Inf"} 2"#,
        r#"keycard_logins_total{surface="token",outcome="success",detail=""} 1"#,
        r#"keycard_logins_total{surface="token",outcome="failure",detail="InvalidSignature"} 1"#,
        r#"keycard_slots_in_use{pool="account:1234567_SB1"} 0"#,
        "keycard_cache_hits_total 2",
        "keycard_nonces 1",
        "keycard_audit_written_total 2",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in\n{text}");
    }
    // Every sample line is `name{labels} number`, and every metric has HELP and TYPE.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (name, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
        let metric = name.split('{').next().unwrap();
        let base = metric
            .trim_end_matches("_bucket")
            .trim_end_matches("_sum")
            .trim_end_matches("_count");
        assert!(text.contains(&format!("# TYPE {base} ")), "{line}");
    }
}

/// A body is read whole before the handler runs, up to 2 MiB: one byte more is a 413 with a
/// request id (requests without a body skip the read altogether).
#[tokio::test]
async fn bodies_over_two_mebibytes_are_refused_before_the_handler() {
    let h = Harness::start().await;
    let url = h.url("/app/site/hosting/restlet.nl?script=1&deploy=1");
    let over = h
        .http
        .post(&url)
        .body(vec![b'x'; 2 * 1024 * 1024 + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(over.status(), 413);
    assert_eq!(over.headers()["x-request-id"].len(), 16);
    assert!(over.text().await.unwrap().contains("larger than 2 MiB"));
    // Each surface in its own shape: REST's problem details, a SOAP fault.
    for (path, shape) in [
        (
            "/services/rest/record/v1/customer",
            r#""o:errorCode":"INVALID_REQUEST""#,
        ),
        (
            "/services/NetSuitePort_2023_2",
            "<faultcode>soapenv:Client</faultcode>",
        ),
    ] {
        let over = h
            .http
            .post(h.url(path))
            .body(vec![b'x'; 2 * 1024 * 1024 + 1])
            .send()
            .await
            .unwrap();
        assert_eq!(over.status(), 413, "{path}");
        let text = over.text().await.unwrap();
        assert!(
            text.contains(shape) && text.contains("larger than 2 MiB"),
            "{text}"
        );
    }
    // Within the limit the body reaches the handler, which refuses the unsigned call (401).
    let within = h
        .http
        .post(&url)
        .body(vec![b'x'; 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(within.status(), 401);
}

/// The router's edges: probes answer GET and HEAD only, unknown paths get a 404 in the shape
/// of the surface they look like, and `/metrics` does not count the scrapes.
#[tokio::test]
async fn routes_refuse_unknown_paths_and_methods_in_shape() {
    let h = Harness::start().await;
    let healthz = h.url("/healthz");
    let posted = h.http.post(&healthz).send().await.unwrap();
    assert_eq!(posted.status(), 405);
    assert_eq!(posted.headers()["allow"], "GET,HEAD");
    let head = h.http.head(&healthz).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.text().await.unwrap(), "");
    assert_eq!(
        h.http
            .get(&healthz)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "ok"
    );
    for (path, rest_shaped) in [
        ("/rest/tokeninfo/", false),
        ("/nowhere", false),
        ("/services/rest/record/v1//1", true),
        ("/services/rest/record/v1/customer/1/x", true),
    ] {
        let response = h.signed(Method::GET, path).await;
        assert_eq!(response.status(), 404, "{path}");
        let text = response.text().await.unwrap();
        // REST errors are RFC 9457 problem documents; RESTlet errors carry `error.code`.
        if rest_shaped {
            assert!(text.contains("\"o:errorDetails\""), "{path}: {text}");
        } else {
            assert!(text.contains("\"error\""), "{path}: {text}");
        }
    }
    // JSON answers carry their type, their length and the request id.
    let info = h.signed(Method::GET, "/rest/tokeninfo").await;
    assert_eq!(info.status(), 200);
    assert_eq!(info.headers()["content-type"], "application/json");
    assert_eq!(info.headers()["x-request-id"].len(), 16);
    let length: usize = info.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(info.bytes().await.unwrap().len(), length);
    // A record type given percent-encoded reaches the handler decoded.
    let unknown = h
        .signed(Method::GET, "/services/rest/record/v1/no%20such")
        .await;
    assert_eq!(unknown.status(), 400);
    let metrics = h.http.get(h.url("/metrics")).send().await.unwrap();
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains(r#"keycard_http_requests_total{surface="other",status="2xx"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"keycard_http_requests_total{surface="other",status="4xx"} 5"#),
        "{text}"
    );
    assert!(
        text.contains(r#"keycard_http_requests_total{surface="rest",status="4xx"} 1"#),
        "{text}"
    );
}

/// A method an endpoint does not answer is a 405 with `Allow`, in the surface's shape (before:
/// a 400 on REST and SOAP, and the authorize page refused HEAD).
#[tokio::test]
async fn methods_an_endpoint_does_not_answer_are_405_with_allow() {
    let h = Harness::start().await;
    for (method, path, allow, shape) in [
        (
            Method::PATCH,
            "/services/rest/record/v1/customer",
            "GET, HEAD, POST",
            "o:errorCode",
        ),
        (
            Method::POST,
            "/services/rest/record/v1/customer/7",
            "GET, HEAD, PATCH, PUT, DELETE",
            "o:errorCode",
        ),
        (
            Method::GET,
            "/services/NetSuitePort_2023_2",
            "POST",
            "<faultcode>soapenv:Client</faultcode>",
        ),
        (
            Method::PUT,
            "/rest/accesstoken",
            "POST",
            r#""code":"INVALID_REQUEST""#,
        ),
        (
            Method::DELETE,
            "/app/login/secure/authorizetoken.nl?oauth_token=x",
            "GET, HEAD, POST",
            r#""code":"INVALID_REQUEST""#,
        ),
    ] {
        let answer = h
            .http
            .request(method.clone(), h.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 405, "{method} {path}");
        assert_eq!(answer.headers()["allow"], allow, "{method} {path}");
        assert_eq!(answer.headers()["x-request-id"].len(), 16);
        let text = answer.text().await.unwrap();
        assert!(text.contains(shape), "{method} {path}: {text}");
    }
    // HEAD is GET without the body, on the authorize page too.
    let head = h
        .http
        .head(h.url("/app/login/secure/authorizetoken.nl?oauth_token=x"))
        .send()
        .await
        .unwrap();
    let get = h
        .http
        .get(h.url("/app/login/secure/authorizetoken.nl?oauth_token=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), get.status());
    assert_ne!(head.status(), 405);
}

/// PostgreSQL text cannot hold a NUL. A client that sends one (percent-encoded, in an NLAuth
/// email or an OAuth key) gets a login failure, not a 503, and its attempt is audited with the
/// NUL replaced; before, the lookup failed as "directory unavailable" and the audit writer
/// retried the batch for ever, so the node's queue filled and it stalled.
#[tokio::test]
async fn on_postgresql_a_nul_in_credentials_is_a_login_failure_and_the_trail_goes_on() {
    let url = crate::fresh_postgres_url().await;
    let mut h = Harness::start_at(
        keycard_server::ServerConfig::default(),
        &keycard_store::Location::Url(url),
        tempfile::tempdir().unwrap(),
    )
    .await;
    let roles = h
        .http
        .get(h.url("/rest/roles"))
        .header(
            "authorization",
            "NLAuth nlauth_email=sync%00%40example.com, nlauth_signature=a%20long%20password",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(roles.status(), 401);
    let now = h.clock.load(std::sync::atomic::Ordering::SeqCst);
    // First the consumer key, then (with the real one) the token id.
    for (nonce, consumer_key) in [("n0nce", "%00"), ("n1nce", h.creds.consumer_key.as_str())] {
        let oauth = format!(
            "OAuth realm=\"{ACCOUNT}\", oauth_consumer_key=\"{consumer_key}\", oauth_token=\"%00\", oauth_nonce=\"{nonce}\", oauth_timestamp=\"{now}\", oauth_signature_method=\"HMAC-SHA256\", oauth_version=\"1.0\", oauth_signature=\"x\""
        );
        let tokeninfo = h
            .http
            .get(h.url("/rest/tokeninfo"))
            .header("authorization", oauth)
            .send()
            .await
            .unwrap();
        assert_eq!(tokeninfo.status(), 401);
        assert_eq!(
            body(tokeninfo).await["error"]["code"],
            "INVALID_LOGIN_ATTEMPT"
        );
    }
    assert_eq!(h.signed(Method::GET, "/rest/tokeninfo").await.status(), 200);

    let audit = tokio::time::timeout(std::time::Duration::from_secs(30), h.audit())
        .await
        .expect("the audit writer drains the queue");
    let trail: Vec<(&str, &str, Option<&str>)> = audit
        .iter()
        .map(|r| (r.status.as_ref(), r.detail.as_ref(), r.user.as_deref()))
        .collect();
    assert_eq!(
        trail,
        [
            (
                "Failure",
                "InvalidCredentials",
                Some("sync\u{fffd}@example.com")
            ),
            ("Failure", "consumer_key_unknown", None),
            ("Failure", "InvalidToken", None),
            ("Success", "", Some("sync@example.com")),
        ]
    );
}

/// A role without REST Web Services cannot log in to the REST web services at all: 401
/// `INVALID_LOGIN` as NetSuite answers it (netsuite-tba.md §8), with the reason in the trail.
/// It was a 403 before, which NetSuite keeps for a record the role may not touch.
#[tokio::test]
async fn a_role_without_rest_web_services_is_a_failed_login() {
    let mut h = Harness::start().await;
    h.store
        .revoke_permissions(
            "admin",
            &crate::account(),
            "Integrator",
            keycard_store::roles::PermissionChange {
                setup: [keycard_core::SetupPermission::RestWebServices].into(),
                ..keycard_store::roles::PermissionChange::default()
            },
        )
        .await
        .unwrap();
    let refused = h
        .signed(Method::GET, "/services/rest/record/v1/customer")
        .await;
    assert_eq!(refused.status(), 401);
    assert!(refused.headers().contains_key("www-authenticate"));
    assert_eq!(
        body(refused).await["o:errorDetails"][0]["o:errorCode"],
        "INVALID_LOGIN"
    );
    let audit = h.audit().await;
    let last = audit.last().unwrap();
    assert_eq!(
        (last.status.as_str(), last.detail.as_str()),
        ("Failure", "InsufficientPermission")
    );
    assert!(
        last.diagnosis["problem"]
            .as_str()
            .unwrap()
            .contains("REST Web Services")
    );
}

/// The login comes first: an unsigned request for `/customer/abc` is a 401, not a 400 about
/// its id. And a record query (`q`), which this server does not run, is refused rather than
/// answered with every record as if they all matched.
#[tokio::test]
async fn rest_records_check_the_login_first_and_refuse_queries() {
    let h = Harness::start().await;
    let unsigned = h
        .http
        .get(h.url("/services/rest/record/v1/customer/abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    let signed = h
        .signed(Method::GET, "/services/rest/record/v1/customer/abc")
        .await;
    assert_eq!(signed.status(), 400);
    let query = h
        .signed(
            Method::GET,
            "/services/rest/record/v1/customer?q=email%20IS%20%22a%40b.c%22",
        )
        .await;
    assert_eq!(query.status(), 400);
    let detail = body(query).await["o:errorDetails"][0]["detail"].clone();
    assert!(detail.as_str().unwrap().contains("(q)"), "{detail}");
}
