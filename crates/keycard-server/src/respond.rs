//! Answers in NetSuite's shapes, per surface. Clients learn little ("Invalid login attempt");
//! the account owner reads the reason in the login audit trail.

use std::cell::Cell;
use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keycard_core::Text;
use serde_json::json;

/// Which family of endpoints a request belongs to; it decides the error shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// REST web services (`/services/rest/...`).
    Rest,
    /// RESTlets (`/app/site/hosting/restlet.nl`).
    Restlet,
    /// The token endpoints (`/rest/*`), which answer like RESTlets.
    Token,
    /// SOAP web services (`/services/NetSuitePort_<version>`): faults in an envelope, in the
    /// endpoint's version's namespace.
    Soap(SoapVersion),
}

impl Surface {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rest => "rest",
            Self::Restlet => "restlet",
            Self::Token => "token",
            Self::Soap(_) => "soap",
        }
    }
}

/// A SOAP endpoint's version, `YYYY_R`: every namespace of the endpoint's answers names it,
/// faults included (a client's generated stubs map a fault by its namespace).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SoapVersion {
    year: u16,
    release: u8,
}

impl SoapVersion {
    /// The version of answers to a path that names none (an unknown SOAP endpoint).
    pub const DEFAULT: Self = Self {
        year: 2023,
        release: 2,
    };
    /// The first endpoint with token-based authentication.
    pub const FIRST_WITH_TBA: Self = Self {
        year: 2015,
        release: 2,
    };

    /// `NetSuitePort_2023_2` → 2023.2; `None` for any other port name.
    pub fn of_port(port: &str) -> Option<Self> {
        let (year, release) = port.strip_prefix("NetSuitePort_")?.split_once('_')?;
        let digits =
            |text: &str, len| text.len() == len && text.bytes().all(|b| b.is_ascii_digit());
        (digits(year, 4) && digits(release, 1)).then(|| Self {
            year: year.parse().unwrap_or_default(),
            release: release.parse().unwrap_or_default(),
        })
    }
}

impl std::fmt::Display for SoapVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}_{}", self.year, self.release)
    }
}

