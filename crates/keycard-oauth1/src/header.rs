//! Parsing of `Authorization: OAuth …` (RFC 5849 §3.5.1), leniently as real clients send it:
//! scheme in any case, pairs in any order, `,` with or without spaces, values quoted (or bare)
//! and percent-decoded. `realm` is kept apart because it is never signed.

use std::borrow::Cow;

use crate::OAuthError;
use crate::encode::{percent_decode, prefix_len, unreserved_prefix_len};

/// The longest Authorization header accepted, in bytes.
pub const MAX_HEADER_LEN: usize = 8 * 1024;
/// The most parameters accepted in one header.
pub const MAX_HEADER_PARAMS: usize = 32;

/// The parameters of an `OAuth` Authorization header, decoded, in the order they were sent.
/// Values borrow from the header unless they needed decoding.
#[derive(Clone)]
pub struct AuthorizationHeader<'a> {
    realm: Option<Cow<'a, str>>,
    params: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// Bit `i` set: pair `i` is a protocol parameter whose value is only unreserved bytes, so
    /// it is its own normal form and the base string needs no second look at it. Parsing
    /// learns this while scanning the value anyway (at most [`MAX_HEADER_PARAMS`] = 32 bits).
    plain: u32,
    /// Where each protocol parameter is in `params` (by its [`Protocol`] index), plus one; 0 when
    /// absent. The pipeline asks for each of them, and a scan per question added up.
    protocol_at: [u8; PROTOCOL_PARAMS],
}

impl<'a> AuthorizationHeader<'a> {
    /// Parses the value of an Authorization header whose scheme must be `OAuth`.
    pub fn parse(value: &'a str) -> Result<Self, OAuthError> {
        let mut realm = None;
        let mut params: Vec<(Cow<'a, str>, Cow<'a, str>)> = Vec::with_capacity(10);
        // Protocol parameters are checked for repeats by their slot; only other names are
        // compared with one another.
        let mut protocol_at = [0u8; PROTOCOL_PARAMS];
        let mut other_names = false;
        let mut plain = 0u32;
        // Everything in the header is ASCII: non-ASCII values are sent percent-encoded.
        for_each_scheme_pair(value, &Scheme::OAUTH, |name, known, value, unreserved| {
            let seen = match known.unwrap_or_else(|| Name::of(name)) {
                Name::Realm => realm.replace(value).is_some(),
                Name::Protocol(param) => {
                    // Protocol names are unreserved (`oauth_…`).
                    if unreserved {
                        plain |= 1 << params.len();
                    }
                    // Every protocol parameter has a slot.
                    let mark = position_mark(params.len());
                    let seen = protocol_at
                        .get_mut(param as usize)
                        .is_some_and(|slot| std::mem::replace(slot, mark) != 0);
                    params.push((Cow::Borrowed(name), value));
                    seen
                }
                Name::Other => {
                    let seen =
                        other_names && params.iter().any(|(existing, _)| existing.as_ref() == name);
                    other_names = true;
                    params.push((Cow::Borrowed(name), value));
                    seen
                }
            };
            if seen {
                return Err(OAuthError::DuplicateParameter { name: name.into() });
            }
            Ok(())
        })?;
        Ok(Self {
            realm,
            params,
            plain,
            protocol_at,
        })
    }

    /// Builds a header from parameters already in hand (the client signer's path).
    pub fn from_params(realm: Option<&'a str>, params: Vec<(Cow<'a, str>, Cow<'a, str>)>) -> Self {
        let mut protocol_at = [0u8; PROTOCOL_PARAMS];
        for (position, (name, _)) in params.iter().enumerate() {
            if let Some(slot) = protocol_index(name).and_then(|i| protocol_at.get_mut(i)) {
                if *slot == 0 {
                    *slot = position_mark(position);
                }
            }
        }
        Self {
            realm: realm.map(Cow::Borrowed),
            params,
            plain: 0,
            protocol_at,
        }
    }

    /// The `realm`, as sent (decoded).
    pub fn realm(&self) -> Option<&str> {
        self.realm.as_deref()
    }

