//! The signature base string (RFC 5849 §3.4.1) as NetSuite applies it. This is the only
//! implementation in keycard: the verifier, the client signer and every diagnostic use it.
//!
//! `METHOD & enc(base-uri) & enc(sorted parameters)` where
//! - the method is upper case;
//! - the base URI has a lower-case scheme and host, drops the scheme's default port, keeps the
//!   path as sent (empty means `/`) and has no query or fragment;
//! - the parameters are the header's (minus `realm` and `oauth_signature`), the query's, and the
//!   body's only for `application/x-www-form-urlencoded`; each name and value is decoded, then
//!   RFC 3986-encoded, and the pairs are sorted by encoded name, then encoded value.

use std::borrow::Cow;

use crate::OAuthError;
use crate::encode::{encode_encoded_into, is_unreserved, percent_decode_bytes, percent_encode_into};

/// What a request was sent to: the parts of its URL that the base string uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestTarget<'a> {
    pub method: &'a str,
    pub scheme: &'a str,
    /// The host without the port; for IPv6, with its brackets.
    pub host: &'a str,
    pub port: Option<u16>,
    /// The path as sent, still percent-encoded.
    pub path: &'a str,
    /// The raw query string, without the `?`.
    pub query: Option<&'a str>,
}

impl<'a> RequestTarget<'a> {
    /// Splits an absolute `http`/`https` URL. The fragment, if any, is dropped.
    pub fn from_url(method: &'a str, url: &'a str) -> Result<Self, OAuthError> {
        let (scheme, rest) = url.split_once("://").ok_or(OAuthError::InvalidUrl {
            reason: "it is not absolute (scheme://host/path)",
        })?;
        if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
            return Err(OAuthError::InvalidUrl {
                reason: "the scheme must be http or https",
            });
        }
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path_and_query) = rest.split_at(authority_end);
        let (path, query) = match path_and_query.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (path_and_query, None),
        };
        Self::from_authority(method, scheme, authority, path, query)
    }

    /// Builds a target from a `host[:port]` authority, as a server reads it from `Host`.
    pub fn from_authority(
        method: &'a str,
        scheme: &'a str,
        authority: &'a str,
        path: &'a str,
        query: Option<&'a str>,
    ) -> Result<Self, OAuthError> {
        if authority.contains('@') {
            return Err(OAuthError::InvalidUrl {
                reason: "user information in the URL is not supported",
            });
        }
        let (host, port) = split_host_port(authority)?;
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(OAuthError::InvalidUrl {
                reason: "the method must be letters only",
            });
        }
        if !path.is_empty() && !path.starts_with('/') {
            return Err(OAuthError::InvalidUrl {
                reason: "the path must start with `/`",
            });
        }
        Ok(Self {
            method,
            scheme,
            host,
            port,
            path,
            query,
        })
    }

    /// The port that the base URI keeps: none when it is the scheme's default.
    fn significant_port(&self) -> Option<u16> {
        let default = if self.scheme.eq_ignore_ascii_case("https") {
            443
        } else {
            80
        };
        self.port.filter(|&port| port != default)
    }

    /// Appends the base string URI (not yet encoded for the base string) to `out`.
    pub fn write_base_uri(&self, out: &mut String) {
        push_lowercase(self.scheme, out);
        out.push_str("://");
        push_lowercase(self.host, out);
        if let Some(port) = self.significant_port() {
            out.push(':');
            out.push_str(&port.to_string());
        }
        out.push_str(if self.path.is_empty() { "/" } else { self.path });
    }
}

fn push_lowercase(value: &str, out: &mut String) {
    out.extend(value.chars().map(|c| c.to_ascii_lowercase()));
}

fn split_host_port(authority: &str) -> Result<(&str, Option<u16>), OAuthError> {
    let invalid_port = OAuthError::InvalidUrl {
        reason: "the port is not a number from 1 to 65535",
    };
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']').ok_or(OAuthError::InvalidUrl {
            reason: "an IPv6 host is missing its `]`",
        })?;
        let (host, rest) = authority.split_at(end + 1);
        match rest.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if rest.is_empty() => (host, None),
            None => return Err(invalid_port),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~[]:%".contains(&b))
    {
        return Err(OAuthError::InvalidUrl {
            reason: "the host is empty or has characters a host cannot have",
        });
    }
    let port = match port {
        None => None,
        Some(port) => Some(
            port.parse::<u16>()
                .ok()
                .filter(|&p| p != 0 && port.bytes().all(|b| b.is_ascii_digit()))
                .ok_or(invalid_port)?,
        ),
    };
    Ok((host, port))
}

