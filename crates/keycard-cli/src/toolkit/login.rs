//! `keycard login --auth-id ID`: the three-step flow. `POST /rest/requesttoken` with
//! `oauth_callback` = `http://localhost:PORT/callback` of a listener on 127.0.0.1, the authorize
//! URL opened in a browser (or printed), the redirect received on the listener, the exchange
//! at `/rest/accesstoken`, and the token saved under the authentication ID.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use clap::Args;
use keycard_client::{Client, Credentials, Realm, RetryPolicy};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use super::profile::{Profile, ProfileStore, describe_role};
use super::{ConfigDir, explain, fill_from_token_info};

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// The authentication ID to save the token under.
    #[arg(long)]
    pub auth_id: String,
    #[command(flatten)]
    pub config: ConfigDir,
    /// Reuse server, account and consumer key/secret from this saved profile.
    #[arg(long, value_name = "AUTH_ID")]
    pub from: Option<String>,
    /// The server's base URL or account host (e.g. https://1234567.restlets.api.netsuite.com).
    #[arg(long, env = "KEYCARD_SERVER")]
    pub server: Option<String>,
    /// The account id (the realm), e.g. 1234567 or 1234567_SB1.
    #[arg(long, env = "KEYCARD_ACCOUNT")]
    pub account: Option<String>,
    #[arg(long, env = "KEYCARD_CONSUMER_KEY", hide_env_values = true)]
    pub consumer_key: Option<String>,
    #[arg(long, env = "KEYCARD_CONSUMER_SECRET", hide_env_values = true)]
    pub consumer_secret: Option<String>,
    /// Port of the local callback listener on 127.0.0.1 (0: any free port). The integration's
    /// callback URL must be http://localhost/callback (any port) or this exact URL.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Do not try to open a browser; only print the URL.
    #[arg(long)]
    pub no_browser: bool,
    /// Seconds to wait for the answer from the authorize page.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
}

/// What the callback brought.
struct Answer {
    verifier: String,
    role: Option<String>,
}

// The three steps in order, each with its own message: long, but one straight story.
#[allow(clippy::too_many_lines)]
pub async fn run(args: LoginArgs) -> Result<()> {
    let store = ProfileStore::open(&args.config)?;
    // Before the server issues anything: a token that cannot be saved is a token lost.
    store.check_can_save(&args.auth_id)?;
    let from = match &args.from {
        Some(id) => Some(store.get(id)?),
        None => offer_reuse(&store, &args)?,
    };
    let reused = match &from {
        Some(p) => Some(store.credentials(p)?),
        None => None,
    };
    let server = args
        .server
        .clone()
        .or_else(|| from.as_ref().map(|p| p.server.clone()))
        .ok_or_else(|| anyhow!("give the server with --server URL (or KEYCARD_SERVER), or reuse a profile's with --from AUTH_ID"))?;
    let account = args
        .account
        .clone()
        .or_else(|| from.as_ref().map(|p| p.account.clone()))
        .ok_or_else(|| anyhow!("give the account id with --account (or KEYCARD_ACCOUNT), or reuse a profile's with --from AUTH_ID"))?;
    let consumer_key = args
        .consumer_key
        .clone()
        .or_else(|| reused.as_ref().map(|c| c.consumer_key().to_owned()))
        .ok_or_else(|| anyhow!("give the integration's consumer key with --consumer-key or KEYCARD_CONSUMER_KEY, or reuse a profile's with --from AUTH_ID"))?;
    let consumer_secret = args
        .consumer_secret
        .clone()
        .or_else(|| reused.as_ref().map(|c| c.consumer_secret().to_owned()))
        .ok_or_else(|| anyhow!("give the integration's consumer secret in KEYCARD_CONSUMER_SECRET (or --consumer-secret), or reuse a profile's with --from AUTH_ID"))?;
    let consumer_secret = zeroize::Zeroizing::new(consumer_secret);
    let mut profile = Profile::new(&args.auth_id, &server, &account);

    let listener = TcpListener::bind(("127.0.0.1", args.port))
        .await
        .with_context(|| {
            format!(
                "cannot listen on 127.0.0.1:{} for the callback; choose another --port",
                args.port
            )
        })?;
    let port = listener.local_addr()?.port();
    let callback = format!("http://localhost:{port}/callback");
    let client = Client::builder(
        &profile.server,
        Credentials::new(&consumer_key, consumer_secret.as_str()),
    )
    .realm(Realm::new(&profile.account))
    .retry(RetryPolicy::never())
    .build()?;

    eprintln!(
        "Step 1 of 3: asking {} for a request token…",
        profile.server
    );
    let request_token = client.request_token(&callback).await.map_err(|e| {
        let hint = if e.api().is_some_and(keycard_client::ApiError::is_invalid_login) {
            format!(
                " Check the consumer key and secret, that the integration allows \"TBA: Authorization Flow\", and that its callback URL is {callback} or http://localhost/callback (any port)."
            )
        } else {
            String::new()
        };
        anyhow!("{}{hint}", explain(&e, &profile, "the request-token step (POST /rest/requesttoken)"))
    })?;
    // On NetSuite the page is on the account's `app` host, whichever host the profile names.
    let page = "/app/login/secure/authorizetoken.nl";
    let authorize = format!(
        "{}{page}?oauth_token={}",
        keycard_client::service_base(&profile.server, page),
        keycard_oauth1::encode::percent_encode(&request_token.token)
    );
    eprintln!("Step 2 of 3: log in and choose Allow on the authorize page:");
    eprintln!("  {authorize}");
    if !args.no_browser {
        match open_browser(&authorize, std::env::var("BROWSER").ok().as_deref()) {
            Ok(program) => eprintln!("(opened in your browser with {program})"),
            Err(why) => eprintln!("(no browser opened: {why}; open the URL yourself)"),
        }
    }
    let deadline = Duration::from_secs(args.timeout);
    eprintln!(
        "Waiting for the answer on {callback} (up to {} s; Ctrl-C to stop)…",
        deadline.as_secs()
    );
    let answer = wait_for_callback(&listener, &request_token.token, deadline).await?;

    eprintln!("Step 3 of 3: exchanging the authorized request token for an access token…");
    let credentials = client
        .access_token(&request_token, &answer.verifier)
        .await
        .map_err(|e| {
            explain(
                &e,
                &profile,
                "the access-token step (POST /rest/accesstoken)",
            )
        })?;
    profile.role_id = answer.role;
    // Fill in role and user for `profile show` and `token rotate`; the token is saved either way.
    match client
        .with_credentials(credentials.clone())
        .token_info()
        .await
    {
        Ok(info) => fill_from_token_info(&mut profile, &info),
        Err(error) => eprintln!(
            "warning: the new token was issued but tokeninfo failed ({error}); run `keycard test-connection --auth-id {}`",
            profile.auth_id
        ),
    }
    let replaced = store.get(&profile.auth_id).is_ok();
    let auth_id = profile.auth_id.clone();
    let saved = match store.save(profile, &credentials) {
        Ok(saved) => saved,
        Err(error) => {
            // Nobody holds the new token's secret now: revoke it rather than leave it valid.
            let token = super::profile::hint(credentials.token_id().unwrap_or_default());
            let revoked = client.with_credentials(credentials).revoke_token().await;
            let fate = match revoked {
                Ok(()) => format!("the new token {token} was revoked"),
                Err(e) => format!(
                    "the new token {token} could not be revoked ({e}): ask the account owner to revoke it (`keycard token revoke`)"
                ),
            };
            return Err(error.context(format!("profile `{auth_id}` was not saved, so {fate}")));
        }
    };
    eprintln!(
        "{} profile `{}`: account {} as {} (token {}).",
        if replaced { "Updated" } else { "Saved" },
        saved.auth_id,
        saved.account,
        describe_role(&saved),
        saved.token_hint
    );
    eprintln!(
        "Try it: keycard test-connection --auth-id {}",
        saved.auth_id
    );
    Ok(())
}

