//! HMAC signatures: the OAuth key `enc(consumer_secret)&enc(token_secret)`, signing, and
//! constant-time verification. The keyed HMAC state is built once per key and cloned per
//! message, so a server can keep it per cached token.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::OAuthError;
use crate::encode::percent_encode_to_vec;

/// A signature method keycard can compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureMethod {
    HmacSha256,
    /// Ended by NetSuite in 2023.1; accepted only when legacy support is enabled.
    HmacSha1,
}

impl SignatureMethod {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::HmacSha256 => "HMAC-SHA256",
            Self::HmacSha1 => "HMAC-SHA1",
        }
    }

    /// Reads `oauth_signature_method`. HMAC-SHA1 is refused unless `allow_legacy_sha1`.
    pub fn parse(value: &str, allow_legacy_sha1: bool) -> Result<Self, OAuthError> {
        match value {
            "HMAC-SHA256" => Ok(Self::HmacSha256),
            "HMAC-SHA1" if allow_legacy_sha1 => Ok(Self::HmacSha1),
            "HMAC-SHA1" => Err(OAuthError::SignatureMethodDisabled {
                method: value.to_owned(),
            }),
            other => Err(OAuthError::UnsupportedSignatureMethod {
                method: other.chars().take(32).collect(),
            }),
        }
    }
}

impl std::fmt::Display for SignatureMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone)]
enum KeyedMac {
    Sha256(Hmac<Sha256>),
    Sha1(Hmac<Sha1>),
}

/// A keyed HMAC, ready to sign or verify many messages. Never printed.
#[derive(Clone)]
pub struct SigningKey {
    mac: KeyedMac,
}

/// The longest raw signature (SHA-256).
const MAX_SIGNATURE_LEN: usize = 32;

impl SigningKey {
    /// The OAuth 1.0a key `enc(consumer_secret)&enc(token_secret)`; `token_secret` is empty in the
    /// request-token step.
    pub fn oauth(method: SignatureMethod, consumer_secret: &str, token_secret: &str) -> Self {
        // Sized for the worst case so the buffer never reallocates and leaves a copy behind.
        let mut key = Zeroizing::new(Vec::with_capacity(
            3 * (consumer_secret.len() + token_secret.len()) + 1,
        ));
        percent_encode_to_vec(consumer_secret.as_bytes(), &mut key);
        key.push(b'&');
        percent_encode_to_vec(token_secret.as_bytes(), &mut key);
        Self::raw(method, &key)
    }

    /// A key used as given (the SOAP TokenPassport joins the raw secrets with `&`).
    pub fn raw(method: SignatureMethod, key: &[u8]) -> Self {
        // HMAC accepts keys of any length, so `new_from_slice` cannot fail; the fallback to the
        // block-size key path keeps this function total without a panic.
        let mac = match method {
            SignatureMethod::HmacSha256 => {
                KeyedMac::Sha256(Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| {
                    Hmac::<Sha256>::new(&hmac::digest::Key::<Hmac<Sha256>>::default())
                }))
            }
            SignatureMethod::HmacSha1 => {
                KeyedMac::Sha1(Hmac::<Sha1>::new_from_slice(key).unwrap_or_else(|_| {
                    Hmac::<Sha1>::new(&hmac::digest::Key::<Hmac<Sha1>>::default())
                }))
            }
        };
        Self { mac }
    }

    pub fn method(&self) -> SignatureMethod {
        match self.mac {
            KeyedMac::Sha256(_) => SignatureMethod::HmacSha256,
            KeyedMac::Sha1(_) => SignatureMethod::HmacSha1,
        }
    }

    /// The raw MAC of `message`, written into `out`; returns its length.
    fn mac_into(&self, message: &[u8], out: &mut [u8; MAX_SIGNATURE_LEN]) -> usize {
        fn finish<M: Mac + Clone>(mac: &M, message: &[u8], out: &mut [u8]) -> usize {
            let mut mac = mac.clone();
            mac.update(message);
            let tag = mac.finalize().into_bytes();
            for (slot, byte) in out.iter_mut().zip(tag.iter()) {
                *slot = *byte;
            }
            tag.len()
        }
        match &self.mac {
            KeyedMac::Sha256(mac) => finish(mac, message, out),
            KeyedMac::Sha1(mac) => finish(mac, message, out),
        }
    }

    /// The base64 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> String {
        let mut raw = [0u8; MAX_SIGNATURE_LEN];
        let len = self.mac_into(message, &mut raw);
        BASE64.encode(raw.get(..len).unwrap_or_default())
    }

    /// Checks a base64 `signature` of `message` in constant time.
    pub fn verify(&self, message: &[u8], signature: &str) -> Result<(), OAuthError> {
        let mut expected = [0u8; MAX_SIGNATURE_LEN];
        let len = self.mac_into(message, &mut expected);
        let mut provided = [0u8; MAX_SIGNATURE_LEN + 3];
        let decoded = BASE64
            .decode_slice(signature.as_bytes(), &mut provided)
            .map_err(|_| OAuthError::InvalidSignature)?;
        let matches = decoded == len
            && bool::from(subtle::ConstantTimeEq::ct_eq(
                expected.get(..len).unwrap_or_default(),
                provided.get(..len).unwrap_or_default(),
            ));
        if matches {
            Ok(())
        } else {
            Err(OAuthError::InvalidSignature)
        }
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("method", &self.method())
            .finish_non_exhaustive()
    }
}

