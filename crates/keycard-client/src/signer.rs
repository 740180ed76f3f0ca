//! The signer: credentials + realm + request → `Authorization` header, through
//! [`keycard_oauth1::client::sign`]. Pure: nonce and timestamp are arguments.

use keycard_oauth1::client::{ClientRequest, SignOptions, Signed, sign};
use keycard_oauth1::{OAuthError, SignatureMethod};

use crate::{Credentials, Realm};

/// What to sign besides the credentials.
#[derive(Debug, Clone, Copy, Default)]
pub struct SignRequest<'a> {
    pub method: &'a str,
    /// The absolute URL, query included, exactly as it will be sent.
    pub url: &'a str,
    /// An `application/x-www-form-urlencoded` body; its fields are signed.
    pub form_body: Option<&'a str>,
    /// A non-form body to cover with `oauth_body_hash`.
    pub body_for_hash: Option<&'a [u8]>,
    /// `oauth_callback` (request-token step).
    pub callback: Option<&'a str>,
    /// `oauth_verifier` (access-token step).
    pub verifier: Option<&'a str>,
}

/// Signs requests with one set of credentials and realm.
///
/// ```
/// use keycard_client::{Credentials, Realm, SignRequest, Signer};
///
/// let signer = Signer::new(
///     Credentials::new("ck", "cs").with_token("tk", "ts"),
///     Some(Realm::new("1234567")),
/// );
/// let request = SignRequest {
///     method: "GET",
///     url: "https://1234567.restlets.api.netsuite.com/rest/tokeninfo",
///     ..SignRequest::default()
/// };
/// // The same nonce and timestamp always give the same header.
/// let signed = signer.sign(&request, "abcdefghij", 1_700_000_000).unwrap();
/// assert!(signed.authorization.starts_with("OAuth realm=\"1234567\""));
/// assert!(signed.explanation.base_string.starts_with("GET&https%3A%2F%2F1234567"));
/// ```
#[derive(Debug, Clone)]
pub struct Signer {
    credentials: Credentials,
    realm: Option<Realm>,
    method: SignatureMethod,
}

impl Signer {
    /// HMAC-SHA256, NetSuite's method.
    pub fn new(credentials: Credentials, realm: Option<Realm>) -> Self {
        Self {
            credentials,
            realm,
            method: SignatureMethod::HmacSha256,
        }
    }

    /// Another signature method (HMAC-SHA1 only for servers that still allow it).
    #[must_use]
    pub fn with_method(mut self, method: SignatureMethod) -> Self {
        self.method = method;
        self
    }

    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    pub fn realm(&self) -> Option<&Realm> {
        self.realm.as_ref()
    }

    pub fn method(&self) -> SignatureMethod {
        self.method
    }

    /// Signs `request` with `nonce` and `timestamp` (Unix seconds).
    pub fn sign(
        &self,
        request: &SignRequest<'_>,
        nonce: &str,
        timestamp: u64,
    ) -> Result<Signed, OAuthError> {
        let timestamp = timestamp.to_string();
        let mut options = SignOptions::new(nonce, &timestamp);
        options.realm = self.realm.as_ref().map(Realm::as_str);
        options.method = self.method;
        options.callback = request.callback;
        options.verifier = request.verifier;
        options.body_for_hash = request.body_for_hash;
        sign(
            &ClientRequest {
                method: request.method,
                url: request.url,
                form_body: request.form_body,
            },
            &self.credentials.as_protocol(),
            &options,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signer_is_the_protocol_crates_signer() {
        let credentials = Credentials::new("ck", "cs").with_token("tk", "ts");
        let signer = Signer::new(credentials.clone(), Some(Realm::new("1234567")));
        let url = "http://localhost:8910/rest/revoketoken?token=tk";
        let ours = signer
            .sign(
                &SignRequest {
                    method: "GET",
                    url,
                    ..SignRequest::default()
                },
                "nonce123",
                1_700_000_000,
            )
            .unwrap();
        let mut options = SignOptions::new("nonce123", "1700000000");
        options.realm = Some("1234567");
        let direct = sign(
            &ClientRequest {
                method: "GET",
                url,
                form_body: None,
            },
            &credentials.as_protocol(),
            &options,
        )
        .unwrap();
        assert_eq!(ours.authorization, direct.authorization);
        // A different timestamp is a different signature.
        let later = signer
            .sign(
                &SignRequest {
                    method: "GET",
                    url,
                    ..SignRequest::default()
                },
                "nonce123",
                1_700_000_001,
            )
            .unwrap();
        assert_ne!(ours.authorization, later.authorization);
    }
}
