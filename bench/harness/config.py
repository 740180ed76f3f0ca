"""Run settings: the two modes, the scenarios, and what comes from the environment."""

import os
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
REPO = BENCH.parent


@dataclass(frozen=True)
class Mode:
    name: str
    # Seconds a max-throughput run aims for (the request count is sized from the last rate seen).
    max_seconds: float
    # Seconds of each open-loop (fixed offered rate) run.
    open_seconds: float
    # Warm-up length, in seconds at the expected rate (at least 200 requests).
    warmup_seconds: float
    # Offered loads for the tokeninfo sweep, as fractions of each server's own max.
    sweep: tuple = field(default=())
    # Runs per measurement when other processes take more than NOISY of the server's CPUs;
    # the least disturbed one is kept (not the fastest: that would pick flukes).
    attempts: int = 1
    # Before measuring again, wait up to this long for the other processes to calm down.
    quiet_wait_seconds: float = 0.0
    # Rounds of keycard's and bare's max runs, side by side; the ratio is their median.
    rounds: int = 1


MODES = {
    # About a minute on a 2-core machine: enough to see that everything works and the ratios'
    # order of magnitude; too short for figures worth publishing.
    "quick": Mode("quick", max_seconds=1.5, open_seconds=1.0, warmup_seconds=0.2,
                  sweep=(0.25, 0.5, 0.8, 1.0, 1.2), attempts=1),
    "full": Mode("full", max_seconds=6.0, open_seconds=5.0, warmup_seconds=1.0,
                 sweep=(0.1, 0.25, 0.5, 0.7, 0.8, 0.9, 1.0, 1.2), attempts=3,
                 quiet_wait_seconds=30.0, rounds=3),
    # The full run's method (three side-by-side rounds, a sweep through 80% of max) in about
    # four minutes: for a machine lent for minutes (bench/lent). Shorter runs, a coarser sweep
    # and no repeats when disturbed; the report and its targets are the full run's.
    "short": Mode("short", max_seconds=3.0, open_seconds=3.0, warmup_seconds=0.5,
                  sweep=(0.25, 0.5, 0.8, 1.0), attempts=1, rounds=3),
}

# Share of the server's CPUs taken by other processes above which a run is repeated.
NOISY = 0.05

# The load at which latency targets are read (keycard: p99 < 1 ms at 80% of its max).
TARGET_LOAD = 0.8


SERVERS = ("keycard", "bare", "reference")


# keycard built without profile-guided optimization (`cargo build --release`), measured beside
# the PGO build in the full run's max runs only: it shows what PGO gives, side by side.
PLAIN = "keycard-plain"
# Both builds: each serves the same directory and has its audit trail checked.
KEYCARDS = ("keycard", PLAIN)


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    # May hold {record_id}, filled in after setup creates the record.
    path: str
    fail_percent: float = 0.0
    # Offered loads (fractions of max) besides the max run; the sweep for tokeninfo.
    sweep_from_mode: bool = False
    # The servers measured; the reference has nothing to say about an unauthenticated path.
    servers: tuple = SERVERS
    # Whether keycard authenticates (and so audits) these requests; if not, the check is that
    # the run wrote no login records at all.
    authenticated: bool = True


SCENARIOS = (
    Scenario("tokeninfo", "GET /rest/tokeninfo", "/rest/tokeninfo", sweep_from_mode=True),
    Scenario("record", "GET /services/rest/record/v1/customer/{id}",
             "/services/rest/record/v1/customer/{record_id}"),
    Scenario("mix", "tokeninfo, 1% failures (bad signature, replay)", "/rest/tokeninfo",
             fail_percent=1.0),
    # keycard's floor: the same server, connections and signed requests, on a route that reads
    # none of it. keycard/bare here is what keycard's HTTP layer (router, middleware, response
    # building) costs before any authentication; the step from this ratio down to tokeninfo's
    # is what authentication and the audit trail cost.
    Scenario("floor", "GET /healthz, unauthenticated (keycard's HTTP floor)", "/healthz",
             servers=("keycard", "bare"), authenticated=False),
)



@dataclass(frozen=True)
class Env:
    server_cpus: str
    loadgen_cpus: str
    tokens: int
    connections: int
    port_base: int
    # LOADGEN_SLEEP=1: the generator sleeps in epoll while all its requests are out, instead of
    # busy-polling (the default since the fourth session; see bench/src/bin/loadgen/engine.rs).
    loadgen_sleeps: bool = False


def cpu_count(cpus: str) -> int:
    """How many CPUs a taskset list such as `0-3,8` names."""
    total = 0
    for part in cpus.split(","):
        lo, _, hi = part.partition("-")
        total += int(hi or lo) - int(lo) + 1
    return total


def from_environment() -> Env:
    return Env(
        server_cpus=os.environ.get("SERVER_CPUS", "0"),
        loadgen_cpus=os.environ.get("LOADGEN_CPUS", "1"),
        tokens=int(os.environ.get("TOKENS", "100")),
        connections=int(os.environ.get("CONNECTIONS", "16")),
        port_base=int(os.environ.get("BENCH_PORT_BASE", "18910")),
        loadgen_sleeps=os.environ.get("LOADGEN_SLEEP", "") == "1",
    )
