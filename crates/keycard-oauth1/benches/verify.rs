//! Verifying a typical NetSuite request (parse the header, rebuild the base string, check the
//! signature in constant time with a key prepared once per token), against the bare HMAC-SHA256
//! of the same base string measured in the same run. `docs/benchmarks.md` records the figures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use hmac::{Hmac, KeyInit, Mac};
use keycard_oauth1::client::{ClientRequest, Credentials, SignOptions, sign};
use keycard_oauth1::{
    AuthorizationHeader, IncomingRequest, RequestTarget, SignatureMethod, SigningKey,
};
use sha2::Sha256;

const CK: &str = "ef40afdd8abaac111b13825dd5e5e2ddddb44f86d5a0dd6dcf38c20aae6b67e4";
const CS: &str = "d26ad321a4b2f23b0741c8d38392ce01c3e23e109df6c96eac6d099e9ab9e8b5";
const TK: &str = "2b0ce516420110bcbd36b69e99196d1b7f6de3c6234c5afb799b73d87569f5cc";
const TS: &str = "c29a677df7d5439a458c063654187e3d678d73aca8e3c9d8bea1478a3eb0d295";
const URL: &str = "https://1234567.restlets.api.netsuite.com/app/site/hosting/restlet.nl?script=6&deploy=1&customParam=someValue";

fn typical_request() -> (String, String) {
    let mut options = SignOptions::new("fjaLirsIcCGVZWzBX0pg", "1508242306");
    options.realm = Some("1234567");
    let signed = sign(
        &ClientRequest {
            method: "GET",
            url: URL,
            form_body: None,
        },
        &Credentials {
            consumer_key: CK,
            consumer_secret: CS,
            token: Some(TK),
            token_secret: TS,
        },
        &options,
    )
    .unwrap();
    (signed.authorization, signed.explanation.base_string)
}

fn bench(c: &mut Criterion) {
    let (authorization, base_string) = typical_request();
    let key = SigningKey::oauth(SignatureMethod::HmacSha256, CS, TS);
    let raw_key = format!("{CS}&{TS}");

    let mut group = c.benchmark_group("netsuite_get");
    group.bench_function("bare_hmac_sha256", |b| {
        b.iter(|| {
            let mut mac = Hmac::<Sha256>::new_from_slice(black_box(raw_key.as_bytes())).unwrap();
            mac.update(black_box(base_string.as_bytes()));
            black_box(mac.finalize().into_bytes())
        });
    });
    group.bench_function("bare_hmac_sha256_prekeyed", |b| {
        let keyed = Hmac::<Sha256>::new_from_slice(raw_key.as_bytes()).unwrap();
        b.iter(|| {
            let mut mac = keyed.clone();
            mac.update(black_box(base_string.as_bytes()));
            black_box(mac.finalize().into_bytes())
        });
    });
    group.bench_function("verify_full", |b| {
        let mut buffer = Vec::with_capacity(512);
        b.iter(|| {
            let header = AuthorizationHeader::parse(black_box(&authorization)).unwrap();
            let target = RequestTarget::from_url("GET", black_box(URL)).unwrap();
            let request = IncomingRequest {
                target,
                header: &header,
                form_body: None,
            };
            request.verify_signature(&key, &mut buffer).unwrap();
        });
    });
    group.bench_function("part_parse_header", |b| {
        b.iter(|| black_box(AuthorizationHeader::parse(black_box(&authorization)).unwrap()));
    });
    group.bench_function("part_collect_params", |b| {
        let header = AuthorizationHeader::parse(&authorization).unwrap();
        let target = RequestTarget::from_url("GET", URL).unwrap();
        b.iter(|| {
            black_box(
                keycard_oauth1::NormalizedParams::collect(
                    header.signed_params(),
                    target.query,
                    None,
                )
                .unwrap(),
            )
        });
    });
    group.bench_function("part_write_base", |b| {
        let header = AuthorizationHeader::parse(&authorization).unwrap();
        let target = RequestTarget::from_url("GET", URL).unwrap();
        let params =
            keycard_oauth1::NormalizedParams::collect(header.signed_params(), target.query, None)
                .unwrap();
        let mut out = Vec::with_capacity(512);
        b.iter(|| {
            keycard_oauth1::base_string::write_base_string(&target, &params, &mut out);
            black_box(&out);
        });
    });
    group.bench_function("part_key_verify", |b| {
        let header = AuthorizationHeader::parse(&authorization).unwrap();
        let sig = header.get("oauth_signature").unwrap().to_owned();
        b.iter(|| {
            key.verify(black_box(base_string.as_bytes()), black_box(&sig))
                .unwrap();
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
