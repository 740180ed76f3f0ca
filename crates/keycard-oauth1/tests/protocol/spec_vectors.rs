//! T1–T6 of `shared/design/netsuite-tba.md` §9: RFC 5849's example and NetSuite's documented
//! requests, each recomputed independently when the design notes were written.

use keycard_oauth1::{SignatureMethod, TokenPassport};

use crate::{Vector, check};

const CK: &str = "60712990bc09623786e7047c226bcb3f86d49dca0b04efc21001dc76d97a81f5";
const TK: &str = "447d0cba5569a2d616e32a537110bc8c10ebcf42cc1fa34d6f76d08531abc179";
const VERIFIER: &str = "3eff1ae4de6f924014b88e489a41e88da8ed1ba8bd5ad7684a71579d7e97f4ee";

const T1_BASE: &str = "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7";
const T1_HEADER: &str = r#"OAuth realm="Example", oauth_consumer_key="9djdj82h48djs9d2", oauth_token="kkk9d7dh3k39sjv7", oauth_signature_method="HMAC-SHA1", oauth_timestamp="137131201", oauth_nonce="7d8f3e4a""#;
const T1_URL: &str = "http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b";
const T1_CS: &str = "ECrDNoq1VYzzzzzzzzzyAK7TwZNtPnkqatqZZZZ";
const T1_TS: &str = "just-a-string    asdasd";

fn t2_base() -> String {
    format!(
        "POST&https%3A%2F%2F1234567.restlets.api.netsuite.com%2Frest%2Frequesttoken&oauth_callback%3Dhttps%253A%252F%252Fmy.example.com%252FTBA%252F%253FcallbackRequest%26oauth_consumer_key%3D{CK}%26oauth_nonce%3DbUvpxBX93OWo0FLswq5M%26oauth_signature_method%3DHMAC-SHA256%26oauth_timestamp%3D1575998103%26oauth_version%3D1.0"
    )
}

fn t3_base() -> String {
    format!(
        "POST&https%3A%2F%2F1234567.restlets.api.netsuite.com%2Frest%2Faccesstoken&oauth_consumer_key%3D{CK}%26oauth_nonce%3DwjRgXQPWhYtKl0A7bO8Z%26oauth_signature_method%3DHMAC-SHA256%26oauth_timestamp%3D1576079512%26oauth_token%3D{TK}%26oauth_verifier%3D{VERIFIER}%26oauth_version%3D1.0"
    )
}

fn t4_base() -> String {
    format!(
        "GET&https%3A%2F%2F1234567.restlets.api.netsuite.com%2Frest%2Frevoketoken&consumerKey%3D{CK}%26oauth_consumer_key%3D{CK}%26oauth_nonce%3DwjRgXQPWhYtKl0A7bO8Z%26oauth_signature_method%3DHMAC-SHA256%26oauth_timestamp%3D1576079512%26oauth_token%3D{TK}%26oauth_version%3D1.0%26token%3D{TK}"
    )
}

const T6_CS: &str = "d26ad321a4b2f23b0741c8d38392ce01c3e23e109df6c96eac6d099e9ab9e8b5";
const T6_TS: &str = "c29a677df7d5439a458c063654187e3d678d73aca8e3c9d8bea1478a3eb0d295";
const T6_QUERY: &str =
    "/app/site/hosting/restlet.nl?script=6&deploy=1&customParam=someValue&testParam=someOtherValue";

