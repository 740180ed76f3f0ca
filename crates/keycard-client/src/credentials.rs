//! The TBA credentials and the realm.

use zeroize::Zeroizing;

/// Consumer key and secret (the integration record), and optionally the token id and secret
/// (the access token; absent in the request-token step of the three-step flow). The secrets
/// are zeroized on drop and left out of `Debug`.
#[derive(Clone)]
pub struct Credentials {
    consumer_key: String,
    consumer_secret: Zeroizing<String>,
    token: Option<(String, Zeroizing<String>)>,
}

impl Credentials {
    /// The consumer half alone (enough for `/rest/requesttoken`).
    pub fn new(consumer_key: impl Into<String>, consumer_secret: impl Into<String>) -> Self {
        Self {
            consumer_key: consumer_key.into(),
            consumer_secret: Zeroizing::new(consumer_secret.into()),
            token: None,
        }
    }

    /// Adds (or replaces) the token id and secret.
    #[must_use]
    pub fn with_token(
        mut self,
        token_id: impl Into<String>,
        token_secret: impl Into<String>,
    ) -> Self {
        self.token = Some((token_id.into(), Zeroizing::new(token_secret.into())));
        self
    }

    pub fn consumer_key(&self) -> &str {
        &self.consumer_key
    }

    pub fn consumer_secret(&self) -> &str {
        &self.consumer_secret
    }

    pub fn token_id(&self) -> Option<&str> {
        self.token.as_ref().map(|(id, _)| id.as_str())
    }

    pub fn token_secret(&self) -> Option<&str> {
        self.token.as_ref().map(|(_, secret)| secret.as_str())
    }

    /// The protocol crate's borrowed view.
    pub fn as_protocol(&self) -> keycard_oauth1::client::Credentials<'_> {
        keycard_oauth1::client::Credentials {
            consumer_key: &self.consumer_key,
            consumer_secret: &self.consumer_secret,
            token: self.token_id(),
            token_secret: self.token_secret().unwrap_or_default(),
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("consumer_key", &self.consumer_key)
            .field("token_id", &self.token_id())
            .finish_non_exhaustive()
    }
}

/// The `realm` sent in the `Authorization` header: NetSuite's account id, e.g. `1234567` or
/// `1234567_SB1` (underscore, upper case; not the host form `1234567-sb1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Realm(String);

impl Realm {
    /// The realm exactly as given (a wrong form is sent as is, which diagnostics need).
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The realm for an account id written in any form: upper case, `-` → `_`
    /// (`1234567-sb1` → `1234567_SB1`).
    pub fn from_account(account: &str) -> Self {
        Self(account.trim().to_ascii_uppercase().replace('-', "_"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Realm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let c =
            Credentials::new("ck", "consumer-secret-value").with_token("tk", "token-secret-value");
        let shown = format!("{c:?}");
        assert!(shown.contains("ck") && shown.contains("tk"), "{shown}");
        assert!(!shown.contains("consumer-secret-value"));
        assert!(!shown.contains("token-secret-value"));
    }

    #[test]
    fn realm_from_the_host_form() {
        assert_eq!(Realm::from_account("1234567-sb1").as_str(), "1234567_SB1");
        assert_eq!(Realm::from_account("tstdrv123").as_str(), "TSTDRV123");
        assert_eq!(Realm::new("1234567-sb1").as_str(), "1234567-sb1");
    }
}
