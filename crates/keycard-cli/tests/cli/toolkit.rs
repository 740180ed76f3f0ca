//! The integrator's toolkit end to end: `keycard serve` as a process on 127.0.0.1:0 with a
//! fresh directory from `keycard init`, and the toolkit commands run as a user would, with
//! profiles in a temporary config directory.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::{at_terminal, input, keycard, keycard_command, option, stderr, stdout};

const PASSWORD: &str = "a long demo password";

struct Server {
    _served: crate::Served,
    port: u16,
    _dir: tempfile::TempDir,
    data: String,
    config: String,
    creds: Value,
}

/// `keycard init` (for `account`), a password for the demo user, then `keycard serve`.
fn start(account: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").to_str().unwrap().to_owned();
    let config = dir.path().join("config").to_str().unwrap().to_owned();
    let init = keycard(
        &["init", "--data-dir", &data, "--account", account, "--json"],
        &[],
    );
    assert!(init.status.success(), "{}", stderr(&init));
    let creds: Value = serde_json::from_str(&stdout(&init)).unwrap();
    let set = keycard(
        &[
            "user",
            "set-password",
            "admin@example.com",
            "--data-dir",
            &data,
        ],
        &[("KEYCARD_USER_PASSWORD", PASSWORD)],
    );
    assert!(set.status.success(), "{}", stderr(&set));
    let served = crate::serve(&data, &[]);
    Server {
        port: served.port,
        _served: served,
        _dir: dir,
        data,
        config,
        creds,
    }
}

impl Server {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn cred(&self, name: &str) -> &str {
        self.creds[name].as_str().unwrap()
    }

    /// `keycard ARGS` with this server's config directory.
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut all = vec![("KEYCARD_CONFIG_DIR", self.config.as_str())];
        all.extend_from_slice(env);
        keycard(args, &all)
    }

    /// An admin command on the directory.
    fn admin(&self, args: &[&str]) {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--data-dir", &self.data]);
        let out = keycard(&all, &[]);
        assert!(out.status.success(), "keycard {all:?}: {}", stderr(&out));
    }

    /// `keycard profile add` with `init`'s credentials.
    fn add_profile(&self, auth_id: &str, account: &str, extra: &[&str]) -> Output {
        let server = self.url();
        let mut args = vec![
            "profile",
            "add",
            "--auth-id",
            auth_id,
            "--server",
            &server,
            "--account",
            account,
        ];
        args.extend_from_slice(extra);
        self.run(
            &args,
            &[
                ("KEYCARD_CONSUMER_KEY", self.cred("consumer_key")),
                ("KEYCARD_CONSUMER_SECRET", self.cred("consumer_secret")),
                ("KEYCARD_TOKEN_ID", self.cred("token_id")),
                ("KEYCARD_TOKEN_SECRET", self.cred("token_secret")),
            ],
        )
    }
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        stdout(out),
        stderr(out)
    );
    stdout(out)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Percent-encodes a form value.
