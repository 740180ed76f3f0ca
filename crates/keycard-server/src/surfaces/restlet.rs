//! RESTlets: `/app/site/hosting/restlet.nl?script=…&deploy=…`. Deployed scripts are built-in
//! handlers; `echo` (script `echo` or `1`, any deploy) returns what it received and who called.

use axum::http::{Method, header};
use axum::response::Response;
use serde_json::json;

use super::{Incoming, json_response};
use crate::AppState;
use crate::pipeline::{Need, authenticate};
use crate::respond::{ClientError, Surface, error_response};

pub async fn handle(state: &AppState, incoming: &Incoming) -> Response {
    let facts = incoming.facts(Surface::Restlet);
    let principal = match authenticate(state, &facts, &Need::Restlet).await {
        Ok(principal) => principal,
        Err(response) => return response,
    };
    let refuse = |error| error_response(Surface::Restlet, error, None, &principal.request_id);
    // A RESTlet's entry points are get, post, put and delete (HEAD is GET without a body).
    if !matches!(
        incoming.method,
        Method::GET | Method::HEAD | Method::POST | Method::PUT | Method::DELETE
    ) {
        return refuse(ClientError::MethodNotAllowed {
            allow: "GET, HEAD, POST, PUT, DELETE",
        });
    }
    // "this content type is not allowed by RESTlets" (netsuite-tba.md §1.2), nor a
    // multipart body: a RESTlet reads JSON or text.
    let content_type = incoming
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if content_type.starts_with("application/x-www-form-urlencoded")
        || content_type.starts_with("multipart/")
    {
        return refuse(ClientError::UnsupportedMediaType(
            "RESTlets take application/json or text/plain bodies, not forms.",
        ));
    }
    let script = incoming.query_param("script").unwrap_or_default();
    if !matches!(script.as_str(), "echo" | "1" | "customscript_echo")
        || incoming
            .query_param("deploy")
            .is_none_or(|deploy| deploy.is_empty())
    {
        return error_response(
            Surface::Restlet,
            ClientError::NotFound,
            None,
            &principal.request_id,
        );
    }
    // `delay_ms` holds the request (and its concurrency slot) open, for governance tests.
    if let Some(delay) = incoming
        .query_param("delay_ms")
        .and_then(|d| d.parse::<u64>().ok())
    {
        tokio::time::sleep(std::time::Duration::from_millis(delay.min(10_000))).await;
    }
    let body_text = String::from_utf8_lossy(&incoming.body);
    let body_json: serde_json::Value = serde_json::from_str(&body_text)
        .unwrap_or(serde_json::Value::String(body_text.into_owned()));
    json_response(
        &json!({
            "method": incoming.method.as_str(),
            "query": incoming.uri.query().unwrap_or_default(),
            "body": body_json,
            "account": principal.account.id,
            "integration": principal.integration.integration.name,
            "user": principal.token.user.email,
            "role": principal.token.role.name,
        }),
        &principal.request_id,
    )
}
