//! Account discovery, as `rest.netsuite.com` offers it: `/rest/datacenterurls?account=` (no
//! authentication) and `/rest/roles` (NLAuth email + password: the accounts and roles the user
//! can log in with, each with its data center URLs).

use axum::http::header;
use axum::response::Response;
use keycard_core::{Account, AccountId, AccountKind};
use keycard_oauth1::NlAuthHeader;
use serde_json::{Value, json};

use super::{Incoming, Refusal, audit_outcome, json_response};
use crate::AppState;
use crate::respond::{ClientError, Surface, error_response};
use crate::routing::host_without_port;

/// The account's hosts on this server: the configured domain the request came in on (else the
/// first one), the scheme and port the client used.
fn data_center_urls(state: &AppState, incoming: &Incoming, account: &AccountId) -> Value {
    let host = host_without_port(&incoming.authority).to_ascii_lowercase();
    let domain = state
        .config
        .domains
        .iter()
        .find(|d| host == **d || host.ends_with(&format!(".{d}")))
        .or_else(|| state.config.domains.first())
        .map_or("localhost", String::as_str);
    let port = incoming
        .authority
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()) && !port.is_empty())
        .map(|(_, port)| format!(":{port}"))
        .unwrap_or_default();
    let slug = account.host_slug();
    let scheme = &incoming.scheme;
    let url = |service: &str| format!("{scheme}://{slug}.{service}.{domain}{port}");
    json!({
        "restDomain": url("restlets.api"),
        "webservicesDomain": url("suitetalk.api"),
        "systemDomain": url("app"),
    })
}

pub async fn datacenterurls(state: &AppState, incoming: &Incoming) -> Response {
    let id = &incoming.request_id;
    // NetSuite's workaround for a "Service Unavailable" answer is `&c=`: accept either.
    let Some(named) = incoming
        .query_param("account")
        .or_else(|| incoming.query_param("c"))
    else {
        return error_response(
            Surface::Token,
            ClientError::BadRequest("The account parameter is required."),
            None,
            id,
        );
    };
    let Ok(account_id) = AccountId::parse(&named)
        .or_else(|_| AccountId::from_host_slug(&named.to_ascii_lowercase()))
    else {
        return error_response(
            Surface::Token,
            ClientError::BadRequest("The account parameter is not an account id."),
            None,
            id,
        );
    };
    match state.cache.account(&account_id).await {
        Ok(Some(account)) => json_response(&data_center_urls(state, incoming, &account.id), id),
        Ok(None) => error_response(
            Surface::Token,
            ClientError::BadRequest("No account with this id exists."),
            None,
            id,
        ),
        Err(_) => error_response(Surface::Token, ClientError::Unavailable, None, id),
    }
}

fn account_type(account: &Account) -> &'static str {
    match account.kind() {
        AccountKind::Production => "PRODUCTION",
        AccountKind::Sandbox { .. } => "SANDBOX",
        AccountKind::ReleasePreview => "BETA",
        AccountKind::TestDrive => "TESTDRIVE",
    }
}

pub async fn roles(state: &AppState, incoming: &Incoming) -> Response {
    let mut record = incoming.login_record(state, Surface::Token);
    let outcome = list_roles(state, incoming, &mut record).await;
    let id = incoming.request_id;
    if !audit_outcome(state, record, &outcome).await {
        return error_response(Surface::Token, ClientError::Unavailable, None, &id);
    }
    match outcome {
        Ok(roles) => json_response(&roles, &id),
        Err((error, _, _)) => error_response(Surface::Token, error, None, &id),
    }
}

async fn list_roles(
    state: &AppState,
    incoming: &Incoming,
    record: &mut keycard_core::LoginRecord,
) -> Result<Value, Refusal> {
    let invalid = |detail: &'static str, problem: &str| {
        (
            ClientError::InvalidLogin,
            detail,
            json!({ "problem": problem }),
        )
    };
    let unavailable = |_| (ClientError::Unavailable, "DirectoryUnavailable", json!({}));
    let nlauth = incoming
        .headers
        .get(header::AUTHORIZATION)
        // Any UTF-8, as the pipeline reads headers: an email or password need not be ASCII.
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
        .ok_or_else(|| {
            invalid(
                "MissingRequiredParameter",
                "no Authorization header (/rest/roles needs NLAuth)",
            )
        })
        .and_then(|value| {
            NlAuthHeader::parse(value)
                .map_err(|e| invalid("MissingRequiredParameter", &e.to_string()))
        })?;
    record.user = Some(nlauth.email.as_str().into());
    // With nlauth_account, that account only; without it, every account the user is in.
    let accounts = match nlauth.account.as_deref() {
        Some(named) => {
            let id = AccountId::parse(named)
                .map_err(|_| invalid("InvalidAccount", "nlauth_account is not an account id"))?;
            record.account = Some(id.as_str().into());
            vec![state.store.account(&id).await.map_err(|error| {
                if error.is_server_side() {
                    unavailable(error)
                } else {
                    invalid("InvalidAccount", "no such account")
                }
            })?]
        }
        None => state.store.accounts().await.map_err(unavailable)?,
    };
    let mut roles = Vec::new();
    for account in &accounts {
        let Some(user) = state
            .store
            .check_password(&account.id, &nlauth.email, &nlauth.password)
            .await
            .map_err(unavailable)?
        else {
            continue;
        };
        if !user.is_active() {
            continue;
        }
        let urls = data_center_urls(state, incoming, &account.id);
        for role_id in &user.roles {
            let role = state
                .store
                .role(&account.id, &role_id.to_string())
                .await
                .map_err(unavailable)?;
            roles.push(json!({
                "account": { "internalId": account.id, "name": account.name, "type": account_type(account) },
                "role": { "internalId": role.id, "name": role.name },
                "dataCenterURLs": urls,
            }));
        }
    }
    if roles.is_empty() {
        return Err(invalid(
            "InvalidCredentials",
            "unknown email, wrong password, or an inactive user",
        ));
    }
    Ok(Value::Array(roles))
}