    /// The value of parameter `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        let pair = match protocol_index(name) {
            Some(index) => self.params.get(self.protocol_position(index)?),
            None => self
                .params
                .iter()
                .find(|(existing, _)| existing.as_ref() == name),
        };
        pair.map(|(_, value)| value.as_ref())
    }

    /// The value of protocol parameter `param`, if present: [`get`](Self::get) without
    /// matching the name (the pipeline asks for each of them, about 20 name matches a
    /// request).
    pub fn protocol(&self, param: Protocol) -> Option<&str> {
        let position = self.protocol_position(param as usize)?;
        self.params.get(position).map(|(_, value)| value.as_ref())
    }

    /// Where the protocol parameter of [`protocol_index`] `index` is in `params`, if present.
    fn protocol_position(&self, index: usize) -> Option<usize> {
        usize::from(self.protocol_at.get(index).copied().unwrap_or(0)).checked_sub(1)
    }

    /// The value of a protocol parameter that must be present.
    pub fn require(&self, param: Protocol) -> Result<&str, OAuthError> {
        self.protocol(param)
            .ok_or(OAuthError::MissingParameter { name: param.name() })
    }

    /// Every parameter except `realm`, in the order sent.
    pub fn params(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params.iter().map(|(n, v)| (n.as_ref(), v.as_ref()))
    }

    /// The parameters that take part in the signature: all but `realm` and `oauth_signature`.
    pub fn signed_params(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params().filter(|(name, _)| *name != "oauth_signature")
    }

    /// [`signed_params`](Self::signed_params), each with whether it is known to be only
    /// unreserved bytes, name and value (`false` means unknown: check).
    pub(crate) fn signed_params_marked(&self) -> impl Iterator<Item = (&str, &str, bool)> {
        let signature = self.protocol_position(SIGNATURE);
        self.params
            .iter()
            .enumerate()
            .filter(move |(i, _)| Some(*i) != signature)
            .map(|(i, (name, value))| (name.as_ref(), value.as_ref(), self.plain & (1 << i) != 0))
    }

    /// [`signed_params_marked`](Self::signed_params_marked) in the base string's order, when
    /// the header holds protocol parameters only (else `None`), as most do: their names all
    /// differ and are unreserved, so their order is [`SIGNING_ORDER`] and no value is compared.
    pub(crate) fn signed_protocol_params_sorted(
        &self,
    ) -> Option<impl Iterator<Item = (&str, &str, bool)>> {
        let protocol = self.protocol_at.iter().filter(|&&at| at != 0).count();
        (protocol == self.params.len()).then(|| {
            SIGNING_ORDER.iter().filter_map(|&param| {
                let position = self.protocol_position(param as usize)?;
                let (name, value) = self.params.get(position)?;
                Some((
                    name.as_ref(),
                    value.as_ref(),
                    self.plain & (1 << position) != 0,
                ))
            })
        })
    }

    /// The parameter names, for diagnostics (never the values).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.params.iter().map(|(n, _)| n.as_ref())
    }
}

/// The OAuth protocol parameters a header is indexed by; the discriminant is the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    ConsumerKey,
    Token,
    SignatureMethod,
    Signature,
    Timestamp,
    Nonce,
    Version,
    Callback,
    Verifier,
    BodyHash,
}

impl Protocol {
    pub const ALL: [Self; PROTOCOL_PARAMS] = [
        Self::ConsumerKey,
        Self::Token,
        Self::SignatureMethod,
        Self::Signature,
        Self::Timestamp,
        Self::Nonce,
        Self::Version,
        Self::Callback,
        Self::Verifier,
        Self::BodyHash,
    ];

    /// The parameter's name on the wire.
    pub const fn name(self) -> &'static str {
        match self {
            Self::ConsumerKey => "oauth_consumer_key",
            Self::Token => "oauth_token",
            Self::SignatureMethod => "oauth_signature_method",
            Self::Signature => "oauth_signature",
            Self::Timestamp => "oauth_timestamp",
            Self::Nonce => "oauth_nonce",
            Self::Version => "oauth_version",
            Self::Callback => "oauth_callback",
            Self::Verifier => "oauth_verifier",
            Self::BodyHash => "oauth_body_hash",
        }
    }
}