/// On a terminal, when no consumer key was given and profiles exist, asks whether to reuse one.
fn offer_reuse(store: &ProfileStore, args: &LoginArgs) -> Result<Option<Profile>> {
    if args.consumer_key.is_some() || !std::io::stdin().is_terminal() {
        return Ok(None);
    }
    let profiles = store.list()?;
    if profiles.is_empty() {
        return Ok(None);
    }
    eprintln!("Saved profiles:");
    for p in &profiles {
        eprintln!("  {:<20} {} (account {})", p.auth_id, p.server, p.account);
    }
    eprint!(
        "Reuse the server, account and consumer key of which profile? (ID, or Enter for none): "
    );
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let chosen = line.trim();
    if chosen.is_empty() {
        return Ok(None);
    }
    store.get(chosen).map(Some)
}

/// Starts a browser on `url` and says which program it started. `$BROWSER` comes first, as
/// Python's `webbrowser`, git and `xdg-open` read it: a list of commands separated like `PATH`
/// (`:`, on Windows `;`), each
/// split like a shell's words, with `%s` standing for the URL (appended when absent) and `%%`
/// for `%`; the first that starts wins. Then `xdg-open` (Linux, BSD) and `open` (macOS). The
/// browser is not waited for: the callback listener hears when the person is done.
fn open_browser(url: &str, browser_variable: Option<&str>) -> Result<String, String> {
    let mut tried = Vec::new();
    let from_variable = browser_variable
        .unwrap_or_default()
        .split(if cfg!(windows) { ';' } else { ':' })
        .filter(|command| !command.trim().is_empty());
    for command in from_variable {
        let Some(words) = browser_words(command, url) else {
            tried.push(format!("`{command}` from $BROWSER (unbalanced quotes)"));
            continue;
        };
        if start(&words) {
            return Ok(words.first().cloned().unwrap_or_default());
        }
        tried.push(format!("`{command}` from $BROWSER"));
    }
    for program in ["xdg-open", "open"] {
        if start(&[program.to_owned(), url.to_owned()]) {
            return Ok(program.to_owned());
        }
        tried.push(program.to_owned());
    }
    Err(format!("could not start {}", tried.join(", ")))
}

