//! The token endpoints on `/rest/*`: tokeninfo, revoketoken (signed by the token it revokes)
//! and issuetoken (NLAuth user credentials).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use keycard_core::{AccountId, Feature, IntegrationState, LoginRecord, RuleError, SetupPermission};
use keycard_oauth1::NlAuthHeader;
use keycard_store::tokens::{Creator, NewToken};
use serde_json::json;

use super::{Incoming, Refusal, audit_outcome, json_bytes_response, json_response};
use crate::AppState;
use crate::pipeline::{Need, authenticate};
use crate::respond::{ClientError, Surface, error_response, with_request_id};

pub async fn tokeninfo(state: &AppState, incoming: &Incoming) -> Response {
    let principal = match authenticate(state, &incoming.facts(Surface::Token), &Need::Login).await {
        Ok(principal) => principal,
        Err(response) => return response,
    };
    let (entry, account, t) = (&principal.integration, &principal.account, &principal.token);
    let body = t.answer(entry, account, || {
        let integration = &entry.integration;
        TokenInfo {
            application_id: &integration.application_id,
            company_id: account.id.as_str(),
            company_name: &account.name,
            entity_email: &t.user.email,
            entity_id: t.user.id,
            entity_name: &t.user.name,
            integration_name: &integration.name,
            role_id: t.role.id,
            role_name: &t.role.name,
            token_name: &t.token.name,
        }
        .to_json()
    });
    json_bytes_response(body, &principal.request_id)
}

/// tokeninfo's answer, written straight from the cached entries once per token (it is the
/// busiest answer) and kept with the token's entry ([`crate::cache::TokenEntry::answer`]).
/// Fields in alphabetical order, as NetSuite's clients have seen them from keycard.
#[cfg_attr(test, derive(serde::Serialize))]
#[cfg_attr(test, serde(rename_all = "camelCase"))]
struct TokenInfo<'a> {
    application_id: &'a str,
    company_id: &'a str,
    company_name: &'a str,
    entity_email: &'a str,
    entity_id: i64,
    entity_name: &'a str,
    integration_name: &'a str,
    role_id: i64,
    role_name: &'a str,
    token_name: &'a str,
}

