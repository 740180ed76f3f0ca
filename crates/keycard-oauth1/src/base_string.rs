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
use crate::encode::{all_unreserved, percent_decode_bytes, percent_encode_to_vec};

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
        if authority.as_bytes().contains(&b'@') {
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

/// An authority's host and what follows it: an IPv6 literal through its `]` (`None` when
/// it has none), else everything before the last `:`; the rest is empty or starts with `:`
/// (after a `]`, anything). The one split of `Host` for the base string and the server's
/// routing. Searched as bytes (`:` and `]` are ASCII, so never part of another character):
/// `str`'s character searches cost `CharSearcher` and a byte-wise `memrchr` on every request
/// (with the account id's search, 294 instructions a request, counted).
pub fn split_authority(authority: &str) -> Option<(&str, &str)> {
    let bytes = authority.as_bytes();
    let end = if bytes.first() == Some(&b'[') {
        bytes.iter().position(|&b| b == b']')? + 1
    } else {
        bytes
            .iter()
            .rposition(|&b| b == b':')
            .unwrap_or(bytes.len())
    };
    Some((authority.get(..end)?, authority.get(end..)?))
}

/// Splits and checks `host[:port]` ([`split_authority`]); the host's bytes are matched
/// against its set rather than looked up in a slice.
fn split_host_port(authority: &str) -> Result<(&str, Option<u16>), OAuthError> {
    let invalid_port = OAuthError::InvalidUrl {
        reason: "the port is not a number from 1 to 65535",
    };
    let (host, rest) = split_authority(authority).ok_or(OAuthError::InvalidUrl {
        reason: "an IPv6 host is missing its `]`",
    })?;
    let port = match rest.strip_prefix(':') {
        // RFC 3986 §6.2.3: an empty port is the scheme's default (`host:` signs as `host`).
        Some("") => None,
        Some(port) => Some(port),
        None if rest.is_empty() => None,
        None => return Err(invalid_port),
    };
    // `:` and `%` (a zone) only inside an IPv6 literal's brackets: `a:b:80` is no host.
    let bracketed = host.starts_with('[') && host.ends_with(']');
    if host.is_empty()
        || !host.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'-' | b'.' | b'_' | b'~')
                || (bracketed && matches!(b, b'[' | b']' | b':' | b'%'))
        })
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
    content_type.split(';').next().is_some_and(|mime| {
        mime.trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    })
}

/// One normalized parameter: name and value, each RFC 3986-encoded (so ASCII).
///
/// Field order is sort order. `prefix`, the first eight bytes of the name as a big-endian number,
/// orders names as their bytes do (names that tie on zero padding fall through to `name`), so
/// most comparisons end on one integer. `has_escapes` (whether name or value holds a `%`) follows
/// from name and value, so it never decides an order; it lets the writer skip searching for `%`.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct EncodedParam<'a> {
    prefix: u64,
    name: Cow<'a, [u8]>,
    value: Cow<'a, [u8]>,
    has_escapes: bool,
}

