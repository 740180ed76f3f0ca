"""Deterministic OAuth 1.0a signing inputs, shared by both client libraries.

This is the ONE place where test inputs are made. `generate.py` imports
`build_cases()`; `python3 cases.py` prints the same list as JSON (handy for
debugging the Node signer: `python3 cases.py | node node_sign.js`).

Every case describes one HTTP request exactly as it goes on the wire (`url`,
`body`) plus the decoded form of its query and form body (`query_pairs`,
`form_pairs`), which the generator cross-checks against an independent
x-www-form-urlencoded decoder.

Each case also says which library may sign it. `exclusions(case)` holds the
rules; an input class that a library gets wrong (when compared with RFC 5849)
is not fed to that library. The reasons are recorded per case in
`excluded` and summarised by `generate.py`.
"""

from __future__ import annotations

import json
import random
import string
import sys
import urllib.parse

SEED = 0x5EED_2024_0A
N_RANDOM_CASES = 240

LIB_OAUTHLIB = "python-oauthlib"
LIB_NODE = "node-oauth-1.0a"

UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")

# Query/body characters that may travel unescaped and that do not end a
# name or a value (RFC 3986 query chars minus & = + and '?', which get their
# own flags below). All of them are in oauthlib's `urlencoded` allow-list.
LOOSE_RAW = frozenset(":/@!$'()*,;~")


def pct(s: str, safe: frozenset = UNRESERVED, lower_hex: bool = False, plus_space: bool = False) -> str:
    """Percent-encode the UTF-8 bytes of `s`, keeping the characters in `safe`."""
    out = []
    for ch in s:
        if ch in safe:
            out.append(ch)
        elif ch == " " and plus_space:
            out.append("+")
        else:
            for b in ch.encode("utf-8"):
                h = "%%%02X" % b
                out.append(h.lower() if lower_hex else h)
    return "".join(out)


def rfc3986(s: str) -> str:
    return pct(s)


# --------------------------------------------------------------------------
# Value pools (decoded strings)
# --------------------------------------------------------------------------

HEX = "0123456789abcdef"
ALNUM = string.ascii_letters + string.digits

PLAIN_NAMES = [
    "script", "deploy", "limit", "offset", "q", "fields", "expandSubResources",
    "customParam", "testParam", "a", "a0", "a_b", "a-b", "a.b", "A", "Z", "b5",
    "c2", "x", "X", "id", "name", "state", "consumerKey", "token", "page",
    "sort", "z", "zz", "z9", "ab", "a~",
]
# Names that need (or may get) percent-encoding on the wire.
FANCY_NAMES = [
    "c@", "é", "日本", "a b", "x[y]", "weird&name", "eq=name", "plus+name",
    "100%", "ключ", "q?", "a/b", "sp ace", "😀", "!bang", "(p)", "*",
]
NETSUITE_VALUES = [
    "1", "42", "1000", "0", "customscript_my_script", "customdeploy1",
    "customscript_acme_restlet", "true", "false", "T", "Acme", "customer",
    "SELECT id, companyname FROM customer WHERE id > 10",
    'companyname START_WITH "Acme"',
]
FANCY_VALUES = [
    "é", "café", "日本", "日本語テキスト", "naïve façade", "&=?/:+*!'()", "a+b",
    "1 + 1 = 2", "a b c", " leading", "trailing ", "%20", "%", "100%", "x=y",
    "q?x", "/path/to", "key:value", "a,b;c", "~tilde_dash-dot.", '"quoted"',
    "<tag>", "#hash", "[1]", "{}", "tab\there", "new\nline", "😀", "€5",
    "Ünïcödé", "+", " ", "==", "&&", "a&b=c", "ß", "\u00a0nbsp",
]
JSON_BODIES = [
    '{"companyName":"Acme & Co","subsidiary":{"id":"1"}}',
    '{"q":"SELECT id, email FROM employee WHERE isinactive = \'F\'"}',
    '{"entityId":"Jürgen Müller","email":"jm@example.com","phone":"+49 30 1234"}',
    '{"items":[{"item":{"id":"17"},"quantity":2}],"memo":"a=b&c=d"}',
    '{"action":"create","recordtype":"customer","values":{"companyname":"日本株式会社"}}',
    '{"message":"hello world"}',
    '{}',
    '{"amount":12.5,"currency":"EUR","note":"100% + tax"}',
]
XML_BODY = (
    '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
    'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
    '<soapenv:Body><get><baseRef internalId="42" type="customer"/></get>'
    '</soapenv:Body></soapenv:Envelope>'
)
CALLBACKS = [
    "https://my.example.com/TBA/?callbackRequest",
    "http://localhost:8080/callback",
    "oob",
    "https://app.example.com/oauth/cb?state=abc&x=1",
    "http://127.0.0.1:3000/auth/netsuite/callback",
    "https://example.com/cb?x=%C3%A9&y=1+2",
]
ODD_SECRETS = [
    "sec ret&+/=",
    "p@ss:w0rd!*'()",
    "ünïcödé-sëcret",
    "100%_sure",
    "~-._unreserved_only",
    "tab\tand space ",
    "日本の秘密",
    "a&b&c",
    "=+=",
]
ODD_KEYS = [
    "key with spaces",
    "ck+/=&",
    "ключ",
    "tok:en@host",
]

