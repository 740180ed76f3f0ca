//! Protocol tests: the spec and NetSuite vectors, vectors from independent client libraries,
//! and property tests. One test binary; one module per source of truth.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod client_vectors;
mod properties;
mod spec_vectors;

use keycard_oauth1::{
    AuthorizationHeader, IncomingRequest, RequestTarget, SignatureMethod, SigningKey,
};

/// A request as it crossed the wire, and what its signature must be.
pub struct Vector<'a> {
    pub name: &'a str,
    pub method: &'a str,
    pub url: &'a str,
    pub authorization: &'a str,
    /// The body, when its content type is form-urlencoded (it is then signed).
    pub form_body: Option<&'a str>,
    pub consumer_secret: &'a str,
    pub token_secret: &'a str,
    pub key_method: SignatureMethod,
    pub base_string: Option<&'a str>,
    pub signature: &'a str,
}

/// The one check every vector goes through: parse the header as the server does, rebuild the
/// base string, compare it, recompute the signature, and verify it in constant time.
pub fn check(vector: &Vector<'_>) {
    let name = vector.name;
    let header = AuthorizationHeader::parse(vector.authorization)
        .unwrap_or_else(|e| panic!("{name}: header does not parse: {e}"));
    let target = RequestTarget::from_url(vector.method, vector.url)
        .unwrap_or_else(|e| panic!("{name}: URL does not parse: {e}"));
    let request = IncomingRequest {
        target,
        header: &header,
        form_body: vector.form_body.map(str::as_bytes),
    };
    let explanation = request
        .explain()
        .unwrap_or_else(|e| panic!("{name}: base string fails: {e}"));
    if let Some(expected) = vector.base_string {
        assert_eq!(explanation.base_string, expected, "{name}: base string");
    }
    let key = SigningKey::oauth(
        vector.key_method,
        vector.consumer_secret,
        vector.token_secret,
    );
    assert_eq!(
        key.sign(explanation.base_string.as_bytes()),
        vector.signature,
        "{name}: signature"
    );
    let mut buffer = Vec::new();
    if header.get("oauth_signature").is_some() {
        request
            .verify_signature(&key, &mut buffer)
            .unwrap_or_else(|e| panic!("{name}: the header's own signature does not verify: {e}"));
    }
}