impl<'a> EncodedParam<'a> {
    fn new(
        (name, name_escaped): (Cow<'a, [u8]>, bool),
        (value, value_escaped): (Cow<'a, [u8]>, bool),
    ) -> Self {
        let mut prefix = [0u8; 8];
        for (slot, byte) in prefix.iter_mut().zip(name.iter()) {
            *slot = *byte;
        }
        Self {
            prefix: u64::from_be_bytes(prefix),
            name,
            value,
            has_escapes: name_escaped || value_escaped,
        }
    }
}

/// Encodes already-decoded bytes, borrowing them when nothing needs escaping (the usual case);
/// the flag says whether anything was escaped.
fn encode_decoded(decoded: Cow<'_, [u8]>) -> (Cow<'_, [u8]>, bool) {
    if all_unreserved(&decoded) {
        return (decoded, false);
    }
    let mut out = Vec::with_capacity(decoded.len() * 3);
    percent_encode_to_vec(&decoded, &mut out);
    (Cow::Owned(out), true)
}

/// Normalizes one raw form or query component: decode (`+` is a space), then encode. Text made
/// only of unreserved bytes is already in normal form, so one scan suffices.
fn normalize_form_component(raw: &[u8]) -> Result<(Cow<'_, [u8]>, bool), OAuthError> {
    if all_unreserved(raw) {
        return Ok((Cow::Borrowed(raw), false));
    }
    Ok(encode_decoded(percent_decode_bytes(raw, true)?))
}

/// Adds the pairs of `a=1&b=2` form or query text.
fn push_form_pairs<'a>(text: &'a [u8], params: &mut Params<'a>) -> Result<(), OAuthError> {
    for pair in text.split(|&b| b == b'&').filter(|pair| !pair.is_empty()) {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (
                pair.get(..eq).unwrap_or_default(),
                pair.get(eq + 1..).unwrap_or_default(),
            ),
            None => (pair, &[][..]),
        };
        let name = normalize_form_component(name)?;
        // RFC 5849 §3.4.1.3.1: oauth_signature is never signed, wherever it is sent.
        if name.0.as_ref() == b"oauth_signature" {
            continue;
        }
        params.push(EncodedParam::new(name, normalize_form_component(value)?));
    }
    Ok(())
}

/// A request's parameters while they are normalized: on the stack up to twelve (a signed
/// request has seven protocol parameters; a list in a heap allocation was one of a tokeninfo
/// request's ten).
type Params<'a> = smallvec::SmallVec<[EncodedParam<'a>; 12]>;