/// The signed protocol parameters (all but `oauth_signature`) by their names' bytes, the order
/// a base string sorts them in (a test holds it to the names).
const SIGNING_ORDER: [Protocol; PROTOCOL_PARAMS - 1] = [
    Protocol::BodyHash,
    Protocol::Callback,
    Protocol::ConsumerKey,
    Protocol::Nonce,
    Protocol::SignatureMethod,
    Protocol::Timestamp,
    Protocol::Token,
    Protocol::Verifier,
    Protocol::Version,
];

/// The OAuth protocol parameters [`protocol_index`] knows.
const PROTOCOL_PARAMS: usize = 10;
/// `oauth_signature`'s [`protocol_index`].
const SIGNATURE: usize = Protocol::Signature as usize;

/// A distinct index below [`PROTOCOL_PARAMS`] for each OAuth protocol parameter: its
/// [`Protocol`]'s (a test holds the two to the same names).
fn protocol_index(name: &str) -> Option<usize> {
    protocol_named(name).map(|param| param as usize)
}

/// The protocol parameter called `name`, if any.
fn protocol_named(name: &str) -> Option<Protocol> {
    Some(match name {
        "oauth_consumer_key" => Protocol::ConsumerKey,
        "oauth_token" => Protocol::Token,
        "oauth_signature_method" => Protocol::SignatureMethod,
        "oauth_signature" => Protocol::Signature,
        "oauth_timestamp" => Protocol::Timestamp,
        "oauth_nonce" => Protocol::Nonce,
        "oauth_version" => Protocol::Version,
        "oauth_callback" => Protocol::Callback,
        "oauth_verifier" => Protocol::Verifier,
        "oauth_body_hash" => Protocol::BodyHash,
        _ => return None,
    })
}

/// What a parameter's name is to the `OAuth` scheme. Splitting the header learns it for the
/// names clients send ([`known_name`]); only others are matched by their text ([`Name::of`]),
/// so each name is told apart once (twice, it cost 100–200 instructions a request, counted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Name {
    Realm,
    Protocol(Protocol),
    Other,
}

impl Name {
    fn of(name: &str) -> Self {
        if name == "realm" {
            Self::Realm
        } else {
            protocol_named(name).map_or(Self::Other, Self::Protocol)
        }
    }
}

/// `position` plus one, as [`AuthorizationHeader`]'s `protocol_at` holds it: positions are
/// below [`MAX_HEADER_PARAMS`], so they fit.
fn position_mark(position: usize) -> u8 {
    u8::try_from(position + 1).unwrap_or(u8::MAX)
}

/// Equal when realm and parameters are: the rest is what parsing learnt about them.
impl PartialEq for AuthorizationHeader<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.realm == other.realm && self.params == other.params
    }
}

impl Eq for AuthorizationHeader<'_> {}

/// Never prints values: the header carries the signature.
impl std::fmt::Debug for AuthorizationHeader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizationHeader")
            .field("realm", &self.realm)
            .field("names", &self.names().collect::<Vec<_>>())
            .finish()
    }
}

/// An authorization scheme whose header is a list of `name="value"` pairs.
pub(crate) struct Scheme {
    pub name: &'static str,
    /// Whether the header must be ASCII (values outside it sent percent-encoded).
    pub ascii_only: bool,
}

impl Scheme {
    pub const OAUTH: Self = Self {
        name: "OAuth",
        ascii_only: true,
    };
}

const NOT_ASCII: OAuthError = OAuthError::MalformedHeader {
    reason: "the header holds bytes outside ASCII (send values percent-encoded)",
};

/// Splits `<scheme> name="value", …` into decoded pairs, with the shared limits, handing each
/// to `on_pair` (no intermediate list) with what the name is when [`known_name`] could tell,
/// and whether the value as sent is only unreserved bytes. Used for both the `OAuth` and the
/// `NLAuth` schemes.
pub(crate) fn for_each_scheme_pair<'a>(
    value: &'a str,
    scheme: &Scheme,
    on_pair: impl FnMut(&'a str, Option<Name>, Cow<'a, str>, bool) -> Result<(), OAuthError>,
) -> Result<(), OAuthError> {
    let result = split_pairs(value, scheme, on_pair);
    // Bytes outside ASCII anywhere but in a value fail the split; they are reported as what
    // they are (only then is the whole header checked).
    match result {
        Err(_) if scheme.ascii_only && !value.is_ascii() => Err(NOT_ASCII),
        result => result,
    }
}

