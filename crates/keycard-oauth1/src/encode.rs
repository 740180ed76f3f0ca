//! RFC 3986 percent-encoding as OAuth 1.0a uses it (RFC 5849 §3.6): only `A-Za-z0-9-._~` pass
//! through, everything else becomes `%XX` with upper-case hex, so a space is `%20`, never `+`.

use std::borrow::Cow;

use crate::OAuthError;

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Whether `byte` is in RFC 3986's unreserved set.
#[inline]
pub fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// Appends the RFC 3986 encoding of `bytes` to `out`.
pub fn percent_encode_into(bytes: &[u8], out: &mut String) {
    for &byte in bytes {
        if is_unreserved(byte) {
            out.push(char::from(byte));
        } else {
            push_escape(byte, out);
        }
    }
}

#[inline]
fn push_escape(byte: u8, out: &mut String) {
    out.push('%');
    out.push(char::from(HEX_UPPER[usize::from(byte >> 4)]));
    out.push(char::from(HEX_UPPER[usize::from(byte & 0x0f)]));
}

/// The RFC 3986 encoding of `value`, borrowed when nothing needs escaping.
pub fn percent_encode(value: &str) -> Cow<'_, str> {
    if value.bytes().all(is_unreserved) {
        Cow::Borrowed(value)
    } else {
        let mut out = String::with_capacity(value.len() * 3);
        percent_encode_into(value.as_bytes(), &mut out);
        Cow::Owned(out)
    }
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` sequences; with `plus_is_space`, `+` means a space (form and query encoding).
/// A `%` not followed by two hex digits is an error, never guessed at.
pub fn percent_decode_bytes(input: &[u8], plus_is_space: bool) -> Result<Cow<'_, [u8]>, OAuthError> {
    let needs_work = input.iter().any(|&b| b == b'%' || (plus_is_space && b == b'+'));
    if !needs_work {
        return Ok(Cow::Borrowed(input));
    }
    let mut out = Vec::with_capacity(input.len());
    let mut iter = input.iter().copied().enumerate();
    while let Some((position, byte)) = iter.next() {
        match byte {
            b'%' => {
                let high = iter.next().and_then(|(_, b)| hex_value(b));
                let low = iter.next().and_then(|(_, b)| hex_value(b));
                match (high, low) {
                    (Some(high), Some(low)) => out.push(high << 4 | low),
                    _ => return Err(OAuthError::InvalidPercentEncoding { position }),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            other => out.push(other),
        }
    }
    Ok(Cow::Owned(out))
}

/// RFC 3986 decoding into UTF-8 text (header values: `+` stays `+`).
pub fn percent_decode(input: &str) -> Result<Cow<'_, str>, OAuthError> {
    match percent_decode_bytes(input.as_bytes(), false)? {
        Cow::Borrowed(_) => Ok(Cow::Borrowed(input)),
        Cow::Owned(bytes) => String::from_utf8(bytes)
            .map(Cow::Owned)
            .map_err(|_| OAuthError::NotUtf8),
    }
}

/// Encodes already-encoded `name=value&…` text once more for the base string: the only bytes an
/// RFC 3986-encoded string can hold besides unreserved ones are `%`, and the joiners `=` and `&`.
pub(crate) fn encode_encoded_into(encoded: &str, out: &mut String) {
    for byte in encoded.bytes() {
        if is_unreserved(byte) {
            out.push(char::from(byte));
        } else {
            push_escape(byte, out);
        }
    }
}

/// Writes `application/x-www-form-urlencoded` text for `pairs` (RFC 3986 escapes, `%20` for space),
/// the body a client sends and that the base string then reads back.
pub fn encode_form<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> String {
    let mut out = String::new();
    for (index, (name, value)) in pairs.iter().enumerate() {
        if index > 0 {
            out.push('&');
        }
        percent_encode_into(name.as_ref().as_bytes(), &mut out);
        out.push('=');
        percent_encode_into(value.as_ref().as_bytes(), &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_unreserved_set_only() {
        assert_eq!(percent_encode("AZaz09-._~"), "AZaz09-._~");
        assert_eq!(percent_encode("a b+c&d=e/f"), "a%20b%2Bc%26d%3De%2Ff");
        assert_eq!(percent_encode("!*'()"), "%21%2A%27%28%29");
        assert_eq!(percent_encode("é日"), "%C3%A9%E6%97%A5");
        assert_eq!(percent_encode("\u{0}\u{7f}"), "%00%7F");
    }

    #[test]
    fn decodes_both_hex_cases_and_rejects_malformed() {
        assert_eq!(percent_decode("%c3%A9").unwrap(), "é");
        assert_eq!(percent_decode("a+b").unwrap(), "a+b");
        assert_eq!(
            percent_decode_bytes(b"a+b%20c", true).unwrap().as_ref(),
            b"a b c"
        );
        assert_eq!(
            percent_decode("ab%2").unwrap_err(),
            OAuthError::InvalidPercentEncoding { position: 2 }
        );
        assert_eq!(
            percent_decode("%G0").unwrap_err(),
            OAuthError::InvalidPercentEncoding { position: 0 }
        );
        assert_eq!(
            percent_decode("x%").unwrap_err(),
            OAuthError::InvalidPercentEncoding { position: 1 }
        );
        assert_eq!(percent_decode("%FF").unwrap_err(), OAuthError::NotUtf8);
    }

    #[test]
    fn form_encoding_uses_percent_20() {
        assert_eq!(
            encode_form(&[("a b", "c+d"), ("e", "")]),
            "a%20b=c%2Bd&e="
        );
    }
}
