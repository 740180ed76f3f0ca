//! Parsing of `Authorization: OAuth …` (RFC 5849 §3.5.1), leniently as real clients send it:
//! scheme in any case, pairs in any order, `,` with or without spaces, values quoted (or bare)
//! and percent-decoded. `realm` is kept apart because it is never signed.

use std::borrow::Cow;

use crate::OAuthError;
use crate::encode::percent_decode;

/// The longest Authorization header accepted, in bytes.
pub const MAX_HEADER_LEN: usize = 8 * 1024;
/// The most parameters accepted in one header.
pub const MAX_HEADER_PARAMS: usize = 32;

/// The parameters of an `OAuth` Authorization header, decoded, in the order they were sent.
/// Values borrow from the header unless they needed decoding.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthorizationHeader<'a> {
    realm: Option<Cow<'a, str>>,
    params: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> AuthorizationHeader<'a> {
    /// Parses the value of an Authorization header whose scheme must be `OAuth`.
    pub fn parse(value: &'a str) -> Result<Self, OAuthError> {
        let pairs = parse_scheme_pairs(value, "OAuth")?;
        let mut realm = None;
        let mut params: Vec<(Cow<'a, str>, Cow<'a, str>)> = Vec::with_capacity(pairs.len());
        for (name, value) in pairs {
            if name == "realm" {
                if realm.is_some() {
                    return Err(OAuthError::DuplicateParameter { name: name.into() });
                }
                realm = Some(value);
                continue;
            }
            if params.iter().any(|(existing, _)| existing.as_ref() == name) {
                return Err(OAuthError::DuplicateParameter { name: name.into() });
            }
            params.push((Cow::Borrowed(name), value));
        }
        Ok(Self { realm, params })
    }

    /// Builds a header from parameters already in hand (the client signer's path).
    pub fn from_params(realm: Option<&'a str>, params: Vec<(Cow<'a, str>, Cow<'a, str>)>) -> Self {
        Self {
            realm: realm.map(Cow::Borrowed),
            params,
        }
    }

    /// The `realm`, as sent (decoded).
    pub fn realm(&self) -> Option<&str> {
        self.realm.as_deref()
    }

    /// The value of parameter `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(existing, _)| existing.as_ref() == name)
            .map(|(_, value)| value.as_ref())
    }

    /// The value of a parameter that must be present.
    pub fn require(&self, name: &'static str) -> Result<&str, OAuthError> {
        self.get(name).ok_or(OAuthError::MissingParameter { name })
    }

    /// Every parameter except `realm`, in the order sent.
    pub fn params(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params.iter().map(|(n, v)| (n.as_ref(), v.as_ref()))
    }

    /// The parameters that take part in the signature: all but `realm` and `oauth_signature`.
    pub fn signed_params(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params().filter(|(name, _)| *name != "oauth_signature")
    }

    /// The parameter names, for diagnostics (never the values).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.params.iter().map(|(n, _)| n.as_ref())
    }
}

/// Never prints values: the header carries the signature.
impl std::fmt::Debug for AuthorizationHeader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizationHeader")
            .field("realm", &self.realm)
            .field("names", &self.names().collect::<Vec<_>>())
            .finish()
    }
}

/// Splits `<scheme> name="value", …` into decoded pairs, with the shared limits. Used for both the
/// `OAuth` and the `NLAuth` schemes.
pub(crate) fn parse_scheme_pairs<'a>(
    value: &'a str,
    scheme: &'static str,
) -> Result<Vec<(&'a str, Cow<'a, str>)>, OAuthError> {
    if value.len() > MAX_HEADER_LEN {
        return Err(OAuthError::HeaderTooLarge {
            limit: MAX_HEADER_LEN,
        });
    }
    let value = value.trim_start();
    let rest = value
        .get(..scheme.len())
        .filter(|prefix| prefix.eq_ignore_ascii_case(scheme))
        .and_then(|_| value.get(scheme.len()..))
        .ok_or(OAuthError::WrongScheme { expected: scheme })?;
    // The scheme must be a whole word: `OAuthX` is another scheme.
    if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return Err(OAuthError::WrongScheme { expected: scheme });
    }
    let mut pairs = Vec::new();
    let mut rest = rest.trim_start_matches([' ', '\t']);
    while !rest.is_empty() {
        if pairs.len() == MAX_HEADER_PARAMS {
            return Err(OAuthError::TooManyParameters {
                limit: MAX_HEADER_PARAMS,
            });
        }
        let (name, after_name) = rest.split_once('=').ok_or(OAuthError::MalformedHeader {
            reason: "a parameter has no `=`",
        })?;
        let name = name.trim_matches([' ', '\t']);
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(OAuthError::MalformedHeader {
                reason: "a parameter name is empty or has characters outside the token set",
            });
        }
        let after_name = after_name.trim_start_matches([' ', '\t']);
        let (raw_value, after_value) = if let Some(quoted) = after_name.strip_prefix('"') {
            let end = quoted.find('"').ok_or(OAuthError::MalformedHeader {
                reason: "a quoted value is not closed",
            })?;
            (
                quoted.get(..end).unwrap_or_default(),
                quoted.get(end + 1..).unwrap_or_default(),
            )
        } else {
            let end = after_name.find([',', ' ', '\t']).unwrap_or(after_name.len());
            after_name.split_at(end)
        };
        let decoded = percent_decode(raw_value)?;
        pairs.push((name, decoded));
        let after_value = after_value.trim_start_matches([' ', '\t']);
        rest = match after_value.strip_prefix(',') {
            Some(next) => next.trim_start_matches([' ', '\t']),
            None if after_value.is_empty() => after_value,
            None => {
                return Err(OAuthError::MalformedHeader {
                    reason: "parameters must be separated by `,`",
                });
            }
        };
    }
    Ok(pairs)
}