/// The parameters that a base string signs, already normalized and sorted.
pub struct NormalizedParams<'a> {
    params: Params<'a>,
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
        let unknown = header_params
            .into_iter()
            .map(|(name, value)| (name, value, false));
        Self::collect_marked(unknown, query, form_body)
    }

    /// [`collect`](Self::collect) for a parsed header, whose parameters say which of them are
    /// only unreserved bytes (their own normal form, so not scanned again), handed to `then`.
    /// A closure rather than a return: the list (on the stack, some 600 bytes) stays in this
    /// frame, where a `Result` of it was copied twice on its way out (0.3% of the server's CPU
    /// at max).
    pub(crate) fn with_parsed<R>(
        header: &'a crate::AuthorizationHeader<'_>,
        query: Option<&'a str>,
        form_body: Option<&'a [u8]>,
        then: impl FnOnce(&NormalizedParams<'a>) -> R,
    ) -> Result<R, OAuthError> {
        let mut collected = Self::empty();
        match header
            .signed_protocol_params_sorted()
            .filter(|_| query.is_none() && form_body.is_none())
        {
            // Already in order: nothing to sort (about 350 instructions a request, counted).
            Some(sorted) => collected.push_header(sorted),
            None => collected.fill(header.signed_params_marked(), query, form_body)?,
        }
        Ok(then(&collected))
    }

    /// Header parameters come with whether they are known to be only unreserved bytes.
    fn collect_marked(
        header_params: impl Iterator<Item = (&'a str, &'a str, bool)>,
        query: Option<&'a str>,
        form_body: Option<&'a [u8]>,
    ) -> Result<Self, OAuthError> {
        let mut collected = Self::empty();
        collected.fill(header_params, query, form_body)?;
        Ok(collected)
    }

    fn empty() -> Self {
        Self {
            params: Params::new(),
        }
    }

    /// Adds the header's, the query's and the form body's parameters, normalized, and sorts.
    fn fill(
        &mut self,
        header_params: impl Iterator<Item = (&'a str, &'a str, bool)>,
        query: Option<&'a str>,
        form_body: Option<&'a [u8]>,
    ) -> Result<(), OAuthError> {
        self.push_header(header_params);
        let params = &mut self.params;
        if let Some(query) = query {
            push_form_pairs(query.as_bytes(), params)?;
        }
        if let Some(body) = form_body {
            push_form_pairs(body, params)?;
        }
        params.sort_unstable();
        Ok(())
    }

    /// Adds header parameters, normalized, in the order given.
    fn push_header(&mut self, header_params: impl Iterator<Item = (&'a str, &'a str, bool)>) {
        for (name, value, plain) in header_params {
            let (name, value) = (
                Cow::Borrowed(name.as_bytes()),
                Cow::Borrowed(value.as_bytes()),
            );
            self.params.push(if plain {
                EncodedParam::new((name, false), (value, false))
            } else {
                EncodedParam::new(encode_decoded(name), encode_decoded(value))
            });
        }
    }

    /// The encoded `(name, value)` pairs in signing order, as bytes (always ASCII).
    pub fn byte_pairs(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.params
            .iter()
            .map(|param| (param.name.as_ref(), param.value.as_ref()))
    }

    /// The encoded `(name, value)` pairs in signing order.
    pub fn pairs(&self) -> impl Iterator<Item = (String, String)> + '_ {
        // Encoded text is ASCII, so the lossy conversion never replaces anything.
        self.byte_pairs().map(|(n, v)| {
            (
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
    }
}

/// Writes the base string for `target` and `params` into `out` (cleared first), so that a
/// caller can reuse one buffer across requests. The output is ASCII.
pub fn write_base_string(
    target: &RequestTarget<'_>,
    params: &NormalizedParams<'_>,
    out: &mut Vec<u8>,
) {
    out.clear();
    out.reserve(512);
    out.extend(target.method.bytes().map(|b| b.to_ascii_uppercase()));
    out.push(b'&');
    write_encoded_base_uri(target, out);
    out.push(b'&');
    for (index, param) in params.params.iter().enumerate() {
        if index > 0 {
            out.extend_from_slice(b"%26");
        }
        if param.has_escapes {
            encode_encoded(&param.name, out);
            out.extend_from_slice(b"%3D");
            encode_encoded(&param.value, out);
        } else {
            out.extend_from_slice(&param.name);
            out.extend_from_slice(b"%3D");
            out.extend_from_slice(&param.value);
        }
    }
}

/// The second encoding of an encoded name or value: it only holds unreserved bytes and `%`, so
/// only `%` needs escaping.
fn encode_encoded(encoded: &[u8], out: &mut Vec<u8>) {
    let mut copied = 0;
    for percent in memchr::memchr_iter(b'%', encoded) {
        out.extend_from_slice(encoded.get(copied..percent).unwrap_or_default());
        out.extend_from_slice(b"%25");
        copied = percent + 1;
    }
    out.extend_from_slice(encoded.get(copied..).unwrap_or_default());
}

/// The base string URI, already encoded for the base string, without a temporary string.
fn write_encoded_base_uri(target: &RequestTarget<'_>, out: &mut Vec<u8>) {
    let lowercase_encoded = |value: &str, out: &mut Vec<u8>| {
        if value.bytes().any(|b| b.is_ascii_uppercase()) {
            percent_encode_to_vec(value.to_ascii_lowercase().as_bytes(), out);
        } else {
            percent_encode_to_vec(value.as_bytes(), out);
        }
    };
    lowercase_encoded(target.scheme, out);
    out.extend_from_slice(b"%3A%2F%2F");
    lowercase_encoded(target.host, out);
    if let Some(port) = target.significant_port() {
        out.extend_from_slice(b"%3A");
        push_decimal(port, out);
    }
    if target.path.is_empty() {
        out.extend_from_slice(b"%2F");
    } else {
        percent_encode_to_vec(target.path.as_bytes(), out);
    }
}

fn push_decimal(value: u16, out: &mut Vec<u8>) {
    let mut digits = [0u8; 5];
    let mut rest = value;
    let mut start = digits.len();
    loop {
        start -= 1;
        if let Some(slot) = digits.get_mut(start) {
            // `rest % 10` < 10, so the cast is exact.
            #[allow(clippy::cast_possible_truncation)]
            let digit = (rest % 10) as u8;
            *slot = b'0' + digit;
        }
        rest /= 10;
        if rest == 0 || start == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(start..).unwrap_or_default());
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
        let mut bytes = Vec::new();
        write_base_string(target, params, &mut bytes);
        // The base string is ASCII by construction; lossy conversion never replaces anything.
        let base_string = String::from_utf8_lossy(&bytes).into_owned();
        Self {
            base_uri,
            parameters: params.pairs().collect(),
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
        let mut out = Vec::new();
        write_base_string(&target, &params, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn normalizes_scheme_host_port_and_method() {
        assert_eq!(
            base("get", "HTTPS://Example.COM:443", &[], None),
            "GET&https%3A%2F%2Fexample.com%2F&"
        );
        assert_eq!(
            base("GET", "http://example.com:80/a", &[], None),
            "GET&http%3A%2F%2Fexample.com%2Fa&"
        );
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
        assert_eq!(
            got,
            "POST&https%3A%2F%2Fh%2F&a%3D1%26a%3D~%26b%3D2%2520x%26c%3D%26d%3D%26e%3D%252B%26oauth_z%3D%25C3%25A9"
        );
    }

    /// RFC 5849 §3.4.1.3.1: `oauth_signature` is left out of the base string wherever it is
    /// sent, the query and a form body too (before, only the header's was).
    #[test]
    fn an_oauth_signature_in_the_query_or_form_is_not_signed() {
        assert_eq!(
            base(
                "POST",
                "https://h/?oauth_signature=x&a=1",
                &[],
                Some("oauth_signature=y&b=2")
            ),
            base("POST", "https://h/?a=1", &[], Some("b=2"))
        );
    }

    #[test]
    fn malformed_query_is_an_error() {
        let target = RequestTarget::from_url("GET", "https://h/?a=%zz").unwrap();
        assert!(NormalizedParams::collect([], target.query, None).is_err());
    }

    /// An empty port is the default one; a colon outside an IPv6 literal is not a host.
    #[test]
    fn an_empty_port_is_the_default_and_a_colon_is_no_host() {
        assert_eq!(
            base("GET", "https://h:/p", &[], None),
            base("GET", "https://h/p", &[], None)
        );
        for authority in ["a:b:80", "a%41:80", "h]:80"] {
            assert!(
                RequestTarget::from_authority("GET", "https", authority, "/", None).is_err(),
                "{authority}"
            );
        }
        assert!(RequestTarget::from_authority("GET", "https", "[::1]:8443", "/", None).is_ok());
    }

    #[test]
    fn authorities_split_at_the_ports_colon() {
        for (authority, split) in [
            ("h", Some(("h", ""))),
            ("h:80", Some(("h", ":80"))),
            ("a:b:80", Some(("a:b", ":80"))),
            ("é.example:80", Some(("é.example", ":80"))),
            ("[::1]", Some(("[::1]", ""))),
            ("[::1]:8443", Some(("[::1]", ":8443"))),
            ("[::1]x", Some(("[::1]", "x"))),
            ("[::1", None),
            ("", Some(("", ""))),
        ] {
            assert_eq!(split_authority(authority), split, "{authority}");
        }
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
            assert_eq!(
                RequestTarget::from_url("GET", url).unwrap_err().code(),
                "invalid_url",
                "{url}"
            );
        }
        assert!(RequestTarget::from_url("GE T", "https://h/").is_err());
        assert!(RequestTarget::from_authority("GET", "https", "h", "nope", None).is_err());
    }

    #[test]
    fn only_form_bodies_are_signed() {
        assert!(is_form_content_type(
            "application/x-www-form-urlencoded; charset=UTF-8"
        ));
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

    /// A parsed header marks its plain protocol parameters so that they skip the unreserved
    /// check; the parameters must come out exactly as the unmarked path normalizes them.
    #[test]
    fn marked_header_params_normalize_as_unmarked_ones() {
        let header = crate::AuthorizationHeader::parse(concat!(
            r#"OAuth realm="1234567",oauth_consumer_key="ab12",oauth_nonce="a!b(c)",oauth_token="t-1.2_3~","#,
            r#"oauth_timestamp=17,oauth_signature="x%2By%3D",oauth_version="1.0",custom="plain","#,
            r#"oauth_callback="https%3A%2F%2Fe.com%2Fcb%3Fa%3Db%20c",oauth_verifier="a b""#,
        ))
        .unwrap();
        let marked: Vec<(&str, bool)> = header
            .signed_params_marked()
            .map(|(name, _, plain)| (name, plain))
            .collect();
        assert_eq!(
            marked,
            [
                ("oauth_consumer_key", true),
                ("oauth_nonce", false),
                ("oauth_token", true),
                ("oauth_timestamp", true),
                ("oauth_version", true),
                ("custom", false),
                ("oauth_callback", false),
                ("oauth_verifier", false),
            ]
        );
        let target = RequestTarget::from_url("POST", "https://h/p?b=1&a=%7E").unwrap();
        let unmarked =
            NormalizedParams::collect(header.signed_params(), target.query, None).unwrap();
        let (pairs, a) = NormalizedParams::with_parsed(&header, target.query, None, |parsed| {
            let mut a = Vec::new();
            write_base_string(&target, parsed, &mut a);
            (parsed.pairs().collect::<Vec<_>>(), a)
        })
        .unwrap();
        assert_eq!(pairs, unmarked.pairs().collect::<Vec<_>>());
        assert!(pairs.contains(&("oauth_nonce".into(), "a%21b%28c%29".into())));
        assert!(pairs.contains(&("oauth_verifier".into(), "a%20b".into())));
        assert!(pairs.contains(&(
            "oauth_callback".into(),
            "https%3A%2F%2Fe.com%2Fcb%3Fa%3Db%20c".into()
        )));
        let mut b = Vec::new();
        write_base_string(&target, &unmarked, &mut b);
        assert_eq!(a, b);
    }

    /// A header of protocol parameters only is put in order without sorting: in every order
    /// sent, with values plain and escaped, it signs what the sorted list signs.
    #[test]
    fn protocol_parameters_alone_sign_as_sorted_ones_in_any_order() {
        let pairs = [
            r#"oauth_version="1.0""#,
            r#"oauth_token="t-1""#,
            r#"oauth_nonce="a%21b%20c""#,
            r#"oauth_consumer_key="ck""#,
            r#"oauth_timestamp="17""#,
            r#"oauth_signature_method="HMAC-SHA256""#,
            r#"oauth_callback="https%3A%2F%2Fe.com%2Fcb""#,
            r#"oauth_verifier="v~1""#,
            r#"oauth_body_hash="h%2B%3D""#,
            r#"oauth_signature="s%3D""#,
        ];
        let target = RequestTarget::from_url("GET", "https://h/rest/tokeninfo").unwrap();
        let with_query = RequestTarget::from_url("GET", "https://h/p?oauth_nonce=0&a=1").unwrap();
        let mut checked = 0;
        // Each rotation of each prefix, and each reversed: the orders differ in every place.
        for len in 1..=pairs.len() {
            for turn in 0..len {
                for reverse in [false, true] {
                    let mut sent: Vec<&str> = pairs[..len].to_vec();
                    sent.rotate_left(turn);
                    if reverse {
                        sent.reverse();
                    }
                    let value = format!("OAuth {}", sent.join(","));
                    let header = crate::AuthorizationHeader::parse(&value).unwrap();
                    assert!(header.signed_protocol_params_sorted().is_some());
                    for target in [&target, &with_query] {
                        let sorted =
                            NormalizedParams::collect(header.signed_params(), target.query, None)
                                .unwrap();
                        let (mut a, mut b) = (Vec::new(), Vec::new());
                        write_base_string(target, &sorted, &mut b);
                        NormalizedParams::with_parsed(&header, target.query, None, |parsed| {
                            write_base_string(target, parsed, &mut a);
                        })
                        .unwrap();
                        assert_eq!(String::from_utf8(a), String::from_utf8(b), "{sent:?}");
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 2 * 2 * (1..=10).sum::<usize>());
        // Another parameter in the header takes the sorting path.
        let other = crate::AuthorizationHeader::parse(r#"OAuth oauth_token="t",x="1""#).unwrap();
        assert!(other.signed_protocol_params_sorted().is_none());
    }
}
