//! The three-step authorization flow: `/rest/requesttoken` → the authorize page
//! `/app/login/secure/authorizetoken.nl` (log in, choose a role, Allow or Deny; redirect to the
//! callback with `oauth_token`, `oauth_verifier`, `company`, `role`, `entity`, `state`) →
//! `/rest/accesstoken`, which turns the verifier into an ordinary access token, once.

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use keycard_core::{Role, SetupPermission, User};
use keycard_oauth1::encode::{encode_form, percent_decode_bytes};

use super::Incoming;
use crate::AppState;
use crate::flow::{Pending, Stage};
use crate::pipeline::{authenticate_access_token, authenticate_request_token};
use crate::respond::{ClientError, Surface, error_response, with_request_id};

const PAGE: &str = "/app/login/secure/authorizetoken.nl";

fn form_encoded(pairs: &[(&str, &str)], request_id: &str) -> Response {
    let response = (
        [(header::CONTENT_TYPE, "application/x-www-form-urlencoded")],
        encode_form(pairs),
    )
        .into_response();
    with_request_id(response, request_id)
}

const UNAVAILABLE: &str = "The service is temporarily unavailable. Try again in a moment.";

fn random(bytes: usize) -> Option<String> {
    keycard_store::crypto::random_hex(bytes).ok()
}

pub async fn requesttoken(state: &AppState, incoming: &Incoming) -> Response {
    if incoming.method != Method::POST {
        return method_not_allowed("POST", &incoming.request_id);
    }
    let grant = match authenticate_request_token(state, &incoming.facts(Surface::Token)).await {
        Ok(grant) => grant,
        Err(response) => return response,
    };
    form_encoded(
        &[
            ("oauth_token", grant.token.as_str()),
            ("oauth_token_secret", grant.secret.expose()),
            ("oauth_callback_confirmed", "true"),
        ],
        &grant.request_id,
    )
}

pub async fn accesstoken(state: &AppState, incoming: &Incoming) -> Response {
    if incoming.method != Method::POST {
        return method_not_allowed("POST", &incoming.request_id);
    }
    let grant = match authenticate_access_token(state, &incoming.facts(Surface::Token)).await {
        Ok(grant) => grant,
        Err(response) => return response,
    };
    form_encoded(
        &[
            ("oauth_token", grant.credentials.token_id.as_str()),
            (
                "oauth_token_secret",
                grant.credentials.token_secret.expose(),
            ),
        ],
        &grant.request_id,
    )
}

fn method_not_allowed(allow: &'static str, request_id: &str) -> Response {
    error_response(
        Surface::Token,
        ClientError::MethodNotAllowed { allow },
        None,
        request_id,
    )
}

/// The decoded fields of an `application/x-www-form-urlencoded` body.
fn form_fields(body: &[u8]) -> HashMap<String, String> {
    body.split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .filter_map(|pair| {
            let mut parts = pair.splitn(2, |b| *b == b'=');
            let name = percent_decode_bytes(parts.next()?, true).ok()?;
            let value = percent_decode_bytes(parts.next().unwrap_or_default(), true).ok()?;
            Some((
                String::from_utf8_lossy(&name).into_owned(),
                String::from_utf8_lossy(&value).into_owned(),
            ))
        })
        .collect()
}

fn page(status: StatusCode, title: &str, body: &str, request_id: &str) -> Response {
    let html = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · keycard</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#1d2733}}
label{{display:block;margin:.8rem 0 .2rem}}input,select{{width:100%;padding:.45rem;box-sizing:border-box}}
button{{margin:1rem .5rem 0 0;padding:.5rem 1.4rem}}.error{{color:#a31515}}.muted{{color:#5b6675}}</style>
</head><body><h1>{title}</h1>
{body}
</body></html>"#,
        title = super::escape_markup(title)
    );
    let mut response = (status, Html(html)).into_response();
    // The page must not be framed (clickjacking on Allow) or cached (it carries a session).
    let headers = response.headers_mut();
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; form-action 'self' http: https:; frame-ancestors 'none'"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    with_request_id(response, request_id)
}

fn problem_page(message: &str, request_id: &str) -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "Authorization failed",
        &format!(
            "<p class=\"error\">{}</p><p class=\"muted\">Start again from your application. Request id {}.</p>",
            super::escape_markup(message),
            super::escape_markup(request_id)
        ),
        request_id,
    )
}

/// `state` is optional, at most 512 characters, `[A-Za-z0-9]` only.
fn valid_state(value: &str) -> bool {
    value.len() <= 512 && value.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        super::escape_markup(name),
        super::escape_markup(value)
    )
}

