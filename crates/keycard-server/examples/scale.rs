//! Scale figures for docs/benchmarks.md (issue 5): memory per cached token with N tokens in the
//! directory, memory per nonce entry over a full ±window, and the time from a cold start to the
//! first verified request. Run with `bench/scale` (release build); see docs/benchmarks.md.
//!
//!   `scale DATA_DIR [--tokens N] [--nonces M]`
//!
//! `DATA_DIR` is created and filled with N tokens on the first run and reused afterwards (making a
//! million tokens through the store's API takes minutes). Memory is the process's resident set
//! (`/proc/self/statm`) before and after: what an operator sees, allocator overhead included.
#![allow(clippy::cast_precision_loss, clippy::too_many_lines)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use keycard_core::AccountId;
use keycard_oauth1::client::{ClientRequest, Credentials, SignOptions, sign};
use keycard_server::ServerConfig;
use keycard_server::cache::CredentialCache;
use keycard_server::shared::nonce::NonceStore;
use keycard_store::accounts::NewAccount;
use keycard_store::crypto::{KeyRing, MasterKey};
use keycard_store::tokens::{Creator, NewToken};
use keycard_store::{Location, Store};
use keycard_testkit::directory;
use serde::{Deserialize, Serialize};

const ACCOUNT: &str = "1234567";
const ACTOR: &str = "scale";

/// What the first run writes next to the directory, for the later runs.
#[derive(Serialize, Deserialize)]
struct Saved {
    master_key: String,
    tokens: usize,
    consumer_key: String,
    consumer_secret: String,
    token_id: String,
    token_secret: String,
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut dir = None;
    let (mut tokens, mut nonces) = (1_000_000usize, 10_000_000usize);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--tokens" => tokens = args.next().context("--tokens N")?.parse()?,
            "--nonces" => nonces = args.next().context("--nonces M")?.parse()?,
            other if dir.is_none() && !other.starts_with('-') => dir = Some(PathBuf::from(other)),
            other => bail!(
                "unexpected argument {other}; usage: scale DATA_DIR [--tokens N] [--nonces M]"
            ),
        }
    }
    let dir = dir.context("usage: scale DATA_DIR [--tokens N] [--nonces M]")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(&dir, tokens, nonces))
}

async fn run(dir: &Path, tokens: usize, nonces: usize) -> Result<()> {
    let saved_path = dir.join("scale.json");
    if !saved_path.exists() {
        populate(dir, tokens).await?;
        // Measure in a fresh process: memory freed by the population would be reused by the
        // cache and hide part of its size.
        let status = std::process::Command::new(std::env::current_exe()?)
            .args(std::env::args_os().skip(1))
            .status()?;
        std::process::exit(status.code().unwrap_or(1));
    }
    let saved: Saved = serde_json::from_str(&std::fs::read_to_string(&saved_path)?)?;
    if saved.tokens != tokens {
        bail!(
            "{} holds {} tokens, not {tokens}: use another directory",
            dir.display(),
            saved.tokens
        );
    }

    // Cold start: open the directory, start the server, answer one signed request.
    let started = Instant::now();
    let ring = KeyRing::parse(&saved.master_key)?;
    let store = Store::open(&Location::DataDir(dir.to_owned()), ring).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let server = keycard_server::start(
        ServerConfig::default(),
        store.clone(),
        listener,
        keycard_server::system_clock(),
    )?;
    let status = first_request(server.addr, &saved).await?;
    let cold_start = started.elapsed();
    if status != 200 {
        bail!("the first request after the cold start was answered {status}");
    }

    // Memory per cached token: every token of the directory through the credential cache.
    // The token ids come from a file, line by line: reading them from the database would free
    // more memory than the cache then takes, and the resident set would not show the cache.
    let ids: Vec<String> = std::io::BufRead::lines(std::io::BufReader::new(std::fs::File::open(
        dir.join("token-ids.txt"),
    )?))
    .collect::<Result<_, _>>()?;
    let cache = CredentialCache::new(&store, Duration::from_secs(3600));
    cache.until_caching().await;
    let integration = cache
        .integration(&saved.consumer_key)
        .await?
        .context("the integration is cached")?;
    let before = resident_bytes()?;
    let filling = Instant::now();
    for id in &ids {
        cache
            .token(&integration, id, false)
            .await?
            .context("every token loads")?;
    }
    let fill = filling.elapsed();
    let per_token = (resident_bytes()? - before) as f64 / ids.len() as f64;

    // Memory per nonce entry: `nonces` uses spread evenly over the whole ±300 s window, the
    // most the store ever holds at that rate.
    let window = 300;
    let now = 1_800_000_000;
    let store_of_nonces = NonceStore::new(window);
    let before = resident_bytes()?;
    let span = u64::try_from(2 * window)?;
    for i in 0..nonces as u64 {
        let timestamp = now - window + i64::try_from(i % span)?;
        let nonce = format!("{i:016x}");
        assert!(store_of_nonces.consume(&ids[0], &nonce, timestamp, now));
    }
    let per_nonce = (resident_bytes()? - before) as f64 / nonces as f64;

    let report = serde_json::json!({
        "tokens": ids.len(),
        "cold_start_ms": cold_start.as_secs_f64() * 1e3,
        "cache_fill_s": fill.as_secs_f64(),
        "bytes_per_cached_token": per_token,
        "nonce_entries": store_of_nonces.len(),
        "bytes_per_nonce_entry": per_nonce,
    });
    println!("{report}");
    drop(cache);
    server.stop().await?;
    Ok(())
}

