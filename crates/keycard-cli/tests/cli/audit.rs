//! `keycard serve` as a process, then `keycard audit` reading what it wrote: the owner's view
//! of a success and of failures, with filters, one record in full, and a JSON-lines export.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use serde_json::Value;

use crate::{keycard, serve, stderr, stdout};

/// A raw HTTP/1.1 GET; returns (status, x-request-id).
fn get(port: u16, path: &str, authorization: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\nAuthorization: {authorization}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let request_id = response
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .unwrap_or_default()
        .trim()
        .to_owned();
    (status, request_id)
}

#[test]
#[allow(clippy::too_many_lines)] // one story: serve, call, stop, read the trail and the log
fn the_owner_reads_every_attempt_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let init = keycard(&["init", "--data-dir", data, "--json"], &[]);
    assert!(init.status.success(), "{}", stderr(&init));
    let creds: Value = serde_json::from_str(&stdout(&init)).unwrap();
    let served = serve(data, &[]);
    let url = format!("http://localhost:{}/rest/tokeninfo", served.port);
    let sign = |realm: &str, secret: &str| {
        let out = keycard(
            &[
                "sign",
                "GET",
                &url,
                "--realm",
                realm,
                "--consumer-key",
                creds["consumer_key"].as_str().unwrap(),
                "--consumer-secret",
                creds["consumer_secret"].as_str().unwrap(),
                "--token",
                creds["token_id"].as_str().unwrap(),
                "--token-secret",
                secret,
            ],
            &[],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out).trim().to_owned()
    };
    let secret = creds["token_secret"].as_str().unwrap();
    let (ok, _) = get(served.port, "/rest/tokeninfo", &sign("1234567", secret));
    assert_eq!(ok, 200);
    let (bad, bad_id) = get(served.port, "/rest/tokeninfo", &sign("1234567", "wrong"));
    assert_eq!(bad, 401);
    let (realm, _) = get(served.port, "/rest/tokeninfo", &sign("1234567-SB1", secret));
    assert_eq!(realm, 401);
    let port = served.port;
    let logs = served.stop();
    // Structured logs: one JSON object per line, the refusal with its Detail code and request
    // id, and never a secret.
    let events: Vec<Value> = logs
        .iter()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let refusal = events
        .iter()
        .find(|e| e["request_id"] == bad_id.as_str())
        .unwrap_or_else(|| panic!("no log line for {bad_id}: {logs:?}"));
    assert_eq!(refusal["detail"], "InvalidSignature");
    assert_eq!(refusal["level"], "INFO");
    for secret in ["consumer_secret", "token_secret"] {
        assert!(
            logs.iter()
                .all(|l| !l.contains(creds[secret].as_str().unwrap()))
        );
    }

    let audit = |args: &[&str]| {
        let mut full = vec!["audit"];
        full.extend_from_slice(args);
        full.extend_from_slice(&["--data-dir", data]);
        let out = keycard(&full, &[]);
        assert!(out.status.success(), "keycard {full:?}: {}", stderr(&out));
        stdout(&out)
    };
    let all: Value = serde_json::from_str(&audit(&["list", "--json"])).unwrap();
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 3);
    // Newest first.
    assert_eq!(all[2]["status"], "Success");
    assert_eq!(all[1]["detail"], "InvalidSignature");
    assert_eq!(all[0]["detail"], "InvalidAccount");

    let failures: Value =
        serde_json::from_str(&audit(&["list", "--status", "failure", "--json"])).unwrap();
    assert_eq!(failures.as_array().unwrap().len(), 2);
    let by_detail: Value = serde_json::from_str(&audit(&[
        "list",
        "--detail",
        "InvalidSignature",
        "--since",
        "1h",
        "--json",
    ]))
    .unwrap();
    assert_eq!(by_detail.as_array().unwrap().len(), 1);
    let none: Value =
        serde_json::from_str(&audit(&["list", "--until", "2000-01-01", "--json"])).unwrap();
    assert!(none.as_array().unwrap().is_empty());
    // A date alone as the upper bound is its whole day (it was its first second).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let today = keycard_core::time::Civil::from_unix(i64::try_from(now).unwrap()).iso8601();
    let today = &today[..10];
    let whole_day: Value = serde_json::from_str(&audit(&[
        "list", "--since", today, "--until", today, "--json",
    ]))
    .unwrap();
    assert_eq!(whole_day.as_array().unwrap().len(), 3, "{today}");

    // The table names the reason; the full record shows the diagnosis, never a secret.
    let table = audit(&["list"]);
    assert!(table.contains("InvalidSignature"), "{table}");
    assert!(table.contains("InvalidAccount"), "{table}");
    let shown = audit(&["show", &bad_id]);
    assert!(shown.contains("rebuilt_base_uri"), "{shown}");
    assert!(
        shown.contains(&format!("http://localhost:{port}/rest/tokeninfo")),
        "{shown}"
    );
    for secret in ["consumer_secret", "token_secret"] {
        assert!(!shown.contains(creds[secret].as_str().unwrap()));
    }

    let export = dir.path().join("audit.jsonl");
    audit(&["export", "--out", export.to_str().unwrap()]);
    let lines: Vec<Value> = std::fs::read_to_string(&export)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["status"], "Success", "oldest first");

    let bad_filter = keycard(
        &["audit", "list", "--since", "yesterday", "--data-dir", data],
        &[],
    );
    assert!(!bad_filter.status.success());
    assert!(stderr(&bad_filter).contains("is not a time"));
}