# --------------------------------------------------------------------------
# Hosts and paths
# --------------------------------------------------------------------------

NS_HOSTS = [
    # (host as written in the URL, the realm that goes with it)
    ("1234567.restlets.api.netsuite.com", "1234567"),
    ("1234567-sb1.restlets.api.netsuite.com", "1234567_SB1"),
    ("1234567-sb1.suitetalk.api.netsuite.com", "1234567_SB1"),
    ("1234567.suitetalk.api.netsuite.com", "1234567"),
    ("TSTDRV1234567.app.netsuite.com", "TSTDRV1234567"),
    ("tstdrv1234567.restlets.api.netsuite.com", "TSTDRV1234567"),
    ("TSTDRV1234567.Suitetalk.Api.NetSuite.com", "TSTDRV1234567"),
    ("system.netsuite.com", None),
]
LOCAL_HOSTS = ["localhost", "127.0.0.1", "[::1]", "LocalHost"]
REALMS = ["1234567", "1234567_SB1", "TSTDRV1234567"]

GENERIC_PATHS = [
    "/app/site/hosting/restlet.nl",
    "/services/rest/record/v1/customer/42",
    "/services/rest/record/v1/salesOrder/7/!transform/invoice",
    "/services/rest/query/v1/suiteql",
    "/files/my%20report.csv",
    "/~user/a~b",
    "/caf%C3%A9/%E6%97%A5%E6%9C%AC",
    "/records/a%2Fb",
    "/a+b/c",
    "/v1/x:y@z=1,2",
    "/it's/(here)*",
    "/path;jsessionid=ABC123",
    "/",
    "/deep/er/and/deeper/",
    "/UPPER/Case/Path",
    "/%7Euser/%21bang",
    "/services/NetSuitePort_2023_1",
    "/rest/tokeninfo",
]


def rand_hex(rng: random.Random, n: int = 64) -> str:
    return "".join(rng.choice(HEX) for _ in range(n))


def rand_alnum(rng: random.Random, lo: int, hi: int) -> str:
    return "".join(rng.choice(ALNUM) for _ in range(rng.randint(lo, hi)))


def rand_messy(rng: random.Random) -> str:
    """A short string mixing unreserved, reserved, space and non-ASCII."""
    alphabet = "ab Z9-._~!*'();:@&=+$,/?#[]%é日😀"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8)))


# --------------------------------------------------------------------------
# Query / form encoding
# --------------------------------------------------------------------------

def encode_component(s: str, rng: random.Random, *, node_friendly: bool, is_name: bool, in_query: bool) -> str:
    """Encode one decoded name or value the way some client might put it on the wire.

    Styles: strict RFC 3986 (%20), form style (+ for space), loose (leaves
    sub-delims raw), lower-case hex. Every style decodes back to `s` with an
    x-www-form-urlencoded decoder.
    """
    styles = ["strict", "strict", "plus", "loose", "lower"]
    style = rng.choice(styles)
    plus_space = style == "plus" or (style == "loose" and rng.random() < 0.5)
    if node_friendly and in_query:
        plus_space = False  # oauth-1.0a does not turn + into a space in the query
    safe = set(UNRESERVED)
    if style == "loose":
        safe |= LOOSE_RAW
        if not node_friendly or not in_query:
            if rng.random() < 0.6:
                safe.add("?")  # legal in a query; oauth-1.0a splits the URL at every '?'
            if not is_name and rng.random() < 0.5:
                safe.add("=")  # legal inside a value; oauth-1.0a cuts the value at it
    return pct(s, frozenset(safe), lower_hex=(style == "lower"), plus_space=plus_space)


