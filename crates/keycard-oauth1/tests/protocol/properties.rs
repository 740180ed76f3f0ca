//! Property tests: signing then verifying always agrees, any change breaks it, a header written
//! from parameters parses back to them, and no input makes a parser panic.

use keycard_oauth1::client::{ClientRequest, Credentials, SignOptions, sign};
use keycard_oauth1::encode::{encode_form, percent_decode, percent_decode_bytes, percent_encode};
use keycard_oauth1::{
    AuthorizationHeader, IncomingRequest, NlAuthHeader, RequestTarget, SignatureMethod, SigningKey,
};
use proptest::prelude::*;

fn any_text() -> impl Strategy<Value = String> {
    // Mix ASCII specials, spaces, `+`, `%`, and non-ASCII so every encoding path is exercised.
    proptest::string::string_regex("[a-zA-Z0-9 +%&=?/~._!*'()éü日本-]{0,12}").unwrap()
}

fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec(
        (
            any_text().prop_filter("names are not empty", |s| !s.is_empty()),
            any_text(),
        ),
        0..5,
    )
}

fn url_strategy() -> impl Strategy<Value = (String, Vec<(String, String)>)> {
    (
        prop_oneof![Just("http"), Just("https"), Just("HTTPS")],
        prop_oneof![
            Just("1234567.restlets.api.netsuite.com"),
            Just("Example.COM"),
            Just("127.0.0.1"),
            Just("[::1]")
        ],
        prop_oneof![
            Just(None),
            Just(Some(80u16)),
            Just(Some(443)),
            Just(Some(8443))
        ],
        proptest::collection::vec("[a-zA-Z0-9._~-]{1,8}", 0..4),
        pairs(),
    )
        .prop_map(|(scheme, host, port, segments, query)| {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let path: String = segments.iter().flat_map(|s| ["/", s.as_str()]).collect();
            let query_text = encode_form(&query);
            let url = if query.is_empty() {
                format!("{scheme}://{host}{port}{path}")
            } else {
                format!("{scheme}://{host}{port}{path}?{query_text}")
            };
            (url, query)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn sign_then_verify_round_trips(
        method in prop_oneof![Just("GET"), Just("POST"), Just("PUT"), Just("patch"), Just("DELETE")],
        (url, _query) in url_strategy(),
        form in pairs(),
        consumer_secret in any_text(),
        token_secret in any_text(),
        realm in proptest::option::of("[0-9]{7}(_SB1)?"),
        nonce in "[a-zA-Z0-9]{6,40}",
        timestamp in 1_000_000_000u64..2_000_000_000,
        sha1 in any::<bool>(),
    ) {
        let form_body = (!form.is_empty()).then(|| encode_form(&form));
        let timestamp = timestamp.to_string();
        let mut options = SignOptions::new(&nonce, &timestamp);
        options.realm = realm.as_deref();
        options.method = if sha1 { SignatureMethod::HmacSha1 } else { SignatureMethod::HmacSha256 };
        let credentials = Credentials { consumer_key: "ck", consumer_secret: &consumer_secret, token: Some("tk"), token_secret: &token_secret };
        let request = ClientRequest { method, url: &url, form_body: form_body.as_deref() };
        let signed = sign(&request, &credentials, &options).unwrap();

        let header = AuthorizationHeader::parse(&signed.authorization).unwrap();
        prop_assert_eq!(header.realm(), realm.as_deref());
        let target = RequestTarget::from_url(method, &url).unwrap();
        let incoming = IncomingRequest { target, header: &header, form_body: form_body.as_deref().map(str::as_bytes) };
        let key = SigningKey::oauth(options.method, &consumer_secret, &token_secret);
        let mut buffer = Vec::new();
        prop_assert!(incoming.verify_signature(&key, &mut buffer).is_ok());
        prop_assert_eq!(buffer.as_slice(), signed.explanation.base_string.as_bytes());

        // A different token secret, or one more query parameter, must fail.
        let wrong_key = SigningKey::oauth(options.method, &consumer_secret, &format!("{token_secret}x"));
        prop_assert!(incoming.verify_signature(&wrong_key, &mut buffer).is_err());
        let separator = if url.contains('?') { '&' } else { '?' };
        let longer_url = format!("{url}{separator}extra=1");
        let tampered = IncomingRequest { target: RequestTarget::from_url(method, &longer_url).unwrap(), ..incoming };
        prop_assert!(tampered.verify_signature(&key, &mut buffer).is_err());
    }

    #[test]
    fn written_headers_parse_back(
        params in proptest::collection::btree_map("oauth_[a-z_]{1,12}", any_text(), 0..10),
        realm in proptest::option::of(any_text()),
        tight in any::<bool>(),
        scheme in prop_oneof![Just("OAuth"), Just("oauth"), Just("OAUTH")],
    ) {
        let mut parts: Vec<String> = params.iter().map(|(n, v)| format!("{n}=\"{}\"", percent_encode(v))).collect();
        if let Some(realm) = &realm {
            parts.push(format!("realm=\"{}\"", percent_encode(realm)));
        }
        let header_text = format!("{scheme} {}", parts.join(if tight { "," } else { ", " }));
        let header = AuthorizationHeader::parse(&header_text).unwrap();
        prop_assert_eq!(header.realm(), realm.as_deref());
        let parsed: Vec<(String, String)> = header.params().map(|(n, v)| (n.to_owned(), v.to_owned())).collect();
        let expected: Vec<(String, String)> = params.into_iter().collect();
        prop_assert_eq!(parsed, expected);
    }

    #[test]
    fn percent_encoding_round_trips(text in "\\PC{0,40}") {
        let encoded = percent_encode(&text);
        prop_assert!(encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
        prop_assert_eq!(percent_decode(&encoded).unwrap(), text.as_str());
    }

    #[test]
    fn parsers_never_panic(input in "\\PC{0,200}", bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = AuthorizationHeader::parse(&input);
        let _ = AuthorizationHeader::parse(&format!("OAuth {input}"));
        let _ = NlAuthHeader::parse(&format!("NLAuth {input}"));
        let _ = RequestTarget::from_url("GET", &input);
        let _ = RequestTarget::from_url("GET", &format!("https://h/{input}"));
        let _ = percent_decode(&input);
        let _ = percent_decode_bytes(&bytes, true);
        if let Ok(target) = RequestTarget::from_url("GET", &format!("https://h/p?{input}")) {
            let header = AuthorizationHeader::parse("OAuth oauth_signature=\"x\"").unwrap();
            let incoming = IncomingRequest { target, header: &header, form_body: Some(&bytes) };
            let _ = incoming.explain();
        }
    }
}
