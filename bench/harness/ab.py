"""An A/B of two keycard builds under load: tokeninfo max throughput with N server cores for
each N in SCALING_CORES (default "1,2"), the two builds alternated within each core count
(before, after, then after, before, … for ROUNDS rounds, default 2), bare once per core count
as the ceiling. Every keycard run is checked like the main benchmark's (audit and success
counts). `--keycard` is the build after the change, `--keycard-plain` the one before.

    bench/lent ab OUT      (on a lent machine; see bench/lent)

For a change whose effect only shows where this VM cannot look (many cores); one core's
changes are better compared with `bench/run --count`.
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
    mode = MODES["quick"]
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
            run = figures(max_run(runner, kind, scenario, mode, guesses))
            runs.append({"server_cores": n, "build": BUILDS.get(kind, "bare"), **run})
            log(f"{n:2} cores {BUILDS.get(kind, 'bare'):6} {run['rps']:10,.0f} req/s  "
                f"cores busy {cores_busy(run)}")
        problems += runner.problems
    meta = metadata("ab", base)
    meta["build"] = build_label(args)
    out = results_path(meta, "ab")
    out.write_text(json.dumps({"meta": meta, "runs": runs, "problems": problems}, indent=1)
                   + "\n")
    return publish(out, table(meta, base, nproc, runs), problems)


def table(meta: dict, base, nproc: int, runs: list[dict]) -> str:
    lines = [f"keycard A/B, {meta['date']}, {meta['host']} ({meta['cpu_model']}, {nproc} CPUs), "
             f"tokeninfo max, {base.connections} connections, {base.tokens} tokens; every run in "
             "order:", "",
             "| server cores | build | req/s | cores busy | p99 at max |",
             "|---:|---|---:|---:|---:|"]
    lines += [f"| {r['server_cores']} | {r['build']} | {r['rps']:,.0f} | {cores_busy(r)} "
              f"| {r['p99_us'] or 0:,.0f} µs |" for r in runs]
    lines += ["", "| server cores | before (median) | after (median) | after/before | bare |",
              "|---:|---:|---:|---:|---:|"]
    for n in sorted({r["server_cores"] for r in runs}):
        rps = {b: [r["rps"] for r in runs if r["server_cores"] == n and r["build"] == b]
               for b in ("before", "after", "bare")}
        before, after = statistics.median(rps["before"]), statistics.median(rps["after"])
        lines.append(f"| {n} | {before:,.0f} | {after:,.0f} | {after / before:.2f}× "
                     f"| {statistics.median(rps['bare']):,.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
