//! The client's errors: a NetSuite answer that is not a success ([`ApiError`], with its error
//! code and request id), or a failure before any answer.

use std::fmt::Write as _;

use keycard_oauth1::OAuthError;

/// Everything that can go wrong. Never contains a secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request cannot be signed (an invalid URL, an unusable parameter).
    #[error("cannot sign the request: {0}")]
    Sign(#[from] OAuthError),
    /// The base URL or path cannot form a URL.
    #[error("`{url}` is not a usable URL: {reason}")]
    Url { url: String, reason: String },
    /// No answer: connection refused, DNS, TLS, time-out.
    #[error("no answer from {url}: {source}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with a non-success status.
    #[error(transparent)]
    Api(Box<ApiError>),
    /// The server answered 2xx with a body this client cannot read.
    #[error("unexpected answer: {0}")]
    UnexpectedBody(String),
}

impl From<ApiError> for Error {
    fn from(error: ApiError) -> Self {
        Self::Api(Box::new(error))
    }
}

impl Error {
    /// The API error, when the server answered.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Self::Api(api) => Some(api),
            _ => None,
        }
    }
}

/// A non-success answer, with what NetSuite says about it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.summary())]
pub struct ApiError {
    pub status: u16,
    /// NetSuite's error code: `o:errorDetails[0].o:errorCode` (REST web services) or
    /// `error.code` (RESTlets and `/rest/*`), e.g. `INVALID_LOGIN`.
    pub code: Option<String>,
    /// The detail or message that goes with the code.
    pub message: Option<String>,
    /// The `x-request-id` header: quote it to the account owner (`keycard audit show ID`).
    pub request_id: Option<String>,
    /// The server's `Date` header, for clock-skew checks.
    pub date: Option<String>,
    /// How many attempts were made (more than 1 after concurrency retries).
    pub attempts: u32,
    /// The body as text (for bodies that are not NetSuite JSON).
    pub body: String,
}

/// The codes of a concurrency rejection.
pub const CONCURRENCY_CODES: [&str; 2] =
    ["CONCURRENCY_LIMIT_EXCEEDED", "SSS_REQUEST_LIMIT_EXCEEDED"];

impl ApiError {
    /// Reads the code and message from either of NetSuite's JSON shapes.
    pub fn from_answer(
        status: u16,
        body: &[u8],
        request_id: Option<String>,
        date: Option<String>,
        attempts: u32,
    ) -> Self {
        let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
        let (code, message) = json.as_ref().map_or((None, None), |json| {
            let rest = &json["o:errorDetails"][0];
            let restlet = &json["error"];
            let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
            (
                text(&rest["o:errorCode"]).or_else(|| text(&restlet["code"])),
                text(&rest["detail"]).or_else(|| text(&restlet["message"])),
            )
        });
        Self {
            status,
            code,
            message,
            request_id,
            date,
            attempts,
            body: String::from_utf8_lossy(body).into_owned(),
        }
    }

    /// A concurrency rejection (retried by the client): `CONCURRENCY_LIMIT_EXCEEDED` or
    /// `SSS_REQUEST_LIMIT_EXCEEDED`, or a 429 without a code.
    pub fn is_concurrency_limit(&self) -> bool {
        match &self.code {
            Some(code) => CONCURRENCY_CODES.contains(&code.as_str()),
            None => self.status == 429,
        }
    }

    /// NetSuite's opaque login refusal (`INVALID_LOGIN`, `INVALID_LOGIN_ATTEMPT`).
    pub fn is_invalid_login(&self) -> bool {
        matches!(
            self.code.as_deref(),
            Some("INVALID_LOGIN" | "INVALID_LOGIN_ATTEMPT")
        ) || (self.code.is_none() && self.status == 401)
    }

    /// `INSUFFICIENT_PERMISSION`: the token works but its role may not do this.
    pub fn is_insufficient_permission(&self) -> bool {
        self.code.as_deref() == Some("INSUFFICIENT_PERMISSION")
    }

    fn summary(&self) -> String {
        let mut text = format!("HTTP {}", self.status);
        if let Some(code) = &self.code {
            text.push(' ');
            text.push_str(code);
        }
        if let Some(message) = &self.message {
            text.push_str(": ");
            text.push_str(message);
        }
        if let Some(id) = &self.request_id {
            text.push_str(" (request id ");
            text.push_str(id);
            text.push(')');
        }
        if self.attempts > 1 {
            let _ = write!(text, " after {} attempts", self.attempts);
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_shapes() {
        let rest = br#"{"type":"x","title":"Too Many Requests","status":429,"o:errorDetails":[{"detail":"Concurrent request limit exceeded. Request blocked.","o:errorCode":"CONCURRENCY_LIMIT_EXCEEDED"}]}"#;
        let e = ApiError::from_answer(429, rest, Some("abc".into()), None, 3);
        assert_eq!(e.code.as_deref(), Some("CONCURRENCY_LIMIT_EXCEEDED"));
        assert!(e.is_concurrency_limit());
        assert_eq!(
            e.to_string(),
            "HTTP 429 CONCURRENCY_LIMIT_EXCEEDED: Concurrent request limit exceeded. Request blocked. (request id abc) after 3 attempts"
        );
        let restlet = br#"{"error":{"code":"SSS_REQUEST_LIMIT_EXCEEDED","message":"m"}}"#;
        assert!(ApiError::from_answer(400, restlet, None, None, 1).is_concurrency_limit());
        let login =
            br#"{"error":{"code":"INVALID_LOGIN_ATTEMPT","message":"Invalid login attempt."}}"#;
        let e = ApiError::from_answer(401, login, None, None, 1);
        assert!(e.is_invalid_login() && !e.is_concurrency_limit());
        let other400 = br#"{"error":{"code":"INVALID_REQUEST","message":"m"}}"#;
        assert!(!ApiError::from_answer(400, other400, None, None, 1).is_concurrency_limit());
        assert!(ApiError::from_answer(429, b"busy", None, None, 1).is_concurrency_limit());
    }
}