def make_pairs(rng: random.Random, n: int, *, node_friendly: bool, fancy: float) -> list[list]:
    """Decoded (name, value, has_equals) triples."""
    out = []
    for _ in range(n):
        if rng.random() < fancy and not node_friendly:
            name = rng.choice(FANCY_NAMES + [rand_messy(rng)])
        else:
            name = rng.choice(PLAIN_NAMES)
        r = rng.random()
        if r < 0.12:
            value = ""
        elif r < 0.45:
            value = rng.choice(NETSUITE_VALUES)
        elif r < 0.55:
            value = rand_messy(rng)
        elif r < 0.6:
            value = rand_hex(rng, 16)
        else:
            value = rng.choice(FANCY_VALUES) if rng.random() < fancy * 1.5 else rng.choice(NETSUITE_VALUES)
        has_eq = not (value == "" and rng.random() < 0.5)
        out.append([name, value, has_eq])
    # Repeated names with different values.
    if out and rng.random() < 0.35:
        name = rng.choice(out)[0]
        for _ in range(rng.randint(1, 2)):
            v = rng.choice(NETSUITE_VALUES + FANCY_VALUES[:8] + [""])
            out.append([name, v, True])
        if rng.random() < 0.5:
            rng.shuffle(out)
    return out


def encode_pairs(triples, rng: random.Random, *, node_friendly: bool, in_query: bool, empty_segments: bool) -> str:
    parts = []
    for name, value, has_eq in triples:
        n = encode_component(name, rng, node_friendly=node_friendly, is_name=True, in_query=in_query)
        if not has_eq:
            parts.append(n)
        else:
            v = encode_component(value, rng, node_friendly=node_friendly, is_name=False, in_query=in_query)
            parts.append(n + "=" + v)
    if empty_segments and parts:
        i = rng.randint(0, len(parts))
        parts.insert(i, "")
    return "&".join(parts)


# --------------------------------------------------------------------------
# Independent x-www-form-urlencoded decoder (used for cross-checks)
# --------------------------------------------------------------------------

def form_decode_component(s: str) -> str:
    raw = bytearray()
    i = 0
    b = s.encode("utf-8")
    while i < len(b):
        c = b[i]
        if c == 0x2B:  # '+'
            raw.append(0x20)
            i += 1
        elif c == 0x25 and i + 2 < len(b) and all(chr(x) in string.hexdigits for x in b[i + 1:i + 3]):
            raw.append(int(b[i + 1:i + 3], 16))
            i += 3
        else:
            raw.append(c)
            i += 1
    return raw.decode("utf-8")  # strict: invalid UTF-8 raises


def form_decode(s: str) -> list[list[str]]:
    """Split on '&', skip empty segments, split at the first '=', decode + and %XX."""
    out = []
    for seg in s.split("&"):
        if seg == "":
            continue
        if "=" in seg:
            n, v = seg.split("=", 1)
        else:
            n, v = seg, ""
        out.append([form_decode_component(n), form_decode_component(v)])
    return out


# --------------------------------------------------------------------------
# Library eligibility
# --------------------------------------------------------------------------

OBJECT_PROTO_NAMES = {
    "__proto__", "constructor", "toString", "valueOf", "hasOwnProperty",
    "isPrototypeOf", "propertyIsEnumerable", "toLocaleString",
    "__defineGetter__", "__defineSetter__", "__lookupGetter__", "__lookupSetter__",
}


def split_url(url: str):
    scheme, rest = url.split("://", 1)
    cut = len(rest)
    for ch in "/?":
        j = rest.find(ch)
        if j != -1:
            cut = min(cut, j)
    authority, rest = rest[:cut], rest[cut:]
    if "?" in rest:
        path, query = rest.split("?", 1)
        has_query = True
    else:
        path, query, has_query = rest, "", False
    if authority.startswith("["):
        end = authority.index("]")
        host, port_s = authority[: end + 1], authority[end + 1:]
    elif ":" in authority:
        host, port_s = authority.split(":", 1)
        port_s = ":" + port_s
    else:
        host, port_s = authority, ""
    port = int(port_s[1:]) if port_s else None
    return scheme, host, port, path, query, has_query


