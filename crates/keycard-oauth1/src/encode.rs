//! RFC 3986 percent-encoding as OAuth 1.0a uses it (RFC 5849 §3.6): only `A-Za-z0-9-._~` pass
//! through, everything else becomes `%XX` with upper-case hex, so a space is `%20`, never `+`.

use std::borrow::Cow;

use crate::OAuthError;

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// RFC 3986's unreserved set as a table: the hot path asks this for every byte it signs.
// `while` loops in a const block cannot use `get_mut`; the index is bounded by the loop.
#[allow(clippy::indexing_slicing)]
const UNRESERVED: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        #[allow(clippy::cast_possible_truncation)] // `byte` < 256
        let b = byte as u8;
        table[byte] = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
        byte += 1;
    }
    table
};

/// Whether `byte` is in RFC 3986's unreserved set.
#[inline]
pub fn is_unreserved(byte: u8) -> bool {
    UNRESERVED.get(usize::from(byte)).copied().unwrap_or(false)
}

/// The length of the unreserved prefix of `bytes`. Signed text is mostly long unreserved runs
/// (hex keys, nonces, timestamps), so sixteen bytes are classified at once.
#[inline]
pub fn unreserved_prefix_len(bytes: &[u8]) -> usize {
    prefix_len(bytes, reserved_bytes)
}

/// The length of the prefix of `bytes` that `outside` flags nowhere, sixteen bytes at a time.
/// `outside` gives `0xFF` for each of sixteen bytes outside the set (little-endian), and must
/// flag NUL: the last bytes are padded with it.
#[inline]
pub(crate) fn prefix_len(bytes: &[u8], outside: impl Fn([u8; 16]) -> u128) -> usize {
    let mut chunks = bytes.chunks_exact(16);
    let mut checked = 0;
    for chunk in chunks.by_ref() {
        let mut sixteen = [0u8; 16];
        sixteen.copy_from_slice(chunk);
        let flagged = outside(sixteen);
        if flagged != 0 {
            return checked + first_flagged(flagged);
        }
        checked += 16;
    }
    // The rest, padded with NUL: the first flagged byte is at most its end.
    let rest = chunks.remainder();
    let mut sixteen = [0u8; 16];
    if let Some(head) = sixteen.get_mut(..rest.len()) {
        head.copy_from_slice(rest);
    }
    checked + first_flagged(outside(sixteen)).min(rest.len())
}

/// The index of the lowest flagged byte (little-endian).
#[inline]
fn first_flagged(flagged: u128) -> usize {
    (flagged.trailing_zeros() / 8) as usize
}

/// For sixteen bytes, `0xFF` in each byte that is *not* unreserved, as one little-endian
/// integer. Written byte-wise with ranges as wrapping subtractions and `|` rather than `||`,
/// so that the compiler turns it into a few SSE2 compares (about 30 instructions for the
/// sixteen, where a table lookup per byte does not vectorize). A test holds it to the table.
#[inline]
fn reserved_bytes(sixteen: [u8; 16]) -> u128 {
    let mut flags = [0u8; 16];
    // A plain loop: `array::map` stayed a call of its own, byte by byte.
    for (flag, &b) in flags.iter_mut().zip(&sixteen) {
        // Bitwise on purpose: short-circuits would be branches, which do not vectorize.
        #[allow(clippy::needless_bitwise_bool)]
        let unreserved = (b.wrapping_sub(b'0') < 10)
            | ((b | 0x20).wrapping_sub(b'a') < 26)
            | (b.wrapping_sub(b'-') < 2) // `-` and `.`
            | (b == b'_')
            | (b == b'~');
        *flag = if unreserved { 0 } else { 0xFF };
    }
    u128::from_le_bytes(flags)
}

/// Whether every byte of `bytes` is unreserved (nothing to escape).
#[inline]
pub fn all_unreserved(bytes: &[u8]) -> bool {
    unreserved_prefix_len(bytes) == bytes.len()
}

/// Appends the RFC 3986 encoding of `bytes` to `out`, copying unreserved runs whole.
pub fn percent_encode_to_vec(bytes: &[u8], out: &mut Vec<u8>) {
    let mut rest = bytes;
    loop {
        let run = unreserved_prefix_len(rest);
        let (plain, tail) = rest.split_at(run);
        out.extend_from_slice(plain);
        let Some((&byte, tail)) = tail.split_first() else {
            return;
        };
        push_escape(byte, out);
        rest = tail;
    }
}

