"""Signs the cases from cases.py with Python oauthlib (pinned in requirements.txt).

Usage is the library's public client API:

    client = oauthlib.oauth1.Client(consumer_key, client_secret=..., resource_owner_key=...,
                                    resource_owner_secret=..., callback_uri=..., verifier=...,
                                    signature_method=SIGNATURE_HMAC_SHA256, realm=...,
                                    nonce=..., timestamp=...)
    uri, headers, body = client.sign(url, http_method, body, headers)

The Authorization header is what sign() returns. The base string is captured by
wrapping `oauthlib.oauth1.rfc5849.signature.signature_base_string`, which
Client.get_oauth_signature() calls once per sign(); so it is exactly the string
the library signed, not a recomputation.

Note: for a body that is not form-urlencoded (JSON, XML) oauthlib adds
oauth_body_hash = base64(SHA-1(body)) to the OAuth parameters (draft-eaton-oauth-bodyhash),
so it appears in both the header and the base string.
"""

from __future__ import annotations

import oauthlib
from oauthlib.oauth1 import Client, SIGNATURE_HMAC_SHA1, SIGNATURE_HMAC_SHA256
from oauthlib.oauth1.rfc5849 import signature as rfc_signature

LIB = "python-oauthlib"
VERSION = oauthlib.__version__

_METHODS = {"HMAC-SHA256": SIGNATURE_HMAC_SHA256, "HMAC-SHA1": SIGNATURE_HMAC_SHA1}

_captured: list[str] = []
_orig_sbs = rfc_signature.signature_base_string


def _capturing_sbs(*args, **kwargs):
    s = _orig_sbs(*args, **kwargs)
    _captured.append(s)
    return s


def sign(case: dict) -> dict:
    client = Client(
        case["consumer_key"],
        client_secret=case["consumer_secret"],
        resource_owner_key=case["token"],
        resource_owner_secret=case["token_secret"] if case["token"] is not None else None,
        callback_uri=case["callback"],
        verifier=case["verifier"],
        signature_method=_METHODS[case["signature_method"]],
        realm=case["realm"],
        nonce=case["nonce"],
        timestamp=case["timestamp"],
    )
    headers = {}
    body = None
    if case["content_type"] is not None:
        headers["Content-Type"] = case["content_type"]
        body = case["body"]
    _captured.clear()
    rfc_signature.signature_base_string = _capturing_sbs
    try:
        _uri, out_headers, _body = client.sign(case["url"], case["method_input"], body, headers)
    finally:
        rfc_signature.signature_base_string = _orig_sbs
    if len(_captured) != 1:
        raise AssertionError(f"{case['case']}: expected one base string, got {len(_captured)}")
    return {
        "case": case["case"],
        "authorization": out_headers["Authorization"],
        "base_string": _captured[0],
    }


def sign_all(cases: list[dict]) -> list[dict]:
    return [sign(c) for c in cases if LIB in c["libraries"]]
