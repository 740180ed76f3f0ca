//! Server-side signature verification of a parsed request: the base string is rebuilt from what
//! arrived and checked against `oauth_signature` with a key the caller looked up.

use crate::base_string::{Explanation, NormalizedParams, RequestTarget, write_base_string};
use crate::{AuthorizationHeader, OAuthError, Protocol, SigningKey};

/// A signed request as the server received it.
#[derive(Debug, Clone, Copy)]
pub struct IncomingRequest<'r, 'h> {
    pub target: RequestTarget<'r>,
    pub header: &'r AuthorizationHeader<'h>,
    /// The body, only when its content type is `application/x-www-form-urlencoded`.
    pub form_body: Option<&'r [u8]>,
}

impl IncomingRequest<'_, '_> {
    /// `then` with the request's normalized parameters.
    fn with_params<R>(
        &self,
        then: impl FnOnce(&NormalizedParams<'_>) -> R,
    ) -> Result<R, OAuthError> {
        NormalizedParams::with_parsed(self.header, self.target.query, self.form_body, then)
    }

    /// Checks `oauth_signature` in constant time. `buffer` is reused for the base string.
    pub fn verify_signature(
        &self,
        key: &SigningKey,
        buffer: &mut Vec<u8>,
    ) -> Result<(), OAuthError> {
        let signature = self.header.require(Protocol::Signature)?;
        self.with_params(|params| write_base_string(&self.target, params, buffer))?;
        key.verify(buffer, signature)
    }

    /// The base string and its parts, for the audit trail's diagnosis.
    pub fn explain(&self) -> Result<Explanation, OAuthError> {
        self.with_params(|params| Explanation::new(&self.target, params))
    }
}
