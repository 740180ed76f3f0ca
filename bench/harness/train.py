"""The training run of a profile-guided build (scripts/build-pgo calls this): an instrumented
keycard serves every load scenario at full speed for a few seconds, so the profile LLVM
optimizes with is the request path as the benchmark and production drive it (signed GETs,
record reads, refused signatures and replays, the probes, a RESTlet call), every request
verified and audited; and SOAP calls with a token passport, signed here (the load generator
speaks only OAuth headers).
With --bare, the bench's bare server is trained on the same requests. Each instrumented binary
writes its profile when it exits (`servers.stop`)."""

import argparse
import http.client
import importlib.util
import json
import signal
import sys
import time
from pathlib import Path

from . import servers
from .config import BENCH, REPO, SCENARIOS, Scenario, from_environment
from .main import capture_bodies, create_directory, log
from .measure import Runner
from .setup_data import ACCOUNT

# Requests per scenario: enough for every hot branch's counts to settle (an instrumented
# binary serves about 50k requests/s on one core here), few enough to keep the build short.
REQUESTS = 100_000
# Trained on besides the benchmark's scenarios, keycard only: a RESTlet call (its own surface,
# query parameters in the signature), so that path is not laid out as cold code.
TRAINING_ONLY = (
    Scenario("restlet", "GET restlet.nl (echo)",
             "/app/site/hosting/restlet.nl?script=echo&deploy=1", servers=("keycard",)),
)


# SOAP calls in the training run: fewer than the scenarios' requests (Python signs and sends
# them, a few thousand a second), enough for the SOAP surface's paths to count as run. The
# passports are signed by tools/vectors/soap_envelope.py, the tests' independent signer.
SOAP_REQUESTS = 20_000
SOAP_VERSION = "2024_2"
SOAP_PORT = f"/services/NetSuitePort_{SOAP_VERSION}"


def soap_signer():
    """tools/vectors/soap_envelope.py as a module (the tools are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(
        "soap_envelope", REPO / "tools" / "vectors" / "soap_envelope.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train_soap(paths: servers.Paths, env) -> str | None:
    """SOAP_REQUESTS getServerTime calls on one keep-alive connection, tokens in turn; a
    problem's description when one did not succeed."""
    creds = json.loads(paths.creds.read_text())
    signer = soap_signer()
    port = servers.port_for("keycard", env.port_base)
    server = servers.start("keycard", paths, env.server_cpus, port, "soap")
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Host": f"localhost:{port}", "Content-Type": "text/xml; charset=utf-8",
                   "SOAPAction": "getServerTime"}
        for i in range(SOAP_REQUESTS):
            token = creds["tokens"][i % len(creds["tokens"])]
            envelope = signer.envelope({
                "account": ACCOUNT, "consumer_key": creds["consumer_key"],
                "consumer_secret": creds["consumer_secret"], "token": token["token_id"],
                "token_secret": token["token_secret"], "version": SOAP_VERSION,
                "body": "<platformMsgs:getServerTime/>"})
            conn.request("POST", SOAP_PORT, body=envelope.encode(), headers=headers)
            response = conn.getresponse()
            body = response.read()
            if response.status != 200 or b'isSuccess="true"' not in body:
                return f"soap: request {i} answered {response.status}: {body[:300]!r}"
    finally:
        conn.close()
        servers.stop(server)
    log(f"training: soap      keycard {SOAP_REQUESTS / (time.monotonic() - started):9,.0f} req/s "
        "(instrumented, one Python client)")
    return None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keycard", type=Path, required=True, help="the instrumented keycard")
    ap.add_argument("--bare", type=Path, help="an instrumented bare server, trained the same way")
    ap.add_argument("--loadgen", type=Path, required=True)
    ap.add_argument("--work", type=Path, required=True)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args.work.mkdir(parents=True, exist_ok=True)
    env = from_environment()
    # Without --bare no bare server runs; Paths still wants a path there.
    paths = servers.Paths(keycard=args.keycard, bare=args.bare or args.keycard,
                          loadgen=args.loadgen, venv=BENCH / ".venv", data_dir=args.work / "data",
                          creds=args.work / "creds.json", work=args.work)
    create_directory(paths, env)
    runner = Runner(env, paths, capture_bodies(paths, env))
    kinds = ["keycard", "bare"] if args.bare else ["keycard"]
    for sc in (*SCENARIOS, *TRAINING_ONLY):
        for kind in (k for k in kinds if k in sc.servers):
            result = runner.run(kind, sc, requests=REQUESTS, seconds=10.0, warmup=1000)
            log(f"training: {sc.name:9} {kind:7} {result['achieved_rps']:9,.0f} req/s "
                "(instrumented)")
    problems = list(runner.problems)
    soap_problem = train_soap(paths, env)
    if soap_problem:
        problems.append(soap_problem)
    if problems:
        print("training run failed:\n- " + "\n- ".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