fn login_form(
    integration: &str,
    account: &str,
    token: &str,
    flow_state: &str,
    error: Option<&str>,
) -> String {
    let mut body = format!(
        "<p><strong>{}</strong> asks for access to account <strong>{}</strong>. Log in to continue.</p>",
        super::escape_markup(integration),
        super::escape_markup(account)
    );
    if let Some(error) = error {
        let _ = write!(
            body,
            "<p class=\"error\" role=\"alert\">{}</p>",
            super::escape_markup(error)
        );
    }
    let _ = write!(
        body,
        "<form method=\"post\" action=\"{PAGE}\">{}{}\
<label for=\"email\">Email</label><input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required>\
<label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
<button type=\"submit\" id=\"login\">Log In</button></form>",
        hidden("oauth_token", token),
        hidden("state", flow_state)
    );
    body
}

fn consent_form(
    integration: &str,
    account: &str,
    user: &User,
    roles: &[Role],
    token: &str,
    flow_state: &str,
    session: &str,
) -> String {
    let mut options = String::new();
    for role in roles {
        let _ = write!(
            options,
            "<option value=\"{}\">{}</option>",
            role.id,
            super::escape_markup(&role.name)
        );
    }
    format!(
        "<p><strong>{}</strong> is requesting access to account <strong>{}</strong> as <strong>{}</strong>.</p>\
<p class=\"muted\">Allow creates an access token for this application with the role you choose. You can revoke it at any time.</p>\
<form method=\"post\" action=\"{PAGE}\">{}{}{}\
<label for=\"role\">Role</label><select id=\"role\" name=\"role\">{options}</select>\
<button type=\"submit\" name=\"action\" value=\"allow\" id=\"allow\">Allow</button>\
<button type=\"submit\" name=\"action\" value=\"deny\" id=\"deny\">Deny</button></form>",
        super::escape_markup(integration),
        super::escape_markup(account),
        super::escape_markup(&user.email),
        hidden("oauth_token", token),
        hidden("state", flow_state),
        hidden("session", session),
    )
}

/// The callback with the flow's parameters appended (`&` when it already has a query).
fn callback_url(callback: &str, params: &[(&str, &str)]) -> String {
    let separator = if callback.contains('?') { '&' } else { '?' };
    format!("{callback}{separator}{}", encode_form(params))
}

fn redirect(location: &str, request_id: &str) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    match HeaderValue::from_str(location) {
        Ok(value) => {
            response.headers_mut().insert(header::LOCATION, value);
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            with_request_id(response, request_id)
        }
        Err(_) => problem_page("The callback URL cannot be used.", request_id),
    }
}

/// The roles the user holds that may log in with access tokens.
async fn token_roles(state: &AppState, pending: &Pending, user: &User) -> Vec<Role> {
    let mut roles = Vec::new();
    for id in &user.roles {
        if let Ok(role) = state.store.role(&pending.account, &id.to_string()).await {
            if role.has(SetupPermission::LogInUsingAccessTokens) {
                roles.push(role);
            }
        }
    }
    roles
}

pub async fn page_handler(state: &AppState, incoming: &Incoming) -> Response {
    let id = incoming.request_id;
    if !matches!(incoming.method, Method::GET | Method::HEAD | Method::POST) {
        return method_not_allowed("GET, HEAD, POST", &id);
    }
    let fields = if incoming.method == Method::POST {
        form_fields(&incoming.body)
    } else {
        HashMap::new()
    };
    let field = |name: &str| {
        fields
            .get(name)
            .cloned()
            .or_else(|| incoming.query_param(name))
            .unwrap_or_default()
    };
    let (token, flow_state) = (field("oauth_token"), field("state"));
    if !valid_state(&flow_state) {
        return problem_page(
            "The state parameter must be at most 512 letters and digits.",
            &id,
        );
    }
    let now = state.now();
    let pending = match state.flows.get(&token, now).await {
        Ok(Some(pending)) => pending,
        Ok(None) => {
            return problem_page("This authorization request is unknown or has expired.", &id);
        }
        Err(_) => return problem_page(UNAVAILABLE, &id),
    };
    let Ok(Some(integration)) = state.cache.integration(&pending.consumer_key).await else {
        return problem_page("The application is no longer available.", &id);
    };
    let integration_name = integration.integration.name.clone();
    let account_label = format!("{} ({})", integration.account.name, pending.account);
    // GET and HEAD show the login form (the method was checked first).
    match (
        incoming.method == Method::POST,
        fields.contains_key("action"),
    ) {
        (false, _) => page(
            StatusCode::OK,
            "Log in",
            &login_form(&integration_name, &account_label, &token, &flow_state, None),
            &id,
        ),
        (true, false) => {
            login(
                state,
                incoming,
                &pending,
                (&token, &flow_state),
                (&field("email"), &field("password")),
                (&integration_name, &account_label),
            )
            .await
        }
        (true, true) => {
            consent(
                state,
                &pending,
                (&token, &flow_state),
                (&field("session"), &field("role"), &field("action")),
                &id,
                (&integration_name, &account_label),
            )
            .await
        }
    }
}