/// One `$BROWSER` command as program and arguments, the URL in place of `%s`.
fn browser_words(command: &str, url: &str) -> Option<Vec<String>> {
    let mut words = shlex::split(command)?;
    if words.is_empty() {
        return None;
    }
    let mut placed = false;
    for word in &mut words {
        let mut out = String::with_capacity(word.len());
        let mut chars = word.chars().peekable();
        while let Some(c) = chars.next() {
            match (c, chars.peek()) {
                ('%', Some('s')) => {
                    chars.next();
                    out.push_str(url);
                    placed = true;
                }
                ('%', Some('%')) => {
                    chars.next();
                    out.push('%');
                }
                _ => out.push(c),
            }
        }
        *word = out;
    }
    if !placed {
        words.push(url.to_owned());
    }
    Some(words)
}

/// Starts `words` (program, arguments) detached from this terminal; false if it cannot start.
fn start(words: &[String]) -> bool {
    let Some((program, arguments)) = words.split_first() else {
        return false;
    };
    std::process::Command::new(program)
        .args(arguments)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .is_ok()
}

async fn wait_for_callback(listener: &TcpListener, token: &str, limit: Duration) -> Result<Answer> {
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    tick.tick().await;
    let expired = tokio::time::sleep(limit);
    tokio::pin!(expired);
    loop {
        tokio::select! {
            () = &mut expired => bail!(
                "no answer from the authorize page within {} s. Open the URL above, log in and choose Allow; or run `keycard login` again (with a longer --timeout if you need more time)",
                limit.as_secs()
            ),
            _ = tick.tick() => eprintln!(
                "…still waiting for the authorize page ({} s left)",
                limit.saturating_sub(started.elapsed()).as_secs()
            ),
            accepted = listener.accept() => {
                let (stream, _) = accepted.context("the callback listener failed")?;
                if let Some(result) = handle(stream, token).await {
                    return result;
                }
            }
        }
    }
}

/// Answers one connection; `Some` once the flow's redirect arrived (allowed or denied).
async fn handle(mut stream: TcpStream, token: &str) -> Option<Result<Answer>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => head.extend_from_slice(buf.get(..n).unwrap_or_default()),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let target = head
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .unwrap_or_default()
        .to_owned();
    let (path, query) = target.split_once('?').unwrap_or((target.as_str(), ""));
    if path != "/callback" {
        reply(
            &mut stream,
            404,
            "Not found",
            "This is keycard's login callback; nothing else lives here.",
        )
        .await;
        return None;
    }
    let params = keycard_client::parse_form(query.as_bytes());
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    if param("oauth_token").as_deref() != Some(token) {
        reply(
            &mut stream,
            400,
            "Not this login",
            "This answer belongs to another authorization request. Use the URL that keycard login printed.",
        )
        .await;
        return None;
    }
    if let Some(verifier) = param("oauth_verifier").filter(|v| !v.is_empty()) {
        reply(
                &mut stream,
                200,
                "keycard is authorized",
                "The authorization reached keycard. You can close this window and return to the terminal.",
            )
            .await;
        Some(Ok(Answer {
            verifier,
            role: param("role"),
        }))
    } else {
        reply(
            &mut stream,
            200,
            "Access denied",
            "You chose Deny, so keycard received no token. You can close this window.",
        )
        .await;
        Some(Err(anyhow!(
            "the authorization was denied on the authorize page (Deny), so no token was issued. Run `keycard login` again and choose Allow to save a token"
        )))
    }
}

/// Answers the browser with a small page. Its empty inline icon keeps the browser from asking
/// for `/favicon.ico` after the page, by when the listener is gone.
async fn reply(stream: &mut TcpStream, status: u16, title: &str, text: &str) {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><link rel=\"icon\" href=\"data:,\"><title>{title}</title></head><body><h1>{title}</h1><p>{text}</p></body></html>"
    );
    let response = format!(
        "HTTP/1.1 {status} {title}\r\ncontent-type: text/html; charset=utf-8\r\ncache-control: no-store\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::{browser_words, open_browser};

    const URL: &str = "http://h/app/login/secure/authorizetoken.nl?oauth_token=a%2Bb";

    #[test]
    fn browser_commands_take_the_url_in_place_of_percent_s_or_at_the_end() {
        assert_eq!(browser_words("firefox", URL).unwrap(), ["firefox", URL]);
        assert_eq!(
            browser_words("chromium --new-window %s --x", URL).unwrap(),
            ["chromium", "--new-window", URL, "--x"]
        );
        assert_eq!(
            browser_words("'/opt/My Browser/run' --flag=100%% url=%s", URL).unwrap(),
            ["/opt/My Browser/run", "--flag=100%", &format!("url={URL}")]
        );
        assert_eq!(browser_words("open 'unbalanced", URL), None);
        assert_eq!(browser_words("   ", URL), None);
    }

    #[test]
    fn browser_variable_entries_are_tried_in_order() {
        // `true` ignores its arguments and always starts: the first entry that starts wins.
        assert_eq!(
            open_browser(URL, Some("/nonexistent/browser %s:true:false")).unwrap(),
            "true"
        );
    }
}
