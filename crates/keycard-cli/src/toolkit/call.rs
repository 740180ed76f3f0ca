//! `keycard call [--auth-id ID] METHOD PATH [--data JSON|@file] [--query k=v]… [--form k=v]…`:
//! one signed request with a saved profile; the answer's JSON pretty-printed on stdout, the
//! status and request id on stderr; a non-2xx answer exits non-zero with NetSuite's code.

use anyhow::{Context as _, Result, bail};
use clap::Args;
use keycard_client::{Call, RetryPolicy};

use super::profile::ProfileStore;
use super::{AuthId, ConfigDir, client_with_retry, explain};

#[derive(Args, Debug)]
pub struct CallArgs {
    #[command(flatten)]
    pub auth: AuthId,
    #[command(flatten)]
    pub config: ConfigDir,
    /// HTTP method: GET, POST, PUT, PATCH, DELETE.
    pub method: String,
    /// Path on the profile's server, e.g. /services/rest/record/v1/customer (or a full URL).
    pub path: String,
    /// A JSON body, or @FILE to read it from a file.
    #[arg(long, value_name = "JSON|@FILE")]
    pub data: Option<String>,
    /// A query parameter NAME=VALUE (repeatable); it is signed.
    #[arg(long = "query", value_name = "NAME=VALUE")]
    pub query: Vec<String>,
    /// A form field NAME=VALUE (repeatable); form fields are signed.
    #[arg(long = "form", value_name = "NAME=VALUE", conflicts_with = "data")]
    pub form: Vec<String>,
    /// Sign the JSON body too, with oauth_body_hash.
    #[arg(long, requires = "data")]
    pub body_hash: bool,
    /// Attempts in all when the account's concurrency limit is full (1 = no retries).
    #[arg(long, default_value_t = 5)]
    pub max_attempts: u32,
}

fn pair(text: &str, flag: &str) -> Result<(String, String)> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => bail!("{flag} {text:?} must look like NAME=VALUE"),
    }
}

/// `--data`: a JSON document, or `@FILE` holding one.
pub fn read_data(data: &str) -> Result<serde_json::Value> {
    let text = match data.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the body from {path}"))?,
        None => data.to_owned(),
    };
    serde_json::from_str(&text)
        .context("--data must be JSON (or @FILE holding JSON); fix the document and try again")
}

pub async fn run(args: CallArgs) -> Result<()> {
    let store = ProfileStore::open(&args.config)?;
    let profile = store.resolve(args.auth.auth_id.as_deref())?;
    let credentials = store.credentials(&profile)?;
    let retry = RetryPolicy {
        max_attempts: args.max_attempts.max(1),
        ..RetryPolicy::default()
    };
    let client = client_with_retry(&profile, &credentials, retry)?;
    let mut call = Call::new(&args.method, &args.path);
    for q in &args.query {
        let (name, value) = pair(q, "--query")?;
        call = call.query(name, value);
    }
    for f in &args.form {
        let (name, value) = pair(f, "--form")?;
        call = call.form(name, value);
    }
    if let Some(data) = &args.data {
        call = call.json(&read_data(data)?).body_hash(args.body_hash);
    }
    let what = format!("{} {}", call.method(), args.path);
    match client.send(&call).await {
        Ok(answer) => {
            eprintln!(
                "HTTP {} · {} ms · request id {}",
                answer.status,
                answer.elapsed.as_millis(),
                answer.request_id.as_deref().unwrap_or("-")
            );
            if let Some(location) = answer.header("location") {
                eprintln!("Location: {location}");
            }
            match answer.json() {
                Ok(serde_json::Value::Null) => {}
                Ok(json) => println!("{json:#}"),
                Err(_) => println!("{}", answer.text()),
            }
            Ok(())
        }
        Err(error) => {
            if let Some(api) = error.api() {
                if let Ok(json) = serde_json::from_str::<serde_json::Value>(&api.body) {
                    println!("{json:#}");
                }
            }
            Err(explain(&error, &profile, &what))
        }
    }
}