/// `oauth_body_hash`: base64 of the SHA-1 of the body (the OAuth Request Body Hash draft).
pub fn body_hash(body: &[u8]) -> String {
    use sha1::Digest as _;
    BASE64.encode(Sha1::digest(body))
}

/// Checks a received `oauth_body_hash` against the body, in constant time.
pub fn check_body_hash(received: &str, body: &[u8]) -> Result<(), OAuthError> {
    let expected = body_hash(body);
    if bool::from(subtle::ConstantTimeEq::ct_eq(
        expected.as_bytes(),
        received.as_bytes(),
    )) {
        Ok(())
    } else {
        Err(OAuthError::BodyHashMismatch)
    }
}

/// The fields of a SOAP `tokenPassport` that its signature covers.
#[derive(Debug, Clone, Copy)]
pub struct TokenPassport<'a> {
    pub account: &'a str,
    pub consumer_key: &'a str,
    pub token: &'a str,
    pub nonce: &'a str,
    pub timestamp: &'a str,
}

impl TokenPassport<'_> {
    /// `account&consumerKey&token&nonce&timestamp`, raw values (no percent-encoding).
    pub fn base_string(&self) -> String {
        [
            self.account,
            self.consumer_key,
            self.token,
            self.nonce,
            self.timestamp,
        ]
        .join("&")
    }

    /// The passport's key: `consumerSecret&tokenSecret`, raw.
    pub fn signing_key(
        method: SignatureMethod,
        consumer_secret: &str,
        token_secret: &str,
    ) -> SigningKey {
        let key = Zeroizing::new(format!("{consumer_secret}&{token_secret}"));
        SigningKey::raw(method, key.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_methods_with_the_legacy_switch() {
        assert_eq!(
            SignatureMethod::parse("HMAC-SHA256", false),
            Ok(SignatureMethod::HmacSha256)
        );
        assert_eq!(
            SignatureMethod::parse("HMAC-SHA1", true),
            Ok(SignatureMethod::HmacSha1)
        );
        assert_eq!(
            SignatureMethod::parse("HMAC-SHA1", false)
                .unwrap_err()
                .code(),
            "signature_method_disabled"
        );
        for other in ["PLAINTEXT", "RSA-SHA1", "hmac-sha256", ""] {
            assert_eq!(
                SignatureMethod::parse(other, true).unwrap_err().code(),
                "unsupported_signature_method"
            );
        }
    }

    #[test]
    fn verify_rejects_tampering_truncation_and_garbage() {
        let key = SigningKey::oauth(SignatureMethod::HmacSha256, "cs", "ts");
        let signature = key.sign(b"message");
        assert_eq!(key.verify(b"message", &signature), Ok(()));
        assert!(key.verify(b"messagE", &signature).is_err());
        assert!(
            key.verify(b"message", &signature[..signature.len() - 4])
                .is_err()
        );
        assert!(key.verify(b"message", "not base64!").is_err());
        assert!(key.verify(b"message", "").is_err());
        let long = format!("{signature}{signature}");
        assert!(key.verify(b"message", &long).is_err());
        let other = SigningKey::oauth(SignatureMethod::HmacSha256, "cs", "tt");
        assert!(other.verify(b"message", &signature).is_err());
        let sha1 = SigningKey::oauth(SignatureMethod::HmacSha1, "cs", "ts");
        assert!(sha1.verify(b"message", &signature).is_err());
    }

    #[test]
    fn key_encodes_secrets() {
        // `a b` must become `a%20b` in the key: a raw key of that text signs differently.
        let encoded = SigningKey::oauth(SignatureMethod::HmacSha256, "a b", "");
        let raw = SigningKey::raw(SignatureMethod::HmacSha256, b"a%20b&");
        assert_eq!(encoded.sign(b"m"), raw.sign(b"m"));
    }

    #[test]
    fn body_hash_of_empty_body() {
        // SHA-1 of the empty string, base64.
        assert_eq!(body_hash(b""), "2jmj7l5rSw0yVb/vlWAYkK/YBwk=");
        assert_eq!(check_body_hash("2jmj7l5rSw0yVb/vlWAYkK/YBwk=", b""), Ok(()));
        assert_eq!(
            check_body_hash("2jmj7l5rSw0yVb/vlWAYkK/YBwk=", b"x"),
            Err(OAuthError::BodyHashMismatch)
        );
    }

    #[test]
    fn debug_hides_the_key() {
        let key = SigningKey::oauth(SignatureMethod::HmacSha256, "supersecret", "tokensecret");
        let debug = format!("{key:?}");
        assert!(
            !debug.contains("supersecret") && !debug.contains("tokensecret"),
            "{debug}"
        );
    }
}
