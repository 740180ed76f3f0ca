//! `keycard diagnose [--auth-id ID] [--explain] [METHOD PATH]`: checks a profile and explains,
//! in plain words, what NetSuite's opaque "Invalid login attempt" may hide: the realm's form
//! against the account id and host (`_SB1` vs `-sb1`, case), clock skew against the server's
//! `Date`, the signature method, the signed URL and parameters (`--explain`: the base string,
//! from the protocol crate's `Explanation`), and, when the token works, whether its role lacks
//! the permission the failing call needs.

use anyhow::{Result, bail};
use clap::Args;
use keycard_client::{Call, Error, Realm};
use keycard_core::AccountId;

use super::profile::{Profile, ProfileStore};
use super::{AuthId, ConfigDir, client_with_retry};

#[derive(Args, Debug)]
pub struct DiagnoseArgs {
    #[command(flatten)]
    pub auth: AuthId,
    #[command(flatten)]
    pub config: ConfigDir,
    /// Also print the normalized parameters and the signature base string.
    #[arg(long)]
    pub explain: bool,
    /// The failing call's JSON body, or @FILE.
    #[arg(long, value_name = "JSON|@FILE")]
    pub data: Option<String>,
    /// The failing call's method (default GET).
    pub method: Option<String>,
    /// The failing call's path (default /rest/tokeninfo).
    pub path: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    Note,
    Problem,
}

#[derive(Debug, Clone)]
pub struct Finding {
    pub level: Level,
    pub topic: &'static str,
    pub text: String,
}

impl Finding {
    fn new(level: Level, topic: &'static str, text: impl Into<String>) -> Self {
        Self {
            level,
            topic,
            text: text.into(),
        }
    }
}

/// The realm against the account id, and the host against the account's host form.
pub fn check_realm_and_host(account: &str, server: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    let Ok(id) = AccountId::parse(account).or_else(|_| AccountId::from_host_slug(account)) else {
        findings.push(Finding::new(
            Level::Problem,
            "realm",
            format!(
                "`{account}` is not a NetSuite account id (digits, an optional TSTDRV prefix, an optional _SB1/_RP suffix); the realm must be the account id as shown at Setup > Company > Company Information"
            ),
        ));
        return findings;
    };
    if account == id.as_str() {
        findings.push(Finding::new(
            Level::Ok,
            "realm",
            format!("`{account}` is the account id in the exact form NetSuite expects"),
        ));
    } else if account.eq_ignore_ascii_case(&id.host_slug()) && account.contains('-') {
        findings.push(Finding::new(
            Level::Problem,
            "realm",
            format!(
                "`{account}` is the host form of the account id; the realm must be `{id}` (underscore, upper case), while hosts use `{}`",
                id.host_slug()
            ),
        ));
    } else {
        findings.push(Finding::new(
            Level::Problem,
            "realm",
            format!(
                "`{account}` differs from the account id `{id}` in letter case; NetSuite compares the realm exactly: send `{id}`"
            ),
        ));
    }
    let host = host_of(server);
    let account_host = [".restlets.api.", ".suitetalk.api.", ".app.", ".extforms."]
        .iter()
        .any(|marker| host.contains(marker));
    if account_host {
        let slug = host.split('.').next().unwrap_or_default();
        if slug == id.host_slug() {
            findings.push(Finding::new(
                Level::Ok,
                "host",
                format!("`{host}` is this account's host (`{slug}`)"),
            ));
        } else if slug.eq_ignore_ascii_case(id.as_str()) {
            findings.push(Finding::new(
                Level::Problem,
                "host",
                format!(
                    "the host starts with `{slug}`, the realm form; hosts use the lower-case, dashed form `{}` (e.g. `{}.restlets.api.netsuite.com`)",
                    id.host_slug(),
                    id.host_slug()
                ),
            ));
        } else {
            findings.push(Finding::new(
                Level::Problem,
                "host",
                format!(
                    "the host `{host}` belongs to account `{slug}`, but the profile's account is `{id}` (host form `{}`): one of them is wrong",
                    id.host_slug()
                ),
            ));
        }
    }
    findings
}

