//! The HTTP surfaces (routed by [`crate::dispatch`]). Each handler reads the request into
//! [`RequestFacts`], runs the one pipeline with what its operation needs, and answers in its
//! surface's shape.

pub mod authorize;
pub mod discovery;
pub mod record_body;
pub mod rest;
pub mod restlet;
pub mod soap;
pub mod tokens;

use std::net::IpAddr;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use keycard_core::Text;

use crate::AppState;
use crate::pipeline::RequestFacts;
use crate::request_id::RequestId;
use crate::respond::{ClientError, Peer, Surface, error_response, with_request_id};

/// Readiness, for a load balancer: the directory answers and the shared replay and
/// concurrency state (Redis, when configured) answers. 503 with the reason otherwise; a node
/// that is not ready refuses logins anyway, so taking it out of rotation loses nothing.
pub(crate) async fn readyz(state: &AppState) -> Response {
    let deadline = std::time::Duration::from_secs(1);
    let directory = match tokio::time::timeout(deadline, state.store.directory_version()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(_)) => Err("the directory cannot be read".to_owned()),
        Err(_) => Err("the directory did not answer within 1 s".to_owned()),
    };
    let shared = state
        .shared
        .check()
        .await
        .map_err(|unreachable| unreachable.0);
    match (directory, shared) {
        (Ok(()), Ok(())) => (StatusCode::OK, "ready\n").into_response(),
        (directory, shared) => {
            let reasons: Vec<String> = [directory.err(), shared.err()]
                .into_iter()
                .flatten()
                .collect();
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {}\n", reasons.join("; ")),
            )
                .into_response()
        }
    }
}

/// No route: 404 in the REST shape under `/services/rest`, else in the RESTlet shape.
pub(crate) fn not_found(path: &str) -> Response {
    let surface = if path.starts_with("/services/rest") {
        Surface::Rest
    } else {
        Surface::Restlet
    };
    error_response(surface, ClientError::NotFound, None, &RequestId::next())
}

/// The parts of an HTTP request the pipeline reads, owned for the handler's lifetime.
pub struct Incoming {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub peer: IpAddr,
    /// `peer` as the audit trail stores it.
    pub peer_text: Text,
    /// Inline up to 24 bytes (`Text`): no allocation for the scheme or a short host.
    pub scheme: Text,
    pub authority: Text,
    pub request_id: RequestId,
}

/// The client a trusted proxy's `X-Forwarded-For` names: every line of the header in order,
/// read from the right (the nearest hop) past the addresses of trusted proxies. Each proxy
/// appends the address it saw, so the first untrusted address from the right is the one the
/// first trusted proxy saw; anything left of it is what the client itself sent, which it may
/// have forged (the leftmost address would let anyone pass an IP allow-list). An entry that
/// is not an address stops the walk at the last trusted hop read.
fn forwarded_client(headers: &HeaderMap, trusted: &[IpAddr]) -> Option<IpAddr> {
    let mut nearest = None;
    let lines: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|line| line.to_str().ok())
        .collect();
    for entry in lines.iter().rev().flat_map(|line| line.rsplit(',')) {
        let entry = entry.trim();
        let ip = entry.parse::<IpAddr>().ok().or_else(|| {
            // `203.0.113.7:4711` and `[2001:db8::7]:4711`, as some proxies write them.
            entry.parse::<std::net::SocketAddr>().ok().map(|a| a.ip())
        });
        match ip.map(|ip| ip.to_canonical()) {
            Some(ip) if trusted.contains(&ip) => nearest = Some(ip),
            Some(ip) => return Some(ip),
            None => break,
        }
    }
    nearest
}

impl Incoming {
    /// Whether `request` has no body to read (most are GETs).
    pub fn has_no_body(request: &axum::extract::Request) -> bool {
        axum::body::HttpBody::is_end_stream(request.body())
    }

    /// A request that [`has_no_body`](Self::has_no_body), at once: [`read`](Self::read)'s
    /// future (750 bytes, copied into the request's) is made only for those that have one.
    pub fn without_body(state: &AppState, peer: Peer, request: axum::extract::Request) -> Self {
        let (parts, _) = request.into_parts();
        // Nothing to collect (collecting an empty body still allocated a buffer list).
        Self::new(
            state,
            peer,
            parts.method,
            parts.uri,
            parts.headers,
            Bytes::new(),
        )
    }

    /// Reads a request whole: the peer from the connection and the body, up to 2 MiB. A
    /// body over that is a 413, one cut off a 400, one still arriving after the idle timeout
    /// a 408, each in `surface`'s shape.
    pub async fn read(
        state: &AppState,
        peer: Peer,
        request: axum::extract::Request,
        surface: Surface,
    ) -> Result<Self, Response> {
        let (parts, body) = request.into_parts();
        // A body that trickles in would hold its connection for good: it has the idle
        // timeout to arrive (the connection's watch does not close a request being answered).
        let limit = Duration::from_millis(state.config.idle_timeout_ms.max(1));
        let refused = |error| error_response(surface, error, None, &RequestId::next());
        let body =
            match tokio::time::timeout(limit, axum::body::to_bytes(body, 2 * 1024 * 1024)).await {
                Ok(Ok(body)) => body,
                Ok(Err(error)) => {
                    let too_large = error
                        .into_inner()
                        .downcast_ref::<http_body_util::LengthLimitError>()
                        .is_some();
                    return Err(refused(if too_large {
                        ClientError::BodyTooLarge
                    } else {
                        ClientError::BadRequest("The request body was cut off.")
                    }));
                }
                Err(_) => {
                    let ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
                    let mut response = refused(ClientError::BodyTimedOut { ms });
                    // The rest of the body may still come: the connection cannot be reused.
                    response
                        .headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                    return Err(response);
                }
            };
        Ok(Self::new(
            state,
            peer,
            parts.method,
            parts.uri,
            parts.headers,
            body,
        ))
    }