#[test]
fn serve_speaks_https_with_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let init = keycard(&["init", "--data-dir", data, "--json"], &[]);
    let creds: Value = serde_json::from_str(&stdout(&init)).unwrap();
    let served = serve(
        data,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--idle-timeout-ms",
            "1000",
        ],
    );
    let call = |scheme: &str| {
        let signed_url = format!("{scheme}://localhost:{}/rest/tokeninfo", served.port);
        let sign = keycard(
            &[
                "sign",
                "GET",
                &signed_url,
                "--realm",
                "1234567",
                "--consumer-key",
                creds["consumer_key"].as_str().unwrap(),
                "--consumer-secret",
                creds["consumer_secret"].as_str().unwrap(),
                "--token",
                creds["token_id"].as_str().unwrap(),
                "--token-secret",
                creds["token_secret"].as_str().unwrap(),
            ],
            &[],
        );
        let out = Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
            .arg(&cert)
            .args(["-H", &format!("Authorization: {}", stdout(&sign).trim())])
            .arg(format!("https://localhost:{}/rest/tokeninfo", served.port))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(call("https"), "200");
    // The signed URL must be the one used: https, not http.
    assert_eq!(call("http"), "401");
    let plain = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("http://localhost:{}/healthz", served.port))
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&plain.stdout).starts_with('2'),
        "plain HTTP must not be served"
    );
    speaks_http2_and_http1(served.port, &cert);
    closes_stalled_tls_connections(served.port, &cert);
    served.stop();
}

/// HTTP/2 by ALPN when the client offers it, HTTP/1.1 otherwise.
fn speaks_http2_and_http1(port: u16, cert: &std::path::Path) {
    for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let out = Command::new("curl")
            .args([
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_version} %{http_code}",
                flag,
            ])
            .arg("--cacert")
            .arg(cert)
            .arg(format!("https://localhost:{port}/healthz"))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{version} 200")
        );
    }
}

/// Over TLS, a client silent after the handshake and one that starts a request head and
/// never finishes it are closed after the idle timeout: `s_client` ends when the server
/// closes.
fn closes_stalled_tls_connections(port: u16, cert: &std::path::Path) {
    use std::io::Write;
    for sent in [&b""[..], b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n"] {
        let mut stalled = Command::new("openssl")
            .args(["s_client", "-quiet", "-connect"])
            .arg(format!("localhost:{port}"))
            .arg("-CAfile")
            .arg(cert)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // The pipe stays open (it is the child's): nothing more is ever sent.
        let stdin = stalled.stdin.as_mut().unwrap();
        stdin.write_all(sent).unwrap();
        stdin.flush().unwrap();
        let waited = std::time::Instant::now();
        let closed = loop {
            if stalled.try_wait().unwrap().is_some() {
                break true;
            }
            if waited.elapsed() > std::time::Duration::from_secs(15) {
                break false;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        let _ = stalled.kill();
        assert!(
            closed,
            "a TLS connection that sent {:?} was still open after 15 s",
            String::from_utf8_lossy(sent)
        );
    }
}

#[test]
fn serve_refuses_bad_shared_state_settings_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    for (args, message) in [
        (
            vec!["--redis-url", "http://127.0.0.1:6379"],
            "(--redis-url) must be a redis://",
        ),
        (
            vec!["--slot-lease-ms", "5"],
            "(--slot-lease-ms) must be at least 100",
        ),
        (
            vec!["--resync-ms", "1"],
            "(--resync-ms) must be at least 10",
        ),
        (
            vec!["--idle-timeout-ms", "5"],
            "(--idle-timeout-ms) must be at least 100",
        ),
    ] {
        let mut all = vec!["serve", "--data-dir", data, "--listen", "127.0.0.1:0"];
        all.extend_from_slice(&args);
        let out = keycard(&all, &[]);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
    }
    // The same rules hold for the TOML file (before, its values were not checked: a negative
    // window made the nonce store forget nonces within seconds; a resync of 0 panicked the
    // version poll).
    for (line, message) in [
        (
            "timestamp_window = -300",
            "timestamp_window (--timestamp-window) must be 1 to 86400",
        ),
        (
            "resync_ms = 0",
            "resync_ms (--resync-ms) must be at least 10",
        ),
    ] {
        let file = dir.path().join("keycard.toml");
        std::fs::write(&file, format!("{line}\n")).unwrap();
        let out = keycard(
            &[
                "serve",
                "--data-dir",
                data,
                "--listen",
                "127.0.0.1:0",
                "--config",
                file.to_str().unwrap(),
            ],
            &[],
        );
        assert!(!out.status.success(), "{line} was accepted");
        assert!(stderr(&out).contains(message), "{line}: {}", stderr(&out));
    }
    // A redis:// URL the client library cannot read is refused at start, without echoing it.
    let out = keycard(
        &[
            "serve",
            "--data-dir",
            data,
            "--listen",
            "127.0.0.1:0",
            "--redis-url",
            "redis://:hunter2@[bad",
        ],
        &[],
    );
    assert!(!out.status.success());
    let text = stderr(&out);
    assert!(text.contains("the Redis URL is not valid"), "{text}");
    assert!(
        !text.contains("hunter2"),
        "the URL's password was printed: {text}"
    );
}
