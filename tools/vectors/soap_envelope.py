"""Builds one signed SOAP request with a tokenPassport, independently of keycard, the way
Python NetSuite SOAP clients (e.g. netsuitesdk) do: HMAC-SHA256 over
account&consumerKey&token&nonce&timestamp, keyed consumerSecret&tokenSecret, base64.

As a script (the tests' independent signer):
stdin:  JSON {"account", "consumer_key", "consumer_secret", "token", "token_secret",
              "version" (e.g. "2023_2"), "body" (the operation's XML)}
stdout: the envelope.
As a module: `envelope(request)` with the same dictionary (bench/harness/train.py signs its
SOAP training calls with it).
"""

import base64
import hmac
import json
import random
import string
import sys
import time
from hashlib import sha256
from xml.sax.saxutils import escape


def envelope(req: dict) -> str:
    """The signed envelope for `req`, with a fresh nonce and the current time."""
    nonce = "".join(random.SystemRandom().choice(string.ascii_letters + string.digits)
                    for _ in range(20))
    timestamp = str(int(time.time()))
    base = "&".join([req["account"], req["consumer_key"], req["token"], nonce, timestamp])
    key = f'{req["consumer_secret"]}&{req["token_secret"]}'
    signature = base64.b64encode(hmac.new(key.encode(), base.encode(), sha256).digest()).decode()
    v = req["version"]
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
    xmlns:platformMsgs="urn:messages_{v}.platform.webservices.netsuite.com"
    xmlns:platformCore="urn:core_{v}.platform.webservices.netsuite.com">
  <soapenv:Header>
    <platformMsgs:tokenPassport>
      <platformCore:account>{escape(req["account"])}</platformCore:account>
      <platformCore:consumerKey>{escape(req["consumer_key"])}</platformCore:consumerKey>
      <platformCore:token>{escape(req["token"])}</platformCore:token>
      <platformCore:nonce>{nonce}</platformCore:nonce>
      <platformCore:timestamp>{timestamp}</platformCore:timestamp>
      <platformCore:signature algorithm="HMAC-SHA256">{signature}</platformCore:signature>
    </platformMsgs:tokenPassport>
  </soapenv:Header>
  <soapenv:Body>{req["body"]}</soapenv:Body>
</soapenv:Envelope>"""


if __name__ == "__main__":
    print(envelope(json.load(sys.stdin)))