fn host_of(server: &str) -> String {
    let rest = server.split_once("://").map_or(server, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or_default();
    let host = authority
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(authority, |(h, _)| h);
    host.to_ascii_lowercase()
}

/// The scheme, host and port a signature covers, and what commonly goes wrong with them.
pub fn check_signed_url(server: &str, base_uri: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    let host = host_of(server);
    let local = host == "localhost"
        || host.starts_with("127.")
        || host == "[::1]"
        || host.ends_with(".localhost");
    let scheme = server.split_once("://").map_or("", |(s, _)| s);
    let level = if scheme == "https" || local {
        Level::Ok
    } else {
        Level::Problem
    };
    findings.push(Finding::new(
        level,
        "signed URL",
        if level == Level::Ok {
            format!(
                "the signature covers `{base_uri}` (scheme, host, port and path as sent; the query is in the parameters)"
            )
        } else {
            format!(
                "the signature covers `{base_uri}`, but NetSuite serves only https: a signature over http:// never matches what it rebuilds; use an https:// server"
            )
        },
    ));
    let authority = server
        .split_once("://")
        .map_or(server, |(_, r)| r)
        .split('/')
        .next()
        .unwrap_or_default();
    if (scheme == "https" && authority.ends_with(":443"))
        || (scheme == "http" && authority.ends_with(":80"))
    {
        findings.push(Finding::new(
            Level::Note,
            "signed URL",
            "the server URL names the default port; it is left out of the base string as RFC 5849 requires, as NetSuite does",
        ));
    }
    let path = server
        .split_once("://")
        .map_or("", |(_, r)| r.split_once('/').map_or("", |(_, p)| p));
    if !path.is_empty() {
        findings.push(Finding::new(
            Level::Note,
            "signed URL",
            format!("the server URL has a path (`/{path}`); every request goes below it and is signed with it"),
        ));
    }
    findings
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) into Unix seconds.
pub fn parse_http_date(value: &str) -> Option<i64> {
    let mut parts = value.split_whitespace().skip(1);
    let day: i64 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let mut time = parts.next()?.split(':').map(str::parse::<i64>);
    let (h, m, s) = (time.next()?.ok()?, time.next()?.ok()?, time.next()?.ok()?);
    Some(keycard_core::time::days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s)
}

/// The local clock against the server's `Date` (NetSuite allows about ±5 minutes).
pub fn check_clock(local: i64, server_date: Option<&str>) -> Finding {
    let Some(server) = server_date.and_then(parse_http_date) else {
        return Finding::new(
            Level::Note,
            "clock",
            "the server sent no usable Date header, so the clock could not be compared",
        );
    };
    let skew = local - server;
    let direction = if skew > 0 { "ahead of" } else { "behind" };
    if skew.abs() > 300 {
        Finding::new(
            Level::Problem,
            "clock",
            format!(
                "this machine's clock is {} s {direction} the server's; oauth_timestamp must be within about 5 minutes of the server's time: sync the clock (e.g. enable NTP: `timedatectl set-ntp true`)",
                skew.abs()
            ),
        )
    } else if skew.abs() > 30 {
        Finding::new(
            Level::Note,
            "clock",
            format!(
                "this machine's clock is {} s {direction} the server's: within the window, but worth syncing",
                skew.abs()
            ),
        )
    } else {
        Finding::new(
            Level::Ok,
            "clock",
            format!("within {} s of the server's Date header", skew.abs()),
        )
    }
}

/// `(record type, level word)` a REST record call needs.
fn needed_permission(method: &str, path: &str) -> Option<(String, &'static str)> {
    let path = path.split('?').next().unwrap_or_default();
    let rest = path.split("/services/rest/record/v1/").nth(1)?;
    let record = rest.split('/').next()?.to_ascii_lowercase();
    let level = match method {
        "GET" | "HEAD" => "view",
        "POST" => "create",
        "PUT" | "PATCH" => "edit",
        "DELETE" => "full",
        _ => return None,
    };
    Some((record, level))
}

fn print(findings: &[Finding]) {
    for f in findings {
        let mark = match f.level {
            Level::Ok => "ok     ",
            Level::Note => "note   ",
            Level::Problem => "PROBLEM",
        };
        println!("  {mark}  {:<18} {}", f.topic, f.text);
    }
}

// One check after the other, printed as they go: long, but a straight story.
#[allow(clippy::too_many_lines)]
pub async fn run(args: DiagnoseArgs) -> Result<()> {
    let store = ProfileStore::open(&args.config)?;
    let profile: Profile = store.resolve(args.auth.auth_id.as_deref())?;
    let credentials = store.credentials(&profile)?;
    let client = client_with_retry(&profile, &credentials, keycard_client::RetryPolicy::never())?;
    let method = args.method.as_deref().unwrap_or("GET").to_ascii_uppercase();
    let path = args
        .path
        .clone()
        .unwrap_or_else(|| "/rest/tokeninfo".into());
    let mut failing = Call::new(&method, &path);
    if let Some(data) = &args.data {
        failing = failing.json(&super::call::read_data(data)?);
    }
    println!(
        "Diagnosis of profile `{}`: {} account {} ({method} {path})",
        profile.auth_id, profile.server, profile.account
    );
    let mut findings = check_realm_and_host(&profile.account, &profile.server);
    findings.push(Finding::new(
        Level::Ok,
        "signature method",
        format!(
            "{} (NetSuite's required method; HMAC-SHA1 is refused since 2023.1)",
            client.signer().method().as_str()
        ),
    ));
    let explanation = client.explain(&failing)?;
    findings.extend(check_signed_url(&profile.server, &explanation.base_uri));
    let names: Vec<&str> = explanation
        .parameters
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    findings.push(Finding::new(
        Level::Ok,
        "parameters",
        format!(
            "signed: {} (realm and oauth_signature are never signed; --explain prints the base string)",
            names.join(", ")
        ),
    ));

    // The token itself, and the clock from the answer's Date header.
    let local = i64::try_from(crate::nonce::unix_now()?).unwrap_or(i64::MAX);
    let info = client.send(&Call::get("/rest/tokeninfo")).await;
    let mut token_works = false;
    match &info {
        Ok(answer) => {
            findings.push(check_clock(local, answer.header("date")));
            let json = answer.json().unwrap_or_default();
            token_works = true;
            findings.push(Finding::new(
                Level::Ok,
                "token",
                format!(
                    "tokeninfo works: user {}, role {} (id {}), integration {}",
                    json["entityEmail"].as_str().unwrap_or("-"),
                    json["roleName"].as_str().unwrap_or("-"),
                    json["roleId"],
                    json["integrationName"].as_str().unwrap_or("-"),
                ),
            ));
        }
        Err(Error::Api(api)) => {
            findings.push(check_clock(local, api.date.as_deref()));
            let audit = api.request_id.as_deref().map_or_else(String::new, |r| {
                format!(
                    " The account owner can read the exact reason with `keycard audit show {r}`."
                )
            });
            findings.push(Finding::new(
                Level::Problem,
                "token",
                format!(
                    "tokeninfo was refused ({api}). Besides the checks above, the usual causes are a wrong or revoked token, a wrong consumer secret, a blocked integration, or a role without \"Log in using Access Tokens\".{audit}"
                ),
            ));
            // Try the realm in its canonical form: if that works, the realm was the cause.
            let canonical = Realm::from_account(&profile.account);
            if api.is_invalid_login() && canonical.as_str() != profile.account {
                let retried = client
                    .with_realm(Some(canonical.clone()))
                    .send(&Call::get("/rest/tokeninfo"))
                    .await;
                findings.push(if retried.is_ok() {
                    Finding::new(
                        Level::Problem,
                        "realm",
                        format!(
                            "confirmed: with realm `{canonical}` the same token works. Fix the profile: `keycard login --auth-id {} --from {} --account {canonical}` (or `keycard profile add … --account {canonical}`)",
                            profile.auth_id, profile.auth_id
                        ),
                    )
                } else {
                    Finding::new(
                        Level::Note,
                        "realm",
                        format!("with realm `{canonical}` the token is refused too, so the realm is not the only problem"),
                    )
                });
            }
        }
        Err(other) => {
            findings.push(Finding::new(
                Level::Problem,
                "server",
                format!(
                    "no answer: {other}. Check the server URL `{}` and that the server is running",
                    profile.server
                ),
            ));
        }
    }

    // The failing call itself, when it is not tokeninfo.
    if token_works && !(method == "GET" && path == "/rest/tokeninfo") {
        match client.send(&failing).await {
            Ok(answer) => findings.push(Finding::new(
                Level::Ok,
                "call",
                format!("{method} {path} works now (HTTP {})", answer.status),
            )),
            Err(Error::Api(api)) if api.is_insufficient_permission() => {
                let role = profile.role.as_deref().unwrap_or("the token's role");
                let text = match needed_permission(&method, &path) {
                    Some((record, level)) => format!(
                        "{method} {path} needs `{level}` on record `{record}`, which role `{role}` lacks (403 INSUFFICIENT_PERMISSION, request id {}). Ask the account owner: `keycard role grant \"{role}\" --record {record}={level}`, or use a token with a role that has it",
                        api.request_id.as_deref().unwrap_or("-")
                    ),
                    None => format!(
                        "{method} {path} needs a permission that role `{role}` lacks (403 INSUFFICIENT_PERMISSION, request id {}); ask the account owner to grant it",
                        api.request_id.as_deref().unwrap_or("-")
                    ),
                };
                findings.push(Finding::new(Level::Problem, "permission", text));
            }
            Err(Error::Api(api)) => findings.push(Finding::new(
                Level::Problem,
                "call",
                format!("{method} {path} fails although the token works: {api}"),
            )),
            Err(other) => findings.push(Finding::new(
                Level::Problem,
                "call",
                format!("{method} {path}: {other}"),
            )),
        }
    }
    print(&findings);
    if args.explain {
        println!();
        println!("base URI:    {}", explanation.base_uri);
        println!("parameters:");
        let width = names.iter().map(|n| n.len()).max().unwrap_or(0);
        for (name, value) in &explanation.parameters {
            println!("  {name:<width$} = {value}");
        }
        println!("base string: {}", explanation.base_string);
    }
    let problems = findings
        .iter()
        .filter(|f| f.level == Level::Problem)
        .count();
    if problems > 0 {
        bail!(
            "diagnose found {problems} problem(s) with profile `{}`; fix them as described above",
            profile.auth_id
        );
    }
    println!("No problem found.");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realm_forms_are_told_apart() {
        let ok = check_realm_and_host(
            "1234567_SB1",
            "https://1234567-sb1.restlets.api.netsuite.com",
        );
        assert!(ok.iter().all(|f| f.level == Level::Ok), "{ok:?}");
        let host_form = check_realm_and_host("1234567-sb1", "http://127.0.0.1:8910");
        assert!(host_form[0].text.contains("host form"), "{host_form:?}");
        let case = check_realm_and_host("1234567_sb1", "http://127.0.0.1:8910");
        assert!(case[0].text.contains("letter case"), "{case:?}");
        let bad_host = check_realm_and_host(
            "1234567_SB1",
            "https://1234567_SB1.restlets.api.netsuite.com",
        );
        assert_eq!(bad_host[1].level, Level::Problem);
        assert!(bad_host[1].text.contains("realm form"), "{bad_host:?}");
        let other = check_realm_and_host("1234567", "https://7654321.suitetalk.api.netsuite.com");
        assert!(other[1].text.contains("belongs to account"), "{other:?}");
    }

    #[test]
    fn clock_skew_is_measured_against_the_date_header() {
        let date = "Tue, 14 Nov 2023 22:13:20 GMT";
        assert_eq!(parse_http_date(date), Some(1_700_000_000));
        assert_eq!(check_clock(1_700_000_002, Some(date)).level, Level::Ok);
        let ahead = check_clock(1_700_000_400, Some(date));
        assert_eq!(ahead.level, Level::Problem);
        assert!(ahead.text.contains("400 s ahead of"), "{}", ahead.text);
        assert_eq!(check_clock(1_700_000_000, None).level, Level::Note);
    }

    #[test]
    fn plain_http_to_a_remote_host_is_a_problem() {
        let remote = check_signed_url("http://1234567.restlets.api.netsuite.com", "x");
        assert_eq!(remote[0].level, Level::Problem);
        let local = check_signed_url("http://127.0.0.1:8910", "x");
        assert_eq!(local[0].level, Level::Ok);
        assert_eq!(check_signed_url("https://h.example:443", "x").len(), 2);
    }

    #[test]
    fn permissions_by_method() {
        assert_eq!(
            needed_permission("POST", "/services/rest/record/v1/item"),
            Some(("item".into(), "create"))
        );
        assert_eq!(
            needed_permission("DELETE", "/services/rest/record/v1/customer/5?x=1"),
            Some(("customer".into(), "full"))
        );
        assert_eq!(needed_permission("GET", "/rest/tokeninfo"), None);
    }
}