/// What went wrong, as the client may see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientError {
    InvalidLogin,
    Forbidden,
    ConcurrencyLimit,
    BadRequest(&'static str),
    NotFound,
    Unavailable,
    /// SOAP: a token passport together with another kind of credentials.
    AmbiguousAuthentication,
    /// The request body is over the limit (413).
    BodyTooLarge,
    /// The request body did not arrive within the idle timeout, `ms` (408).
    BodyTimedOut {
        ms: u64,
    },
    /// The endpoint does not answer this method; `allow` lists those it does (405).
    MethodNotAllowed {
        allow: &'static str,
    },
    /// The body's content type is not one the endpoint takes (415): `detail` says which are.
    UnsupportedMediaType(&'static str),
}

const BODY_TOO_LARGE: &str = "The request body is larger than 2 MiB.";

fn method_not_allowed(allow: &str) -> String {
    format!("This endpoint does not answer that method; use {allow}.")
}

fn body_timed_out(ms: u64) -> String {
    format!("The request body did not arrive within {ms} ms.")
}

const INVALID_LOGIN_DETAIL: &str = "Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite UI at Setup > Users/Roles > User Management > View Login Audit Trail.";

fn rest_body(status: StatusCode, type_url: &str, detail: &str, code: &str) -> serde_json::Value {
    json!({
        "type": type_url,
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "o:errorDetails": [{ "detail": detail, "o:errorCode": code }],
    })
}

fn restlet_body(code: &str, message: &str) -> serde_json::Value {
    json!({ "error": { "code": code, "message": message } })
}

// One arm per (surface, error) pair: a table, long by nature.
#[allow(clippy::too_many_lines)]
/// The response for `error` on `surface`, carrying `request_id`; `realm` goes into
/// `WWW-Authenticate` for REST 401s.
pub fn error_response(
    surface: Surface,
    error: ClientError,
    realm: Option<&str>,
    request_id: &str,
) -> Response {
    if let Surface::Soap(version) = surface {
        return with_request_id(soap_fault(error, version), request_id);
    }
    let error = match error {
        ClientError::AmbiguousAuthentication => ClientError::InvalidLogin,
        other => other,
    };
    let (status, body) = match (surface, error) {
        (Surface::Rest, ClientError::InvalidLogin) => (
            StatusCode::UNAUTHORIZED,
            rest_body(
                StatusCode::UNAUTHORIZED,
                "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.2",
                INVALID_LOGIN_DETAIL,
                "INVALID_LOGIN",
            ),
        ),
        (_, ClientError::InvalidLogin | ClientError::AmbiguousAuthentication) => (
            StatusCode::UNAUTHORIZED,
            restlet_body("INVALID_LOGIN_ATTEMPT", "Invalid login attempt."),
        ),
        (Surface::Rest, ClientError::Forbidden) => (
            StatusCode::FORBIDDEN,
            rest_body(
                StatusCode::FORBIDDEN,
                "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.4",
                "You do not have permission to access this resource.",
                "INSUFFICIENT_PERMISSION",
            ),
        ),
        (_, ClientError::Forbidden) => (
            StatusCode::FORBIDDEN,
            restlet_body(
                "INSUFFICIENT_PERMISSION",
                "You do not have permission to access this resource.",
            ),
        ),
        (Surface::Rest, ClientError::ConcurrencyLimit) => (
            StatusCode::TOO_MANY_REQUESTS,
            rest_body(
                StatusCode::TOO_MANY_REQUESTS,
                "https://www.rfc-editor.org/rfc/rfc6585.html#section-4",
                "Concurrent request limit exceeded. Request blocked.",
                "CONCURRENCY_LIMIT_EXCEEDED",
            ),
        ),
        (_, ClientError::ConcurrencyLimit) => (
            StatusCode::BAD_REQUEST,
            restlet_body(
                "SSS_REQUEST_LIMIT_EXCEEDED",
                "Concurrent request limit exceeded. Request blocked.",
            ),
        ),
        (Surface::Rest, ClientError::BadRequest(detail)) => (
            StatusCode::BAD_REQUEST,
            rest_body(
                StatusCode::BAD_REQUEST,
                "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.1",
                detail,
                "INVALID_REQUEST",
            ),
        ),
        (_, ClientError::BadRequest(detail)) => (
            StatusCode::BAD_REQUEST,
            restlet_body("INVALID_REQUEST", detail),
        ),
        (Surface::Rest, ClientError::NotFound) => (
            StatusCode::NOT_FOUND,
            rest_body(
                StatusCode::NOT_FOUND,
                "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.5",
                "The record instance does not exist.",
                "NONEXISTENT_ID",
            ),
        ),
        (_, ClientError::NotFound) => (
            StatusCode::NOT_FOUND,
            restlet_body(
                "SSS_INVALID_SCRIPTLET_ID",
                "That Suitelet is invalid, disabled, or no longer exists.",
            ),
        ),
        (Surface::Rest, ClientError::BodyTooLarge) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            rest_body(
                StatusCode::PAYLOAD_TOO_LARGE,
                "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.14",
                BODY_TOO_LARGE,
                "INVALID_REQUEST",
            ),
        ),
        (_, ClientError::BodyTooLarge) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            restlet_body("INVALID_REQUEST", BODY_TOO_LARGE),
        ),
        (Surface::Rest, ClientError::BodyTimedOut { ms }) => (
            StatusCode::REQUEST_TIMEOUT,
            rest_body(
                StatusCode::REQUEST_TIMEOUT,
                "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.9",
                &body_timed_out(ms),
                "INVALID_REQUEST",
            ),
        ),
        (_, ClientError::BodyTimedOut { ms }) => (
            StatusCode::REQUEST_TIMEOUT,
            restlet_body("INVALID_REQUEST", &body_timed_out(ms)),
        ),
        (Surface::Rest, ClientError::MethodNotAllowed { allow }) => (
            StatusCode::METHOD_NOT_ALLOWED,
            rest_body(
                StatusCode::METHOD_NOT_ALLOWED,
                "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.6",
                &method_not_allowed(allow),
                "INVALID_REQUEST",
            ),
        ),
        (_, ClientError::MethodNotAllowed { allow }) => (
            StatusCode::METHOD_NOT_ALLOWED,
            restlet_body("INVALID_REQUEST", &method_not_allowed(allow)),
        ),
        (Surface::Rest, ClientError::UnsupportedMediaType(detail)) => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            rest_body(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.16",
                detail,
                "INVALID_REQUEST",
            ),
        ),
        (_, ClientError::UnsupportedMediaType(detail)) => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            restlet_body("INVALID_REQUEST", detail),
        ),
        (Surface::Rest, ClientError::Unavailable) => (
            StatusCode::SERVICE_UNAVAILABLE,
            rest_body(
                StatusCode::SERVICE_UNAVAILABLE,
                "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.6.4",
                "The service is temporarily unavailable. Try again later.",
                "SERVICE_UNAVAILABLE",
            ),
        ),
        (_, ClientError::Unavailable) => (
            StatusCode::SERVICE_UNAVAILABLE,
            restlet_body(
                "SSS_SERVICE_UNAVAILABLE",
                "The service is temporarily unavailable. Try again later.",
            ),
        ),
    };
    let mut response = (status, axum::Json(body)).into_response();
    if let ClientError::MethodNotAllowed { allow } = error {
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allow));
    }
    if surface == Surface::Rest && error == ClientError::InvalidLogin {
        let realm = realm.unwrap_or_default().replace('"', "");
        if let Ok(value) = HeaderValue::from_str(&format!(
            r#"OAuth realm="{realm}", error="token_rejected", error_description="Invalid login attempt.""#
        )) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
    }
    with_request_id(response, request_id)
}

