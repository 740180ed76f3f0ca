//! Any bytes split into a URL, an Authorization header and a form body: building the base
//! string must return, never panic, and a successful build must be deterministic and contain
//! only unreserved characters, `%XX` escapes and the two `&` separators. The verifier's path
//! (which takes the header values that parsing marked as plain without scanning them again)
//! must build the same base string as normalizing the parameters from scratch.
#![no_main]

use keycard_oauth1::{
    AuthorizationHeader, Explanation, IncomingRequest, NormalizedParams, RequestTarget,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == 0);
    let (Some(url), Some(header)) = (parts.next(), parts.next()) else {
        return;
    };
    let body = parts.next();
    let (Ok(url), Ok(header)) = (std::str::from_utf8(url), std::str::from_utf8(header)) else {
        return;
    };
    let Ok(target) = RequestTarget::from_url("POST", url) else {
        return;
    };
    let Ok(header) = AuthorizationHeader::parse(header) else {
        return;
    };
    let request = IncomingRequest {
        target,
        header: &header,
        form_body: body,
    };
    if let Ok(first) = request.explain() {
        let second = request.explain().expect("deterministic");
        assert_eq!(first, second);
        let unmarked = NormalizedParams::collect(header.signed_params(), target.query, body)
            .expect("the verifier's path built it");
        assert_eq!(first, Explanation::new(&target, &unmarked));
        assert_eq!(first.base_string.matches('&').count(), 2);
        assert!(
            first
                .base_string
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~%&".contains(&b))
        );
    }
});
