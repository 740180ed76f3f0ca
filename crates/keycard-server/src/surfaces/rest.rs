//! REST web services: `/services/rest/record/v1/{type}[/{id}]` over JSON documents in the
//! directory store, and `/services/rest/system/v1/governanceLimits`. The role's level on the
//! record type decides: View reads, Create creates, Edit changes, Full deletes.

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keycard_core::Level;
use serde_json::{Value, json};

use super::record_body::record_answer;
use super::{Incoming, json_bytes_response, json_response};
use crate::AppState;
use crate::pipeline::{Need, Principal, authenticate};
use crate::respond::{ClientError, Surface, error_response, with_request_id};

fn level_for(method: &Method) -> Option<Level> {
    match *method {
        Method::GET | Method::HEAD => Some(Level::View),
        Method::POST => Some(Level::Create),
        Method::PATCH | Method::PUT => Some(Level::Edit),
        Method::DELETE => Some(Level::Full),
        _ => None,
    }
}

fn record_type(raw: &str) -> Option<String> {
    keycard_core::role::check_record_type(raw).ok()
}

async fn enter(state: &AppState, incoming: &Incoming, need: Need) -> Result<Principal, Response> {
    authenticate(state, &incoming.facts(Surface::Rest), &need).await
}

fn bad(incoming: &Incoming, detail: &'static str) -> Response {
    error_response(
        Surface::Rest,
        ClientError::BadRequest(detail),
        None,
        &incoming.request_id,
    )
}

fn not_allowed(incoming: &Incoming, allow: &'static str) -> Response {
    error_response(
        Surface::Rest,
        ClientError::MethodNotAllowed { allow },
        None,
        &incoming.request_id,
    )
}

fn parse_body(incoming: &Incoming) -> Option<Value> {
    serde_json::from_slice::<Value>(&incoming.body)
        .ok()
        .filter(Value::is_object)
}

// List and create share the record-type checks; splitting them would repeat those.
#[allow(clippy::too_many_lines)]
pub async fn collection(state: &AppState, raw_type: &str, incoming: &Incoming) -> Response {
    let Some(record) = record_type(raw_type) else {
        return bad(incoming, "Unsupported record type.");
    };
    let Some(level @ (Level::View | Level::Create)) = level_for(&incoming.method) else {
        // PATCH, PUT and DELETE name a record: /record/v1/<type>/<id>.
        return not_allowed(incoming, "GET, HEAD, POST");
    };
    let principal = match enter(
        state,
        incoming,
        Need::RestRecord {
            record: record.clone(),
            level,
        },
    )
    .await
    {
        Ok(p) => p,
        Err(response) => return response,
    };
    let account = &principal.account.id;
    if level == Level::Create {
        let Some(document) = parse_body(incoming) else {
            return bad(incoming, "The request body must be a JSON object.");
        };
        return match state
            .store
            .create_rest_record(account, &record, &document)
            .await
        {
            Ok(id) => {
                let mut response = with_request_id(
                    StatusCode::NO_CONTENT.into_response(),
                    &principal.request_id,
                );
                let location = format!(
                    "{}://{}/services/rest/record/v1/{record}/{id}",
                    incoming.scheme, incoming.authority
                );
                if let Ok(value) = HeaderValue::from_str(&location) {
                    response.headers_mut().insert(header::LOCATION, value);
                }
                response
            }
            Err(error) => {
                tracing::error!(%error, "cannot create a record");
                error_response(
                    Surface::Rest,
                    ClientError::Unavailable,
                    None,
                    &principal.request_id,
                )
            }
        };
    }
    // Record queries are not implemented: answering every record would look like a match.
    if incoming.query_param("q").is_some() {
        return bad(
            incoming,
            "Record queries (q) are not supported by this server; list without q and filter.",
        );
    }
    let number = |name: &str, default: i64| {
        incoming
            .query_param(name)
            .map_or(Ok(default), |v| v.parse::<i64>())
    };
    let (Ok(limit), Ok(offset)) = (number("limit", 1000), number("offset", 0)) else {
        return bad(incoming, "limit and offset must be numbers.");
    };
    if !(1..=1000).contains(&limit) || offset < 0 {
        return bad(incoming, "limit must be 1 to 1000 and offset at least 0.");
    }
    match state
        .store
        .rest_records(account, &record, limit, offset)
        .await
    {
        Ok((items, total)) => {
            let base = format!(
                "{}://{}/services/rest/record/v1/{record}",
                incoming.scheme, incoming.authority
            );
            let items: Vec<Value> = items
                .iter()
                .map(|(id, _)| json!({ "id": id.to_string(), "links": [{ "rel": "self", "href": format!("{base}/{id}") }] }))
                .collect();
            json_response(
                &json!({
                    "links": [{ "rel": "self", "href": format!("{base}?limit={limit}&offset={offset}") }],
                    "count": items.len(),
                    "hasMore": offset + i64::try_from(items.len()).unwrap_or(0) < total,
                    "items": items,
                    "offset": offset,
                    "totalResults": total,
                }),
                &principal.request_id,
            )
        }
        Err(_) => error_response(
            Surface::Rest,
            ClientError::Unavailable,
            None,
            &principal.request_id,
        ),
    }
}

