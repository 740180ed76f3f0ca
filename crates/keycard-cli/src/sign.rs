//! `keycard sign`: print the `Authorization` header for a request, optionally with the
//! normalized parameters and base string it was computed from. Secrets are read from flags or
//! `KEYCARD_*` variables and are never printed.

use anyhow::{Context as _, bail};
use clap::Args;
use keycard_oauth1::client::{ClientRequest, Credentials, SignOptions, sign};
use keycard_oauth1::encode::encode_form;
use keycard_oauth1::{Rules, SignatureMethod};

use crate::nonce::{fresh_nonce, unix_now};

#[derive(Args)]
pub struct SignArgs {
    /// HTTP method (GET, POST, PUT, PATCH, DELETE, …).
    method: String,
    /// The absolute URL, query included, exactly as the request will send it.
    url: String,
    #[arg(long, env = "KEYCARD_CONSUMER_KEY", hide_env_values = true)]
    consumer_key: String,
    #[arg(long, env = "KEYCARD_CONSUMER_SECRET", hide_env_values = true)]
    consumer_secret: String,
    /// Token id; omit for the request-token step of the three-step flow. Needs
    /// --token-secret: a token signed with an empty secret is never what was meant.
    #[arg(
        long,
        env = "KEYCARD_TOKEN_ID",
        hide_env_values = true,
        requires = "token_secret"
    )]
    token: Option<String>,
    #[arg(
        long,
        env = "KEYCARD_TOKEN_SECRET",
        hide_env_values = true,
        requires = "token"
    )]
    token_secret: Option<String>,
    /// The account id as realm, e.g. 1234567 or 1234567_SB1.
    #[arg(long, env = "KEYCARD_REALM")]
    realm: Option<String>,
    /// A form field `name=value` of an application/x-www-form-urlencoded body (repeatable);
    /// form fields are signed.
    #[arg(long = "form", value_name = "NAME=VALUE")]
    form: Vec<String>,
    /// A raw form-encoded body (`a=1&b=2`), signed as sent.
    #[arg(long, value_name = "BODY", conflicts_with = "form")]
    form_body: Option<String>,
    /// Add oauth_body_hash for this non-form body (e.g. a JSON document); the body itself is not signed.
    #[arg(long, value_name = "BODY", conflicts_with_all = ["form", "form_body"])]
    body_hash_of: Option<String>,
    /// oauth_callback (request-token step).
    #[arg(long)]
    callback: Option<String>,
    /// oauth_verifier (access-token step).
    #[arg(long)]
    verifier: Option<String>,
    /// Fixed nonce (default: 20 random alphanumerics).
    #[arg(long)]
    nonce: Option<String>,
    /// Fixed timestamp in Unix seconds (default: now).
    #[arg(long)]
    timestamp: Option<String>,
    #[arg(long, default_value = "HMAC-SHA256", value_parser = ["HMAC-SHA256", "HMAC-SHA1"])]
    signature_method: String,
    /// Leave oauth_version out of the header (it is optional).
    #[arg(long)]
    no_version: bool,
    /// Also print the normalized parameters and the signature base string.
    #[arg(long)]
    explain: bool,
}

pub fn run(args: &SignArgs) -> anyhow::Result<()> {
    let nonce = match &args.nonce {
        Some(nonce) => nonce.clone(),
        None => fresh_nonce()?,
    };
    let timestamp = match &args.timestamp {
        Some(timestamp) => timestamp.clone(),
        None => unix_now()?.to_string(),
    };
    let rules = Rules::default();
    keycard_oauth1::rules::parse_timestamp(&timestamp)
        .context("--timestamp must be a positive whole number of Unix seconds")?;
    rules
        .check_nonce(&nonce)
        .context("--nonce must be 6 to 64 characters (NetSuite refuses others)")?;
    let method = SignatureMethod::parse(&args.signature_method, true)?;

    let form_body = if args.form.is_empty() {
        args.form_body.clone()
    } else {
        let mut pairs = Vec::with_capacity(args.form.len());
        for field in &args.form {
            let Some((name, value)) = field.split_once('=') else {
                bail!("--form {field:?} must look like NAME=VALUE");
            };
            pairs.push((name, value));
        }
        Some(encode_form(&pairs))
    };

    let credentials = Credentials {
        consumer_key: &args.consumer_key,
        consumer_secret: &args.consumer_secret,
        token: args.token.as_deref(),
        token_secret: args.token_secret.as_deref().unwrap_or_default(),
    };
    let mut options = SignOptions::new(&nonce, &timestamp);
    options.realm = args.realm.as_deref();
    options.method = method;
    options.callback = args.callback.as_deref();
    options.verifier = args.verifier.as_deref();
    options.body_for_hash = args.body_hash_of.as_deref().map(str::as_bytes);
    options.include_version = !args.no_version;
    let request = ClientRequest {
        method: &args.method,
        url: &args.url,
        form_body: form_body.as_deref(),
    };
    let signed = sign(&request, &credentials, &options)
        .with_context(|| format!("cannot sign {} {}", args.method, args.url))?;

    if args.explain {
        let explanation = &signed.explanation;
        println!("base URI:    {}", explanation.base_uri);
        println!("parameters:");
        let width = explanation
            .parameters
            .iter()
            .map(|(name, _)| name.len())
            .max()
            .unwrap_or(0);
        for (name, value) in &explanation.parameters {
            println!("  {name:<width$} = {value}");
        }
        println!("base string: {}", explanation.base_string);
        if let Some(body) = &form_body {
            println!("form body:   {body}");
        }
        println!("Authorization: {}", signed.authorization);
    } else {
        println!("{}", signed.authorization);
    }
    Ok(())
}
