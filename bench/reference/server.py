"""The reference server: what a competent team would write in Python for the same job.

OAuth 1.0a HMAC-SHA256 verification with oauthlib's SignatureOnlyEndpoint and a RequestValidator
holding the same rules as keycard (±300 s timestamp window, each nonce single use per token,
kept in memory), as a plain WSGI app behind gunicorn. It answers the same bodies as keycard:
the success body captured from keycard for the scenario, and keycard's 401 body on failure.

It does not do keycard's other work (directory cache, concurrency slots, permissions, login
audit trail), so keycard/reference is a conservative ratio: keycard does more per request.

Configuration comes from the environment (gunicorn owns the command line):
  BENCH_CREDS      credentials file (same as loadgen's): realm, consumer key/secret, tokens
  BENCH_BODY       file with the 200 body
  BENCH_FAIL_BODY  file with the 401 body
"""

import json
import os
import threading
import time

from oauthlib.oauth1 import RequestValidator, SignatureOnlyEndpoint
from oauthlib.oauth1.rfc5849 import SIGNATURE_HMAC_SHA256

WINDOW_SECS = 300
BUCKET_SECS = 10  # nonces are dropped ten seconds at a time once out of the window, as in keycard

with open(os.environ["BENCH_CREDS"], encoding="utf-8") as f:
    CREDS = json.load(f)
with open(os.environ["BENCH_BODY"], "rb") as f:
    BODY = f.read()
with open(os.environ["BENCH_FAIL_BODY"], "rb") as f:
    FAIL_BODY = f.read()

TOKEN_SECRETS = {t["token_id"]: t["token_secret"] for t in CREDS["tokens"]}


class Validator(RequestValidator):
    """Keycard's rules, in oauthlib's terms. The defaults oauthlib ships (20–30 character keys,
    600 s lifetime, no SHA-256) are NetSuite-incompatible, hence the overrides."""

    enforce_ssl = False  # loopback benchmark; keycard serves plain HTTP here too
    allowed_signature_methods = (SIGNATURE_HMAC_SHA256,)
    client_key_length = (20, 64)
    access_token_length = (20, 64)
    nonce_length = (6, 64)
    timestamp_lifetime = WINDOW_SECS
    # For unknown keys oauthlib still computes a signature with these (equal timing, as keycard).
    dummy_client = "0" * 64
    dummy_access_token = "0" * 64

    def __init__(self):
        super().__init__()
        self._lock = threading.Lock()
        self._nonces = {}  # bucket -> set of (token, nonce, timestamp)

    def validate_client_key(self, client_key, request):
        return client_key == CREDS["consumer_key"]

    def get_client_secret(self, client_key, request):
        return CREDS["consumer_secret"] if client_key == CREDS["consumer_key"] else "dummy"

    def get_access_token_secret(self, client_key, token, request):
        # SignatureOnlyEndpoint verifies the signature with this secret: an unknown token
        # gets a secret nobody has, so its signature fails.
        return TOKEN_SECRETS.get(token, "dummy")

    def validate_timestamp_and_nonce(self, client_key, timestamp, nonce, request,
                                     request_token=None, access_token=None):
        # oauthlib has already checked the timestamp window (timestamp_lifetime).
        ts = int(timestamp)
        key = (request.resource_owner_key, nonce, ts)
        oldest_live = (int(time.time()) - WINDOW_SECS) // BUCKET_SECS - 1
        with self._lock:
            for bucket in [b for b in self._nonces if b < oldest_live]:
                del self._nonces[bucket]
            if any(key in seen for seen in self._nonces.values()):
                return False
            self._nonces.setdefault(ts // BUCKET_SECS, set()).add(key)
        return True


endpoint = SignatureOnlyEndpoint(Validator())


def app(environ, start_response):
    # Rebuild the URL the client signed from the Host header and the raw request target.
    target = environ.get("RAW_URI") or environ.get("PATH_INFO", "/")
    uri = f"http://{environ.get('HTTP_HOST', '')}{target}"
    headers = {"Authorization": environ.get("HTTP_AUTHORIZATION", "")}
    valid, _ = endpoint.validate_request(uri, http_method=environ["REQUEST_METHOD"],
                                         body=None, headers=headers)
    status, body = ("200 OK", BODY) if valid else ("401 Unauthorized", FAIL_BODY)
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]