/// RFC 9110 token characters, the set a parameter name may use.
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_any_order_spacing_and_case() {
        let header = AuthorizationHeader::parse(
            "oauth oauth_nonce=\"abc%2Bdef\",realm=\"1234567_SB1\" ,  oauth_token=\"t\",oauth_version=1.0",
        )
        .unwrap();
        assert_eq!(header.realm(), Some("1234567_SB1"));
        assert_eq!(header.get("oauth_nonce"), Some("abc+def"));
        assert_eq!(header.get("oauth_token"), Some("t"));
        assert_eq!(header.get("oauth_version"), Some("1.0"));
        assert_eq!(
            header.names().collect::<Vec<_>>(),
            ["oauth_nonce", "oauth_token", "oauth_version"]
        );
    }

    #[test]
    fn signed_params_exclude_realm_and_signature_but_keep_unknown_ones() {
        let header = AuthorizationHeader::parse(
            r#"OAuth realm="1", oauth_signature="s", oauth_body_hash="h", oauth_consumer_key="k""#,
        )
        .unwrap();
        let signed: Vec<_> = header.signed_params().collect();
        assert_eq!(signed, [("oauth_body_hash", "h"), ("oauth_consumer_key", "k")]);
    }

    #[test]
    fn rejects_duplicates_including_realm() {
        for input in [
            r#"OAuth oauth_nonce="a", oauth_nonce="b""#,
            r#"OAuth realm="a", realm="b""#,
        ] {
            assert!(matches!(
                AuthorizationHeader::parse(input),
                Err(OAuthError::DuplicateParameter { .. })
            ));
        }
    }

    #[test]
    fn rejects_other_schemes_and_glued_schemes() {
        for input in ["Bearer abc", "OAuthx a=\"b\"", "", "NLAuth nlauth_account=1"] {
            assert_eq!(
                AuthorizationHeader::parse(input).unwrap_err().code(),
                "wrong_scheme",
                "{input}"
            );
        }
        assert!(AuthorizationHeader::parse("OAuth").unwrap().params().next().is_none());
    }

    #[test]
    fn rejects_malformed_shapes() {
        for input in [
            r#"OAuth oauth_nonce"#,
            r#"OAuth oauth_nonce="abc"#,
            r#"OAuth ="abc""#,
            r#"OAuth oauth_nonce="a" oauth_token="b""#,
            r#"OAuth oa uth="a""#,
            r#"OAuth "x"="a""#,
        ] {
            assert_eq!(
                AuthorizationHeader::parse(input).unwrap_err().code(),
                "malformed_header",
                "{input}"
            );
        }
    }

    #[test]
    fn rejects_bad_encoding_and_non_utf8() {
        assert_eq!(
            AuthorizationHeader::parse(r#"OAuth oauth_nonce="ab%zz""#)
                .unwrap_err()
                .code(),
            "invalid_percent_encoding"
        );
        assert_eq!(
            AuthorizationHeader::parse(r#"OAuth oauth_nonce="ab%C3%28""#).unwrap_err(),
            OAuthError::NotUtf8
        );
    }

    #[test]
    fn enforces_limits() {
        let long = format!("OAuth oauth_nonce=\"{}\"", "a".repeat(MAX_HEADER_LEN));
        assert_eq!(
            AuthorizationHeader::parse(&long).unwrap_err().code(),
            "header_too_large"
        );
        let many: Vec<String> = (0..=MAX_HEADER_PARAMS).map(|i| format!("p{i}=\"v\"")).collect();
        let many = format!("OAuth {}", many.join(","));
        assert_eq!(
            AuthorizationHeader::parse(&many).unwrap_err().code(),
            "too_many_parameters"
        );
    }

    #[test]
    fn debug_never_shows_values() {
        let header =
            AuthorizationHeader::parse(r#"OAuth oauth_signature="SECRETSIG", oauth_token="tok""#)
                .unwrap();
        let debug = format!("{header:?}");
        assert!(!debug.contains("SECRETSIG") && !debug.contains("tok\""), "{debug}");
    }
}
