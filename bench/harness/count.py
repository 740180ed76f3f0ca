"""Instructions per request of the whole server process, counted rather than timed: on a
shared VM a timed comparison cannot see a change of a few percent (the same binary's rate moves
15–40% within minutes), and an instruction count does not drift.

Each server (keycard and bare) runs under valgrind's callgrind, twice per scenario: once for
N measured requests from loadgen, once for 2N. The difference of the two totals, divided by N,
is the user-space instructions one request costs the server: hyper, tokio, axum, the pipeline,
the audit trail's writes, everything in the process except the kernel's share (sockets), and
with startup, setup and the warm-up cancelled out. keycard's audit check still applies: the
rows written must match the requests answered.

One caveat: under valgrind the `sha2` crate cannot use the CPU's SHA extensions and runs its
portable code, about 21,000 more instructions per signed request than the real run spends.
Another: the server runs tens of times slower under valgrind, so keycard's audit writer, which
lets records gather for 4 ms, commits a few records per transaction instead of hundreds: the
count charges the trail's commits several thousand instructions a request that the loaded
server spreads over a whole batch (docs/benchmarks.md, seventeenth session). How the records
fall into commits, and what the checkpoint thread (on a 50 ms clock) finds to copy, differ
between the N and 2N runs, so keycard's total moves by 1,000-2,000 instructions from one count
to the next with no change in the code (nineteenth session): an A/B of a change on the request
path should compare the functions it touches (callgrind's files stay in the run's raw folder).

With CACHE_SIM=1, callgrind also simulates the caches (a 32 KiB 8-way instruction cache, as on
the machines this runs on: CACHES) and the report adds the instruction-cache misses per request: how
many 64-byte lines of code a request runs through. A request that runs mostly straight-line
code, as keycard's does, pays for each line it fetches, and the instruction count does not see
it. (The portable SHA-256 adds about 200 lines of its own that the real run does not fetch.)

The report also counts the atomic read-modify-writes a request runs (`atomics`): an
instruction each in the count above, but each waits for the stores before it, about 23 cycles
even uncontended.

    bench/run --count       (bench/run builds first, then calls this; REQUESTS sets N)
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from . import atomics, audit, servers
from .config import SCENARIOS, from_environment
from .main import capture_bodies, create_directory, log, metadata, publish, results_path, start

# The scenarios counted: failures (mix) are drawn at random, so their count is not repeatable.
COUNTED = ("tokeninfo", "record", "floor")
WARMUP = 200
CONNECTIONS = 4
# The caches callgrind simulates with CACHE_SIM=1 (size, associativity, line): one core's L1s
# and L2 on the machines the benchmark runs on (32 KiB each, 1 MiB). Only the server's own
# accesses are simulated: the kernel's, which share these caches, are not.
CACHES = ("--cache-sim=yes", "--I1=32768,8,64", "--D1=32768,8,64", "--LL=1048576,8,64")
# Counts per instruction address, for the atomic read-modify-writes (`atomics`).
PER_INSTRUCTION = ("--dump-instr=yes",)
# The functions listed with keycard's atomic read-modify-writes in the results' JSON.
ATOMIC_FUNCTIONS_KEPT = 40


def callgrind_file(paths, kind: str, scenario: str, requests: int) -> Path:
    """Where callgrind writes a server's counts for one scenario and request count."""
    return paths.work / f"callgrind.{kind}.{scenario}.{requests}"


def collected(kind: str, paths, port_base: int, scenario, record_id: int, requests: int,
              caches: bool = False) -> dict[str, int]:
    """The events callgrind collected in the server for `requests` measured requests, by
    callgrind's name: `Ir` (instructions), and with `caches` `I1mr` (instruction-cache
    misses) and the others of its cache simulation."""
    port = servers.port_for(kind, port_base)
    cmd, env = servers.command(kind, paths, port, scenario.name)
    out = callgrind_file(paths, kind, scenario.name, requests)
    log_path = paths.work / f"{kind}-count.log"
    before = audit.counts(paths.data_dir) if kind == "keycard" else None
    with open(log_path, "w", encoding="utf-8") as sink:
        proc = subprocess.Popen(["valgrind", "--tool=callgrind", *PER_INSTRUCTION,
                                 *(CACHES if caches else ()),
                                 f"--callgrind-out-file={out}", *cmd],
                                stdout=sink, stderr=sink, env=env)
    try:
        servers.wait_listening(proc, port, log_path, timeout=120.0)
        path = scenario.path.format(record_id=record_id)
        run = subprocess.run(
            [str(paths.loadgen), "run", "--connect", f"127.0.0.1:{port}",
             "--host", f"localhost:{port}", "--path", path, "--creds", str(paths.creds),
             "--connections", str(CONNECTIONS), "--warmup", str(WARMUP),
             "--requests", str(requests), "--max-seconds", "240", "--sleep-when-busy"],
            capture_output=True, text=True)
        if run.returncode != 0:
            raise RuntimeError(f"loadgen failed on {kind}/{scenario.name}: {run.stderr.strip()}")
        result = json.loads(run.stdout)
    finally:
        # bare stops cleanly on SIGINT, keycard on SIGTERM (after flushing its audit queue);
        # callgrind writes its totals when the process exits.
        proc.send_signal(signal.SIGTERM if kind == "keycard" else signal.SIGINT)
        proc.wait(timeout=300)
    if result["completed"] != requests:
        raise RuntimeError(f"{kind}/{scenario.name}: {result['completed']} of {requests} requests "
                           "answered within loadgen's 240 s (signed timestamps expire): lower "
                           "REQUESTS")
    if result["io_errors"] or (kind == "keycard" and result["unexpected_status"]):
        raise RuntimeError(f"{kind}/{scenario.name}: {result['io_errors']} unanswered, "
                           f"statuses {result['statuses']}")
    if kind == "keycard":
        check = audit.check(before, audit.counts(paths.data_dir), result,
                            scenario.authenticated)
        if not check["ok"]:
            raise RuntimeError(f"{kind}/{scenario.name}: login audit mismatch {check}")
    text = log_path.read_text()
    names, totals = re.search(r"Events\s*:\s*(.+)", text), re.search(r"Collected\s*:\s*(.+)", text)
    if not (names and totals):
        raise RuntimeError(f"callgrind wrote no total; see {log_path}")
    return dict(zip(names.group(1).split(), (int(t) for t in totals.group(1).split())))


