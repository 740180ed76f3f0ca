"""Nonce buckets turning over, which the benchmark's runs never reach: the load generator signs
every request of a run with one timestamp, and a run lasts seconds against a 300 s window.

One keycard server per build, with a short timestamp window (`--timestamp-window`, default
20 s), driven by consecutive fixed-rate tokeninfo runs of 10 s. Each run is signed with its own
timestamp, so each fills a new 10 s bucket, and from about the fourth run on a bucket expires as
a new one begins: the steady state of a long-running server, compressed. Per run: the server's
minor page faults, CPU seconds and resident set after.

    cd bench && python3 -m harness.turnover --work DIR --keycard BUILD [BUILD …]

RUNS (default 8) and RATE (default 40000 req/s) come from the environment. Run from bench/
after `bench/run --quick` (or a build of the load generator in bench/target/release).
"""

import argparse
import os
import time
from pathlib import Path

from . import servers
from .config import BENCH, SCENARIOS, from_environment
from .main import capture_bodies, create_directory
from .measure import Runner

SECONDS = 10


def process_figures(pid: int) -> tuple[int, float, int]:
    """(minor faults, CPU seconds as `servers.cpu_split` counts them, resident kB) of a process."""
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    resident = next(line.split()[1] for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                    if line.startswith("VmRSS:"))
    return int(stat[7]), sum(servers.cpu_split(pid)), int(resident)


def measure(binary: Path, work: Path, window: int, runs: int, rate: float) -> list[dict]:
    env = from_environment()
    paths = servers.Paths(keycard=binary, bare=BENCH / "target/release/bare",
                          loadgen=BENCH / "target/release/loadgen", venv=BENCH / ".venv",
                          data_dir=work / "data", creds=work / "creds.json", work=work,
                          keycard_args=("--timestamp-window", str(window)))
    create_directory(paths, env)
    runner = Runner(env, paths, capture_bodies(paths, env))
    scenario = next(s for s in SCENARIOS if s.name == "tokeninfo")
    port = servers.port_for("keycard", env.port_base)
    server = servers.start("keycard", paths, env.server_cpus, port, scenario.name)
    rows = []
    try:
        for run in range(runs):
            faults0, cpu0, _ = process_figures(server.proc.pid)
            result = runner.loadgen(port, scenario, None, rate, SECONDS, 1000)
            faults1, cpu1, resident = process_figures(server.proc.pid)
            rows.append({"run": run + 1, "minor_faults": faults1 - faults0,
                         "cpu_s": cpu1 - cpu0, "rss_mb": resident / 1024,
                         "achieved_rps": result["achieved_rps"], "statuses": result["statuses"]})
            # The next run's timestamp falls in the next second at least.
            time.sleep(1)
    finally:
        servers.stop(server)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, required=True, help="a new directory per call")
    ap.add_argument("--keycard", type=Path, nargs="+", required=True, help="builds to compare")
    ap.add_argument("--window", type=int, default=20, help="the servers' timestamp window, s")
    args = ap.parse_args()
    runs, rate = int(os.environ.get("RUNS", "8")), float(os.environ.get("RATE", "40000"))
    print("| build | run | minor faults | CPU s | RSS MB | req/s | statuses |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for index, binary in enumerate(args.keycard):
        work = args.work / f"{index}-{binary.name}"
        work.mkdir(parents=True, exist_ok=False)
        for row in measure(binary.resolve(), work, args.window, runs, rate):
            print(f"| {binary} | {row['run']} | {row['minor_faults']:,} | {row['cpu_s']:.2f} | "
                  f"{row['rss_mb']:.1f} | {row['achieved_rps']:,.0f} | {row['statuses']} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