fn enc(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A raw HTTP/1.1 request; returns (status, headers, body).
fn http(
    port: u16,
    method: &str,
    target: &str,
    form: Option<&str>,
) -> (u16, Vec<(String, String)>, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let body = form.unwrap_or_default();
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head[9..12].parse().unwrap();
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map_or("", |(_, v)| v.as_str())
}

/// Eight `keycard profile add` at once into an empty config directory: every profile is kept,
/// under one key. Before, each process rewrote the file it had read (profiles were lost), two
/// could make different keys, and one could read the key file while it was still empty.
#[test]
fn profiles_saved_at_once_are_all_kept() {
    let s = start("1234567");
    let outputs: Vec<Output> = std::thread::scope(|scope| {
        let running: Vec<_> = (0..8)
            .map(|i| {
                let s = &s;
                scope.spawn(move || s.add_profile(&format!("p{i}"), "1234567", &[]))
            })
            .collect();
        running.into_iter().map(|t| t.join().unwrap()).collect()
    });
    for out in &outputs {
        ok(out);
    }
    let list = ok(&s.run(&["profile", "list"], &[]));
    for i in 0..8 {
        assert!(list.contains(&format!("p{i}")), "p{i} lost: {list}");
    }
    // Every profile opens with the one key that was kept.
    for i in [0, 7] {
        ok(&s.run(&["test-connection", "--auth-id", &format!("p{i}")], &[]));
    }
    let leftovers: Vec<_> = std::fs::read_dir(&s.config)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// At a terminal, deleting a profile (its token secret is kept nowhere else) asks first;
/// "n" keeps it.
fn deleting_a_profile_asks_at_a_terminal(s: &Server) {
    let config = [("KEYCARD_CONFIG_DIR", s.config.as_str())];
    let kept = at_terminal(
        keycard_command(&["profile", "delete", "demo"], &config),
        "n\n",
    );
    assert!(
        !kept.status.success() && stderr(&kept).contains("Delete profile `demo`?"),
        "{}",
        stderr(&kept)
    );
    ok(&s.run(&["profile", "show", "demo"], &[]));
}

#[test]
fn profiles_are_sealed_private_and_never_shown() {
    let s = start("1234567");
    let saved = s.add_profile("demo", "1234567", &[]);
    ok(&saved);
    assert!(
        stderr(&saved).contains("Saved profile `demo`"),
        "{}",
        stderr(&saved)
    );

    let config = Path::new(&s.config);
    assert_eq!(mode(config), 0o700);
    assert_eq!(mode(&config.join("profiles.json")), 0o600);
    assert_eq!(mode(&config.join("profiles.key")), 0o600);
    // No credential in the clear, not even the public halves.
    let bytes = std::fs::read(config.join("profiles.json")).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    for name in [
        "consumer_key",
        "consumer_secret",
        "token_id",
        "token_secret",
    ] {
        let value = s.cred(name).as_bytes();
        assert!(
            !bytes.windows(value.len()).any(|w| w == value),
            "{name} is in the profile file"
        );
    }
    assert!(
        text.contains("Integration Role"),
        "tokeninfo filled the role: {text}"
    );

    let list = ok(&s.run(&["profile", "list"], &[]));
    assert!(list.contains("demo") && list.contains("1234567"), "{list}");
    let shown = ok(&s.run(&["profile", "show", "demo"], &[]));
    assert!(shown.contains("Integration Role"), "{shown}");
    assert!(shown.contains("admin@example.com"), "{shown}");
    let last4 = &s.cred("token_id")[60..];
    assert!(shown.contains(&format!("…{last4}")), "{shown}");
    let json = ok(&s.run(&["profile", "show", "demo", "--json"], &[]));
    for out in [&list, &shown, &json] {
        for name in [
            "consumer_key",
            "consumer_secret",
            "token_id",
            "token_secret",
        ] {
            assert!(!out.contains(s.cred(name)), "{name} shown: {out}");
        }
    }

    // A tampered file is refused with the way out, not opened.
    let tampered = text.replacen("\"sealed\": \"", "\"sealed\": \"AAAA", 1);
    std::fs::write(config.join("profiles.json"), &tampered).unwrap();
    let refused = s.run(&["call", "GET", "/rest/tokeninfo"], &[]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("keycard login --auth-id demo"),
        "{}",
        stderr(&refused)
    );
    std::fs::write(config.join("profiles.json"), &bytes).unwrap();

    // Bad credentials are not saved, and the error says what to do.
    let wrong = s.run(
        &[
            "profile",
            "add",
            "--auth-id",
            "wrong",
            "--server",
            &s.url(),
            "--account",
            "1234567",
        ],
        &[
            ("KEYCARD_CONSUMER_KEY", s.cred("consumer_key")),
            ("KEYCARD_CONSUMER_SECRET", s.cred("consumer_secret")),
            ("KEYCARD_TOKEN_ID", s.cred("token_id")),
            ("KEYCARD_TOKEN_SECRET", "not the secret"),
        ],
    );
    assert!(!wrong.status.success());
    let err = stderr(&wrong);
    assert!(err.contains("INVALID_LOGIN_ATTEMPT"), "{err}");
    assert!(err.contains("keycard diagnose --auth-id wrong"), "{err}");
    assert!(err.contains("keycard audit show "), "{err}");
    assert!(err.contains("not saved"), "{err}");
    assert!(!err.contains("not the secret"));

    deleting_a_profile_asks_at_a_terminal(&s);
    ok(&s.run(&["profile", "delete", "demo"], &[]));
    let missing = s.run(&["profile", "show", "demo"], &[]);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("keycard login --auth-id demo"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn call_prints_json_and_fails_with_netsuite_codes() {
    let s = start("1234567");
    ok(&s.add_profile("demo", "1234567", &[]));
    // The only profile is used without --auth-id.
    let created = s.run(
        &[
            "call",
            "POST",
            "/services/rest/record/v1/customer",
            "--data",
            r#"{"companyName":"Acme"}"#,
            "--body-hash",
        ],
        &[],
    );
    ok(&created);
    assert!(
        stderr(&created).contains("HTTP 204"),
        "{}",
        stderr(&created)
    );
    assert!(
        stderr(&created).contains("/services/rest/record/v1/customer/"),
        "{}",
        stderr(&created)
    );
    let file = Path::new(&s.config).parent().unwrap().join("body.json");
    std::fs::write(&file, r#"{"companyName":"Globex"}"#).unwrap();
    let at_file = format!("@{}", file.display());
    ok(&s.run(
        &[
            "call",
            "--auth-id",
            "demo",
            "POST",
            "/services/rest/record/v1/customer",
            "--data",
            &at_file,
        ],
        &[],
    ));

    let listed = s.run(
        &[
            "call",
            "--auth-id",
            "demo",
            "GET",
            "/services/rest/record/v1/customer",
            "--query",
            "limit=1",
        ],
        &[],
    );
    let json: Value = serde_json::from_str(&ok(&listed)).unwrap();
    assert_eq!(json["totalResults"], 2);
    assert_eq!(json["count"], 1);
    assert!(
        stderr(&listed).contains("request id"),
        "{}",
        stderr(&listed)
    );

    // The role has View on item, not Create.
    let refused = s.run(
        &[
            "call",
            "POST",
            "/services/rest/record/v1/item",
            "--data",
            "{}",
        ],
        &[],
    );
    assert_eq!(refused.status.code(), Some(1));
    let err = stderr(&refused);
    assert!(err.contains("HTTP 403 INSUFFICIENT_PERMISSION"), "{err}");
    assert!(err.contains("(request id "), "{err}");
    assert!(err.contains("keycard diagnose"), "{err}");
    let body: Value = serde_json::from_str(&stdout(&refused)).unwrap();
    assert_eq!(
        body["o:errorDetails"][0]["o:errorCode"],
        "INSUFFICIENT_PERMISSION"
    );

    let missing = s.run(
        &["call", "GET", "/services/rest/record/v1/customer/999"],
        &[],
    );
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("NONEXISTENT_ID"),
        "{}",
        stderr(&missing)
    );
    let bad = s.run(&["call", "POST", "/x", "--data", "{not json"], &[]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("--data must be JSON"),
        "{}",
        stderr(&bad)
    );
}

/// Holds the account's only concurrency slot: the built-in RESTlet's `delay_ms`.
fn hold_the_slot(s: &Server, millis: u32) -> Child {
    let delay = format!("delay_ms={millis}");
    let child = Command::new(env!("CARGO_BIN_EXE_keycard"))
        .args([
            "call",
            "GET",
            "/app/site/hosting/restlet.nl",
            "--query",
            "script=echo",
            "--query",
            "deploy=1",
            "--query",
            &delay,
        ])
        .env("KEYCARD_CONFIG_DIR", &s.config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Long enough for the process to start and its request to take the slot.
    std::thread::sleep(Duration::from_millis(700));
    child
}

#[test]
fn concurrency_rejections_from_the_server_are_retried_then_reported() {
    let s = start("1234567");
    ok(&s.add_profile("demo", "1234567", &[]));
    s.admin(&["account", "update", "1234567", "--concurrency-limit", "1"]);
    // Another process's change is noticed within the server's resync interval (250 ms).
    std::thread::sleep(Duration::from_millis(600));

    // Two attempts inside the 4 s hold: both refused, reported with the code.
    let mut holder = hold_the_slot(&s, 4000);
    let refused = s.run(
        &[
            "call",
            "--max-attempts",
            "2",
            "GET",
            "/services/rest/record/v1/customer",
        ],
        &[],
    );
    assert!(!refused.status.success());
    let err = stderr(&refused);
    assert!(err.contains("retrying in"), "{err}");
    assert!(err.contains("(attempt 2 of 2)"), "{err}");
    assert!(err.contains("HTTP 429 CONCURRENCY_LIMIT_EXCEEDED"), "{err}");
    assert!(err.contains("after 2 attempts"), "{err}");
    assert!(err.contains("concurrency limit stayed full"), "{err}");
    // The RESTlet's rejection (HTTP 400 SSS_REQUEST_LIMIT_EXCEEDED) is retried too.
    let restlet = s.run(
        &[
            "call",
            "--max-attempts",
            "2",
            "GET",
            "/app/site/hosting/restlet.nl",
            "--query",
            "script=echo",
            "--query",
            "deploy=1",
        ],
        &[],
    );
    let err = stderr(&restlet);
    assert!(err.contains("SSS_REQUEST_LIMIT_EXCEEDED"), "{err}");
    assert!(err.contains("after 2 attempts"), "{err}");
    assert!(holder.wait().unwrap().success());

    // With more patience (waits of about 0.5-1, 1-2 and 2-4 s) the call gets through once
    // the slot is free again.
    let mut holder = hold_the_slot(&s, 2000);
    let patient = s.run(&["call", "GET", "/services/rest/record/v1/customer"], &[]);
    let err = stderr(&patient);
    assert!(patient.status.success(), "{err}");
    assert!(err.contains("retrying in"), "{err}");
    assert!(err.contains("HTTP 200"), "{err}");
    assert!(holder.wait().unwrap().success());
}

/// Starts `keycard login`, returns the child, the authorize URL and the rest of its stderr.
fn start_login(s: &Server, args: &[&str]) -> (Child, String, mpsc::Receiver<String>) {
    start_login_with(s, args, &[])
}

/// [`start_login`] with more environment (`BROWSER`: a browser command the CLI starts).
fn start_login_with(
    s: &Server,
    args: &[&str],
    env: &[(&str, &std::ffi::OsStr)],
) -> (Child, String, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keycard"))
        .arg("login")
        .args(args)
        .envs(env.iter().copied())
        .env("KEYCARD_CONFIG_DIR", &s.config)
        .env("KEYCARD_CONSUMER_KEY", s.cred("consumer_key"))
        .env("KEYCARD_CONSUMER_SECRET", s.cred("consumer_secret"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (sender, receiver) = mpsc::channel();
    let lines = BufReader::new(child.stderr.take().unwrap()).lines();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let mut url = None;
    while url.is_none() {
        let line = receiver
            .recv_timeout(Duration::from_secs(30))
            .expect("login printed the authorize URL");
        if line.contains("authorizetoken.nl") {
            url = Some(line.trim().to_owned());
        }
    }
    (child, url.unwrap(), receiver)
}

/// Drives the authorize page like a browser: login form, role, then `action`; returns the
/// redirect's Location.
fn authorize(s: &Server, url: &str, action: &str) -> String {
    let target = url.strip_prefix(&s.url()).unwrap();
    let (status, headers, page) = http(s.port, "GET", target, None);
    assert_eq!(status, 200, "{page}");
    assert_eq!(header(&headers, "x-frame-options"), "DENY");
    let token = input(&page, "oauth_token");
    let form = format!(
        "oauth_token={}&state=&email={}&password={}",
        enc(&token),
        enc("admin@example.com"),
        enc(PASSWORD)
    );
    let page_path = "/app/login/secure/authorizetoken.nl";
    let (status, _, consent) = http(s.port, "POST", page_path, Some(&form));
    assert_eq!(status, 200, "{consent}");
    let answer = format!(
        "oauth_token={}&state=&session={}&role={}&action={action}",
        enc(&token),
        enc(&input(&consent, "session")),
        enc(&option(&consent, "Integration Role"))
    );
    let (status, headers, body) = http(s.port, "POST", page_path, Some(&answer));
    assert_eq!(status, 302, "{body}");
    header(&headers, "location").to_owned()
}

/// Follows the redirect to the CLI's local callback, as the browser would.
fn follow(location: &str) -> (u16, String) {
    let rest = location.strip_prefix("http://localhost:").unwrap();
    let (port, target) = rest.split_once('/').unwrap();
    let (status, _, body) = http(port.parse().unwrap(), "GET", &format!("/{target}"), None);
    (status, body)
}

fn finish(mut child: Child, lines: &mpsc::Receiver<String>) -> (bool, String) {
    let status = child.wait().unwrap();
    let mut rest = String::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(5)) {
        rest.push_str(&line);
        rest.push('\n');
    }
    (status.success(), rest)
}

#[test]
fn login_follows_the_authorize_page_and_saves_the_token() {
    let s = start("1234567");
    let server = s.url();
    let (child, url, lines) = start_login(
        &s,
        &[
            "--auth-id",
            "web",
            "--server",
            &server,
            "--account",
            "1234567",
            "--no-browser",
            "--timeout",
            "60",
        ],
    );
    assert!(
        url.starts_with(&format!(
            "{server}/app/login/secure/authorizetoken.nl?oauth_token="
        )),
        "{url}"
    );
    let location = authorize(&s, &url, "allow");
    assert!(location.starts_with("http://localhost:"), "{location}");
    assert!(location.contains("/callback?oauth_token="), "{location}");
    let (status, page) = follow(&location);
    assert_eq!(status, 200);
    assert!(page.contains("You can close this window"), "{page}");
    let (success, err) = finish(child, &lines);
    assert!(success, "{err}");
    assert!(err.contains("Saved profile `web`"), "{err}");
    assert!(err.contains("Integration Role"), "{err}");

    // The saved token works, and is a new one (not init's).
    ok(&s.run(&["call", "--auth-id", "web", "GET", "/rest/tokeninfo"], &[]));
    let shown = ok(&s.run(&["profile", "show", "web"], &[]));
    assert!(shown.contains("Integration Role"), "{shown}");
    assert!(
        !shown.contains(&format!("…{}", &s.cred("token_id")[60..])),
        "{shown}"
    );
    let bytes = std::fs::read(Path::new(&s.config).join("profiles.json")).unwrap();
    let secret = s.cred("consumer_secret").as_bytes();
    assert!(!bytes.windows(secret.len()).any(|w| w == secret));

    // Reusing the saved profile's server, account and consumer (no consumer flags needed),
    // and choosing Deny: a clear error, nothing saved.
    let (child, url, lines) = {
        let mut child = Command::new(env!("CARGO_BIN_EXE_keycard"))
            .args([
                "login",
                "--auth-id",
                "web2",
                "--from",
                "web",
                "--no-browser",
                "--timeout",
                "60",
            ])
            .env("KEYCARD_CONFIG_DIR", &s.config)
            .env_remove("KEYCARD_CONSUMER_KEY")
            .env_remove("KEYCARD_CONSUMER_SECRET")
            .env_remove("KEYCARD_SERVER")
            .env_remove("KEYCARD_ACCOUNT")
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (sender, receiver) = mpsc::channel();
        let lines = BufReader::new(child.stderr.take().unwrap()).lines();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        let url = loop {
            let line = receiver.recv_timeout(Duration::from_secs(30)).unwrap();
            if line.contains("authorizetoken.nl") {
                break line.trim().to_owned();
            }
        };
        (child, url, receiver)
    };
    let location = authorize(&s, &url, "deny");
    let (status, page) = follow(&location);
    assert_eq!(status, 200);
    assert!(page.contains("Deny"), "{page}");
    let (success, err) = finish(child, &lines);
    assert!(!success);
    assert!(err.contains("denied on the authorize page"), "{err}");
    assert!(err.contains("choose Allow"), "{err}");
    let missing = s.run(&["profile", "show", "web2"], &[]);
    assert!(!missing.status.success());
}

/// The whole flow as an integrator meets it: `keycard login` starts the browser itself (here
/// `BROWSER`, pointed at Chromium driven by `tools/browser/authorize.mjs`), the person logs in
/// and allows, the authorize page redirects to the CLI's own listener, and the CLI saves a
/// working token.
#[test]
fn login_opens_the_browser_which_brings_the_answer_back() {
    let s = start("1234567");
    let browser = keycard_testkit::browser::BrowserCommand::new(&serde_json::json!({
        "email": "admin@example.com",
        "password": PASSWORD,
        "role": "Integration Role",
        "action": "allow",
    }));
    let server = s.url();
    let (child, url, lines) = start_login_with(
        &s,
        &[
            "--auth-id",
            "chromium",
            "--server",
            &server,
            "--account",
            "1234567",
            "--timeout",
            "60",
        ],
        &[("BROWSER", browser.command().as_os_str())],
    );
    let (success, err) = finish(child, &lines);
    let report = browser.report(Duration::from_secs(60));
    assert!(success, "{err}\n{report}");
    assert!(
        err.contains(&format!(
            "(opened in your browser with {})",
            browser.command().display()
        )),
        "{err}"
    );
    assert!(err.contains("Saved profile `chromium`"), "{err}");
    // The browser was given the URL the CLI printed, and ended on the CLI's own page.
    let pages = report["pages"].as_array().unwrap();
    let steps: Vec<&str> = pages.iter().map(|p| p["step"].as_str().unwrap()).collect();
    assert_eq!(steps, ["login", "consent", "callback"], "{report}");
    assert_eq!(pages[0]["url"], url.as_str(), "{report}");
    let callback = &pages[2];
    assert_eq!(callback["status"], 200, "{report}");
    assert!(
        callback["url"]
            .as_str()
            .unwrap()
            .starts_with("http://localhost:"),
        "{report}"
    );
    assert!(
        callback["text"]
            .as_str()
            .unwrap()
            .contains("You can close this window"),
        "{report}"
    );
    assert_eq!(report["complaints"], serde_json::json!([]), "{report}");
    ok(&s.run(
        &["call", "--auth-id", "chromium", "GET", "/rest/tokeninfo"],
        &[],
    ));
}

#[test]
fn login_without_an_answer_times_out_with_a_clear_message() {
    let s = start("1234567");
    let server = s.url();
    let (child, _url, lines) = start_login(
        &s,
        &[
            "--auth-id",
            "late",
            "--server",
            &server,
            "--account",
            "1234567",
            "--no-browser",
            "--timeout",
            "1",
        ],
    );
    let (success, err) = finish(child, &lines);
    assert!(!success);
    assert!(
        err.contains("no answer from the authorize page within 1 s"),
        "{err}"
    );
    assert!(err.contains("--timeout"), "{err}");

    // A consumer the server does not know: the first step fails and says what to check.
    let out = s.run(
        &[
            "login",
            "--auth-id",
            "x",
            "--server",
            &server,
            "--account",
            "1234567",
            "--no-browser",
        ],
        &[
            ("KEYCARD_CONSUMER_KEY", "0000"),
            ("KEYCARD_CONSUMER_SECRET", "1111"),
        ],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("request-token step"), "{err}");
    assert!(err.contains("TBA: Authorization Flow"), "{err}");

    // An authentication ID that could never be saved fails before the server is asked for
    // anything (before, only at the save, after the server had issued the token).
    let out = s.run(
        &[
            "login",
            "--auth-id",
            "not valid!",
            "--server",
            &server,
            "--account",
            "1234567",
            "--no-browser",
        ],
        &[
            ("KEYCARD_CONSUMER_KEY", s.cred("consumer_key")),
            ("KEYCARD_CONSUMER_SECRET", s.cred("consumer_secret")),
        ],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("authentication ID `not valid!`"), "{err}");
    assert!(!err.contains("Step 1"), "{err}");
}

#[test]
fn test_connection_prints_who_and_how_fast() {
    let s = start("1234567");
    ok(&s.add_profile("demo", "1234567", &[]));
    let out = s.run(&["test-connection", "--auth-id", "demo"], &[]);
    let text = ok(&out);
    for expected in [
        "1234567 (Demo Company)",
        "Demo Integration",
        "Demo Administrator <admin@example.com>",
        "Integration Role",
        "tokeninfo",
        " ms (request id ",
        "GET /services/rest/record/v1/customer?limit=1: HTTP 200",
        "Connection OK.",
    ] {
        assert!(text.contains(expected), "{expected} missing in {text}");
    }
    // A role without View on the record: the REST step fails with the permission named.
    let refused = s.run(&["test-connection", "--record", "vendor"], &[]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("INSUFFICIENT_PERMISSION"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn diagnose_explains_the_realm_form_and_a_missing_permission() {
    let s = start("1234567_SB1");
    // The host form as realm: saved without the check, then diagnosed.
    ok(&s.add_profile("dashed", "1234567-sb1", &["--no-check"]));
    let out = s.run(&["diagnose", "--auth-id", "dashed", "--explain"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("is the host form of the account id; the realm must be `1234567_SB1`"),
        "{text}"
    );
    assert!(
        text.contains("confirmed: with realm `1234567_SB1` the same token works"),
        "{text}"
    );
    assert!(text.contains("keycard audit show "), "{text}");
    assert!(text.contains("HMAC-SHA256"), "{text}");
    assert!(
        text.contains(&format!("`http://127.0.0.1:{}/rest/tokeninfo`", s.port)),
        "{text}"
    );
    assert!(text.contains("clock"), "{text}");
    assert!(
        text.contains(&format!(
            "base string: GET&http%3A%2F%2F127.0.0.1%3A{}%2Frest%2Ftokeninfo&oauth_consumer_key%3D",
            s.port
        )),
        "{text}"
    );
    for name in ["consumer_secret", "token_secret"] {
        assert!(!text.contains(s.cred(name)));
    }
    assert!(stderr(&out).contains("diagnose found"), "{}", stderr(&out));

    // Letter case.
    ok(&s.add_profile("lower", "1234567_sb1", &["--no-check"]));
    let lower = stdout(&s.run(&["diagnose", "--auth-id", "lower"], &[]));
    assert!(
        lower.contains("differs from the account id `1234567_SB1` in letter case"),
        "{lower}"
    );

    // A good profile: no problem; a call its role may not make: the permission named.
    ok(&s.add_profile("good", "1234567_SB1", &[]));
    let fine = s.run(&["diagnose", "--auth-id", "good"], &[]);
    let text = ok(&fine);
    assert!(
        text.contains("within ") && text.contains("of the server's Date header"),
        "{text}"
    );
    assert!(
        text.contains("tokeninfo works: user admin@example.com, role Integration Role"),
        "{text}"
    );
    assert!(text.contains("No problem found."), "{text}");
    let denied = s.run(
        &[
            "diagnose",
            "--auth-id",
            "good",
            "POST",
            "/services/rest/record/v1/item",
        ],
        &[],
    );
    assert_eq!(denied.status.code(), Some(1));
    let text = stdout(&denied);
    assert!(
        text.contains("needs `create` on record `item`, which role `Integration Role` lacks"),
        "{text}"
    );
    assert!(
        text.contains("keycard role grant \"Integration Role\" --record item=create"),
        "{text}"
    );
    // Following the advice fixes it.
    s.admin(&[
        "role",
        "grant",
        "Integration Role",
        "--record",
        "item=create",
    ]);
    let mut fixed = false;
    for _ in 0..20 {
        let out = s.run(
            &[
                "diagnose",
                "--auth-id",
                "good",
                "--data",
                r#"{"itemId":"widget"}"#,
                "POST",
                "/services/rest/record/v1/item",
            ],
            &[],
        );
        if out.status.success() {
            assert!(stdout(&out).contains("works now"), "{}", stdout(&out));
            fixed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(fixed, "the grant took effect");
}

#[test]
fn rotation_switches_only_after_the_new_token_works_then_revokes_the_old_one() {
    let s = start("1234567");
    s.admin(&[
        "integration",
        "update",
        "Demo Integration",
        "--user-credentials",
        "true",
    ]);
    ok(&s.add_profile("demo", "1234567", &[]));
    let file = Path::new(&s.config).join("profiles.json");
    let before = std::fs::read(&file).unwrap();

    // A wrong password: issuetoken refuses, the profile is untouched, nothing is revoked.
    let failed = s.run(
        &["token", "rotate", "--auth-id", "demo"],
        &[("KEYCARD_USER_PASSWORD", "wrong password")],
    );
    assert!(!failed.status.success());
    let err = stderr(&failed);
    assert!(err.contains("Step 1 of 4"), "{err}");
    assert!(
        err.contains("issuetoken failed: HTTP 401 INVALID_LOGIN_ATTEMPT"),
        "{err}"
    );
    assert!(err.contains("still uses the old token"), "{err}");
    assert!(!err.contains("wrong password"));
    assert_eq!(std::fs::read(&file).unwrap(), before);
    ok(&s.run(&["call", "GET", "/rest/tokeninfo"], &[]));

    // The right password: new token checked, saved, old one revoked.
    let rotated = s.run(
        &["token", "rotate", "--auth-id", "demo"],
        &[("KEYCARD_USER_PASSWORD", PASSWORD)],
    );
    ok(&rotated);
    let err = stderr(&rotated);
    for step in [
        "Step 1 of 4",
        "Step 2 of 4",
        "Step 3 of 4",
        "Step 4 of 4",
        "is revoked",
    ] {
        assert!(err.contains(step), "{step}: {err}");
    }
    let after = std::fs::read(&file).unwrap();
    assert_ne!(after, before);
    let shown = ok(&s.run(&["profile", "show", "demo"], &[]));
    assert!(
        !shown.contains(&format!("…{}", &s.cred("token_id")[60..])),
        "{shown}"
    );
    ok(&s.run(&["call", "GET", "/rest/tokeninfo"], &[]));
    // The old token no longer logs in.
    let old = s.add_profile("old", "1234567", &[]);
    assert!(!old.status.success());
    assert!(
        stderr(&old).contains("INVALID_LOGIN_ATTEMPT"),
        "{}",
        stderr(&old)
    );
    let tokens = keycard(&["token", "list", "--json", "--data-dir", &s.data], &[]);
    let tokens: Value = serde_json::from_str(&ok(&tokens)).unwrap();
    let original = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["token_id"] == s.cred("token_id"))
        .unwrap();
    assert!(original.to_string().contains("\"revoked\""), "{original}");
}

/// A host that answers 200 with a web page (a login page, a proxy's page): test-connection says
/// the profile's server is probably not an API host (before: only "the body is not JSON").
#[test]
fn test_connection_on_a_host_that_answers_html_names_the_server() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let mut stream = stream.unwrap();
            let mut head = [0u8; 4096];
            let _ = stream.read(&mut head);
            let page = "<html><body>Sign in</body></html>";
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                page.len()
            );
        }
    });
    let config = tempfile::tempdir().unwrap();
    let config = config.path().to_str().unwrap().to_owned();
    let server = format!("http://127.0.0.1:{port}");
    let env = [
        ("KEYCARD_CONFIG_DIR", config.as_str()),
        ("KEYCARD_CONSUMER_KEY", "ck"),
        ("KEYCARD_CONSUMER_SECRET", "cs"),
        ("KEYCARD_TOKEN_ID", "tk"),
        ("KEYCARD_TOKEN_SECRET", "ts"),
    ];
    let added = keycard(
        &[
            "profile",
            "add",
            "--auth-id",
            "web",
            "--server",
            &server,
            "--account",
            "1234567",
            "--no-check",
        ],
        &env,
    );
    assert!(added.status.success(), "{}", stderr(&added));
    let out = keycard(&["test-connection", "--auth-id", "web"], &env);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("answered 200 with something else"), "{err}");
    assert!(err.contains("not JSON"), "{err}");
    assert!(
        err.contains(&format!("`{server}` is probably not")),
        "{err}"
    );
}
