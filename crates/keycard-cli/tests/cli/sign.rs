//! `keycard sign`: vector T2 through the binary, secrets kept out of the output, clear errors.

use crate::{keycard, stderr, stdout};

const CK: &str = "60712990bc09623786e7047c226bcb3f86d49dca0b04efc21001dc76d97a81f5";
const TK: &str = "447d0cba5569a2d616e32a537110bc8c10ebcf42cc1fa34d6f76d08531abc179";
const CS_T4: &str = "bd47b9c7e990a4f209db0217c023d0ba2274aafa7183f2cc310fff8bf24335b8";
const TS_T4: &str = "f4ae9dbe08acf7105db4d829391de42f387d1a8d6ddc2b41827ce142445445c1";

#[test]
fn request_token_step_matches_vector_t2() {
    let output = keycard(
        &[
            "sign",
            "POST",
            "https://1234567.restlets.api.netsuite.com/rest/requesttoken",
            "--nonce",
            "bUvpxBX93OWo0FLswq5M",
            "--timestamp",
            "1575998103",
            "--callback",
            "https://my.example.com/TBA/?callbackRequest",
            "--realm",
            "1234567",
        ],
        &[
            ("KEYCARD_CONSUMER_KEY", CK),
            ("KEYCARD_CONSUMER_SECRET", CK),
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let header = stdout(&output);
    assert!(
        header.starts_with("OAuth realm=\"1234567\", oauth_consumer_key="),
        "{header}"
    );
    assert!(
        header.contains("oauth_signature=\"KPBoxLKj2sTc%2B7dmTT9K2dsVnK5r7n5%2FRopNeuZrn70%3D\""),
        "{header}"
    );
}

#[test]
fn explain_shows_base_string_but_never_secrets() {
    let output = keycard(
        &[
            "sign",
            "GET",
            "https://1234567.restlets.api.netsuite.com/rest/revoketoken?consumerKey=60712990bc09623786e7047c226bcb3f86d49dca0b04efc21001dc76d97a81f5&token=447d0cba5569a2d616e32a537110bc8c10ebcf42cc1fa34d6f76d08531abc179",
            "--nonce",
            "wjRgXQPWhYtKl0A7bO8Z",
            "--timestamp",
            "1576079512",
            "--explain",
        ],
        &[
            ("KEYCARD_CONSUMER_KEY", CK),
            ("KEYCARD_CONSUMER_SECRET", CS_T4),
            ("KEYCARD_TOKEN_ID", TK),
            ("KEYCARD_TOKEN_SECRET", TS_T4),
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("base string: GET&https%3A%2F%2F1234567.restlets.api.netsuite.com%2Frest%2Frevoketoken&consumerKey%3D"), "{text}");
    assert!(
        text.contains("oauth_signature=\"IQwMGWzHT%2BN%2Bh%2BAlakCKto0FMhx9j53kL713Xijl9Io%3D\""),
        "{text}"
    );
    assert!(
        !text.contains(CS_T4) && !text.contains(TS_T4),
        "a secret was printed:\n{text}"
    );
}

#[test]
fn form_fields_are_signed_and_json_bodies_hashed() {
    let env = [
        ("KEYCARD_CONSUMER_KEY", "ck"),
        ("KEYCARD_CONSUMER_SECRET", "cs"),
    ];
    let form = keycard(
        &[
            "sign",
            "POST",
            "https://h/x",
            "--form",
            "a=b c",
            "--nonce",
            "abcdefgh",
            "--timestamp",
            "1700000000",
            "--explain",
        ],
        &env,
    );
    assert!(form.status.success(), "{}", stderr(&form));
    assert!(stdout(&form).contains("a%3Db%2520c"), "{}", stdout(&form));
    let hashed = keycard(
        &[
            "sign",
            "PUT",
            "https://h/x",
            "--body-hash-of",
            "{}",
            "--nonce",
            "abcdefgh",
            "--timestamp",
            "1700000000",
        ],
        &env,
    );
    assert!(hashed.status.success(), "{}", stderr(&hashed));
    // SHA-1 of `{}` is bf21a9e8fbc5a3846fb05b4fa0859e0917b2202f.
    assert!(
        stdout(&hashed).contains("oauth_body_hash=\"vyGp6PvFo4RvsFtPoIWeCReyIC8%3D\""),
        "{}",
        stdout(&hashed)
    );
}

#[test]
fn bad_arguments_fail_with_a_clear_message() {
    let env = [
        ("KEYCARD_CONSUMER_KEY", "ck"),
        ("KEYCARD_CONSUMER_SECRET", "cs"),
    ];
    let cases: &[(&[&str], &str)] = &[
        (&["sign", "GET", "not-a-url"], "not absolute"),
        (&["sign", "GET", "ftp://h/"], "http or https"),
        (
            &["sign", "GET", "https://h/?a=%zz"],
            "malformed percent-encoded",
        ),
        (
            &["sign", "GET", "https://h/", "--nonce", "abc"],
            "--nonce must be 6 to 64",
        ),
        (
            &["sign", "GET", "https://h/", "--timestamp", "12.5"],
            "--timestamp must be",
        ),
        (
            &["sign", "GET", "https://h/", "--form", "novalue"],
            "NAME=VALUE",
        ),
        (
            &[
                "sign",
                "GET",
                "https://h/",
                "--signature-method",
                "PLAINTEXT",
            ],
            "invalid value",
        ),
        // A token without its secret signed with an empty secret, and succeeded.
        (
            &["sign", "GET", "https://h/", "--token", "tk"],
            "--token-secret",
        ),
    ];
    for (args, expected) in cases {
        let output = keycard(args, &env);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(
            stderr(&output).contains(expected),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    let missing = keycard(&["sign", "GET", "https://h/"], &[]);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("--consumer-key"),
        "{}",
        stderr(&missing)
    );
}
