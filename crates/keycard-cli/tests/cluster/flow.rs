//! The three-step authorization flow with each step on a different node: the pending request
//! token is shared (sealed on Redis), and it is exchanged once, whichever node is asked.

use keycard_client::{Credentials, Realm, SignRequest, Signer};

use crate::harness::{Cluster, HOST, ONE_AT_A_TIME, form_field, nonce, now};
use crate::{input, option};

const CALLBACK: &str = "http://localhost:8910/callback";
const PAGE: &str = "/app/login/secure/authorizetoken.nl";

fn signed(signer: &Signer, path: &str, callback: Option<&str>, verifier: Option<&str>) -> String {
    let url = format!("http://{HOST}{path}");
    signer
        .sign(
            &SignRequest {
                method: "POST",
                url: &url,
                callback,
                verifier,
                ..SignRequest::default()
            },
            &nonce(),
            now(),
        )
        .unwrap()
        .authorization
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_step_of_the_authorization_flow_may_reach_another_node() {
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::start(&[]).await;
    let consumer = || {
        Credentials::new(
            cluster.cred("consumer_key"),
            cluster.cred("consumer_secret"),
        )
    };
    let realm = || Some(Realm::new(crate::harness::ACCOUNT));

    // 1. Request token from node 0.
    let authorization = signed(
        &Signer::new(consumer(), realm()),
        "/rest/requesttoken",
        Some(CALLBACK),
        None,
    );
    let (status, _, body) = cluster
        .post_form(0, "/rest/requesttoken", &[], Some(&authorization))
        .await;
    assert_eq!(status, 200, "{body}");
    let (token, secret) = (
        form_field(&body, "oauth_token"),
        form_field(&body, "oauth_token_secret"),
    );

    // What Redis holds for it is sealed: neither half of the request token is in it.
    let held = cluster.redis.command_raw(
        "EVAL \"local out = '' for _, k in ipairs(redis.call('KEYS', 'keycard:flow:*')) do out = out .. redis.call('GET', k) end return out\" 0",
    );
    assert!(
        held.len() > 100,
        "nothing pending on Redis: {}",
        String::from_utf8_lossy(&held)
    );
    for half in [&token, &secret] {
        assert!(
            !held.windows(half.len()).any(|w| w == half.as_bytes()),
            "a secret in Redis"
        );
    }

    // 2. The authorize page on node 1, login on node 2, Allow on node 0.
    let verifier = allow_across_nodes(&cluster, &token).await;

    // 3. The exchange on node 1; a second exchange on node 2 finds nothing.
    let exchange = Signer::new(
        consumer().with_token(token.clone(), secret.clone()),
        realm(),
    );
    let authorization = signed(&exchange, "/rest/accesstoken", None, Some(&verifier));
    let (status, _, body) = cluster
        .post_form(1, "/rest/accesstoken", &[], Some(&authorization))
        .await;
    assert_eq!(status, 200, "{body}");
    let (access_id, access_secret) = (
        form_field(&body, "oauth_token"),
        form_field(&body, "oauth_token_secret"),
    );
    let again = signed(&exchange, "/rest/accesstoken", None, Some(&verifier));
    let (status, _, body) = cluster
        .post_form(2, "/rest/accesstoken", &[], Some(&again))
        .await;
    assert_eq!(status, 401, "a request token is exchanged once: {body}");

    // The access token works on every node.
    let signer = cluster.signer(Some((&access_id, &access_secret)));
    for node in 0..3 {
        assert_eq!(cluster.tokeninfo(node, &signer).await, 200);
    }

    // Exchanged: gone from Redis.
    let keys = cluster.redis.command("KEYS keycard:flow:*").unwrap();
    assert_eq!(keys, "*0", "the exchanged request token is still on Redis");
}

/// The authorize page on node 1, login on node 2, Allow on node 0; the callback's verifier.
async fn allow_across_nodes(cluster: &Cluster, token: &str) -> String {
    let url = format!(
        "http://127.0.0.1:{}{PAGE}?oauth_token={token}",
        cluster.nodes[1].port
    );
    let page = cluster
        .http
        .get(url)
        .header("host", HOST)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.unwrap().contains(token));
    let password = cluster.cred("password");
    let login = [
        ("oauth_token", token),
        ("state", ""),
        ("email", "admin@example.com"),
        ("password", password.as_str()),
    ];
    let (status, _, consent) = cluster.post_form(2, PAGE, &login, None).await;
    assert_eq!(status, 200, "{consent}");
    let (session, role) = (
        input(&consent, "session"),
        option(&consent, "Integration Role"),
    );
    let allow = [
        ("oauth_token", token),
        ("state", ""),
        ("session", session.as_str()),
        ("role", role.as_str()),
        ("action", "allow"),
    ];
    let (status, location, body) = cluster.post_form(0, PAGE, &allow, None).await;
    assert_eq!(status, 302, "{body}");
    assert!(location.starts_with(CALLBACK), "{location}");
    location
        .split(['?', '&'])
        .find_map(|pair| pair.strip_prefix("oauth_verifier="))
        .unwrap()
        .to_owned()
}