pub async fn instance(
    state: &AppState,
    raw_type: &str,
    raw_id: &str,
    incoming: &Incoming,
) -> Response {
    let Some(record) = record_type(raw_type) else {
        return bad(incoming, "Unsupported record type.");
    };
    let Some(level) = level_for(&incoming.method).filter(|level| *level != Level::Create) else {
        // POST creates records on the collection, without an id.
        return not_allowed(incoming, "GET, HEAD, PATCH, PUT, DELETE");
    };
    let principal = match enter(
        state,
        incoming,
        Need::RestRecord {
            record: record.clone(),
            level,
        },
    )
    .await
    {
        Ok(p) => p,
        Err(response) => return response,
    };
    // After the login, as NetSuite checks: an unsigned request is a 401 whatever its path.
    let Ok(id) = raw_id.parse::<i64>() else {
        return bad(incoming, "The record id must be a number.");
    };
    let account = &principal.account.id;
    let rid = &principal.request_id;
    let missing = || error_response(Surface::Rest, ClientError::NotFound, None, rid);
    let unavailable = || error_response(Surface::Rest, ClientError::Unavailable, None, rid);
    match level {
        Level::View => match state.store.rest_record_text(account, &record, id).await {
            Ok(Some(stored)) => json_bytes_response(record_answer(&stored, id), rid),
            Ok(None) => missing(),
            Err(_) => unavailable(),
        },
        Level::Edit => {
            let Some(document) = parse_body(incoming) else {
                return bad(incoming, "The request body must be a JSON object.");
            };
            let merge = incoming.method == Method::PATCH;
            // Boxed: its future (1.6 KB) would make every request's future that much larger
            // (the GETs' included), and each request's future is copied into a box.
            let update = state
                .store
                .update_rest_record(account, &record, id, &document, merge);
            match Box::pin(update).await {
                Ok(true) => with_request_id(StatusCode::NO_CONTENT.into_response(), rid),
                Ok(false) => missing(),
                Err(_) => unavailable(),
            }
        }
        Level::Full => match state.store.delete_rest_record(account, &record, id).await {
            Ok(true) => with_request_id(StatusCode::NO_CONTENT.into_response(), rid),
            Ok(false) => missing(),
            Err(_) => unavailable(),
        },
        Level::None | Level::Create => missing(),
    }
}

pub async fn governance_limits(state: &AppState, incoming: &Incoming) -> Response {
    let principal = match enter(state, incoming, Need::RestAdministrator).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    let account_limit = principal.account.concurrency_limit();
    let integration = &principal.integration.integration;
    let mut body = json!({
        "accountConcurrencyLimit": account_limit,
        "accountUnallocatedConcurrencyLimit": if integration.concurrency_limit.is_none() { principal.integration.pool_limit } else { account_limit },
        "integrationLimitType": if integration.concurrency_limit.is_some() { "integrationSpecific" } else { "accountLimit" },
    });
    if let (Some(limit), Value::Object(fields)) = (integration.concurrency_limit, &mut body) {
        fields.insert("integrationConcurrencyLimit".into(), json!(limit));
    }
    json_response(&body, &principal.request_id)
}
