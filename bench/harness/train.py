"""The training run of a profile-guided build (scripts/build-pgo calls this): an instrumented
keycard serves every load scenario at full speed for a few seconds, so the profile LLVM
optimizes with is the request path as the benchmark and production drive it (signed GETs,
record reads, refused signatures and replays, the probes, a RESTlet call), every request
verified and audited.
With --bare, the bench's bare server is trained on the same requests. Each instrumented binary
writes its profile when it exits (`servers.stop`)."""

import argparse
import signal
import sys
from pathlib import Path

from . import servers
from .config import BENCH, SCENARIOS, Scenario, from_environment
from .main import capture_bodies, create_directory, log
from .measure import Runner

# Requests per scenario: enough for every hot branch's counts to settle (an instrumented
# binary serves about 50k requests/s on one core here), few enough to keep the build short.
REQUESTS = 100_000
# Trained on besides the benchmark's scenarios, keycard only: a RESTlet call (its own surface,
# query parameters in the signature), so that path is not laid out as cold code.
TRAINING_ONLY = (
    Scenario("restlet", "GET restlet.nl (echo)",
             "/app/site/hosting/restlet.nl?script=echo&deploy=1", servers=("keycard",)),
)


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
    if runner.problems:
        print("training run failed:\n- " + "\n- ".join(runner.problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