/// A SOAP 1.1 fault as NetSuite sends it. SOAP 1.1 (§6.2) answers faults with HTTP 500, which
/// SOAP clients expect; a request that is not a SOAP message at all gets a 400 Client fault.
// One arm per error: a table, long by nature.
#[allow(clippy::too_many_lines)]
fn soap_fault(error: ClientError, version: SoapVersion) -> Response {
    // The fault string, when it is made for this answer.
    let made;
    let (status, faultcode, faultstring, element, code) = match error {
        ClientError::InvalidLogin => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "soapenv:Server.userException",
            "Invalid login attempt.",
            "invalidCredentialsFault",
            "INVALID_LOGIN_ATTEMPT",
        ),
        ClientError::AmbiguousAuthentication => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "soapenv:Server.userException",
            "Ambiguous authentication",
            "invalidCredentialsFault",
            "USER_ERROR",
        ),
        ClientError::Forbidden => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "soapenv:Server.userException",
            "You do not have permission to access this resource.",
            "insufficientPermissionFault",
            "INSUFFICIENT_PERMISSION",
        ),
        ClientError::ConcurrencyLimit => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "soapenv:Server.userException",
            "SuiteTalk concurrent request limit exceeded. Request blocked.",
            "exceededConcurrentRequestLimitFault",
            "WS_REQUEST_BLOCKED",
        ),
        ClientError::BadRequest(detail) => (
            StatusCode::BAD_REQUEST,
            "soapenv:Client",
            detail,
            "invalidRequestFault",
            "INVALID_REQUEST",
        ),
        ClientError::NotFound => (
            StatusCode::NOT_FOUND,
            "soapenv:Client",
            "No such SOAP endpoint: use /services/NetSuitePort_<version>, e.g. NetSuitePort_2023_2.",
            "invalidRequestFault",
            "INVALID_REQUEST",
        ),
        ClientError::BodyTooLarge => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "soapenv:Client",
            BODY_TOO_LARGE,
            "invalidRequestFault",
            "INVALID_REQUEST",
        ),
        ClientError::BodyTimedOut { ms } => {
            made = body_timed_out(ms);
            (
                StatusCode::REQUEST_TIMEOUT,
                "soapenv:Client",
                made.as_str(),
                "invalidRequestFault",
                "INVALID_REQUEST",
            )
        }
        ClientError::MethodNotAllowed { allow } => {
            made = method_not_allowed(allow);
            (
                StatusCode::METHOD_NOT_ALLOWED,
                "soapenv:Client",
                made.as_str(),
                "invalidRequestFault",
                "INVALID_REQUEST",
            )
        }
        ClientError::UnsupportedMediaType(detail) => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "soapenv:Client",
            detail,
            "invalidRequestFault",
            "INVALID_REQUEST",
        ),
        ClientError::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "soapenv:Server",
            "The service is temporarily unavailable. Try again later.",
            "unexpectedErrorFault",
            "UNEXPECTED_ERROR",
        ),
    };
    let faultstring = crate::surfaces::escape_markup(faultstring);
    let body = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><soapenv:Fault><faultcode>{faultcode}</faultcode><faultstring>{faultstring}</faultstring><detail><platformFaults:{element} xmlns:platformFaults="urn:faults_{version}.platform.webservices.netsuite.com"><platformFaults:code>{code}</platformFaults:code><platformFaults:message>{faultstring}</platformFaults:message></platformFaults:{element}></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#
    );
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response();
    if let ClientError::MethodNotAllowed { allow } = error {
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allow));
    }
    response
}

