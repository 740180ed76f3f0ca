//! The integrator's toolkit: saved profiles by authentication ID, `login` (the three-step
//! flow with a local callback), `call`, `test-connection`, `diagnose` and `token rotate`. All
//! HTTP goes through the `keycard-client` SDK; every error says what to do next.

pub mod call;
pub mod connection;
pub mod diagnose;
pub mod login;
pub mod profile;
pub mod rotate;

use std::path::PathBuf;

use anyhow::{Result, anyhow};
use clap::Args;
use keycard_client::{Client, Credentials, Error, Realm, RetryPolicy};

use profile::Profile;

/// Where profiles live.
#[derive(Args, Debug, Clone)]
pub struct ConfigDir {
    /// Config directory for profiles. Default: $XDG_CONFIG_HOME/keycard or ~/.config/keycard.
    #[arg(long, env = "KEYCARD_CONFIG_DIR", global = true)]
    pub config_dir: Option<PathBuf>,
}

impl ConfigDir {
    pub fn path(&self) -> Result<PathBuf> {
        if let Some(dir) = &self.config_dir {
            return Ok(dir.clone());
        }
        if let Some(xdg) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
            return Ok(PathBuf::from(xdg).join("keycard"));
        }
        std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .map(|home| PathBuf::from(home).join(".config").join("keycard"))
            .ok_or_else(|| {
                anyhow!("neither XDG_CONFIG_HOME nor HOME is set: give --config-dir or KEYCARD_CONFIG_DIR")
            })
    }
}

/// Which profile a command uses.
#[derive(Args, Debug, Clone)]
pub struct AuthId {
    /// The profile's authentication ID (may be left out when only one profile is saved).
    #[arg(long, env = "KEYCARD_AUTH_ID")]
    pub auth_id: Option<String>,
}

/// A client for `profile`'s server and realm, showing concurrency retries on stderr.
pub fn client_for(profile: &Profile, credentials: &Credentials) -> Result<Client> {
    client_with_retry(profile, credentials, RetryPolicy::default())
}

pub fn client_with_retry(
    profile: &Profile,
    credentials: &Credentials,
    retry: RetryPolicy,
) -> Result<Client> {
    Client::builder(&profile.server, credentials.clone())
        .realm(Realm::new(&profile.account))
        .retry(retry)
        .on_retry(|n| {
            eprintln!(
                "The server is at its concurrency limit ({}); retrying in {:.1} s (attempt {} of {})…",
                n.error.code.as_deref().unwrap_or("HTTP 429"),
                n.delay.as_secs_f64(),
                n.attempt + 1,
                n.max_attempts
            );
        })
        .build()
        .map_err(|e| {
            anyhow!(
                "{e}; fix the profile's server with `keycard login --auth-id {}` or `keycard profile add`",
                profile.auth_id
            )
        })
}

/// Copies role, role id and user from a tokeninfo answer into `profile`.
pub fn fill_from_token_info(profile: &mut Profile, info: &serde_json::Value) {
    let text = |name: &str| match &info[name] {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    profile.role = text("roleName").or(profile.role.take());
    profile.role_id = text("roleId").or(profile.role_id.take());
    profile.email = text("entityEmail").or(profile.email.take());
}

/// An SDK error in plain words, with NetSuite's code, the request id and the next step.
pub fn explain(error: &Error, profile: &Profile, what: &str) -> anyhow::Error {
    let id = &profile.auth_id;
    match error {
        Error::Api(api) => {
            let next = if api.is_invalid_login() {
                let audit = api.request_id.as_deref().map_or_else(String::new, |r| {
                    format!("; the account owner can read the exact reason with `keycard audit show {r}`")
                });
                format!(
                    "the server refused the login: run `keycard diagnose --auth-id {id}` to check the realm, clock and signed URL{audit}"
                )
            } else if api.is_insufficient_permission() {
                format!(
                    "the token works but its role ({}) may not do this: run `keycard diagnose --auth-id {id} METHOD PATH`, or ask the account owner to grant the permission (`keycard role grant ROLE --record RECORD=LEVEL`)",
                    profile.role.as_deref().unwrap_or("unknown")
                )
            } else if api.is_concurrency_limit() {
                "the account's concurrency limit stayed full: try again later, or ask the account owner to raise the integration's concurrency limit".to_owned()
            } else if (300..400).contains(&api.status) {
                // Not followed: a signature covers the URL it was made for.
                format!(
                    "the server answered with a redirect, which is not followed (a signature is for one URL): the profile's server `{}` is probably not the API host; use the account's REST or RESTlet host (`keycard profile show {id}`)",
                    profile.server
                )
            } else if api.status == 404 {
                "check the path and the record id".to_owned()
            } else if api.status == 400 {
                "check the method, path, query and body".to_owned()
            } else {
                "if it persists, quote the request id to the server's operator".to_owned()
            };
            anyhow!("{what} failed: {api}. Next: {next}.")
        }
        Error::Transport { .. } => anyhow!(
            "{what} failed: {error}. Next: check that the server is running and that the profile's server `{}` is right (`keycard profile show {id}`).",
            profile.server
        ),
        other => anyhow!("{what} failed: {other}."),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn answered(status: u16) -> String {
        let api = keycard_client::ApiError {
            status,
            code: None,
            message: None,
            request_id: None,
            date: None,
            attempts: 1,
            body: String::new(),
        };
        let profile = Profile::new("demo", "https://www.netsuite.com", "1234567");
        explain(&Error::Api(Box::new(api)), &profile, "the call").to_string()
    }

    /// A redirect is not followed: the advice is the host, not the operator (before, a 3xx
    /// got "quote the request id to the server's operator").
    #[test]
    fn a_redirect_points_at_the_profiles_server() {
        let advice = answered(302);
        assert!(advice.contains("redirect"), "{advice}");
        assert!(advice.contains("`https://www.netsuite.com`"), "{advice}");
        assert!(!answered(500).contains("redirect"));
    }
}
