//! `keycard token rotate --auth-id ID`: a new token from `/rest/issuetoken` (the user's NLAuth
//! credentials), verified with a live tokeninfo call, saved to the profile, and only then the
//! old token revoked with `/rest/revoketoken`. Any failure before the switch leaves the profile
//! on the old token and revokes nothing.

use anyhow::{Result, anyhow};
use clap::Args;
use keycard_client::UserCredentials;
use zeroize::Zeroizing;

use super::profile::ProfileStore;
use super::{AuthId, ConfigDir, client_for, explain, fill_from_token_info};

#[derive(Args, Debug)]
pub struct RotateArgs {
    #[command(flatten)]
    pub auth: AuthId,
    #[command(flatten)]
    pub config: ConfigDir,
    /// The token's user (default: the one saved in the profile).
    #[arg(long)]
    pub email: Option<String>,
    /// The role for the new token, id or name (default: the profile's role).
    #[arg(long)]
    pub role: Option<String>,
    /// Read the user's password from the first line of stdin (else KEYCARD_USER_PASSWORD).
    #[arg(long)]
    pub password_stdin: bool,
    /// A one-time code, for roles that require two-factor authentication.
    #[arg(long, env = "KEYCARD_OTP", hide_env_values = true)]
    pub otp: Option<String>,
    /// The new token's name (default: chosen by the server).
    #[arg(long)]
    pub name: Option<String>,
}

/// The user's password (`--password-stdin` or `KEYCARD_USER_PASSWORD`), read as the admin
/// commands read it.
fn password(from_stdin: bool) -> Result<Zeroizing<String>> {
    crate::admin::user::password(from_stdin)?.ok_or_else(|| {
        anyhow!("issuetoken needs the user's password: pipe it with --password-stdin or set KEYCARD_USER_PASSWORD")
    })
}

pub async fn run(args: RotateArgs) -> Result<()> {
    let store = ProfileStore::open(&args.config)?;
    let profile = store.resolve(args.auth.auth_id.as_deref())?;
    // Before the server issues anything: a token that cannot be saved is a token lost.
    store.check_can_save(&profile.auth_id)?;
    let old = store.credentials(&profile)?;
    let old_hint = profile.token_hint.clone();
    let email = args
        .email
        .clone()
        .or_else(|| profile.email.clone())
        .ok_or_else(|| {
            anyhow!("the profile does not know the token's user: give it with --email")
        })?;
    let role = args
        .role
        .clone()
        .or_else(|| profile.role_id.clone())
        .or_else(|| profile.role.clone())
        .ok_or_else(|| {
            anyhow!("the profile does not know the token's role: give it with --role")
        })?;
    let user = UserCredentials {
        email,
        password: password(args.password_stdin)?,
        role,
        otp: args.otp.clone().map(Zeroizing::new),
    };
    let client = client_for(&profile, &old)?;
    let unchanged =
        format!("The profile still uses the old token {old_hint}, and nothing was revoked.");

    eprintln!(
        "Step 1 of 4: asking for a new token (GET /rest/issuetoken as {})…",
        user.email
    );
    let fresh = client
        .issue_token(&user, args.name.as_deref())
        .await
        .map_err(|e| {
            let mut error = explain(&e, &profile, "issuetoken");
            if e.api().is_some() {
                error = error.context(
                    "issuetoken needs the user's email, password and role, and an integration that allows \"TBA: IssueToken Endpoint\" and \"User Credentials\"",
                );
            }
            error.context(unchanged.clone())
        })?;
    let new_hint = super::profile::hint(fresh.token_id().unwrap_or_default());

    eprintln!(
        "Step 2 of 4: checking the new token {new_hint} with a live call (GET /rest/tokeninfo)…"
    );
    let info = client
        .with_credentials(fresh.clone())
        .token_info()
        .await
        .map_err(|e| {
            explain(&e, &profile, "the new token's check").context(format!(
                "{unchanged} The new token {new_hint} was not saved: ask the account owner to revoke it (`keycard token revoke`)."
            ))
        })?;

    eprintln!(
        "Step 3 of 4: switching profile `{}` to the new token…",
        profile.auth_id
    );
    let mut updated = profile.clone();
    fill_from_token_info(&mut updated, &info);
    if let Err(error) = store.save(updated, &fresh) {
        // Nobody holds the new token's secret now: revoke it rather than leave it valid.
        let fate = match client.with_credentials(fresh).revoke_token().await {
            Ok(()) => format!("the new token {new_hint} was revoked"),
            Err(e) => format!(
                "the new token {new_hint} could not be revoked ({e}): ask the account owner to revoke it (`keycard token revoke`)"
            ),
        };
        return Err(error.context(format!(
            "{unchanged} The profile could not be saved, so {fate}."
        )));
    }

    eprintln!("Step 4 of 4: revoking the old token {old_hint} (GET /rest/revoketoken)…");
    client.revoke_token().await.map_err(|e| {
        explain(&e, &profile, "revoking the old token").context(format!(
            "profile `{}` now uses the new token {new_hint}, but the old token {old_hint} is still valid: revoke it on the server (`keycard token revoke`)",
            profile.auth_id
        ))
    })?;
    eprintln!(
        "Rotated profile `{}`: now token {new_hint}; the old token {old_hint} is revoked.",
        profile.auth_id
    );
    Ok(())
}
