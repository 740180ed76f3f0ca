"""Throughput per node with the replay and concurrency state on Redis (issue 6) as a ratio of
the same node with it in memory, in the same run: max-throughput tokeninfo runs of keycard
with and without `--redis-url`, alternated (memory, redis, memory, redis, …) so drift and
noise hit both alike; the median of each is reported. Redis runs on the generator's CPUs (on
a real deployment it has its own machine). The directory is SQLite in both, so the difference
is the shared state alone; every run passes the usual audit and success checks.

A third variant is a cluster node as deployed: directory and audit trail on PostgreSQL (the
project's throwaway instance from scripts/services.sh, moved to the generator's CPUs; it runs
with fsync off, so its figure is an upper bound for a durable PostgreSQL) and state on Redis.

    bench/run --shared      (bench/run builds first, then calls this)
"""

import dataclasses
import json
import os
import socket
import statistics
import subprocess
import sys
import time

from .config import MODES, REPO, SCENARIOS, from_environment
from .main import (capture_bodies, create_directory, log, max_run, metadata, publish,
                   results_path, start)
from .measure import Runner

ROUNDS = 3


def start_redis(cpus: str, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(["taskset", "-c", cpus, "redis-server", "--port", str(port),
                             "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                # A first deployment: nothing was ever accepted, so no reset hold.
                s.sendall(b"SET keycard:epoch 0\r\n")
                if s.recv(64).startswith(b"+OK"):
                    return proc
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("redis-server did not start")
        time.sleep(0.05)


def start_postgres(cpus: str) -> tuple[str, bool]:
    """A fresh database on the project's throwaway PostgreSQL (started when not running), its
    processes moved to `cpus`. Returns (URL, whether this call started the server)."""
    services = REPO / "scripts" / "services.sh"
    was_running = subprocess.run(["bash", str(services), "status"], capture_output=True,
                                 text=True).stdout.startswith("PostgreSQL: running")
    subprocess.run(["bash", str(services), "start"], check=True, capture_output=True)
    env = dict(line.split("=", 1) for line in
               (REPO / ".tmp" / "services.env").read_text().split("\n") if "=" in line)
    admin = env["KEYCARD_TEST_DATABASE_URL"]
    name = f"kc_bench_{os.getpid()}_{int(time.time())}"
    subprocess.run(["psql", admin, "-qc", f"CREATE DATABASE {name}"], check=True)
    for pid in subprocess.run(["pgrep", "-f", "postgres"], capture_output=True,
                              text=True).stdout.split():
        subprocess.run(["taskset", "-a", "-p", "-c", cpus, pid], capture_output=True)
    return f"{admin.rsplit('/', 1)[0]}/{name}", not was_running


def main() -> int:
    args, paths = start()
    mode = MODES["full"]
    env = from_environment()
    create_directory(paths, env)
    redis_port = env.port_base + 30
    redis = start_redis(env.loadgen_cpus, redis_port)
    redis_url = f"redis://127.0.0.1:{redis_port}/"
    database_url, started_postgres = start_postgres(env.loadgen_cpus)
    cluster_node = dataclasses.replace(
        paths, data_dir=args.work / "data-pg", creds=args.work / "creds-pg.json",
        database_url=database_url, keycard_args=("--redis-url", redis_url))
    create_directory(cluster_node, env)
    try:
        record_id = capture_bodies(paths, env)
        scenario = next(s for s in SCENARIOS if s.name == "tokeninfo")
        variants = {
            "memory": paths,
            "redis": dataclasses.replace(paths, keycard_args=("--redis-url", redis_url)),
            "postgres+redis": cluster_node,
        }
        runs: dict[str, list[dict]] = {name: [] for name in variants}
        problems = []
        # The last rate of each variant sizes its next run.
        seen = {name: {"keycard": 30_000.0} for name in variants}
        for round_ in range(ROUNDS):
            for name, variant in variants.items():
                runner = Runner(env, variant, record_id)
                top = max_run(runner, "keycard", scenario, mode, seen[name])
                problems += runner.problems
                runs[name].append({
                    "rps": top["steady_rps"] or top["achieved_rps"],
                    "p50_us": top["success"].get("p50_us"),
                    "p99_us": top["success"].get("p99_us"),
                    "cpu_us_per_request": top["server_cpu_us_per_request"],
                    "others_share_server_cpus": top["others_share_server_cpus"],
                    "audit": top.get("audit"),
                })
                log(f"round {round_ + 1} {name:6} {runs[name][-1]['rps']:10,.0f} req/s  "
                    f"{runs[name][-1]['cpu_us_per_request']:.1f} µs CPU/request")
    finally:
        redis.kill()
        redis.wait()
        if started_postgres:
            subprocess.run(["bash", str(REPO / "scripts" / "services.sh"), "stop"],
                           capture_output=True)
    summary = {name: {key: statistics.median(r[key] for r in rs)
                      for key in ("rps", "p50_us", "p99_us", "cpu_us_per_request")}
               for name, rs in runs.items()}
    ratio = summary["redis"]["rps"] / summary["memory"]["rps"]
    meta = metadata("shared", env)
    out = results_path(meta, "shared")
    out.write_text(json.dumps({"meta": meta, "runs": runs, "summary": summary, "ratio": ratio,
                               "cluster_node_ratio": summary["postgres+redis"]["rps"]
                               / summary["memory"]["rps"],
                               "problems": problems}, indent=1) + "\n")
    m, r, p = summary["memory"], summary["redis"], summary["postgres+redis"]
    table = "\n".join([
        f"Shared state, {meta['date']}, {meta['host']} ({meta['cpu_model']}), tokeninfo at max "
        f"throughput, server on CPUs {env.server_cpus}, generator and Redis on {env.loadgen_cpus}, "
        f"{env.connections} connections, {env.tokens} tokens, median of {ROUNDS} alternated runs:",
        "",
        "| state | req/s | p50 | p99 | keycard CPU/request |",
        "|---|---:|---:|---:|---:|",
        f"| in memory (one node) | {m['rps']:,.0f} | {m['p50_us']:.0f} µs | {m['p99_us']:.0f} µs | {m['cpu_us_per_request']:.1f} µs |",
        f"| Redis (any number of nodes) | {r['rps']:,.0f} | {r['p50_us']:.0f} µs | {r['p99_us']:.0f} µs | {r['cpu_us_per_request']:.1f} µs |",
        f"| PostgreSQL directory and audit + Redis (a cluster node) | {p['rps']:,.0f} | {p['p50_us']:.0f} µs | {p['p99_us']:.0f} µs | {p['cpu_us_per_request']:.1f} µs |",
        "",
        f"Redis / memory: **{ratio:.2f}×** throughput per node; a cluster node (PostgreSQL + "
        f"Redis) / memory: **{p['rps'] / m['rps']:.2f}×**.",
    ])
    return publish(out, table, problems)


if __name__ == "__main__":
    sys.exit(main())
