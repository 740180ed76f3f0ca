//! Which account a request is for: by host name as NetSuite does it
//! (`{slug}.restlets.api.<domain>`, `{slug}.suitetalk.api.<domain>`, `{slug}.app.<domain>`),
//! and, on a single host such as `localhost`, by the request's `realm` / `nlauth_account`.

use keycard_core::AccountId;

use crate::config::ServerConfig;

/// What the host name says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostRoute<'a> {
    /// An account-specific host; the slug as written in the host (`1234567-SB1`: any case).
    Account { slug: &'a str },
    /// A shared host: the account comes from the request.
    Shared,
}

const SERVICES: [&str; 4] = ["restlets.api", "suitetalk.api", "app", "extforms"];

/// Reads the host part of a `Host` header (without port) against the configured domains,
/// ignoring letter case. Runs on every request: it compares in place rather than building
/// lower-cased copies and suffix strings.
pub fn route_host<'a>(config: &ServerConfig, host: &'a str) -> HostRoute<'a> {
    let host = host.trim_end_matches('.');
    for domain in &config.domains {
        let Some(services) = strip_label_suffix(host, domain) else {
            continue;
        };
        for service in SERVICES {
            if let Some(slug) = strip_label_suffix(services, service) {
                if !slug.is_empty() && !slug.contains('.') {
                    return HostRoute::Account { slug };
                }
            }
        }
    }
    HostRoute::Shared
}

/// `name` without `.{suffix}` at its end (letter case ignored), if it ends so.
fn strip_label_suffix<'a>(name: &'a str, suffix: &str) -> Option<&'a str> {
    let split = name.len().checked_sub(suffix.len())?;
    let (head, tail) = (name.get(..split)?, name.get(split..)?);
    if tail.eq_ignore_ascii_case(suffix) {
        head.strip_suffix('.')
    } else {
        None
    }
}

/// The host name without a port (IPv6 brackets kept; an unclosed `[` leaves it whole).
pub fn host_without_port(authority: &str) -> &str {
    keycard_oauth1::split_authority(authority).map_or(authority, |(host, _)| host)
}

/// How a sent realm compares with the account id, in words for the audit diagnosis.
pub fn realm_hint(realm: &str, account: &AccountId) -> Option<String> {
    if realm == account.as_str() {
        return None;
    }
    if realm.eq_ignore_ascii_case(account.as_str()) {
        return Some(format!(
            "realm `{realm}` differs from the account id `{account}` only in letter case; send `{account}` exactly"
        ));
    }
    if realm.eq_ignore_ascii_case(&account.host_slug()) {
        return Some(format!(
            "realm `{realm}` is the host form of the account id; the realm must be the account id `{account}` (underscore, upper case)"
        ));
    }
    Some(format!(
        "realm `{realm}` is not this account's id `{account}`"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_hosts() {
        let config = ServerConfig::default();
        assert_eq!(
            route_host(&config, "1234567-SB1.restlets.api.netsuite.com"),
            HostRoute::Account {
                slug: "1234567-SB1"
            }
        );
        assert_eq!(
            route_host(&config, "1234567.suitetalk.api.localhost"),
            HostRoute::Account { slug: "1234567" }
        );
        assert_eq!(
            route_host(&config, "1234567.App.NetSuite.COM."),
            HostRoute::Account { slug: "1234567" }
        );
        assert_eq!(route_host(&config, "localhost"), HostRoute::Shared);
        assert_eq!(route_host(&config, "app.localhost"), HostRoute::Shared);
        assert_eq!(route_host(&config, ".app.localhost"), HostRoute::Shared);
        assert_eq!(route_host(&config, "xapp.localhost"), HostRoute::Shared);
        assert_eq!(
            route_host(&config, "é.app.localhost"),
            HostRoute::Account { slug: "é" }
        );
        assert_eq!(
            route_host(&config, "a.b.restlets.api.netsuite.com"),
            HostRoute::Shared
        );
        assert_eq!(host_without_port("[::1]:8080"), "[::1]");
        assert_eq!(host_without_port("[::1]"), "[::1]");
        assert_eq!(host_without_port("[::1"), "[::1");
        assert_eq!(host_without_port("h:80"), "h");
        assert_eq!(host_without_port("h"), "h");
        assert_eq!(host_without_port("é.example:80"), "é.example");
        assert_eq!(host_without_port("a:b:80"), "a:b");
    }

    #[test]
    fn realm_hints() {
        let account = AccountId::parse("1234567_SB1").unwrap();
        assert!(realm_hint("1234567_SB1", &account).is_none());
        assert!(
            realm_hint("1234567_sb1", &account)
                .unwrap()
                .contains("letter case")
        );
        assert!(
            realm_hint("1234567-sb1", &account)
                .unwrap()
                .contains("host form")
        );
        assert!(
            realm_hint("999", &account)
                .unwrap()
                .contains("not this account")
        );
    }
}
