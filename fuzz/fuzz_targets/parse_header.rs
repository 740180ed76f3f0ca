//! Any bytes as an `OAuth` or `NLAuth` header: parsing must return, never panic, and a parsed
//! header must keep its invariants (no duplicate names, realm kept apart, only ASCII accepted,
//! every parameter found by `get` as a scan finds it).
#![no_main]

use keycard_oauth1::{AuthorizationHeader, NlAuthHeader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(header) = AuthorizationHeader::parse(text) {
        assert!(text.is_ascii(), "a header outside ASCII was accepted");
        let names: Vec<&str> = header.names().collect();
        for (index, name) in names.iter().enumerate() {
            assert!(!names[index + 1..].contains(name), "duplicate {name}");
            assert_ne!(*name, "realm");
        }
        for (name, value) in header.params() {
            assert_eq!(header.get(name), Some(value), "{name}");
        }
    }
    let _ = NlAuthHeader::parse(text);
});