/// Refuses what would be read differently elsewhere. RFC 5849 §3.5.1 sends names
/// percent-encoded, and every name OAuth and NetSuite use is unreserved: an encoded one is
/// refused rather than decoded (kept raw, it was signed encoded twice, and `oauth%5Fnonce`
/// slipped past the duplicate check). A quoted-string escape (RFC 9110 §5.6.4) ends nowhere
/// a percent-encoded value needs one: refused, not read as two characters (oauthlib reads
/// `\"` as `"`). `quoted_and_reserved`: the value is quoted and not all unreserved bytes.
fn refuse_escapes(
    name: &str,
    quoted_and_reserved: bool,
    raw_value: &str,
) -> Result<(), OAuthError> {
    if name.contains('%') {
        return Err(OAuthError::MalformedHeader {
            reason: "a parameter name is percent-encoded",
        });
    }
    if quoted_and_reserved && raw_value.contains('\\') {
        return Err(OAuthError::MalformedHeader {
            reason: "a quoted value holds a backslash escape",
        });
    }
    Ok(())
}

fn split_pairs<'a>(
    value: &'a str,
    scheme: &Scheme,
    mut on_pair: impl FnMut(&'a str, Option<Name>, Cow<'a, str>, bool) -> Result<(), OAuthError>,
) -> Result<(), OAuthError> {
    let (scheme, ascii_only) = (scheme.name, scheme.ascii_only);
    if value.len() > MAX_HEADER_LEN {
        return Err(OAuthError::HeaderTooLarge {
            limit: MAX_HEADER_LEN,
        });
    }
    // Only HTTP's own whitespace: `trim_start` would also pass Unicode spaces (a header
    // starting with U+00A0 was accepted although it is not ASCII).
    let value = value.trim_start_matches([' ', '\t']);
    let rest = value
        .get(..scheme.len())
        .filter(|prefix| prefix.eq_ignore_ascii_case(scheme))
        .and_then(|_| value.get(scheme.len()..))
        .ok_or(OAuthError::WrongScheme { expected: scheme })?;
    // The scheme must be a whole word: `OAuthX` is another scheme.
    if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return Err(OAuthError::WrongScheme { expected: scheme });
    }
    let bytes = rest.as_bytes();
    let mut at = skip_whitespace(bytes, 0);
    let mut count = 0;
    while at < bytes.len() {
        if count == MAX_HEADER_PARAMS {
            return Err(OAuthError::TooManyParameters {
                limit: MAX_HEADER_PARAMS,
            });
        }
        let name_start = at;
        let (name_len, known) = name_at(bytes.get(at..).unwrap_or_default());
        at += name_len;
        let name = rest.get(name_start..at).unwrap_or_default();
        at = skip_whitespace(bytes, at);
        match bytes.get(at) {
            Some(b'=') if !name.is_empty() => at += 1,
            Some(b'=') | None => {
                return Err(OAuthError::MalformedHeader {
                    reason: "a parameter has no name or no `=`",
                });
            }
            Some(_) => {
                return Err(OAuthError::MalformedHeader {
                    reason: "a parameter name has characters outside the token set",
                });
            }
        }
        at = skip_whitespace(bytes, at);
        let quoted = bytes.get(at) == Some(&b'"');
        let value_start = at + usize::from(quoted);
        let tail = bytes.get(value_start..).unwrap_or_default();
        // Most values are only unreserved bytes: nothing to decode, and already in the base
        // string's normal form. One scan (sixteen bytes at a time) finds that out, and as `"`
        // is reserved, it stops at a quoted value's end too.
        let plain_len = unreserved_prefix_len(tail);
        let value_len = if quoted {
            let value_len = if tail.get(plain_len) == Some(&b'"') {
                plain_len
            } else {
                tail.get(plain_len..)
                    .and_then(|rest| memchr::memchr(b'"', rest))
                    .map(|offset| plain_len + offset)
                    .ok_or(OAuthError::MalformedHeader {
                        reason: "a quoted value is not closed",
                    })?
            };
            at = value_start + value_len + 1;
            value_len
        } else {
            at = scan(bytes, at, |b| !matches!(b, b',' | b' ' | b'\t'));
            at - value_start
        };
        let raw_value = rest
            .get(value_start..value_start + value_len)
            .unwrap_or_default();
        let plain_len = plain_len.min(value_len);
        let unreserved = plain_len == value_len;
        refuse_escapes(name, quoted && !unreserved, raw_value)?;
        if ascii_only && !unreserved && !raw_value.is_ascii() {
            return Err(NOT_ASCII);
        }
        let escaped = |tail: &[u8]| tail.contains(&b'%');
        let value = if !unreserved && raw_value.as_bytes().get(plain_len..).is_some_and(escaped) {
            percent_decode(raw_value)?
        } else {
            Cow::Borrowed(raw_value)
        };
        on_pair(name, known, value, unreserved)?;
        count += 1;
        at = skip_whitespace(bytes, at);
        match bytes.get(at) {
            Some(b',') => at = skip_whitespace(bytes, at + 1),
            None => {}
            Some(_) => {
                return Err(OAuthError::MalformedHeader {
                    reason: "parameters must be separated by `,`",
                });
            }
        }
    }
    Ok(())
}