async fn login(
    state: &AppState,
    incoming: &Incoming,
    pending: &Pending,
    (token, flow_state): (&str, &str),
    (email, password): (&str, &str),
    (integration, account): (&str, &str),
) -> Response {
    let id = &incoming.request_id;
    let mut record = incoming.login_record(state, Surface::Token);
    record.surface = "app".into();
    record.account = Some(pending.account.as_str().into());
    record.integration = Some(integration.into());
    record.user = Some(email.into());
    let user = state
        .store
        .check_password(&pending.account, email, password)
        .await
        .ok()
        .flatten()
        .filter(User::is_active);
    let session = random(32);
    let response = if let (Some(user), Some(session)) = (&user, &session) {
        let roles = token_roles(state, pending, user).await;
        record.status = "Success".into();
        let next = Stage::LoggedIn {
            user_id: user.id,
            session: keycard_core::Secret::new(session.clone()),
        };
        // From the start, or again after going back to the login form.
        let mut moved = state
            .flows
            .advance(token, &Stage::Issued, next.clone(), state.now())
            .await;
        if matches!(moved, Ok(false)) && matches!(pending.stage, Stage::LoggedIn { .. }) {
            moved = state
                .flows
                .advance(token, &pending.stage, next, state.now())
                .await;
        }
        let Ok(moved) = moved else {
            return problem_page(UNAVAILABLE, id);
        };
        if !moved {
            return problem_page("This authorization request was already answered.", id);
        }
        if roles.is_empty() {
            problem_page("None of your roles may log in using access tokens.", id)
        } else {
            page(
                StatusCode::OK,
                "Allow access?",
                &consent_form(
                    integration,
                    account,
                    user,
                    &roles,
                    token,
                    flow_state,
                    session,
                ),
                id,
            )
        }
    } else {
        record.detail = "InvalidCredentials".into();
        record.diagnosis = serde_json::json!({ "problem": "unknown email, wrong password, or an inactive user (authorize page)" });
        page(
            StatusCode::UNAUTHORIZED,
            "Log in",
            &login_form(
                integration,
                account,
                token,
                flow_state,
                Some("You entered an invalid email or password."),
            ),
            id,
        )
    };
    if state.audit.send(record).await.is_err() {
        return problem_page(UNAVAILABLE, id);
    }
    response
}

async fn consent(
    state: &AppState,
    pending: &Pending,
    (token, flow_state): (&str, &str),
    (session, role, action): (&str, &str, &str),
    id: &str,
    (integration, account): (&str, &str),
) -> Response {
    let Stage::LoggedIn {
        user_id,
        session: expected,
    } = &pending.stage
    else {
        return problem_page(
            "Log in first: this authorization request is not waiting for an answer.",
            id,
        );
    };
    if !expected.ct_eq(session) {
        return problem_page(
            "Your session for this authorization has expired. Log in again.",
            id,
        );
    }
    let company = pending.account.to_string();
    let now = state.now();
    if action == "deny" {
        if state
            .flows
            .advance(token, &pending.stage, Stage::Denied, now)
            .await
            .is_err()
        {
            return problem_page(UNAVAILABLE, id);
        }
        let mut params = vec![
            ("oauth_token", token),
            ("oauth_verifier", ""),
            ("company", company.as_str()),
        ];
        if !flow_state.is_empty() {
            params.push(("state", flow_state));
        }
        return redirect(&callback_url(&pending.callback, &params), id);
    }
    if action != "allow" {
        return problem_page("Choose Allow or Deny.", id);
    }
    let Ok(user) = state
        .store
        .user(&pending.account, &user_id.to_string())
        .await
    else {
        return problem_page("Your user is no longer available.", id);
    };
    let roles = token_roles(state, pending, &user).await;
    let Some(chosen) = roles.iter().find(|r| r.id.to_string() == role) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Allow access?",
            &format!(
                "<p class=\"error\" role=\"alert\">Choose one of your roles that may log in using access tokens.</p>{}",
                consent_form(
                    integration,
                    account,
                    &user,
                    &roles,
                    token,
                    flow_state,
                    session
                )
            ),
            id,
        );
    };
    let Some(verifier) = random(16) else {
        return problem_page(UNAVAILABLE, id);
    };
    let allowed = Stage::Allowed {
        user_id: user.id,
        role_id: chosen.id,
        verifier: keycard_core::Secret::new(verifier.clone()),
    };
    match state
        .flows
        .advance(token, &pending.stage, allowed, now)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            return problem_page("This authorization request was already answered.", id);
        }
        Err(_) => return problem_page(UNAVAILABLE, id),
    }
    let (role_id, entity) = (chosen.id.to_string(), user.id.to_string());
    let mut params = vec![
        ("oauth_token", token),
        ("oauth_verifier", verifier.as_str()),
        ("company", company.as_str()),
        ("role", role_id.as_str()),
        ("entity", entity.as_str()),
    ];
    if !flow_state.is_empty() {
        params.push(("state", flow_state));
    }
    redirect(&callback_url(&pending.callback, &params), id)
}
