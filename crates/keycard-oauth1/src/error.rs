//! The one error type of the protocol layer. Every variant has a stable code string that the
//! server's audit trail, metrics and tests use; messages never contain a secret.

use thiserror::Error;

/// Why a request (or a signing request) was refused by the protocol layer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum OAuthError {
    #[error("the Authorization header is longer than {limit} bytes")]
    HeaderTooLarge { limit: usize },
    #[error("the Authorization header has more than {limit} parameters")]
    TooManyParameters { limit: usize },
    #[error("the Authorization header does not use the {expected} scheme")]
    WrongScheme { expected: &'static str },
    #[error("the Authorization header is malformed: {reason}")]
    MalformedHeader { reason: &'static str },
    #[error("the parameter `{name}` appears more than once")]
    DuplicateParameter { name: String },
    #[error("a malformed percent-encoded sequence at byte {position}")]
    InvalidPercentEncoding { position: usize },
    #[error("a decoded value is not valid UTF-8")]
    NotUtf8,
    #[error("the required parameter `{name}` is missing")]
    MissingParameter { name: &'static str },
    #[error("the signature method `{method}` is not supported")]
    UnsupportedSignatureMethod { method: String },
    #[error(
        "the signature method `{method}` is disabled (legacy HMAC-SHA1 must be enabled explicitly)"
    )]
    SignatureMethodDisabled { method: String },
    #[error("the signature does not match")]
    InvalidSignature,
    #[error("the timestamp is not a positive integer number of seconds")]
    MalformedTimestamp,
    #[error(
        "the timestamp is {skew_secs} s away from the server's clock (allowed: ±{window_secs} s)"
    )]
    TimestampOutOfWindow { skew_secs: i64, window_secs: u64 },
    #[error("the nonce is {len} characters long; at least {min} are required")]
    NonceTooShort { len: usize, min: usize },
    #[error("the nonce is {len} characters long; at most {max} are allowed")]
    NonceTooLong { len: usize, max: usize },
    #[error("oauth_version must be absent or \"1.0\"")]
    UnsupportedVersion,
    #[error("oauth_body_hash does not match the request body")]
    BodyHashMismatch,
    #[error("the URL is invalid: {reason}")]
    InvalidUrl { reason: &'static str },
}

impl OAuthError {
    /// A stable, greppable code for this failure.
    pub fn code(&self) -> &'static str {
        match self {
            Self::HeaderTooLarge { .. } => "header_too_large",
            Self::TooManyParameters { .. } => "too_many_parameters",
            Self::WrongScheme { .. } => "wrong_scheme",
            Self::MalformedHeader { .. } => "malformed_header",
            Self::DuplicateParameter { .. } => "duplicate_parameter",
            Self::InvalidPercentEncoding { .. } => "invalid_percent_encoding",
            Self::NotUtf8 => "not_utf8",
            Self::MissingParameter { .. } => "missing_parameter",
            Self::UnsupportedSignatureMethod { .. } => "unsupported_signature_method",
            Self::SignatureMethodDisabled { .. } => "signature_method_disabled",
            Self::InvalidSignature => "invalid_signature",
            Self::MalformedTimestamp => "malformed_timestamp",
            Self::TimestampOutOfWindow { .. } => "timestamp_out_of_window",
            Self::NonceTooShort { .. } => "nonce_too_short",
            Self::NonceTooLong { .. } => "nonce_too_long",
            Self::UnsupportedVersion => "unsupported_version",
            Self::BodyHashMismatch => "body_hash_mismatch",
            Self::InvalidUrl { .. } => "invalid_url",
        }
    }
}
