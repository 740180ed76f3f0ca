//! Requests signed by independent OAuth 1.0a client libraries (Python oauthlib, Node
//! oauth-1.0a), installed by `tools/vectors/generate.sh`, which the test command runs first.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::json;

use crate::{ACCOUNT, Harness, body};

pub fn tools() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tools/vectors")
}

pub fn run_signer(program: &std::path::Path, script: &str, request: &serde_json::Value) -> String {
    let mut child = Command::new(program)
        .arg(tools().join(script))
        .current_dir(tools())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e}; run tools/vectors/generate.sh (scripts/test does)",
                program.display()
            )
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

async fn call_with(h: &Harness, program: &std::path::Path, script: &str) {
    // GET with a query string.
    let url = h.url("/app/site/hosting/restlet.nl?script=echo&deploy=1&customParam=some%20Value");
    let request = json!({ "method": "GET", "url": url, "consumer_key": h.creds.consumer_key, "consumer_secret": h.creds.consumer_secret, "token": h.creds.token, "token_secret": h.creds.token_secret, "realm": ACCOUNT });
    let auth = run_signer(program, script, &request);
    let response = h
        .http
        .get(&url)
        .header("authorization", auth)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        200,
        "{script}: {}",
        response.text().await.unwrap()
    );

    // POST with a form body, which is signed. A RESTlet does not take forms (415), but only
    // after the login succeeded: a signature that left the form out would be a 401.
    let url = h.url("/app/site/hosting/restlet.nl?script=echo&deploy=1");
    let form = [["name", "Jürgen & Co"], ["note", "1+1=2"]];
    let request = json!({ "method": "POST", "url": url, "consumer_key": h.creds.consumer_key, "consumer_secret": h.creds.consumer_secret, "token": h.creds.token, "token_secret": h.creds.token_secret, "realm": ACCOUNT, "form": form });
    let auth = run_signer(program, script, &request);
    let response = h
        .http
        .post(&url)
        .header("authorization", auth)
        .form(&form.map(|[k, v]| (k, v)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415, "{script} form");
    assert!(
        body(response).await["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not forms")
    );
}

#[tokio::test]
async fn python_oauthlib_signs_requests_keycard_accepts() {
    let h = Harness::start().await;
    call_with(&h, &tools().join(".venv/bin/python"), "sign_live.py").await;
}

#[tokio::test]
async fn node_oauth_1_0a_signs_requests_keycard_accepts() {
    let h = Harness::start().await;
    call_with(&h, std::path::Path::new("node"), "sign_live.js").await;
}