def exclusions(case: dict) -> dict:
    """Reasons why a library must not sign this case (empty list = eligible)."""
    ex = {LIB_OAUTHLIB: [], LIB_NODE: []}
    scheme, host, port, path, query, has_query = split_url(case["url"])
    ct = case["content_type"]

    # ---- python-oauthlib 3.2.2 ----
    if ct is not None and ct.startswith("application/x-www-form-urlencoded") and ct != "application/x-www-form-urlencoded":
        ex[LIB_OAUTHLIB].append(
            "form Content-Type with parameters: Client.sign() compares the header with "
            "'application/x-www-form-urlencoded' verbatim and raises")

    # ---- node oauth-1.0a 2.2.6 ----
    n = ex[LIB_NODE]
    if host != host.lower():
        n.append("upper-case host: getBaseUrl() does not lower-case scheme/host")
    if (scheme, port) in (("http", 80), ("https", 443)):
        n.append("explicit default port: getBaseUrl() does not drop :80/:443")
    if path == "":
        n.append("empty path: getBaseUrl() does not supply '/'")
    if has_query:
        if "+" in query:
            n.append("'+' in query: deParam() uses decodeURIComponent, '+' is not decoded to a space")
        if "?" in query:
            n.append("'?' inside the query: deParamUrl() splits the whole URL at every '?' and drops the rest")
        segs = query.split("&")
        if any(s == "" for s in segs):
            n.append("empty query segment ('&&', trailing '&' or bare '?'): deParam() makes a parameter with an empty name")
        seen = {}
        for seg in segs:
            if seg == "":
                continue
            name, _, value = seg.partition("=")
            if "=" in value:
                n.append("raw '=' inside a query value: deParam() cuts the value at the second '='")
            if "%" in name or "+" in name:
                n.append("percent-encoded query name: deParam() does not decode names")
            if name in OBJECT_PROTO_NAMES:
                n.append("query name shadows an Object.prototype member")
            if name in seen and seen[name] == "":
                n.append("repeated query name whose first value is empty: deParam()'s truthiness test overwrites it")
            seen.setdefault(name, form_decode_component(value) if value else "")
        qnames = {p[0] for p in case["query_pairs"]}
        if case["form_pairs"]:
            fnames = {p[0] for p in case["form_pairs"]}
            if qnames & fnames:
                n.append("same name in query and form body: mergeObject() lets the query value replace the body value")
    if case["form_pairs"] and any(p[0] in OBJECT_PROTO_NAMES for p in case["form_pairs"]):
        n.append("form name shadows an Object.prototype member")
    # dedupe, keep order
    for k in ex:
        ex[k] = list(dict.fromkeys(ex[k]))
    return ex


# --------------------------------------------------------------------------
# Case construction
# --------------------------------------------------------------------------

def pick_credentials(rng: random.Random, case: dict, *, token: bool, odd: float) -> None:
    case["consumer_key"] = rng.choice(ODD_KEYS) if rng.random() < odd / 3 else rand_hex(rng)
    case["consumer_secret"] = rng.choice(ODD_SECRETS) if rng.random() < odd else rand_hex(rng)
    if token:
        case["token"] = rng.choice(ODD_KEYS) if rng.random() < odd / 3 else rand_hex(rng)
        case["token_secret"] = rng.choice(ODD_SECRETS) if rng.random() < odd else rand_hex(rng)
    else:
        case["token"] = None
        case["token_secret"] = ""


def method_input(rng: random.Random, method: str) -> str:
    """The method string handed to the library: sometimes lower/mixed case."""
    r = rng.random()
    if r < 0.12:
        return method.lower()
    if r < 0.16:
        return method.capitalize()
    return method


def build_url(scheme: str, host: str, port, path: str, query) -> str:
    url = f"{scheme}://{host}"
    if port is not None:
        url += f":{port}"
    url += path
    if query is not None:
        url += "?" + query
    return url


