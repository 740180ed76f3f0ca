//! OAuth 1.0a as NetSuite Token-Based Authentication speaks it: RFC 3986 encoding, the
//! `Authorization: OAuth` and `NLAuth` headers, the signature base string, HMAC-SHA256
//! signatures (HMAC-SHA1 behind a legacy switch), `oauth_body_hash`, the SOAP TokenPassport
//! signature, the timestamp/nonce/version rules, and a client-side signer.
//!
//! This crate does no I/O, reads no clock and draws no randomness: `now`, nonces and
//! timestamps are parameters. It never panics on any input; every failure is an
//! [`OAuthError`] with a stable [`code`](OAuthError::code). There is exactly one base-string
//! implementation ([`base_string`]); the server, the SDK and the CLI all go through it.

pub mod base_string;
pub mod client;
pub mod encode;
mod error;
pub mod header;
pub mod nlauth;
pub mod rules;
pub mod signature;
pub mod verify;

pub use base_string::{
    Explanation, NormalizedParams, RequestTarget, is_form_content_type, split_authority,
};
pub use error::OAuthError;
pub use header::{AuthorizationHeader, Protocol};
pub use nlauth::NlAuthHeader;
pub use rules::Rules;
pub use signature::{SignatureMethod, SigningKey, TokenPassport, body_hash, check_body_hash};
pub use verify::IncomingRequest;
