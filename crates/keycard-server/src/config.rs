//! Server settings, from flags, `KEYCARD_*` variables and an optional TOML file (the CLI merges
//! them; this is the result).

use std::net::IpAddr;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Host domains served: `{slug}.restlets.api.<domain>`, `{slug}.suitetalk.api.<domain>` and
    /// `{slug}.app.<domain>` route to account `slug`. Other hosts (e.g. `localhost`) route by
    /// the request's `realm` / `nlauth_account`.
    pub domains: Vec<String>,
    /// The scheme clients use to reach the server (the signed URL's), unless a trusted proxy
    /// says otherwise with `X-Forwarded-Proto`.
    pub public_scheme: String,
    /// Peers whose `X-Forwarded-Proto` / `X-Forwarded-Host` / `X-Forwarded-For` are believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Accepted clock difference, in seconds.
    pub timestamp_window: i64,
    /// Accept HMAC-SHA1 (NetSuite ended it in 2023.1).
    pub allow_legacy_sha1: bool,
    /// Login records queued for the writer before requests wait (back-pressure, not loss).
    pub audit_queue: usize,
    /// How often to check the directory for changes made by other processes, in milliseconds.
    pub resync_ms: u64,
    /// Seconds a three-step request token waits for its authorization and exchange.
    pub request_token_ttl: i64,
    /// Serve HTTPS directly with this certificate and key (then the signed scheme is https).
    pub tls: Option<crate::tls::TlsFiles>,
    /// Keep nonces and concurrency slots on this Redis (`redis://host:port/db`), shared by
    /// every node; unset, they live in this process (one node).
    pub redis_url: Option<RedisUrl>,
    /// Prefix of every Redis key (several deployments can share one Redis).
    pub redis_prefix: String,
    /// How long a request waits for Redis before it is refused with 503, in milliseconds.
    pub redis_timeout_ms: u64,
    /// How long a concurrency slot outlives the node that took it (leases are renewed while
    /// the request runs), in milliseconds.
    pub slot_lease_ms: u64,
    /// How long cached credentials keep verifying while the directory cannot be read, in
    /// seconds; after that requests are refused with 503 until it is back.
    pub directory_grace_secs: u64,
    /// How long a connection may stay quiet (no request being answered, nothing being
    /// written) before it is closed, in milliseconds: idle keep-alive
    /// connections, and clients too slow to finish a request head or body. Checked once per
    /// period, so such a connection goes between one and two periods after it fell quiet.
    pub idle_timeout_ms: u64,
}

/// A Redis URL; it may carry a password, so it never prints.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct RedisUrl(String);

impl RedisUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisUrl(..)")
    }
}

impl ServerConfig {
    /// Checks the settings, whichever way they came (flags, variables, the TOML file): a
    /// value out of range is refused with its name, never used. A negative window, say, made
    /// the nonce store forget nonces within seconds, and a resync of 0 ms stopped caching.
    pub fn validate(&self) -> anyhow::Result<()> {
        let checks: [(bool, &str); 9] = [
            (
                self.timestamp_window > 0 && self.timestamp_window <= 86_400,
                "timestamp_window (--timestamp-window) must be 1 to 86400 seconds",
            ),
            (
                self.public_scheme == "http" || self.public_scheme == "https",
                "public_scheme (--public-scheme) must be http or https",
            ),
            (self.audit_queue >= 1, "audit_queue must be at least 1"),
            (
                self.resync_ms >= 10,
                "resync_ms (--resync-ms) must be at least 10",
            ),
            (
                self.request_token_ttl > 0,
                "request_token_ttl must be at least 1 second",
            ),
            (
                self.redis_timeout_ms >= 1,
                "redis_timeout_ms must be at least 1",
            ),
            (
                self.slot_lease_ms >= 100,
                "slot_lease_ms (--slot-lease-ms) must be at least 100",
            ),
            (
                self.idle_timeout_ms >= 100,
                "idle_timeout_ms (--idle-timeout-ms) must be at least 100",
            ),
            (
                self.redis_url.as_ref().is_none_or(|url| {
                    ["redis://", "rediss://", "redis+unix://"]
                        .iter()
                        .any(|scheme| url.expose().starts_with(scheme))
                }),
                "redis_url (--redis-url) must be a redis://, rediss:// or redis+unix:// URL",
            ),
        ];
        for (valid, rule) in checks {
            anyhow::ensure!(valid, "{rule}");
        }
        Ok(())
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            domains: vec!["netsuite.com".into(), "localhost".into()],
            public_scheme: "http".into(),
            trusted_proxies: Vec::new(),
            timestamp_window: 300,
            allow_legacy_sha1: false,
            audit_queue: 10_000,
            resync_ms: 250,
            request_token_ttl: 600,
            tls: None,
            redis_url: None,
            redis_prefix: "keycard:".into(),
            redis_timeout_ms: 500,
            slot_lease_ms: 10_000,
            directory_grace_secs: 300,
            idle_timeout_ms: 30_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_out_of_range_are_refused_by_name() {
        assert!(ServerConfig::default().validate().is_ok());
        let cases: [(&str, ServerConfig); 3] = [
            (
                "timestamp_window",
                ServerConfig {
                    timestamp_window: -300,
                    ..ServerConfig::default()
                },
            ),
            (
                "resync_ms",
                ServerConfig {
                    resync_ms: 0,
                    ..ServerConfig::default()
                },
            ),
            (
                "redis_url",
                ServerConfig {
                    redis_url: Some(RedisUrl::new("http://redis")),
                    ..ServerConfig::default()
                },
            ),
        ];
        for (name, config) in cases {
            let error = config.validate().unwrap_err().to_string();
            assert!(error.starts_with(name), "{error}");
        }
    }
}