    fn new(
        state: &AppState,
        peer: Peer,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> Self {
        let trusted = state.config.trusted_proxies.contains(&peer.addr.ip());
        let forwarded = |name: &str| {
            trusted
                .then(|| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(|v| Text::from(v.split(',').next().unwrap_or(v).trim()))
                })
                .flatten()
        };
        let scheme = forwarded("x-forwarded-proto")
            .unwrap_or_else(|| state.config.public_scheme.as_str().into());
        let authority = forwarded("x-forwarded-host")
            .or_else(|| {
                headers
                    .get(header::HOST)
                    .and_then(|v| v.to_str().ok())
                    .map(Text::from)
            })
            .or_else(|| uri.authority().map(|a| Text::from(a.as_str())))
            .unwrap_or_default();
        let client = trusted
            .then(|| forwarded_client(&headers, &state.config.trusted_proxies))
            .flatten();
        let (peer_ip, peer_text) = match client {
            Some(ip) => (ip, crate::respond::ip_text(ip)),
            None => (peer.addr.ip(), peer.ip_text),
        };
        Self {
            method,
            uri,
            headers,
            body,
            peer: peer_ip,
            peer_text,
            scheme,
            authority,
            request_id: RequestId::next(),
        }
    }

    pub fn facts(&self, surface: Surface) -> RequestFacts<'_> {
        RequestFacts {
            request_id: self.request_id,
            method: self.method.as_str(),
            scheme: &self.scheme,
            authority: &self.authority,
            path: self.uri.path(),
            query: self.uri.query(),
            // Any UTF-8, not only `to_str`'s visible ASCII: a header with other bytes was taken
            // for a missing one; the header parser refuses it as malformed, with the reason.
            authorization: self
                .headers
                .get(header::AUTHORIZATION)
                .and_then(|v| std::str::from_utf8(v.as_bytes()).ok()),
            content_type: self
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            body: &self.body,
            peer: self.peer,
            peer_text: &self.peer_text,
            surface,
        }
    }

    /// A failed login record for an endpoint outside the OAuth pipeline (NLAuth), to fill in.
    pub fn login_record(&self, state: &AppState, surface: Surface) -> keycard_core::LoginRecord {
        keycard_core::LoginRecord {
            at: state.now(),
            request_id: self.request_id.as_str().into(),
            ip: self.peer_text.clone(),
            account: None,
            integration: None,
            token_name: None,
            user: None,
            role: None,
            surface: surface.as_str().into(),
            request_uri: self.uri.to_string().into(),
            status: "Failure".into(),
            detail: "".into(),
            diagnosis: serde_json::Value::Null,
        }
    }

    /// A query parameter, decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        let query = self.uri.query()?;
        query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = keycard_oauth1::encode::percent_decode_bytes(key.as_bytes(), true).ok()?;
            (key.as_ref() == name.as_bytes())
                .then(|| {
                    keycard_oauth1::encode::percent_decode_bytes(value.as_bytes(), true)
                        .ok()
                        .map(|v| String::from_utf8_lossy(&v).into_owned())
                })
                .flatten()
        })
    }
}

/// JSON with the request id header. Serialized into a buffer that fits a typical answer
/// (`axum::Json` starts at 128 bytes and grows: tokeninfo's answer took two reallocations).
pub fn json_response(value: &impl serde::Serialize, request_id: &str) -> Response {
    let mut body = Vec::with_capacity(512);
    match serde_json::to_writer(&mut body, value) {
        Ok(()) => json_bytes_response(body, request_id),
        // Keycard's own types only fail with a map whose keys are not strings: a bug.
        Err(error) => with_request_id(
            (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
            request_id,
        ),
    }
}

/// JSON already written, with its content type and the request id header. Built directly:
/// `(headers, Vec<u8>).into_response()` set `application/octet-stream` first and then replaced
/// it.
pub fn json_bytes_response(body: impl Into<axum::body::Bytes>, request_id: &str) -> Response {
    let mut response = Response::new(axum::body::Body::from(body.into()));
    *response.headers_mut() = crate::respond::answer_headers();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    with_request_id(response, request_id)
}

/// Text made safe inside XML or HTML markup, as element content or a quoted attribute: the
/// five special characters as references, and characters XML 1.0 forbids (controls other
/// than tab and line breaks, U+FFFE, U+FFFF) as U+FFFD, so that any client's parser reads it.
pub(crate) fn escape_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if u32::from(c) < 0x20 => out.push('\u{fffd}'),
            '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// A refusal outside the OAuth pipeline (NLAuth endpoints, SOAP pre-checks): what the
/// client sees, the Detail code, and the owner's diagnosis.
pub type Refusal = (ClientError, &'static str, serde_json::Value);

/// Completes `record` from `outcome` and queues it; false when the audit writer is gone
/// (the caller must then answer 503: an attempt is never answered unaudited).
pub async fn audit_outcome<T>(
    state: &AppState,
    mut record: keycard_core::LoginRecord,
    outcome: &Result<T, Refusal>,
) -> bool {
    match outcome {
        Ok(_) => record.status = "Success".into(),
        Err((_, detail, diagnosis)) => {
            record.detail = (*detail).into();
            record.diagnosis = diagnosis.clone();
        }
    }
    state.audit.send(record).await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::escape_markup;

    #[test]
    fn escaped_text_is_always_xml_1_0() {
        assert_eq!(
            escape_markup("a\u{1}b<&>\"'\t\n"),
            "a\u{fffd}b&lt;&amp;&gt;&quot;&#39;\t\n"
        );
        assert_eq!(escape_markup("\u{ffff}é"), "\u{fffd}é");
    }
}