def main() -> int:
    if not shutil.which("valgrind"):
        print("bench/run --count needs valgrind (apt-get install valgrind)", file=sys.stderr)
        return 2
    args, paths = start()
    env = from_environment()
    n = int(os.environ.get("REQUESTS", "2000"))
    caches = os.environ.get("CACHE_SIM") == "1"
    create_directory(paths, env)
    record_id = capture_bodies(paths, env)
    per_request: dict[str, dict[str, int]] = {}
    code_lines: dict[str, dict[str, int]] = {}
    rmw: dict[str, dict[str, float]] = {}
    rmw_functions: dict[str, dict[str, float]] = {}
    for scenario in (s for s in SCENARIOS if s.name in COUNTED):
        for kind in ("keycard", "bare"):
            once, twice = (collected(kind, paths, env.port_base, scenario, record_id, k, caches)
                           for k in (n, 2 * n))
            per_request.setdefault(scenario.name, {})[kind] = (twice["Ir"] - once["Ir"]) // n
            files = [callgrind_file(paths, kind, scenario.name, k) for k in (n, 2 * n)]
            total, by_function = atomics.per_request(*files, n)
            rmw.setdefault(scenario.name, {})[kind] = round(total, 2)
            if kind == "keycard":
                rmw_functions[scenario.name] = {
                    fn: round(v, 2)
                    for fn, v in list(by_function.items())[:ATOMIC_FUNCTIONS_KEPT]}
            line = (f"{scenario.name:9} {kind:7} {per_request[scenario.name][kind]:8,} "
                    f"instructions, {total:6.2f} atomic read-modify-writes per request")
            if caches:
                code_lines.setdefault(scenario.name, {})[kind] = (
                    (twice["I1mr"] - once["I1mr"]) // n)
                line += f", {code_lines[scenario.name][kind]:6,} instruction-cache misses"
            log(line)
    meta = metadata("count", env)
    # Not pinned (callgrind runs the server on one thread of its own), fewer connections.
    meta.update(connections=CONNECTIONS, server_cpus=None, loadgen_cpus=None)
    if caches:
        meta["cache_sim"] = " ".join(CACHES[1:])
    out = results_path(meta, "count")
    result = {"meta": meta, "requests": n, "per_request": per_request,
              "atomic_rmw_per_request": rmw, "keycard_atomic_rmw_by_function": rmw_functions}
    if caches:
        result["i1_misses_per_request"] = code_lines
    out.write_text(json.dumps(result, indent=1) + "\n")
    lines = [f"Instructions per request in the server process (callgrind, {n} against {2 * n} "
             f"requests), {meta['date']}, keycard {meta['keycard_commit']}:", "",
             "| scenario | keycard | bare | keycard/bare |", "|---|---:|---:|---:|"]
    for name, counts in per_request.items():
        lines.append(f"| {name} | {counts['keycard']:,} | {counts['bare']:,} | "
                     f"{counts['keycard'] / counts['bare']:.1f}× |")
    lines += ["", "Atomic read-modify-writes per request (`lock`-prefixed instructions and "
              "`xchg` with memory, counted by address; keycard's by function in the JSON):", "",
              "| scenario | keycard | bare | keycard/bare |", "|---|---:|---:|---:|"]
    for name, counts in rmw.items():
        lines.append(f"| {name} | {counts['keycard']:.1f} | {counts['bare']:.1f} | "
                     f"{counts['keycard'] / max(counts['bare'], 0.01):.1f}× |")
    if caches:
        lines += ["", "Instruction-cache misses per request (callgrind's simulation, "
                  f"{meta['cache_sim']}):", "",
                  "| scenario | keycard | bare | keycard/bare |", "|---|---:|---:|---:|"]
        for name, misses in code_lines.items():
            lines.append(f"| {name} | {misses['keycard']:,} | {misses['bare']:,} | "
                         f"{misses['keycard'] / max(misses['bare'], 1):.1f}× |")
    return publish(out, "\n".join(lines), [])


if __name__ == "__main__":
    sys.exit(main())
