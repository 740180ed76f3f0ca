//! `keycard serve`: runs the authenticating server on the directory.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use keycard_server::ServerConfig;

use crate::admin::StoreArgs;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "KEYCARD_LISTEN", default_value = "127.0.0.1:8910")]
    pub listen: SocketAddr,
    /// A TOML file with server settings (domains, public_scheme, trusted_proxies,
    /// timestamp_window, allow_legacy_sha1, audit_queue, resync_ms, request_token_ttl,
    /// tls = { cert, key }, redis_url, redis_prefix, redis_timeout_ms, slot_lease_ms,
    /// directory_grace_secs, idle_timeout_ms); flags override it.
    #[arg(long, env = "KEYCARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// A host domain: {account}.restlets.api.DOMAIN, {account}.suitetalk.api.DOMAIN and
    /// {account}.app.DOMAIN route to that account (repeatable; default netsuite.com and localhost).
    #[arg(long = "domain", env = "KEYCARD_DOMAINS", value_delimiter = ',')]
    pub domains: Vec<String>,
    /// The scheme clients sign (http, or https behind a TLS proxy).
    #[arg(long, env = "KEYCARD_PUBLIC_SCHEME")]
    pub public_scheme: Option<String>,
    /// A proxy whose X-Forwarded-Proto/-Host/-For headers are honoured (repeatable).
    #[arg(
        long = "trusted-proxy",
        env = "KEYCARD_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<IpAddr>,
    /// Accepted clock difference in seconds.
    #[arg(long, env = "KEYCARD_TIMESTAMP_WINDOW")]
    pub timestamp_window: Option<i64>,
    /// Accept HMAC-SHA1 signatures (ended by NetSuite in 2023.1).
    #[arg(long)]
    pub allow_legacy_sha1: bool,
    /// Serve HTTPS directly: a PEM certificate chain (needs --tls-key).
    #[arg(long, env = "KEYCARD_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "KEYCARD_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Keep nonces and concurrency slots on this Redis (redis://host:port/db), shared by every
    /// node behind a load balancer; without it they live in this process (one node).
    #[arg(long, env = "KEYCARD_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// How long a concurrency slot outlives a node that dies holding it, in milliseconds
    /// (with --redis-url; default 10000).
    #[arg(long, env = "KEYCARD_SLOT_LEASE_MS")]
    pub slot_lease_ms: Option<u64>,
    /// How often to check the directory for changes made elsewhere, in milliseconds (a safety
    /// net behind change events; default 250).
    #[arg(long, env = "KEYCARD_RESYNC_MS")]
    pub resync_ms: Option<u64>,
    /// How long cached credentials keep verifying while the directory is unreachable, in
    /// seconds (default 300).
    #[arg(long, env = "KEYCARD_DIRECTORY_GRACE_SECS")]
    pub directory_grace_secs: Option<u64>,
    /// How long a connection may stay quiet (no request coming, none being answered) before
    /// it is closed, in milliseconds: idle keep-alive connections, and clients too slow to
    /// finish sending a request (default 30000).
    #[arg(long, env = "KEYCARD_IDLE_TIMEOUT_MS")]
    pub idle_timeout_ms: Option<u64>,
    /// Log format on standard error: text for people, json (one object per line) for collectors.
    #[arg(long, env = "KEYCARD_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

/// Structured logs on standard error; the level comes from KEYCARD_LOG (default `info`, e.g.
/// `debug` for one line per request). Nothing logged carries a secret or a signature.
fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEYCARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = if format == "json" {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

impl ServeArgs {
    pub fn config(&self) -> Result<ServerConfig> {
        let mut config = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                toml::from_str(&text).with_context(|| {
                    format!("{} is not a valid keycard server config", path.display())
                })?
            }
            None => ServerConfig::default(),
        };
        if !self.domains.is_empty() {
            config.domains.clone_from(&self.domains);
        }
        if let Some(scheme) = &self.public_scheme {
            config.public_scheme.clone_from(scheme);
        }
        if !self.trusted_proxies.is_empty() {
            config.trusted_proxies.clone_from(&self.trusted_proxies);
        }
        if let Some(window) = self.timestamp_window {
            config.timestamp_window = window;
        }
        config.allow_legacy_sha1 |= self.allow_legacy_sha1;
        if let Some(url) = self.redis_url.as_deref().filter(|url| !url.is_empty()) {
            config.redis_url = Some(keycard_server::config::RedisUrl::new(url));
        }
        if let Some(lease) = self.slot_lease_ms {
            config.slot_lease_ms = lease;
        }
        if let Some(resync) = self.resync_ms {
            config.resync_ms = resync;
        }
        if let Some(grace) = self.directory_grace_secs {
            config.directory_grace_secs = grace;
        }
        if let Some(idle) = self.idle_timeout_ms {
            config.idle_timeout_ms = idle;
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            config.tls = Some(keycard_server::tls::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            });
        }
        // One check of the result, whichever way each value came.
        config.validate()?;
        Ok(config)
    }
}

pub fn run(args: &ServeArgs, store_args: &StoreArgs) -> Result<()> {
    let config = args.config()?;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    init_logging(&args.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let store = store_args.open().await?;
        // Request ids unique across the processes that share this audit trail.
        match store.next_process_number().await {
            Ok(number) => {
                keycard_server::request_id::set_process_number(number.unsigned_abs());
            }
            Err(error) => tracing::warn!(
                %error,
                "no process number from the directory; request ids get a random prefix"
            ),
        }
        let backend = store.backend();
        let shared = if config.redis_url.is_some() {
            "redis"
        } else {
            "memory"
        };
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let server =
            keycard_server::start(config, store, listener, keycard_server::system_clock())?;
        eprintln!(
            "keycard serving on {scheme}://{} (Ctrl-C to stop)",
            server.addr
        );
        tracing::info!(addr = %server.addr, backend = ?backend, shared = shared, "serving");
        shutdown_signal().await;
        eprintln!("stopping: finishing requests and writing the login audit trail");
        server.stop().await
    })
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let Ok(mut terminate) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            let _ = interrupt.await;
            return;
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