// One table of every vector: long by nature.
#[allow(clippy::too_many_lines)]
#[test]
fn spec_and_netsuite_vectors() {
    let t2_header = format!(
        r#"OAuth realm="1234567", oauth_consumer_key="{CK}", oauth_nonce="bUvpxBX93OWo0FLswq5M", oauth_timestamp="1575998103", oauth_signature_method="HMAC-SHA256", oauth_version="1.0", oauth_callback="https%3A%2F%2Fmy.example.com%2FTBA%2F%3FcallbackRequest", oauth_signature="KPBoxLKj2sTc%2B7dmTT9K2dsVnK5r7n5%2FRopNeuZrn70%3D""#
    );
    // Realm left out, as allowed for the access-token step since 2020.1; pairs sorted, no spaces.
    let t3_header = format!(
        r#"OAuth oauth_consumer_key="{CK}",oauth_nonce="wjRgXQPWhYtKl0A7bO8Z",oauth_signature="BBzawyjesZyFrwBjUAJfBsPDDGUY2FRdp3k4NwGDAO0%3D",oauth_signature_method="HMAC-SHA256",oauth_timestamp="1576079512",oauth_token="{TK}",oauth_verifier="{VERIFIER}",oauth_version="1.0""#
    );
    let t4_url = format!(
        "https://1234567.restlets.api.netsuite.com/rest/revoketoken?consumerKey={CK}&token={TK}"
    );
    let t4_header = format!(
        r#"OAuth oauth_signature_method="HMAC-SHA256", oauth_token="{TK}", oauth_version="1.0", oauth_timestamp="1576079512", oauth_nonce="wjRgXQPWhYtKl0A7bO8Z", oauth_consumer_key="{CK}", realm="1234567""#
    );
    let t6_header = |host_realm: &str| {
        format!(
            r#"OAuth realm="{host_realm}", oauth_consumer_key="ef40afdd8abaac111b13825dd5e5e2ddddb44f86d5a0dd6dcf38c20aae6b67e4", oauth_token="2b0ce516420110bcbd36b69e99196d1b7f6de3c6234c5afb799b73d87569f5cc", oauth_nonce="fjaLirsIcCGVZWzBX0pg", oauth_timestamp="1508242306", oauth_signature_method="HMAC-SHA256", oauth_version="1.0""#
        )
    };
    let t6_header_123456 = t6_header("123456");
    let t6_header_1234567 = t6_header("1234567");
    let (t2_base, t3_base, t4_base) = (t2_base(), t3_base(), t4_base());
    let t6_url_123456 = format!("https://123456.restlets.api.netsuite.com{T6_QUERY}");
    let t6_url_1234567 = format!("https://1234567.restlets.api.netsuite.com{T6_QUERY}");

    let vectors = [
        Vector {
            name: "T1 RFC 5849 example, HMAC-SHA1",
            method: "POST",
            url: T1_URL,
            authorization: T1_HEADER,
            form_body: Some("c2&a3=2+q"),
            consumer_secret: T1_CS,
            token_secret: T1_TS,
            key_method: SignatureMethod::HmacSha1,
            base_string: Some(T1_BASE),
            signature: "wsdNmjGB7lvis0UJuPAmjvX/PXw=",
        },
        Vector {
            name: "T1 RFC 5849 example, HMAC-SHA256 over the same base string",
            key_method: SignatureMethod::HmacSha256,
            signature: "wdfdHUKXHbOnOGZP8WFAWMSAmWzN3EVBWWgXGlC/Eo4=",
            method: "POST",
            url: T1_URL,
            authorization: T1_HEADER,
            form_body: Some("c2&a3=2+q"),
            consumer_secret: T1_CS,
            token_secret: T1_TS,
            base_string: Some(T1_BASE),
        },
        Vector {
            name: "T2 three-step request token",
            method: "POST",
            url: "https://1234567.restlets.api.netsuite.com/rest/requesttoken",
            authorization: &t2_header,
            form_body: None,
            consumer_secret: CK,
            token_secret: "",
            key_method: SignatureMethod::HmacSha256,
            base_string: Some(&t2_base),
            signature: "KPBoxLKj2sTc+7dmTT9K2dsVnK5r7n5/RopNeuZrn70=",
        },
        Vector {
            name: "T3 three-step access token",
            method: "POST",
            url: "https://1234567.restlets.api.netsuite.com/rest/accesstoken",
            authorization: &t3_header,
            form_body: None,
            consumer_secret: CK,
            token_secret: TK,
            key_method: SignatureMethod::HmacSha256,
            base_string: Some(&t3_base),
            signature: "BBzawyjesZyFrwBjUAJfBsPDDGUY2FRdp3k4NwGDAO0=",
        },
        Vector {
            name: "T4 revoketoken with query parameters, realm last",
            method: "GET",
            url: &t4_url,
            authorization: &t4_header,
            form_body: None,
            consumer_secret: "bd47b9c7e990a4f209db0217c023d0ba2274aafa7183f2cc310fff8bf24335b8",
            token_secret: "f4ae9dbe08acf7105db4d829391de42f387d1a8d6ddc2b41827ce142445445c1",
            key_method: SignatureMethod::HmacSha256,
            base_string: Some(&t4_base),
            signature: "IQwMGWzHT+N+h+AlakCKto0FMhx9j53kL713Xijl9Io=",
        },
        Vector {
            name: "T6 RESTlet POST with query parameters, account 123456",
            method: "POST",
            url: &t6_url_123456,
            authorization: &t6_header_123456,
            form_body: None,
            consumer_secret: T6_CS,
            token_secret: T6_TS,
            key_method: SignatureMethod::HmacSha256,
            base_string: None,
            signature: "+KK4SKNgz4ZiILGLwOMtfYlgcXSy1eis8ldE9X90azQ=",
        },
        Vector {
            name: "T6 RESTlet POST with query parameters, account 1234567",
            method: "POST",
            url: &t6_url_1234567,
            authorization: &t6_header_1234567,
            form_body: None,
            consumer_secret: T6_CS,
            token_secret: T6_TS,
            key_method: SignatureMethod::HmacSha256,
            base_string: None,
            signature: "i7MEtGwhCTIZbTsTrNGw9LdcERn4wsjt5C7TxmKWIfU=",
        },
    ];
    for vector in &vectors {
        check(vector);
    }
}