/// The first index at or after `from` whose byte fails `keep` (or the length).
fn scan(bytes: &[u8], from: usize, keep: impl Fn(u8) -> bool) -> usize {
    bytes
        .get(from..)
        .and_then(|tail| tail.iter().position(|&b| !keep(b)))
        .map_or(bytes.len(), |offset| from + offset)
}

fn skip_whitespace(bytes: &[u8], from: usize) -> usize {
    scan(bytes, from, |b| b == b' ' || b == b'\t')
}

/// [`token_len`] of `bytes`, where a parameter name starts, and what the name is: both from
/// [`known_name`] when it answers, else the scan (about 100 instructions a name, and a header
/// has eight) and nothing known.
#[inline]
fn name_at(bytes: &[u8]) -> (usize, Option<Name>) {
    match known_name(bytes) {
        Some((len, name)) => (len, Some(name)),
        None => (token_len(bytes), None),
    }
}

/// The length of a protocol parameter's name or `realm` at the start of `bytes` when `=`
/// follows it directly, as clients write them, and which it is: compared with at most two
/// names, picked by the byte after `oauth_`. Its bytes are all token characters and `=` is
/// not one, so [`token_len`] would stop at the same place. The names are literals, held by a
/// test to [`Protocol::name`]: taken from it, the comparisons were calls again (+350
/// instructions a request, counted).
#[inline]
fn known_name(bytes: &[u8]) -> Option<(usize, Name)> {
    use Protocol::{
        BodyHash, Callback, ConsumerKey, Nonce, Signature, SignatureMethod, Timestamp, Token,
        Verifier, Version,
    };
    match bytes {
        [b'o', b'a', b'u', b't', b'h', b'_', next, ..] => match next {
            b'c' => named(bytes, b"oauth_consumer_key", Name::Protocol(ConsumerKey)).or(named(
                bytes,
                b"oauth_callback",
                Name::Protocol(Callback),
            )),
            b't' => named(bytes, b"oauth_token", Name::Protocol(Token)).or(named(
                bytes,
                b"oauth_timestamp",
                Name::Protocol(Timestamp),
            )),
            b's' => named(bytes, b"oauth_signature", Name::Protocol(Signature)).or(named(
                bytes,
                b"oauth_signature_method",
                Name::Protocol(SignatureMethod),
            )),
            b'n' => named(bytes, b"oauth_nonce", Name::Protocol(Nonce)),
            b'v' => named(bytes, b"oauth_version", Name::Protocol(Version)).or(named(
                bytes,
                b"oauth_verifier",
                Name::Protocol(Verifier),
            )),
            b'b' => named(bytes, b"oauth_body_hash", Name::Protocol(BodyHash)),
            _ => None,
        },
        [b'r', ..] => named(bytes, b"realm", Name::Realm),
        _ => None,
    }
}