/// Whether a request body with this `Content-Type` takes part in the signature.
pub fn is_form_content_type(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}

/// One normalized parameter: name and value, each RFC 3986-encoded.
type EncodedParam<'a> = (Cow<'a, str>, Cow<'a, str>);

fn encode_bytes(bytes: Cow<'_, [u8]>) -> Cow<'_, str> {
    match bytes {
        Cow::Borrowed(raw) if raw.iter().copied().all(is_unreserved) => {
            // Unreserved bytes are ASCII, so this cannot fail; the fallback is never taken.
            Cow::Borrowed(std::str::from_utf8(raw).unwrap_or_default())
        }
        other => {
            let mut out = String::with_capacity(other.len() * 3);
            percent_encode_into(&other, &mut out);
            Cow::Owned(out)
        }
    }
}

fn encode_str(value: &str) -> Cow<'_, str> {
    encode_bytes(Cow::Borrowed(value.as_bytes()))
}

/// Adds the pairs of `a=1&b=2` form or query text, decoded with `+` as space.
fn push_form_pairs<'a>(text: &'a [u8], params: &mut Vec<EncodedParam<'a>>) -> Result<(), OAuthError> {
    for pair in text.split(|&b| b == b'&').filter(|pair| !pair.is_empty()) {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (pair.get(..eq).unwrap_or_default(), pair.get(eq + 1..).unwrap_or_default()),
            None => (pair, &[][..]),
        };
        params.push((
            encode_bytes(percent_decode_bytes(name, true)?),
            encode_bytes(percent_decode_bytes(value, true)?),
        ));
    }
    Ok(())
}

/// The parameters that a base string signs, already normalized and sorted.
pub struct NormalizedParams<'a> {
    params: Vec<EncodedParam<'a>>,
}

impl<'a> NormalizedParams<'a> {
    /// Collects and sorts header, query and (form) body parameters. `header_params` are decoded
    /// values, such as [`crate::AuthorizationHeader::signed_params`] yields.
    pub fn collect<I>(
        header_params: I,
        query: Option<&'a str>,
        form_body: Option<&'a [u8]>,
    ) -> Result<Self, OAuthError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut params: Vec<EncodedParam<'a>> = Vec::with_capacity(16);
        for (name, value) in header_params {
            params.push((encode_str(name), encode_str(value)));
        }
        if let Some(query) = query {
            push_form_pairs(query.as_bytes(), &mut params)?;
        }
        if let Some(body) = form_body {
            push_form_pairs(body, &mut params)?;
        }
        params.sort_unstable();
        Ok(Self { params })
    }

    /// The encoded `(name, value)` pairs in signing order.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params.iter().map(|(n, v)| (n.as_ref(), v.as_ref()))
    }
}

/// Writes the base string for `target` and `params` into `out` (cleared first), so that a
/// caller can reuse one buffer across requests.
pub fn write_base_string(target: &RequestTarget<'_>, params: &NormalizedParams<'_>, out: &mut String) {
    out.clear();
    out.extend(target.method.chars().map(|c| c.to_ascii_uppercase()));
    out.push('&');
    let mut uri = String::with_capacity(64 + target.path.len());
    target.write_base_uri(&mut uri);
    percent_encode_into(uri.as_bytes(), out);
    out.push('&');
    for (index, (name, value)) in params.pairs().enumerate() {
        if index > 0 {
            out.push_str("%26");
        }
        encode_encoded_into(name, out);
        out.push_str("%3D");
        encode_encoded_into(value, out);
    }
}

/// The base string with the steps that built it, for `--explain` and the audit diagnosis.
/// It holds no secret: secrets are never parameters, and `oauth_signature` is not signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The base string URI (scheme, host, significant port, path).
    pub base_uri: String,
    /// The normalized parameters, encoded and sorted, as `(name, value)`.
    pub parameters: Vec<(String, String)>,
    pub base_string: String,
}