async fn first_request(addr: std::net::SocketAddr, saved: &Saved) -> Result<u16> {
    let url = format!("http://{addr}/rest/tokeninfo");
    let nonce = format!("scale{:x}", Instant::now().elapsed().as_nanos());
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs()
        .to_string();
    let header = sign(
        &ClientRequest {
            method: "GET",
            url: &url,
            form_body: None,
        },
        &Credentials {
            consumer_key: &saved.consumer_key,
            consumer_secret: &saved.consumer_secret,
            token: Some(&saved.token_id),
            token_secret: &saved.token_secret,
        },
        &SignOptions {
            realm: Some(ACCOUNT),
            ..SignOptions::new(&nonce, &timestamp)
        },
    )?;
    let response = reqwest::Client::new()
        .get(&url)
        .header("Authorization", header.authorization)
        .send()
        .await?;
    Ok(response.status().as_u16())
}

/// Makes the directory: one account, the integration, role and user of
/// `keycard_testkit::directory`, and `tokens` tokens.
async fn populate(dir: &Path, tokens: usize) -> Result<()> {
    let master = MasterKey::generate()?;
    let ring = KeyRing::new(master);
    let master_key = ring.to_text().to_string();
    let store = Store::open(&Location::DataDir(dir.to_owned()), ring).await?;
    let account = AccountId::parse(ACCOUNT)?;
    let mut new_account = NewAccount::new(account.clone(), "Scale Co");
    new_account.concurrency_limit_override = Some(1000);
    store.create_account(ACTOR, new_account).await?;
    let consumer = directory::tba_integration(&store, ACTOR, &account).await?;
    let started = Instant::now();
    let mut first = None;
    let mut ids = std::io::BufWriter::new(std::fs::File::create(dir.join("token-ids.txt"))?);
    // Ten thousand tokens per transaction: one per token would take the better part of an hour.
    for chunk_start in (0..tokens).step_by(10_000) {
        let chunk: Vec<NewToken> = (chunk_start..tokens.min(chunk_start + 10_000))
            .map(|i| directory::new_token(Some(format!("scale-{i:07}"))))
            .collect();
        let made = store
            .create_tokens(ACTOR, &account, &Creator::Operator, chunk)
            .await?;
        for (_, credentials) in &made {
            std::io::Write::write_all(&mut ids, format!("{}\n", credentials.token_id).as_bytes())?;
        }
        if first.is_none() {
            first = made.into_iter().next().map(|(_, credentials)| credentials);
        }
        eprintln!(
            "{} tokens in {:.0?}",
            tokens.min(chunk_start + 10_000),
            started.elapsed()
        );
    }
    std::io::Write::flush(&mut ids)?;
    let first = first.context("at least one token")?;
    let saved = Saved {
        master_key,
        tokens,
        consumer_key: consumer.consumer_key,
        consumer_secret: consumer.consumer_secret.expose().to_owned(),
        token_id: first.token_id,
        token_secret: first.token_secret.expose().to_owned(),
    };
    std::fs::write(dir.join("scale.json"), serde_json::to_string(&saved)?)?;
    store.close().await;
    Ok(())
}

fn resident_bytes() -> Result<i64> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: i64 = statm
        .split_whitespace()
        .nth(1)
        .context("statm has a resident field")?
        .parse()?;
    Ok(pages * 4096)
}
