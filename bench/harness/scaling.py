"""How throughput changes with the server's cores: max-throughput tokeninfo runs of keycard and
the bare server with the server on the first N CPUs and the generator on the rest, for each N
in SCALING_CORES (default "1,2"; e.g. "1,2,4,8,14" on 16 cores). From 8 server cores the
default 16 connections (closed loop) bound both servers: use CONNECTIONS=64 there (bench/lent
does). The same checks as the main benchmark (audit and success counts) hold on every keycard
run.

    bench/run --scaling      (bench/run builds first, then calls this)
"""

import dataclasses
import json
import os
import sys

from .config import MODES, PLAIN, SCENARIOS, from_environment
from .main import (build_label, capture_bodies, create_directory, log, max_run, metadata,
                   publish, results_path, start)
from .measure import Runner


def main() -> int:
    args, paths = start()
    mode = MODES["quick"]
    base = from_environment()
    nproc = os.cpu_count() or 2
    create_directory(paths, base)
    scenario = next(s for s in SCENARIOS if s.name == "tokeninfo")
    rows, problems = [], []
    for n in core_counts(nproc):
        env, shared = split_cpus(base, n, nproc)
        record_id = capture_bodies(paths, env)
        runner = Runner(env, paths, record_id)
        row = {"server_cores": n, "server_cpus": env.server_cpus, "loadgen_cpus": env.loadgen_cpus,
               "shared_with_generator": shared}
        for kind in ("keycard", "bare"):
            top = max_run(runner, kind, scenario, mode, first_guesses(n))
            row[kind] = figures(top)
            log(f"{n:2} cores {kind:8} {row[kind]['rps']:10,.0f} req/s  "
                f"generator busy {top['generator_cpu_util']:.0%}")
        row["ratio"] = row["keycard"]["rps"] / row["bare"]["rps"]
        rows.append(row)
        problems += runner.problems
    meta = metadata("scaling", base)
    meta["build"] = build_label(args)
    out = results_path(meta, "scaling")
    out.write_text(json.dumps({"meta": meta, "rows": rows, "problems": problems}, indent=1) + "\n")
    lines = [f"Core scaling, {meta['date']}, {meta['host']} ({meta['cpu_model']}, {nproc} CPUs), "
             f"tokeninfo, {base.connections} connections, {base.tokens} tokens:", "",
             "| server cores | keycard req/s | bare req/s | keycard/bare | keycard per core "
             "| cores busy: keycard, bare |",
             "|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        shared = " (shared with the generator)" if r["shared_with_generator"] else ""
        lines.append(f"| {r['server_cores']}{shared} | {r['keycard']['rps']:,.0f} "
                     f"| {r['bare']['rps']:,.0f} | {r['ratio']:.2f}× "
                     f"| {r['keycard']['rps'] / r['server_cores']:,.0f} "
                     f"| {cores_busy(r['keycard'])}, {cores_busy(r['bare'])} |")
    return publish(out, "\n".join(lines), problems)


def core_counts(nproc: int) -> list[int]:
    """The server core counts of SCALING_CORES (default "1,2") that this machine has, logging
    the ones it skips."""
    counts = []
    for n in (int(c) for c in os.environ.get("SCALING_CORES", "1,2").split(",")):
        if n > nproc:
            log(f"skipping {n} server cores: this machine has {nproc} CPUs")
        else:
            counts.append(n)
    return counts


def split_cpus(base, n: int, nproc: int):
    """The settings for N server cores: the server on the first N CPUs, the generator on the
    rest (or, when N is all of them, on the same CPUs: the figure then understates the server,
    and the table says so). Also exported to the environment, which the runs read. Returns the
    settings and whether the generator shares the server's CPUs."""
    shared = n == nproc
    server_cpus = f"0-{n - 1}" if n > 1 else "0"
    loadgen_cpus = (server_cpus if shared else
                    f"{n}-{nproc - 1}" if nproc - n > 1 else str(n))
    env = dataclasses.replace(base, server_cpus=server_cpus, loadgen_cpus=loadgen_cpus)
    os.environ.update(SERVER_CPUS=env.server_cpus, LOADGEN_CPUS=env.loadgen_cpus)
    return env, shared


def first_guesses(n: int) -> dict:
    """Rates to size the first max run of each server on N cores (later runs use the last rate
    seen)."""
    return {"keycard": 40_000.0 * n, PLAIN: 40_000.0 * n, "bare": 150_000.0 * n}


def figures(top: dict) -> dict:
    """What the scaling tables keep of a max run."""
    return {"rps": top["steady_rps"] or top["achieved_rps"],
            "p99_us": top["success"].get("p99_us"),
            "cpu_us_per_request": top["server_cpu_us_per_request"],
            "generator_cpu_util": top["generator_cpu_util"],
            "others_on_cpus": top["foreign_cpu_share"]}


def cores_busy(run: dict) -> str:
    """The server's CPU time per second of the run (from `figures`): below its core count,
    something other than CPU (a lock, a single writer, the generator, too few connections)
    held it back."""
    cpu = run.get("cpu_us_per_request")
    return "–" if cpu is None else f"{run['rps'] * cpu / 1e6:.1f}"


if __name__ == "__main__":
    sys.exit(main())