/// Appends the RFC 3986 encoding of `bytes` to `out`.
pub fn percent_encode_into(bytes: &[u8], out: &mut String) {
    let mut encoded = Vec::with_capacity(bytes.len());
    percent_encode_to_vec(bytes, &mut encoded);
    // Encoded text is ASCII, so the lossy conversion never replaces anything.
    out.push_str(&String::from_utf8_lossy(&encoded));
}

/// The upper-case hex digit for a nibble (`nibble` < 16).
#[inline]
fn hex_digit(nibble: u8) -> u8 {
    HEX_UPPER.get(usize::from(nibble)).copied().unwrap_or(b'0')
}

#[inline]
fn push_escape(byte: u8, out: &mut Vec<u8>) {
    out.extend_from_slice(&[b'%', hex_digit(byte >> 4), hex_digit(byte & 0x0f)]);
}

/// The RFC 3986 encoding of `value`, borrowed when nothing needs escaping.
pub fn percent_encode(value: &str) -> Cow<'_, str> {
    if all_unreserved(value.as_bytes()) {
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
pub fn percent_decode_bytes(
    input: &[u8],
    plus_is_space: bool,
) -> Result<Cow<'_, [u8]>, OAuthError> {
    let needs_work = if plus_is_space {
        memchr::memchr2(b'%', b'+', input).is_some()
    } else {
        memchr::memchr(b'%', input).is_some()
    };
    if !needs_work {
        return Ok(Cow::Borrowed(input));
    }
    let mut out = Vec::with_capacity(input.len());
    let mut at = 0;
    // Runs without escapes are copied whole.
    loop {
        let rest = input.get(at..).unwrap_or_default();
        let special = if plus_is_space {
            memchr::memchr2(b'%', b'+', rest)
        } else {
            memchr::memchr(b'%', rest)
        };
        let Some(offset) = special else {
            out.extend_from_slice(rest);
            return Ok(Cow::Owned(out));
        };
        out.extend_from_slice(rest.get(..offset).unwrap_or_default());
        let position = at + offset;
        if rest.get(offset) == Some(&b'+') {
            out.push(b' ');
            at = position + 1;
            continue;
        }
        let high = input.get(position + 1).copied().and_then(hex_value);
        let low = input.get(position + 2).copied().and_then(hex_value);
        match (high, low) {
            (Some(high), Some(low)) => out.push(high << 4 | low),
            _ => return Err(OAuthError::InvalidPercentEncoding { position }),
        }
        at = position + 3;
    }
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
    fn sixteen_byte_classification_agrees_with_the_table() {
        let all: Vec<u8> = (0..=255).collect();
        for start in 0..all.len() {
            let tail = &all[start..];
            let expected = tail
                .iter()
                .position(|&b| !is_unreserved(b))
                .unwrap_or(tail.len());
            assert_eq!(unreserved_prefix_len(tail), expected, "from byte {start}");
        }
        // Unreserved to the end, through whole chunks and every length of remainder.
        let plain: Vec<u8> = b"aZ09-._~".iter().copied().cycle().take(40).collect();
        for len in 0..=plain.len() {
            assert_eq!(
                unreserved_prefix_len(&plain[..len]),
                len,
                "{len} unreserved"
            );
        }
        for byte in 0..=255u8 {
            for position in 0..16 {
                let mut run = *b"aZ09-._~zA9~_.-a";
                run[position] = byte;
                let expected = if is_unreserved(byte) {
                    run.len()
                } else {
                    position
                };
                assert_eq!(
                    unreserved_prefix_len(&run),
                    expected,
                    "byte {byte} at {position}"
                );
            }
        }
    }

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
            percent_decode_bytes(b"ab%20cd+e%2Bf++%3D", true)
                .unwrap()
                .as_ref(),
            b"ab cd e+f  ="
        );
        assert_eq!(percent_decode("abc%3D%3Dxyz").unwrap(), "abc==xyz");
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
        assert_eq!(encode_form(&[("a b", "c+d"), ("e", "")]), "a%20b=c%2Bd&e=");
    }
}
