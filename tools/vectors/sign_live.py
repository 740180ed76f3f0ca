"""Signs one live request with Python oauthlib, for the server's end-to-end tests.

stdin:  JSON {"method", "url", "consumer_key", "consumer_secret", "token", "token_secret",
              "realm" (optional), "form" (optional list of [name, value])}
stdout: the Authorization header value. Nonce and timestamp are the library's own.
"""

import json
import sys
from urllib.parse import urlencode

from oauthlib.oauth1 import Client, SIGNATURE_HMAC_SHA256

req = json.load(sys.stdin)
client = Client(
    req["consumer_key"],
    client_secret=req["consumer_secret"],
    resource_owner_key=req["token"],
    resource_owner_secret=req["token_secret"],
    signature_method=SIGNATURE_HMAC_SHA256,
    realm=req.get("realm"),
)
body = None
headers = {}
if req.get("form"):
    body = urlencode([tuple(pair) for pair in req["form"]])
    headers["Content-Type"] = "application/x-www-form-urlencoded"
_, signed, _ = client.sign(req["url"], http_method=req["method"], body=body, headers=headers)
print(signed["Authorization"])
