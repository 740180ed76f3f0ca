"""An A/B of two keycard builds under load: tokeninfo max throughput with N server cores for
each N in SCALING_CORES (default "1,2"), the two builds alternated within each core count
(before, after, then after, before, … for ROUNDS rounds, default 2), bare once per core count
as the ceiling. Every keycard run is checked like the main benchmark's (audit and success
counts). `--keycard` is the build after the change, `--keycard-plain` the one before.

    bench/lent ab OUT      (on a lent machine; see bench/lent)

For a change whose effect only shows where this VM cannot look (many cores); one core's
changes are better compared with `bench/run --count`, and with the server's CPU time per
request that every run here reports (user and system): on a VM whose speed drifts, the
requests per second of two runs a minute apart differ by more than most changes do, while a
change's user time shows in every pair. `AB_MODE=short` or `full` runs each for 3 or 6 s
instead of quick's 1.5 s (a short run ends before the audit writer falls behind, so it
undercounts the trail's share of the CPU).
"""

import json
import os
import statistics
import sys

from .config import MODES, PLAIN, SCENARIOS, from_environment
from .main import (build_label, capture_bodies, create_directory, log, max_run, metadata,
                   publish, results_path, start)
from .measure import Runner
from .scaling import core_counts, cores_busy, figures, first_guesses, split_cpus

BUILDS = {PLAIN: "before", "keycard": "after"}


def main() -> int:
    args, paths = start()
    if not paths.keycard_plain:
        sys.exit("ab: --keycard-plain (the build before the change) is required")
    mode = MODES[os.environ.get("AB_MODE", "quick")]
    base = from_environment()
    nproc = os.cpu_count() or 2
    rounds = int(os.environ.get("ROUNDS", "2"))
    create_directory(paths, base)
    scenario = next(s for s in SCENARIOS if s.name == "tokeninfo")
    runs, problems = [], []
    for n in core_counts(nproc):
        env, _ = split_cpus(base, n, nproc)
        runner = Runner(env, paths, capture_bodies(paths, env))
        guesses = first_guesses(n)
        order = [PLAIN, "keycard"]
        plan = [kind for r in range(rounds) for kind in (order if r % 2 == 0 else order[::-1])]
        for kind in [*plan, "bare"]:
            top = max_run(runner, kind, scenario, mode, guesses)
            run = {**figures(top), "user_us_per_request": top.get("server_user_us_per_request"),
                   "system_us_per_request": top.get("server_system_us_per_request")}
            runs.append({"server_cores": n, "build": BUILDS.get(kind, "bare"), **run})
            log(f"{n:2} cores {BUILDS.get(kind, 'bare'):6} {run['rps']:10,.0f} req/s  "
                f"cores busy {cores_busy(run)}  CPU/request {micros(run['cpu_us_per_request'])}"
                f" (user {micros(run['user_us_per_request'])})")
        problems += runner.problems
    meta = metadata("ab", base)
    meta["build"] = build_label(args)
    out = results_path(meta, "ab")
    out.write_text(json.dumps({"meta": meta, "runs": runs, "problems": problems}, indent=1)
                   + "\n")
    return publish(out, table(meta, base, nproc, runs), problems)


def micros(value) -> str:
    return "–" if value is None else f"{value:.2f} µs"


def table(meta: dict, base, nproc: int, runs: list[dict]) -> str:
    lines = [f"keycard A/B, {meta['date']}, {meta['host']} ({meta['cpu_model']}, {nproc} CPUs), "
             f"tokeninfo max, {base.connections} connections, {base.tokens} tokens; every run in "
             "order, with the server's CPU time per request (user, system):", "",
             "| server cores | build | req/s | cores busy | p99 at max | CPU/request | user "
             "| system |",
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['server_cores']} | {r['build']} | {r['rps']:,.0f} | {cores_busy(r)} "
              f"| {r['p99_us'] or 0:,.0f} µs | {micros(r['cpu_us_per_request'])} "
              f"| {micros(r.get('user_us_per_request'))} "
              f"| {micros(r.get('system_us_per_request'))} |" for r in runs]
    lines += ["", "Medians; the last column counts the before/after pairs (runs side by side) in "
              "which after took less user time per request:", "",
              "| server cores | before req/s | after req/s | after/before | bare "
              "| user µs, before → after | after lower |",
              "|---:|---:|---:|---:|---:|---:|---:|"]
    for n in sorted({r["server_cores"] for r in runs}):
        of = {b: [r for r in runs if r["server_cores"] == n and r["build"] == b]
              for b in ("before", "after", "bare")}
        rps = {b: [r["rps"] for r in rs] for b, rs in of.items()}
        before, after = statistics.median(rps["before"]), statistics.median(rps["after"])
        lines.append(f"| {n} | {before:,.0f} | {after:,.0f} | {after / before:.2f}× "
                     f"| {statistics.median(rps['bare']):,.0f} | {user_medians(of)} "
                     f"| {pairs_lower(of)} |")
    return "\n".join(lines)


def user_medians(of: dict) -> str:
    users = {b: [r["user_us_per_request"] for r in of[b] if r.get("user_us_per_request")]
             for b in ("before", "after")}
    if not users["before"] or not users["after"]:
        return "–"
    return (f"{statistics.median(users['before']):.2f} → "
            f"{statistics.median(users['after']):.2f}")


def pairs_lower(of: dict) -> str:
    """Runs alternate before/after, so the i-th of each build ran side by side."""
    pairs = [(b.get("user_us_per_request"), a.get("user_us_per_request"))
             for b, a in zip(of["before"], of["after"])]
    pairs = [(b, a) for b, a in pairs if b is not None and a is not None]
    return f"{sum(a < b for b, a in pairs)} of {len(pairs)}" if pairs else "–"


if __name__ == "__main__":
    sys.exit(main())