/// `(N, name)` when `bytes` starts with `text` and then `=`. The length is a constant, so the
/// comparison is a few loads rather than a call.
#[inline]
fn named<const N: usize>(bytes: &[u8], text: &[u8; N], name: Name) -> Option<(usize, Name)> {
    (bytes.get(N) == Some(&b'=') && bytes.get(..N) == Some(text.as_slice())).then_some((N, name))
}

/// The length of the run of RFC 9110 token characters (the set a parameter name may use) at
/// the start of `bytes`, sixteen bytes at a time. Kept out of line: the usual names do not
/// need it ([`name_at`]).
#[inline(never)]
fn token_len(bytes: &[u8]) -> usize {
    prefix_len(bytes, non_token_bytes)
}

/// For sixteen bytes, `0xFF` in each byte that is not a token character (little-endian).
/// Byte-wise with ranges as wrapping subtractions and `|`, so that it vectorizes (as
/// `encode`'s unreserved check does); a test holds it to RFC 9110's list. The loop is that
/// check's: shared through a predicate, the compiler stopped inlining one of the two (700
/// instructions a request more, counted), so each keeps its own.
#[inline]
fn non_token_bytes(sixteen: [u8; 16]) -> u128 {
    let mut flags = [0u8; 16];
    for (flag, &b) in flags.iter_mut().zip(&sixteen) {
        // Bitwise on purpose: short-circuits would be branches, which do not vectorize.
        #[allow(clippy::needless_bitwise_bool)]
        let token = (b.wrapping_sub(b'0') < 10)
            | ((b | 0x20).wrapping_sub(b'a') < 26)
            | (b == b'!')
            | (b.wrapping_sub(b'#') < 5) // # $ % & '
            | (b.wrapping_sub(b'*') < 2) // * +
            | (b.wrapping_sub(b'-') < 2) // - .
            | (b.wrapping_sub(b'^') < 3) // ^ _ `
            | (b == b'|')
            | (b == b'~');
        *flag = if token { 0 } else { 0xFF };
    }
    u128::from_le_bytes(flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9110's token characters, as its grammar lists them.
    // `while` loops in a const block cannot use `get_mut`; the index is bounded by the loop.
    #[allow(clippy::indexing_slicing)]
    const TOKEN: [bool; 256] = {
        let mut table = [false; 256];
        let mut byte = 0;
        while byte < 256 {
            #[allow(clippy::cast_possible_truncation)] // `byte` < 256
            let b = byte as u8;
            table[byte] = b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                );
            byte += 1;
        }
        table
    };

    #[test]
    fn token_runs_agree_with_the_list() {
        let all: Vec<u8> = (0..=255).collect();
        for start in 0..all.len() {
            let tail = &all[start..];
            let expected = tail
                .iter()
                .position(|&b| !TOKEN[usize::from(b)])
                .unwrap_or(tail.len());
            assert_eq!(token_len(tail), expected, "from byte {start}");
        }
        for byte in 0..=255u8 {
            for position in 0..20 {
                let mut name = *b"oauth_Consumer-Key.9";
                name[position] = byte;
                let expected = if TOKEN[usize::from(byte)] {
                    name.len()
                } else {
                    position
                };
                assert_eq!(token_len(&name), expected, "byte {byte} at {position}");
            }
        }
    }

    /// The comparison with the known names answers what the scan would: for each known name
    /// and each of its prefixes and one-byte extensions, followed by every byte and by a
    /// second `=` or nothing.
    #[test]
    fn known_names_measure_as_the_scan_does() {
        let known = Protocol::ALL.map(Protocol::name);
        let mut checked = 0;
        for name in known.iter().chain(&["realm", "oauth_", ""]) {
            let name = name.as_bytes();
            for cut in 0..=name.len() {
                for extra in [&[][..], b"x", b"-", b"=", b" ", b"\""] {
                    for next in 0..=255u8 {
                        for tail in [&[][..], b"=", b"\"v\""] {
                            let input = [&name[..cut], extra, &[next], tail].concat();
                            assert_eq!(
                                name_at(&input).0,
                                token_len(&input),
                                "{:?}",
                                String::from_utf8_lossy(&input)
                            );
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(checked > 100_000);
        // Every protocol parameter and `realm` is known, as what its text says, so none of
        // them takes the scan.
        for name in known.iter().chain(&["realm"]) {
            let input = format!("{name}=\"v\"");
            assert_eq!(
                known_name(input.as_bytes()),
                Some((name.len(), Name::of(name))),
                "{name}"
            );
            assert_ne!(Name::of(name), Name::Other, "{name}");
        }
        assert_eq!(Name::of("realm"), Name::Realm);
        assert_eq!(Name::of("oauth_tokens"), Name::Other);
        assert_eq!(
            name_at(b"oauth_token=\"t\""),
            (11, Some(Name::Protocol(Protocol::Token)))
        );
        assert_eq!(
            name_at(b"oauth_signature_method=x"),
            (22, Some(Name::Protocol(Protocol::SignatureMethod)))
        );
        assert_eq!(
            name_at(b"oauth_signature=x"),
            (15, Some(Name::Protocol(Protocol::Signature)))
        );
        // A space before `=`: the scan measures it, and the name is left to its text.
        assert_eq!(name_at(b"oauth_token =\"t\""), (11, None));
    }

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
    fn the_signing_order_is_every_signed_protocol_parameter_by_its_name() {
        let mut names: Vec<&str> = Protocol::ALL
            .iter()
            .filter(|&&param| param != Protocol::Signature)
            .map(|param| param.name())
            .collect();
        names.sort_unstable();
        assert_eq!(SIGNING_ORDER.map(Protocol::name).to_vec(), names);
    }

    #[test]
    fn each_protocol_parameter_is_indexed_by_its_own_name() {
        for (index, param) in Protocol::ALL.into_iter().enumerate() {
            assert_eq!(param as usize, index);
            assert_eq!(protocol_index(param.name()), Some(index), "{param:?}");
        }
        let header =
            AuthorizationHeader::parse(r#"OAuth oauth_nonce="n", oauth_token="t", x="y""#).unwrap();
        assert_eq!(header.protocol(Protocol::Nonce), Some("n"));
        assert_eq!(header.protocol(Protocol::Token), Some("t"));
        assert_eq!(header.protocol(Protocol::Signature), None);
    }

    #[test]
    fn protocol_parameters_are_found_by_slot_and_others_by_name() {
        let parsed = AuthorizationHeader::parse(
            r#"OAuth x="1",oauth_token="t",realm="r",oauth_body_hash="h",y="2",oauth_consumer_key="c""#,
        )
        .unwrap();
        let built = AuthorizationHeader::from_params(
            Some("r"),
            [
                "x",
                "oauth_token",
                "oauth_body_hash",
                "y",
                "oauth_consumer_key",
                "oauth_token",
            ]
            .into_iter()
            .zip(["1", "t", "h", "2", "c", "second"])
            .map(|(n, v)| (Cow::Borrowed(n), Cow::Borrowed(v)))
            .collect(),
        );
        for header in [&parsed, &built] {
            assert_eq!(header.get("oauth_token"), Some("t"));
            assert_eq!(header.get("oauth_body_hash"), Some("h"));
            assert_eq!(header.get("oauth_consumer_key"), Some("c"));
            assert_eq!(header.get("x"), Some("1"));
            assert_eq!(header.get("y"), Some("2"));
            assert_eq!(header.get("oauth_nonce"), None);
            assert_eq!(header.get("realm"), None);
            assert_eq!(header.realm(), Some("r"));
        }
    }

    #[test]
    fn quoted_and_bare_values_end_and_decode_in_place() {
        let header = AuthorizationHeader::parse(
            "OAuth a=\"0123456789abcdef%2B%3D\", b=0123456789%2Fx,c=\"x y,z\", d=\"\", e=,f=\"%41\"",
        )
        .unwrap();
        assert_eq!(header.get("a"), Some("0123456789abcdef+="));
        assert_eq!(header.get("b"), Some("0123456789/x"));
        assert_eq!(header.get("c"), Some("x y,z"));
        assert_eq!(header.get("d"), Some(""));
        assert_eq!(header.get("e"), Some(""));
        assert_eq!(header.get("f"), Some("A"));
        assert_eq!(
            AuthorizationHeader::parse("OAuth a=\"0123456789abcdef, b=\"c\"")
                .unwrap_err()
                .code(),
            "malformed_header"
        );
    }

    #[test]
    fn signed_params_exclude_realm_and_signature_but_keep_unknown_ones() {
        let header = AuthorizationHeader::parse(
            r#"OAuth realm="1", oauth_signature="s", oauth_body_hash="h", oauth_consumer_key="k""#,
        )
        .unwrap();
        let signed: Vec<_> = header.signed_params().collect();
        assert_eq!(
            signed,
            [("oauth_body_hash", "h"), ("oauth_consumer_key", "k")]
        );
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

    /// An encoded name (`oauth%5Fnonce` got past the duplicate check and was signed encoded
    /// twice) and a quoted-string escape (read differently by other parsers) are refused.
    #[test]
    fn rejects_encoded_names_and_backslash_escapes() {
        for (input, reason) in [
            (
                r#"OAuth oauth_nonce="a", oauth%5Fnonce="b""#,
                "percent-encoded",
            ),
            (r#"OAuth a%20b="1""#, "percent-encoded"),
            (r#"OAuth oauth_nonce="ab\"cd""#, "backslash"),
            (r#"OAuth oauth_nonce="a\\b""#, "backslash"),
        ] {
            match AuthorizationHeader::parse(input) {
                Err(OAuthError::MalformedHeader { reason: why }) => {
                    assert!(why.contains(reason), "{input}: {why}");
                }
                other => panic!("{input}: {other:?}"),
            }
        }
        // A percent-encoded backslash is a value as any other.
        let header = AuthorizationHeader::parse(r#"OAuth oauth_nonce="a%5Cb""#).unwrap();
        assert_eq!(header.protocol(Protocol::Nonce), Some(r"a\b"));
    }

    #[test]
    fn rejects_other_schemes_and_glued_schemes() {
        for input in [
            "Bearer abc",
            "OAuthx a=\"b\"",
            "",
            "NLAuth nlauth_account=1",
        ] {
            assert_eq!(
                AuthorizationHeader::parse(input).unwrap_err().code(),
                "wrong_scheme",
                "{input}"
            );
        }
        assert!(
            AuthorizationHeader::parse("OAuth")
                .unwrap()
                .params()
                .next()
                .is_none()
        );
    }

    #[test]
    fn rejects_malformed_shapes() {
        for input in [
            "OAuth oauth_nonce",
            r#"OAuth oauth_nonce="abc"#,
            r#"OAuth ="abc""#,
            r#"OAuth oauth_nonce="a" oauth_token="b""#,
            r#"OAuth oa uth="a""#,
            r#"OAuth "x"="a""#,
            r#"OAuth oauth_nonce="é""#,
        ] {
            assert_eq!(
                AuthorizationHeader::parse(input).unwrap_err().code(),
                "malformed_header",
                "{input}"
            );
        }
    }

    #[test]
    fn says_so_when_bytes_are_outside_ascii_wherever_they_are() {
        for input in [
            r#"OAuth oauth_nonce="é""#,
            "OAuth oauth_nonce=abé",
            r#"OAuth oauth_nonce="%41é%42""#,
            r#"OAuth realm="café",oauth_nonce="n""#,
            r#"OAuth oauth_noncé="n""#,
            "OAuth oauth_nonce=\"n\",\u{a0}oauth_token=\"t\"",
            "OAuth\u{a0}oauth_nonce=\"n\"",
            // Found by the fuzz target: leading Unicode space was trimmed away.
            "\u{a0}OAuth oauth_nonce=\"n\"",
            "\u{a0}OAuTh  .$$$$$$.=",
        ] {
            assert_eq!(
                AuthorizationHeader::parse(input).unwrap_err(),
                NOT_ASCII,
                "{input}"
            );
        }
        // NLAuth passwords and emails may be sent as they are.
        let nlauth = crate::NlAuthHeader::parse(
            r#"NLAuth nlauth_email="jé@example.com", nlauth_signature="pässword""#,
        )
        .unwrap();
        assert_eq!(nlauth.email, "jé@example.com");
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
        let many: Vec<String> = (0..=MAX_HEADER_PARAMS)
            .map(|i| format!("p{i}=\"v\""))
            .collect();
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
        assert!(
            !debug.contains("SECRETSIG") && !debug.contains("tok\""),
            "{debug}"
        );
    }
}