impl TokenInfo<'_> {
    /// The JSON, byte for byte what `serde_json` writes for the struct (a test holds it to
    /// that). `serde_json` escapes the field names on every call and checks each byte of the
    /// values through a table: about 3,000 instructions a request (callgrind). Here the names
    /// are literals and a value is copied whole unless it holds a byte JSON must escape.
    ///
    /// The buffer is exactly as long as the JSON when no value needs escaping (names rarely
    /// do): `Bytes` then takes it as it is, where a buffer with room to spare cost an
    /// allocation more for `Bytes`' shared header.
    fn to_json(&self) -> Vec<u8> {
        let (mut entity_id, mut role_id) = (itoa::Buffer::new(), itoa::Buffer::new());
        // Each field: its name with the separator before it, its value, whether it is a string.
        let fields: [(&str, &str, bool); 10] = [
            (r#"{"applicationId":"#, self.application_id, true),
            (r#","companyId":"#, self.company_id, true),
            (r#","companyName":"#, self.company_name, true),
            (r#","entityEmail":"#, self.entity_email, true),
            (r#","entityId":"#, entity_id.format(self.entity_id), false),
            (r#","entityName":"#, self.entity_name, true),
            (r#","integrationName":"#, self.integration_name, true),
            (r#","roleId":"#, role_id.format(self.role_id), false),
            (r#","roleName":"#, self.role_name, true),
            (r#","tokenName":"#, self.token_name, true),
        ];
        let plain = !fields
            .iter()
            .any(|&(_, value, string)| string && needs_escape(value.as_bytes()));
        let len = fields
            .iter()
            .map(|&(name, value, string)| name.len() + value.len() + 2 * usize::from(string))
            .sum::<usize>()
            + 1;
        let mut out = Vec::with_capacity(if plain { len } else { 2 * len });
        for (name, value, string) in fields {
            out.extend_from_slice(name.as_bytes());
            if string && !plain {
                write_json_string(&mut out, value);
            } else if string {
                out.push(b'"');
                out.extend_from_slice(value.as_bytes());
                out.push(b'"');
            } else {
                out.extend_from_slice(value.as_bytes());
            }
        }
        out.push(b'}');
        out
    }
}

/// Whether `value` holds a byte a JSON string must escape: a control byte, `"` or `\\`. Eight
/// bytes at a time, with the word tricks for "a byte below n" and "a byte equal to b": the
/// values are short (a name, an email), where a vectorized byte loop spent most of its time
/// getting in and out (0.46% of the server's CPU at max, for ten values a request).
fn needs_escape(value: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    // Some byte of `x` is below `n` (n at most 128): its high bit survives, and a borrow only
    // ever starts at such a byte, so there are no false answers.
    let has_below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH != 0;
    let has_byte = |x: u64, b: u8| has_below(x ^ (ONES * u64::from(b)), 1);
    let mut words = value.chunks_exact(8);
    for word in &mut words {
        let x = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
        if has_below(x, 0x20) | has_byte(x, b'"') | has_byte(x, b'\\') {
            return true;
        }
    }
    words
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// `value` as a JSON string. Names rarely hold a quote, a backslash or a control character;
/// when one does, `serde_json` escapes it.
fn write_json_string(out: &mut Vec<u8>, value: &str) {
    if !needs_escape(value.as_bytes()) {
        out.push(b'"');
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
    } else if serde_json::to_writer(&mut *out, value).is_err() {
        // Writing a string into a Vec cannot fail.
        out.extend_from_slice(b"\"\"");
    }
}

pub async fn revoketoken(state: &AppState, incoming: &Incoming) -> Response {
    let principal = match authenticate(state, &incoming.facts(Surface::Token), &Need::Login).await {
        Ok(principal) => principal,
        Err(response) => return response,
    };
    // Only the token itself can be revoked this way (users revoke their own tokens).
    if let Some(named) = incoming.query_param("token") {
        if *named != *principal.token.token.token_id {
            return error_response(
                Surface::Token,
                ClientError::BadRequest(
                    "The token parameter must name the token that signs the request.",
                ),
                None,
                &principal.request_id,
            );
        }
    }
    let actor = format!("token:{}", principal.token.token.name);
    match state
        .store
        .revoke_token(
            &actor,
            &principal.account.id,
            &principal.token.token.id.to_string(),
        )
        .await
    {
        Ok(_) => json_response(&json!({ "revoked": true }), &principal.request_id),
        Err(error) => {
            tracing::error!(%error, "cannot revoke a token");
            error_response(
                Surface::Token,
                ClientError::Unavailable,
                None,
                &principal.request_id,
            )
        }
    }
}

/// `issuetoken`: NLAuth email + password + role (+ OTP), for an integration that allows the
/// IssueToken endpoint and user credentials; returns a new token once.
pub async fn issuetoken(state: &AppState, incoming: &Incoming) -> Response {
    let request_id = incoming.request_id;
    let mut record = incoming.login_record(state, Surface::Token);
    let outcome = issue(state, incoming, &mut record).await;
    if !audit_outcome(state, record, &outcome).await {
        return error_response(Surface::Token, ClientError::Unavailable, None, &request_id);
    }
    match outcome {
        Ok(body) => with_request_id(
            (StatusCode::OK, axum::Json(body)).into_response(),
            &request_id,
        ),
        Err((error, _, _)) => error_response(Surface::Token, error, None, &request_id),
    }
}

// issuetoken's checks, in NetSuite's order: one list of steps.
#[allow(clippy::too_many_lines)]
async fn issue(
    state: &AppState,
    incoming: &Incoming,
    record: &mut LoginRecord,
) -> Result<serde_json::Value, Refusal> {
    let invalid = |detail: &'static str, problem: &str| {
        (
            ClientError::InvalidLogin,
            detail,
            json!({ "problem": problem }),
        )
    };
    let authorization = incoming
        .headers
        .get(axum::http::header::AUTHORIZATION)
        // Any UTF-8, as the pipeline reads headers: an email or password need not be ASCII.
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
        .ok_or_else(|| {
            invalid(
                "MissingRequiredParameter",
                "no Authorization header (issuetoken needs NLAuth)",
            )
        })?;
    let nlauth = NlAuthHeader::parse(authorization)
        .map_err(|e| invalid("MissingRequiredParameter", &e.to_string()))?;
    let account_id = nlauth
        .account
        .as_deref()
        .ok_or_else(|| invalid("MissingRequiredParameter", "nlauth_account is required"))
        .and_then(|a| {
            AccountId::parse(a)
                .map_err(|_| invalid("InvalidAccount", "nlauth_account is not an account id"))
        })?;
    record.account = Some(account_id.as_str().into());
    let account = state
        .cache
        .account(&account_id)
        .await
        .map_err(|error| directory_unavailable(&error))?
        .ok_or_else(|| invalid("InvalidAccount", "no such account"))?;
    if !account.has(Feature::TokenBasedAuthentication) {
        return Err(invalid(
            "FeatureDisabled",
            "Token-Based Authentication is not enabled",
        ));
    }
    record.user = Some(nlauth.email.as_str().into());
    let user = state
        .store
        .check_password(&account.id, &nlauth.email, &nlauth.password)
        .await
        .map_err(|error| directory_unavailable(&error))?
        .ok_or_else(|| invalid("InvalidCredentials", "unknown email or wrong password"))?;
    let role_key = nlauth
        .role
        .clone()
        .ok_or_else(|| invalid("MissingRequiredParameter", "nlauth_role is required"))?;
    let role = state
        .store
        .role(&account.id, &role_key)
        .await
        .map_err(|error| {
            if error.is_server_side() {
                directory_unavailable(&error)
            } else {
                invalid("EntityOrRoleDisabled", "no such role")
            }
        })?;
    record.role = Some(role.name.as_str().into());
    if role.two_factor_required && nlauth.otp.is_none() {
        return Err(invalid(
            "TwoFactorRequired",
            "the role requires two-factor authentication: send nlauth_otp",
        ));
    }
    if role.two_factor_required {
        return Err(invalid(
            "TwoFactorFailed",
            "this server has no TOTP secret enrolled for the user",
        ));
    }
    if !role.has(SetupPermission::UserAccessTokens) {
        return Err((
            ClientError::Forbidden,
            "InsufficientPermission",
            json!({ "problem": "the role lacks User Access Tokens" }),
        ));
    }
    let consumer_key = incoming.query_param("consumerKey").ok_or_else(|| {
        invalid(
            "MissingRequiredParameter",
            "the consumerKey query parameter is required",
        )
    })?;
    let integration = state
        .cache
        .integration(&consumer_key)
        .await
        .map_err(|error| directory_unavailable(&error))?
        .filter(|i| i.integration.account == account.id)
        .ok_or_else(|| {
            invalid(
                "consumer_key_unknown",
                "no integration has this consumer key",
            )
        })?;
    record.integration = Some(integration.integration.name.as_str().into());
    if integration.integration.state != IntegrationState::Enabled {
        return Err(invalid(
            "consumer_key_refused",
            "the integration is not enabled",
        ));
    }
    if !integration.integration.flags.tba_issue_token_endpoint
        || !integration.integration.flags.user_credentials
    {
        return Err(invalid(
            "consumer_key_refused",
            "the integration must allow TBA: IssueToken Endpoint and User Credentials",
        ));
    }
    let creator = Creator::User {
        user: user.id.to_string(),
        role: role.id.to_string(),
    };
    let new = NewToken {
        integration: integration.integration.id.to_string(),
        user: user.id.to_string(),
        role: role.id.to_string(),
        name: incoming.query_param("name"),
        expires_at: None,
    };
    let (token, credentials) = state
        .store
        .create_token(
            &format!("issuetoken:{}", user.email),
            &account.id,
            &creator,
            new,
        )
        .await
        .map_err(|error| match error {
            error if error.is_server_side() => directory_unavailable(&error),
            // The `name` query parameter: the client's mistake, not a login failure.
            keycard_store::StoreError::Rule(
                refused @ (RuleError::Empty { .. }
                | RuleError::TooLong { .. }
                | RuleError::ControlCharacter { .. }
                | RuleError::NumericName { .. }),
            ) => (
                ClientError::BadRequest("The token name is not valid."),
                "InvalidTokenName",
                json!({ "problem": refused.to_string() }),
            ),
            error => (
                ClientError::InvalidLogin,
                "InsufficientPermission",
                json!({ "problem": error.to_string() }),
            ),
        })?;
    record.token_name = Some(token.name.into());
    Ok(json!({ "tokenId": credentials.token_id, "tokenSecret": credentials.token_secret.expose() }))
}

/// A directory failure while issuing: 503, logged (never a login failure the client could
/// chase).
fn directory_unavailable(error: &keycard_store::StoreError) -> Refusal {
    tracing::error!(%error, "directory unavailable during issuetoken");
    (
        ClientError::Unavailable,
        "DirectoryUnavailable",
        json!({ "problem": "the directory could not be read or written" }),
    )
}

#[cfg(test)]
mod tests {
    use super::TokenInfo;

    #[test]
    fn tokeninfo_json_is_what_serde_json_writes() {
        let awkward = [
            "Acme",
            "",
            "quote \" and backslash \\",
            "tab\tnew line\ncontrol \u{1}\u{1f}",
            "unicode é ß 東京 \u{2028} 🙂",
            "slash / and < > &",
        ];
        for (i, value) in awkward.iter().enumerate() {
            let info = TokenInfo {
                application_id: value,
                company_id: "1234567_SB1",
                company_name: value,
                entity_email: "ap@acme.example",
                entity_id: -7 - i64::try_from(i).unwrap_or(0),
                entity_name: value,
                integration_name: "Order sync",
                role_id: i64::MAX,
                role_name: value,
                token_name: value,
            };
            let ours = info.to_json();
            // Sized exactly when nothing is escaped, so that `Bytes` takes it as it is.
            if !super::needs_escape(value.as_bytes()) {
                assert_eq!(ours.capacity(), ours.len(), "for {value:?}");
            }
            assert_eq!(
                String::from_utf8(ours).unwrap_or_default(),
                serde_json::to_string(&info).unwrap_or_default(),
                "for {value:?}"
            );
        }
    }

    /// The word-wise check against the byte-wise definition: every byte value at every place
    /// of values up to 20 bytes long, among bytes of four kinds (letters, high bytes as in
    /// UTF-8, the first byte allowed, the last ASCII one).
    #[test]
    fn escape_check_matches_the_definition() {
        for filler in [b'a', 0xFF, 0x20, 0x7F] {
            for len in 1..=20 {
                for at in 0..len {
                    for byte in 0..=255u8 {
                        let mut value = vec![filler; len];
                        value[at] = byte;
                        let expected = byte < 0x20 || byte == b'"' || byte == b'\\';
                        assert_eq!(super::needs_escape(&value), expected, "{value:?}");
                    }
                }
            }
            assert!(!super::needs_escape(&[filler; 0]));
        }
    }
}