def random_case(rng: random.Random, idx: int) -> dict:
    node_friendly = rng.random() < 0.62
    scenario = rng.choices(
        ["generic", "restlet", "rest_record", "suiteql", "request_token",
         "access_token", "token_service", "soap", "two_legged"],
        weights=[40, 14, 10, 6, 7, 7, 6, 4, 3],
    )[0]
    c: dict = {"case": f"case-{idx:03d}", "scenario": scenario}
    host, realm = rng.choice(NS_HOSTS)
    scheme, port = "https", None
    query_triples: list = []
    form_triples = None
    content_type, body = None, ""
    callback = verifier = None
    token = True
    odd = 0.15
    empty_q_segments = False
    bare_question_mark = False

    if scenario == "generic":
        if rng.random() < 0.45:
            host = rng.choice(LOCAL_HOSTS)
            scheme = rng.choice(["http", "http", "https"])
            realm = rng.choice(REALMS + [None])
        else:
            scheme = rng.choice(["https", "https", "http"])
        port = rng.choice([None, None, "default", 8080, 8443, 3000])
        path = rng.choice(GENERIC_PATHS)
        if not node_friendly and rng.random() < 0.06:
            path = ""
        method = rng.choice(["GET", "GET", "POST", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
        query_triples = make_pairs(rng, rng.randint(0, 6), node_friendly=node_friendly, fancy=0.5)
        empty_q_segments = not node_friendly and rng.random() < 0.08
        bare_question_mark = not query_triples and not node_friendly and rng.random() < 0.3
        if method in ("POST", "PUT", "PATCH", "DELETE"):
            r = rng.random()
            if r < 0.55:
                content_type = "application/x-www-form-urlencoded"
                if node_friendly and rng.random() < 0.12:
                    content_type = "application/x-www-form-urlencoded; charset=UTF-8"
                # Body names may be fancy for either library: oauth-1.0a takes them decoded.
                form_triples = make_pairs(rng, rng.randint(0, 6), node_friendly=False, fancy=0.5)
            elif r < 0.85:
                content_type = rng.choice(["application/json", "application/json; charset=utf-8"])
                body = rng.choice(JSON_BODIES)
        odd = 0.3
    elif scenario == "restlet":
        host, realm = rng.choice(NS_HOSTS[:7])
        path = "/app/site/hosting/restlet.nl"
        method = rng.choice(["GET", "POST", "PUT", "DELETE"])
        query_triples = [["script", rng.choice(["6", "123", "customscript_acme_restlet"]), True],
                         ["deploy", rng.choice(["1", "2", "customdeploy1"]), True]]
        if rng.random() < 0.6:
            query_triples += make_pairs(rng, rng.randint(1, 3), node_friendly=node_friendly, fancy=0.3)
        if rng.random() < 0.5:
            rng.shuffle(query_triples)
        if method in ("POST", "PUT"):
            if rng.random() < 0.8:
                content_type = "application/json"
                body = rng.choice(JSON_BODIES)
            else:
                content_type = "application/x-www-form-urlencoded"
                form_triples = make_pairs(rng, rng.randint(1, 4), node_friendly=node_friendly, fancy=0.3)
    elif scenario == "rest_record":
        host, realm = rng.choice([h for h in NS_HOSTS if "suitetalk" in h[0].lower()])
        rec = rng.choice(["customer/42", "salesOrder/1001", "employee/-5", "invoice", "customrecord_acme_thing/7"])
        path = "/services/rest/record/v1/" + rec
        method = rng.choice(["GET", "GET", "PATCH", "POST", "DELETE", "PUT"])
        if method == "GET" and rng.random() < 0.7:
            query_triples = [["limit", str(rng.choice([5, 10, 1000])), True], ["offset", str(rng.choice([0, 10, 990])), True]]
            if rng.random() < 0.5:
                query_triples.append(["q", rng.choice(NETSUITE_VALUES[-2:] + ['email CONTAIN "@example.com"']), True])
            if rng.random() < 0.4:
                query_triples.append(["expandSubResources", "true", True])
        if method in ("PATCH", "POST", "PUT"):
            content_type = "application/json"
            body = rng.choice(JSON_BODIES)
    elif scenario == "suiteql":
        host, realm = rng.choice([h for h in NS_HOSTS if "suitetalk" in h[0].lower()])
        path = "/services/rest/query/v1/suiteql"
        method = "POST"
        query_triples = [["limit", str(rng.choice([5, 10, 1000])), True], ["offset", str(rng.choice([0, 1000])), True]]
        content_type = "application/json"
        body = rng.choice(JSON_BODIES[1:2] + ['{"q":"SELECT * FROM transaction WHERE trandate > \'2024-01-01\'"}'])
    elif scenario == "request_token":
        host, realm = rng.choice(NS_HOSTS[:2] + [("system.netsuite.com", None)])
        if rng.random() < 0.3:
            realm = None
        path = "/rest/requesttoken"
        method = "POST"
        token = False
        callback = rng.choice(CALLBACKS)
        odd = 0.2
    elif scenario == "access_token":
        host, realm = rng.choice(NS_HOSTS[:2] + [("system.netsuite.com", None)])
        if rng.random() < 0.3:
            realm = None
        path = "/rest/accesstoken"
        method = "POST"
        verifier = rand_hex(rng) if rng.random() < 0.85 else rng.choice(["a1b2 c3+d4", "verifier/with=odd&chars"])
        odd = 0.2
    elif scenario == "token_service":
        host, realm = rng.choice(NS_HOSTS[:2])
        which = rng.choice(["revoketoken", "tokeninfo", "issuetoken"])
        path = "/rest/" + which
        method = "GET"
        if which == "revoketoken":
            query_triples = [["consumerKey", rand_hex(rng), True], ["token", rand_hex(rng), True]]
        elif which == "issuetoken":
            query_triples = [["consumerKey", rand_hex(rng), True], ["name", rng.choice(["my token", "ci-bot", "Jürgen's token"]), True]]
        if rng.random() < 0.3:
            method = "POST"
            content_type = "application/x-www-form-urlencoded"
            form_triples, query_triples = query_triples, []
    elif scenario == "soap":
        host, realm = rng.choice([h for h in NS_HOSTS if "suitetalk" in h[0].lower()])
        path = "/services/NetSuitePort_2023_1"
        method = "POST"
        content_type = rng.choice(["text/xml; charset=utf-8", "application/soap+xml"])
        body = XML_BODY
    else:  # two_legged: consumer credentials only, no token, no callback
        host = rng.choice(LOCAL_HOSTS[:2])
        realm = rng.choice(REALMS + [None])
        scheme = "http"
        port = rng.choice([8080, 3000, None])
        path = rng.choice(GENERIC_PATHS[:6])
        method = rng.choice(["GET", "POST"])
        token = False
        query_triples = make_pairs(rng, rng.randint(0, 3), node_friendly=node_friendly, fancy=0.3)

    if realm is not None and rng.random() < 0.2:
        realm = None
    if port == "default":
        port = 443 if scheme == "https" else 80
    if node_friendly:
        host = host.lower()
        if port in (80, 443):
            port = None

    query = None
    if query_triples:
        query = encode_pairs(query_triples, rng, node_friendly=node_friendly, in_query=True,
                             empty_segments=empty_q_segments)
    elif bare_question_mark:
        query = ""
    if form_triples is not None:
        body = encode_pairs(form_triples, rng, node_friendly=False, in_query=False,
                            empty_segments=(not node_friendly and rng.random() < 0.1))

    c["method_input"] = method_input(rng, method)
    c["method"] = method
    c["url"] = build_url(scheme, host, port, path, query)
    c["content_type"] = content_type
    c["body"] = body
    c["query_pairs"] = [[n, v] for n, v, _ in query_triples]
    c["form_pairs"] = [[n, v] for n, v, _ in form_triples] if form_triples is not None else None
    pick_credentials(rng, c, token=token, odd=odd)
    c["realm"] = realm
    c["callback"] = callback
    c["verifier"] = verifier
    c["nonce"] = rand_alnum(rng, 6, 40)
    c["timestamp"] = str(rng.randint(1_500_000_000, 1_800_000_000))
    c["signature_method"] = "HMAC-SHA1" if rng.random() < 0.12 else "HMAC-SHA256"
    return c


def fixed_cases() -> list[dict]:
    """Known vectors from shared/design/netsuite-tba.md §9 (expected signatures asserted by generate.py)."""
    ck = "60712990bc09623786e7047c226bcb3f86d49dca0b04efc21001dc76d97a81f5"
    tk = "447d0cba5569a2d616e32a537110bc8c10ebcf42cc1fa34d6f76d08531abc179"
    base = {
        "content_type": None, "body": "", "query_pairs": [], "form_pairs": None,
        "callback": None, "verifier": None, "signature_method": "HMAC-SHA256",
    }
    t2 = dict(base, case="T2", scenario="design-doc T2 requesttoken", method_input="POST", method="POST",
              url="https://1234567.restlets.api.netsuite.com/rest/requesttoken",
              consumer_key=ck, consumer_secret=ck, token=None, token_secret="", realm="1234567",
              callback="https://my.example.com/TBA/?callbackRequest",
              nonce="bUvpxBX93OWo0FLswq5M", timestamp="1575998103",
              expect_signature="KPBoxLKj2sTc+7dmTT9K2dsVnK5r7n5/RopNeuZrn70=")
    t3 = dict(base, case="T3", scenario="design-doc T3 accesstoken", method_input="POST", method="POST",
              url="https://1234567.restlets.api.netsuite.com/rest/accesstoken",
              consumer_key=ck, consumer_secret=ck, token=tk, token_secret=tk, realm="1234567",
              verifier="3eff1ae4de6f924014b88e489a41e88da8ed1ba8bd5ad7684a71579d7e97f4ee",
              nonce="wjRgXQPWhYtKl0A7bO8Z", timestamp="1576079512",
              expect_signature="BBzawyjesZyFrwBjUAJfBsPDDGUY2FRdp3k4NwGDAO0=")
    t4 = dict(base, case="T4", scenario="design-doc T4 revoketoken", method_input="GET", method="GET",
              url=f"https://1234567.restlets.api.netsuite.com/rest/revoketoken?consumerKey={ck}&token={tk}",
              query_pairs=[["consumerKey", ck], ["token", tk]],
              consumer_key=ck, consumer_secret="bd47b9c7e990a4f209db0217c023d0ba2274aafa7183f2cc310fff8bf24335b8",
              token=tk, token_secret="f4ae9dbe08acf7105db4d829391de42f387d1a8d6ddc2b41827ce142445445c1",
              realm="1234567", nonce="wjRgXQPWhYtKl0A7bO8Z", timestamp="1576079512",
              expect_signature="IQwMGWzHT+N+h+AlakCKto0FMhx9j53kL713Xijl9Io=")
    t6 = dict(base, case="T6", scenario="design-doc T6 restlet", method_input="POST", method="POST",
              url="https://123456.restlets.api.netsuite.com/app/site/hosting/restlet.nl"
                  "?script=6&deploy=1&customParam=someValue&testParam=someOtherValue",
              query_pairs=[["script", "6"], ["deploy", "1"], ["customParam", "someValue"], ["testParam", "someOtherValue"]],
              consumer_key="ef40afdd8abaac111b13825dd5e5e2ddddb44f86d5a0dd6dcf38c20aae6b67e4",
              consumer_secret="d26ad321a4b2f23b0741c8d38392ce01c3e23e109df6c96eac6d099e9ab9e8b5",
              token="2b0ce516420110bcbd36b69e99196d1b7f6de3c6234c5afb799b73d87569f5cc",
              token_secret="c29a677df7d5439a458c063654187e3d678d73aca8e3c9d8bea1478a3eb0d295",
              realm="123456", nonce="fjaLirsIcCGVZWzBX0pg", timestamp="1508242306",
              expect_signature="+KK4SKNgz4ZiILGLwOMtfYlgcXSy1eis8ldE9X90azQ=")
    # RFC 5849 §3.4.1 inputs (the RFC's own example has no oauth_version, so its
    # published signature cannot be reproduced by clients that always send 1.0).
    rfc = dict(base, case="RFC5849", scenario="RFC 5849 3.4.1 example inputs", method_input="POST", method="POST",
               url="http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b",
               query_pairs=[["b5", "=%3D"], ["a3", "a"], ["c@", ""], ["a2", "r b"]],
               content_type="application/x-www-form-urlencoded", body="c2&a3=2+q",
               form_pairs=[["c2", ""], ["a3", "2 q"]],
               consumer_key="9djdj82h48djs9d2", consumer_secret="ECrDNoq1VYzzzzzzzzzyAK7TwZNtPnkqatqZZZZ",
               token="kkk9d7dh3k39sjv7", token_secret="just-a-string    asdasd",
               realm="Example", nonce="7d8f3e4a", timestamp="137131201", signature_method="HMAC-SHA1")
    return [t2, t3, t4, t6, rfc]


# Hand-picked inputs that pin down specific rules (each is signed by every
# library that handles it; the exclusion rules decide which).
# (method as handed to the library, url, content type, body)
EDGE_INPUTS = [
    ("GET", "https://1234567.restlets.api.netsuite.com:443/app/site/hosting/restlet.nl?script=1&deploy=1", None, ""),
    ("GET", "http://localhost:80/path?x=1", None, ""),
    ("GET", "https://TSTDRV1234567.APP.NETSUITE.COM/app/center/card.nl", None, ""),
    ("GET", "https://1234567.restlets.api.netsuite.com", None, ""),
    ("GET", "https://1234567.restlets.api.netsuite.com?script=1&deploy=2", None, ""),
    ("GET", "https://1234567.restlets.api.netsuite.com/app/site/hosting/restlet.nl?", None, ""),
    # '+' is a space in the query, %2B a plus
    ("GET", "https://1234567.restlets.api.netsuite.com/app/site/hosting/restlet.nl?script=1&deploy=1&q=a+b+c&r=a%2Bb&s=a%20b", None, ""),
    # sort by encoded name first, then by encoded value (a naive sort of "k=v" strings differs)
    ("GET", "https://1234567-sb1.suitetalk.api.netsuite.com/services/rest/record/v1/customer?a0=1&a=2&a=1&a-b=3&a.b=4&A=5&a_b=6&a~=7&b=&ab=8", None, ""),
    # values sorted as percent-encoded strings: %20 < %C3%A9 < A < z < ~
    ("GET", "https://1234567-sb1.suitetalk.api.netsuite.com/services/rest/record/v1/customer?v=z&v=%C3%A9&v=%20&v=~&v=A&v=%7E&v=", None, ""),
    # raw reserved characters inside a value ('?', '/', ':', '=')
    ("GET", "https://1234567.restlets.api.netsuite.com/app/site/hosting/restlet.nl?script=1&deploy=1&redirect=https://example.com/a?b=c&next=/x/y:z", None, ""),
    ("GET", "https://1234567.restlets.api.netsuite.com/app/site/hosting/restlet.nl?script=1&deploy=1&flag&empty=&flag2", None, ""),
    ("GET", "https://1234567.restlets.api.netsuite.com/app/site/hosting/restlet.nl?%C3%A9t%C3%A9=summer&%E6%97%A5%E6%9C%AC=japan&c%40=", None, ""),
    ("GET", "https://1234567.restlets.api.netsuite.com/app/site/hosting/restlet.nl?name=%E6%97%A5%E6%9C%AC&city=S%C3%A3o%20Paulo&e=%F0%9F%98%80&x=%41%42%7E", None, ""),
    ("GET", "https://1234567.restlets.api.netsuite.com/app/site/hosting/restlet.nl?script=1&deploy=1&param=%26%3D%3F%2F%3A%2B%2A%21%27%28%29", None, ""),
    ("GET", "https://1234567.suitetalk.api.netsuite.com/services/rest/record/v1/salesOrder/7/!transform/invoice?x=(1)*'!&y=a,b;c@d$e", None, ""),
    ("GET", "https://1234567.restlets.api.netsuite.com/app/site/hosting/restlet.nl?&script=1&&deploy=1&", None, ""),
    ("GET", "https://1234567.restlets.api.netsuite.com/caf%c3%a9/%7Euser/a%2fb", None, ""),
    ("POST", "https://1234567.restlets.api.netsuite.com/app/site/hosting/restlet.nl?script=1&deploy=1",
     "application/x-www-form-urlencoded", "a=1&b=two+words&c=%2B&d=%20&e=caf%C3%A9&f&g=&a=0&h=%E6%97%A5+%E6%9C%AC"),
    ("POST", "https://1234567.restlets.api.netsuite.com/app/site/hosting/restlet.nl?script=1&deploy=1",
     "application/x-www-form-urlencoded; charset=UTF-8", "a=1&b=two+words"),
    ("POST", "https://1234567.restlets.api.netsuite.com/app/site/hosting/restlet.nl?script=1&deploy=1&a=1",
     "application/x-www-form-urlencoded", "a=2&script=3"),
    ("POST", "https://1234567.restlets.api.netsuite.com/app/site/hosting/restlet.nl?script=5&deploy=1",
     "application/json", '{"a":"1","b":"two words"}'),
    ("post", "https://1234567.restlets.api.netsuite.com/app/site/hosting/restlet.nl?script=5&deploy=1",
     "application/x-www-form-urlencoded", ""),
    ("PUT", "http://[::1]:8443/x?y=1", "application/x-www-form-urlencoded", "z=%5B%5D&z=%7B%7D"),
    ("delete", "http://127.0.0.1:3000/items/5", None, ""),
    ("patch", "http://localhost:8080/items/5", "application/x-www-form-urlencoded", "qty=2&note=rush+order%21"),
    ("GET", "https://1234567.restlets.api.netsuite.com/app/site/hosting/restlet.nl?script=1&deploy=1&deploy=2&deploy=1", None, ""),
]


def edge_cases() -> list[dict]:
    rng = random.Random(SEED + 1)
    out = []
    for i, (method_in, url, ct, body) in enumerate(EDGE_INPUTS, start=1):
        scheme, host, port, path, query, has_query = split_url(url)
        realm = next((r for h, r in NS_HOSTS if h.lower() == host.lower()), None)
        c = {
            "case": f"edge-{i:02d}", "scenario": "edge", "method_input": method_in, "method": method_in.upper(),
            "url": url, "content_type": ct, "body": body,
            # decoded with the standard library, a decoder independent of cases.form_decode
            "query_pairs": [list(p) for p in urllib.parse.parse_qsl(query, keep_blank_values=True)] if has_query else [],
            "form_pairs": ([list(p) for p in urllib.parse.parse_qsl(body, keep_blank_values=True)]
                           if ct is not None and ct.startswith("application/x-www-form-urlencoded") else None),
        }
        pick_credentials(rng, c, token=True, odd=0.3)
        c["realm"] = realm
        c["callback"] = c["verifier"] = None
        c["nonce"] = rand_alnum(rng, 6, 40)
        c["timestamp"] = str(rng.randint(1_500_000_000, 1_800_000_000))
        c["signature_method"] = "HMAC-SHA256"
        out.append(c)
    # Odd secrets on a plain request (key encoding).
    out[-1]["consumer_secret"] = "sec ret&+/="
    out[-1]["token_secret"] = "just-a-string    asdasd"
    return out


def build_cases() -> list[dict]:
    rng = random.Random(SEED)
    cases = fixed_cases() + edge_cases() + [random_case(rng, i + 1) for i in range(N_RANDOM_CASES)]
    for c in cases:
        # The inputs must round-trip through an independent form decoder.
        _, _, _, _, query, has_query = split_url(c["url"])
        got_q = form_decode(query) if has_query else []
        assert got_q == c["query_pairs"], (c["case"], got_q, c["query_pairs"])
        if c["form_pairs"] is not None:
            assert form_decode(c["body"]) == c["form_pairs"], (c["case"], c["body"])
        c["excluded"] = exclusions(c)
        c["libraries"] = [lib for lib in (LIB_OAUTHLIB, LIB_NODE) if not c["excluded"][lib]]
    return cases


if __name__ == "__main__":
    json.dump(build_cases(), sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")