thread_local! {
    /// A finished request's header map, emptied, for the thread's next answer.
    static SPARE_HEADERS: Cell<Option<HeaderMap>> = const { Cell::new(None) };
}

/// Keeps a finished request's header map for the next answer made on this thread. hyper
/// parses each request into the previous answer's map (emptied by writing it); an answer
/// built on a new map allocated its two tables on every request, and the request's map was
/// freed. With this the maps go round: answer, request, answer (no allocation once warm).
pub fn recycle_headers(mut headers: HeaderMap) {
    headers.clear();
    SPARE_HEADERS.set(Some(headers));
}

/// An empty header map for an answer: a recycled one when this thread has one.
pub fn answer_headers() -> HeaderMap {
    SPARE_HEADERS.take().unwrap_or_default()
}

pub fn with_request_id(mut response: Response, request_id: &str) -> Response {
    const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
    if response.headers().capacity() == 0 {
        *response.headers_mut() = answer_headers();
    }
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert(X_REQUEST_ID, value);
    }
    response
}

/// A connection's peer: its address, and its IP as the audit trail stores it, written once
/// per connection rather than on every request ([`ip_text`] cost about 225 instructions a
/// request, counted). Cloned into each request: an IPv4 address's text is inline.
#[derive(Clone, Debug)]
pub struct Peer {
    pub addr: std::net::SocketAddr,
    pub ip_text: Text,
}

impl Peer {
    /// An IPv4 client on a dual-stack listener (`::ffff:203.0.113.5`) is its IPv4 address:
    /// for role IP ranges, trusted proxies and the trail alike.
    pub fn new(addr: std::net::SocketAddr) -> Self {
        let addr = std::net::SocketAddr::new(addr.ip().to_canonical(), addr.port());
        Self {
            addr,
            ip_text: ip_text(addr.ip()),
        }
    }
}

/// The peer's address as the audit trail stores it. `Ipv4Addr`'s `Display` goes through the
/// formatting machinery, about 1,300 instructions on every request (callgrind, in the
/// in-process benchmark); the four numbers written directly cost a tenth of that, and fit the
/// record's inline text (no allocation).
pub fn ip_text(ip: IpAddr) -> Text {
    let IpAddr::V4(v4) = ip else {
        return ip.to_string().into();
    };
    // Written into bytes first: `CompactString::push` checks its representation per char.
    let mut text = [0u8; 15];
    let mut len = 0;
    let mut put = |byte: u8| {
        if let Some(slot) = text.get_mut(len) {
            *slot = byte;
            len += 1;
        }
    };
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            put(b'.');
        }
        if octet >= 100 {
            put(b'0' + octet / 100);
        }
        if octet >= 10 {
            put(b'0' + octet / 10 % 10);
        }
        put(b'0' + octet % 10);
    }
    // Digits and dots only, so always UTF-8.
    Text::from_utf8(text.get(..len).unwrap_or_default()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use super::ip_text;

    #[test]
    fn ip_text_writes_what_display_writes() {
        for value in [0u8, 1, 9, 10, 42, 99, 100, 101, 110, 199, 200, 250, 255] {
            for ip in [
                Ipv4Addr::new(value, 0, 0, 1),
                Ipv4Addr::new(127, value, 10, value),
                Ipv4Addr::new(255, 255, value, 255),
            ] {
                assert_eq!(ip_text(IpAddr::V4(ip)), ip.to_string());
            }
        }
        let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
        assert_eq!(ip_text(v6), "2001:db8::1");
    }
}