#[test]
fn t6_sorts_the_documented_parameter_order() {
    let header = r#"OAuth oauth_consumer_key="k", oauth_token="t", oauth_nonce="n", oauth_timestamp="1", oauth_signature_method="HMAC-SHA256", oauth_version="1.0""#;
    let header = keycard_oauth1::AuthorizationHeader::parse(header).unwrap();
    let target = keycard_oauth1::RequestTarget::from_url(
        "POST",
        "https://123456.restlets.api.netsuite.com/app/site/hosting/restlet.nl?script=6&deploy=1&customParam=someValue&testParam=someOtherValue",
    )
    .unwrap();
    let explanation = keycard_oauth1::IncomingRequest {
        target,
        header: &header,
        form_body: None,
    }
    .explain()
    .unwrap();
    let names: Vec<_> = explanation
        .parameters
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "customParam",
            "deploy",
            "oauth_consumer_key",
            "oauth_nonce",
            "oauth_signature_method",
            "oauth_timestamp",
            "oauth_token",
            "oauth_version",
            "script",
            "testParam"
        ]
    );
}

#[test]
fn t5_soap_token_passport() {
    let passport = TokenPassport {
        account: "1234567",
        consumer_key: "71cc02b731f05895561ef0862d71553a3ac99498a947c3b7beaf4a1e4a29f7c4",
        token: "89e08d9767c5ac85b374415725567d05b54ecf0960ad2470894a52f741020d82",
        nonce: "6obMKq0tmY8ylVOdEkA1",
        timestamp: "1439829974",
    };
    assert_eq!(
        passport.base_string(),
        "1234567&71cc02b731f05895561ef0862d71553a3ac99498a947c3b7beaf4a1e4a29f7c4&89e08d9767c5ac85b374415725567d05b54ecf0960ad2470894a52f741020d82&6obMKq0tmY8ylVOdEkA1&1439829974"
    );
    let key = TokenPassport::signing_key(
        SignatureMethod::HmacSha256,
        "7278da58caf07f5c336301a601203d10a58e948efa280f0618e25fcee1ef2abd",
        "060cd9ab3ffbbe1e3d3918e90165ffd37ab12acc76b4691046e2d29c7d7674c2",
    );
    let signature = key.sign(passport.base_string().as_bytes());
    assert_eq!(signature, "FCghIZqXNetuZY8ILWOFH0ucdfzQOmAuL+q+kF21zPs=");
    assert!(
        key.verify(passport.base_string().as_bytes(), &signature)
            .is_ok()
    );
}

#[test]
fn the_client_signer_reproduces_t3_and_t4() {
    use keycard_oauth1::client::{ClientRequest, Credentials, SignOptions, sign};
    let mut options = SignOptions::new("wjRgXQPWhYtKl0A7bO8Z", "1576079512");
    options.verifier = Some(VERIFIER);
    let t3 = sign(
        &ClientRequest {
            method: "POST",
            url: "https://1234567.restlets.api.netsuite.com/rest/accesstoken",
            form_body: None,
        },
        &Credentials {
            consumer_key: CK,
            consumer_secret: CK,
            token: Some(TK),
            token_secret: TK,
        },
        &options,
    )
    .unwrap();
    assert_eq!(t3.explanation.base_string, t3_base());
    assert!(
        t3.authorization
            .ends_with("oauth_signature=\"BBzawyjesZyFrwBjUAJfBsPDDGUY2FRdp3k4NwGDAO0%3D\"")
    );

    let url = format!(
        "https://1234567.restlets.api.netsuite.com/rest/revoketoken?consumerKey={CK}&token={TK}"
    );
    let mut options = SignOptions::new("wjRgXQPWhYtKl0A7bO8Z", "1576079512");
    options.realm = Some("1234567");
    let t4 = sign(
        &ClientRequest {
            method: "GET",
            url: &url,
            form_body: None,
        },
        &Credentials {
            consumer_key: CK,
            consumer_secret: "bd47b9c7e990a4f209db0217c023d0ba2274aafa7183f2cc310fff8bf24335b8",
            token: Some(TK),
            token_secret: "f4ae9dbe08acf7105db4d829391de42f387d1a8d6ddc2b41827ce142445445c1",
        },
        &options,
    )
    .unwrap();
    assert_eq!(t4.explanation.base_string, t4_base());
    assert!(
        t4.authorization
            .starts_with("OAuth realm=\"1234567\", oauth_consumer_key=")
    );
    assert!(
        t4.authorization
            .ends_with("oauth_signature=\"IQwMGWzHT%2BN%2Bh%2BAlakCKto0FMhx9j53kL713Xijl9Io%3D\"")
    );
}
