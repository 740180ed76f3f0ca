//! The client side: turn a request and credentials into an `Authorization: OAuth …` value.
//! Nonce and timestamp come from the caller, so signing is deterministic and testable.

use std::borrow::Cow;

use crate::base_string::{Explanation, NormalizedParams, RequestTarget};
use crate::encode::{percent_encode, percent_encode_into};
use crate::{OAuthError, SignatureMethod, SigningKey, body_hash};

/// The four TBA credentials (the token pair is absent in the request-token step).
#[derive(Clone, Copy)]
pub struct Credentials<'a> {
    pub consumer_key: &'a str,
    pub consumer_secret: &'a str,
    pub token: Option<&'a str>,
    pub token_secret: &'a str,
}

impl std::fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("consumer_key", &self.consumer_key)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// What to sign.
#[derive(Debug, Clone, Copy)]
pub struct ClientRequest<'a> {
    pub method: &'a str,
    /// The absolute URL, query included, exactly as it will be sent.
    pub url: &'a str,
    /// A form body (`application/x-www-form-urlencoded`), which is signed; other bodies are not.
    pub form_body: Option<&'a str>,
}

/// The per-request OAuth parameters.
#[derive(Debug, Clone, Copy)]
pub struct SignOptions<'a> {
    pub nonce: &'a str,
    pub timestamp: &'a str,
    pub realm: Option<&'a str>,
    pub method: SignatureMethod,
    /// `oauth_callback`, for the request-token step.
    pub callback: Option<&'a str>,
    /// `oauth_verifier`, for the access-token step.
    pub verifier: Option<&'a str>,
    /// When set, `oauth_body_hash` of this (non-form) body is added and signed.
    pub body_for_hash: Option<&'a [u8]>,
    /// Whether to send `oauth_version="1.0"` (optional on the wire).
    pub include_version: bool,
}

impl<'a> SignOptions<'a> {
    /// HMAC-SHA256 with `oauth_version="1.0"`, no realm, callback, verifier or body hash.
    pub fn new(nonce: &'a str, timestamp: &'a str) -> Self {
        Self {
            nonce,
            timestamp,
            realm: None,
            method: SignatureMethod::HmacSha256,
            callback: None,
            verifier: None,
            body_for_hash: None,
            include_version: true,
        }
    }
}

/// A signed request's header and the explanation of its base string.
#[derive(Debug, Clone)]
pub struct Signed {
    pub authorization: String,
    pub explanation: Explanation,
}

/// Signs `request` and returns the `Authorization` header value, with NetSuite's parameter order
/// (realm, consumer key, token, nonce, timestamp, method, version, …, signature).
pub fn sign(
    request: &ClientRequest<'_>,
    credentials: &Credentials<'_>,
    options: &SignOptions<'_>,
) -> Result<Signed, OAuthError> {
    let target = RequestTarget::from_url(request.method, request.url)?;
    let body_hash = options.body_for_hash.map(body_hash);
    let mut oauth: Vec<(&str, &str)> = Vec::with_capacity(10);
    oauth.push(("oauth_consumer_key", credentials.consumer_key));
    if let Some(token) = credentials.token {
        oauth.push(("oauth_token", token));
    }
    oauth.push(("oauth_nonce", options.nonce));
    oauth.push(("oauth_timestamp", options.timestamp));
    oauth.push(("oauth_signature_method", options.method.as_str()));
    if options.include_version {
        oauth.push(("oauth_version", "1.0"));
    }
    if let Some(callback) = options.callback {
        oauth.push(("oauth_callback", callback));
    }
    if let Some(verifier) = options.verifier {
        oauth.push(("oauth_verifier", verifier));
    }
    if let Some(hash) = body_hash.as_deref() {
        oauth.push(("oauth_body_hash", hash));
    }

    let params = NormalizedParams::collect(
        oauth.iter().copied(),
        target.query,
        request.form_body.map(str::as_bytes),
    )?;
    let explanation = Explanation::new(&target, &params);
    let key = SigningKey::oauth(
        options.method,
        credentials.consumer_secret,
        credentials.token_secret,
    );
    let signature = key.sign(explanation.base_string.as_bytes());

    let mut authorization = String::from("OAuth ");
    if let Some(realm) = options.realm {
        authorization.push_str("realm=\"");
        authorization.push_str(&percent_encode(realm));
        authorization.push_str("\", ");
    }
    for (name, value) in oauth
        .iter()
        .copied()
        .chain([("oauth_signature", signature.as_str())])
    {
        authorization.push_str(name);
        authorization.push_str("=\"");
        percent_encode_into(value.as_bytes(), &mut authorization);
        authorization.push_str("\", ");
    }
    authorization.truncate(authorization.len() - 2);
    Ok(Signed {
        authorization,
        explanation,
    })
}

/// The header parameters a signed request carries, for callers that assemble requests
/// themselves (e.g. to put them in a form body instead of the header).
pub fn header_pairs(authorization: &str) -> Result<Vec<(String, String)>, OAuthError> {
    let header = crate::AuthorizationHeader::parse(authorization)?;
    Ok(header
        .params()
        .map(|(n, v)| (n.to_owned(), Cow::Borrowed(v).into_owned()))
        .collect())
}
