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
        }
    }
}