impl Explanation {
    pub fn new(target: &RequestTarget<'_>, params: &NormalizedParams<'_>) -> Self {
        let mut base_uri = String::new();
        target.write_base_uri(&mut base_uri);
        let mut base_string = String::new();
        write_base_string(target, params, &mut base_string);
        Self {
            base_uri,
            parameters: params
                .pairs()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect(),
            base_string,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(method: &str, url: &str, header: &[(&str, &str)], body: Option<&str>) -> String {
        let target = RequestTarget::from_url(method, url).unwrap();
        let params = NormalizedParams::collect(
            header.iter().copied(),
            target.query,
            body.map(str::as_bytes),
        )
        .unwrap();
        let mut out = String::new();
        write_base_string(&target, &params, &mut out);
        out
    }

    #[test]
    fn normalizes_scheme_host_port_and_method() {
        assert_eq!(base("get", "HTTPS://Example.COM:443", &[], None), "GET&https%3A%2F%2Fexample.com%2F&");
        assert_eq!(base("GET", "http://example.com:80/a", &[], None), "GET&http%3A%2F%2Fexample.com%2Fa&");
        assert_eq!(
            base("GET", "http://example.com:443/a", &[], None),
            "GET&http%3A%2F%2Fexample.com%3A443%2Fa&"
        );
        assert_eq!(
            base("GET", "https://[::1]:8443/p%20q#frag", &[], None),
            "GET&https%3A%2F%2F%5B%3A%3A1%5D%3A8443%2Fp%2520q&"
        );
    }

    #[test]
    fn decodes_then_encodes_then_sorts() {
        let got = base(
            "POST",
            "https://h/?b=2+x&a=%7e&a=1&c&d=",
            &[("oauth_z", "é")],
            Some("e=%2B"),
        );
        assert_eq!(got, "POST&https%3A%2F%2Fh%2F&a%3D1%26a%3D~%26b%3D2%2520x%26c%3D%26d%3D%26e%3D%252B%26oauth_z%3D%25C3%25A9");
    }

    #[test]
    fn malformed_query_is_an_error() {
        let target = RequestTarget::from_url("GET", "https://h/?a=%zz").unwrap();
        assert!(NormalizedParams::collect([], target.query, None).is_err());
    }

    #[test]
    fn rejects_bad_urls() {
        for url in [
            "example.com/path",
            "ftp://example.com/",
            "https://user@example.com/",
            "https://example.com:0/",
            "https://example.com:99999/",
            "https://example.com:8a/",
            "https://:80/",
            "https:///path",
            "https://[::1/",
            "https://[::1]x/",
            "https://ex ample.com/",
        ] {
            assert_eq!(RequestTarget::from_url("GET", url).unwrap_err().code(), "invalid_url", "{url}");
        }
        assert!(RequestTarget::from_url("GE T", "https://h/").is_err());
        assert!(RequestTarget::from_authority("GET", "https", "h", "nope", None).is_err());
    }

    #[test]
    fn only_form_bodies_are_signed() {
        assert!(is_form_content_type("application/x-www-form-urlencoded; charset=UTF-8"));
        assert!(is_form_content_type("Application/X-WWW-Form-Urlencoded"));
        assert!(!is_form_content_type("application/json"));
        assert!(!is_form_content_type("multipart/form-data"));
    }

    #[test]
    fn explanation_matches_the_base_string() {
        let target = RequestTarget::from_url("GET", "https://H:8080/x?q=1").unwrap();
        let params = NormalizedParams::collect([("oauth_nonce", "n")], target.query, None).unwrap();
        let explanation = Explanation::new(&target, &params);
        assert_eq!(explanation.base_uri, "https://h:8080/x");
        assert_eq!(
            explanation.parameters,
            [("oauth_nonce".into(), "n".into()), ("q".into(), "1".into())]
        );
        assert_eq!(
            explanation.base_string,
            "GET&https%3A%2F%2Fh%3A8080%2Fx&oauth_nonce%3Dn%26q%3D1"
        );
    }
}
