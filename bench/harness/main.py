"""The benchmark run (bench/run calls this after building): set up a directory, then for each
scenario and server a max-throughput run and open-loop runs at fractions of that max; write
bench/results/<date>-<host>[-quick|-short].json (-2, -3, … for a later run that day) and print the
markdown tables."""

import argparse
import datetime
import json
import os
import platform
import socket
import signal
import subprocess
import sys
import time
from pathlib import Path

from . import report, servers, setup_data
from .config import (BENCH, MODES, NOISY, PLAIN, REPO, SCENARIOS, TARGET_LOAD, cpu_count,
                     from_environment)
from .measure import Runner, machine_stalls

# How long the machine's own stalls are measured before the runs (`measure.machine_stalls`).
STALL_SECONDS = {"quick": 2.0, "short": 5.0, "full": 10.0}


def main() -> int:
    args, paths = start(with_mode=True)
    mode, env = MODES[args.mode], from_environment()
    # Taken now, right after bench/run's build: the commit that was built and measured (the
    # repository may move on during a run).
    meta = metadata(args.mode, env)
    meta["build"] = build_label(args)
    log(f"setup: directory with {env.tokens} tokens in {paths.data_dir}")
    create_directory(paths, env)
    record_id = capture_bodies(paths, env)
    runner = Runner(env, paths, record_id)
    meta["stalls"] = machine_stalls(paths, env, STALL_SECONDS[args.mode])

    # Rough first guesses per server CPU; each max run is then sized from the last rate seen.
    ncpu = cpu_count(env.server_cpus)
    rate_seen = {"keycard": 30_000.0 * ncpu, PLAIN: 30_000.0 * ncpu, "bare": 80_000.0 * ncpu,
                 "reference": 2_000.0}
    runs = []
    for sc in SCENARIOS:
        fractions = mode.sweep if sc.sweep_from_mode else (TARGET_LOAD,)
        tops = side_by_side_max_runs(runner, sc, mode, rate_seen)
        runs += tops.pop(PLAIN, [])
        for kind in sc.servers:
            runs += tops[kind]
            top = report.median_run(tops[kind])
            for f in fractions:
                rate = f * report.max_rps(top)
                r = least_noisy(mode, lambda: runner.run(
                    kind, sc, rate=rate, seconds=mode.open_seconds, warmup=warmup_for(rate, mode)))
                r["fraction"] = f
                runs.append(r)
                log(f"{sc.name:9} {kind:9} {f:4.2f} {r['achieved_rps']:9,.0f} req/s  "
                    f"p99 {r['success'].get('p99_us', 0):8.0f} µs  "
                    f"others on the CPUs {r['foreign_cpu_share']:4.0%}")

    summary = report.summarize(runs)
    meta["targets"] = report.targets(summary)
    bare_top = report.pick(runs, "bare", "tokeninfo", "max")
    meta["generator"] = {
        "presign_ns_per_request": bare_top["presign_ns_per_request"],
        "cpu_util_at_bare_max": bare_top["generator_cpu_util"],
    }
    shares = [r["foreign_cpu_share"] for r in runs]
    meta["others_on_cpus"] = {"mean": sum(shares) / len(shares), "max": max(shares)}
    meta["problems"] = runner.problems
    out = results_path(meta, "" if args.mode == "full" else args.mode)
    out.write_text(json.dumps({"meta": meta, "summary": summary, "runs": runs}, indent=1) + "\n")
    table = report.markdown(summary, runs, meta)
    (args.work / "results-path").write_text(str(out))  # for bench/run's plot step
    return publish(out, table, runner.problems)


def start(with_mode: bool = False) -> tuple[argparse.Namespace, servers.Paths]:
    """The arguments every harness entry point takes from bench/run (the binaries and this
    run's raw directory, plus `--mode` for the main benchmark), and the paths of the run."""
    ap = argparse.ArgumentParser()
    if with_mode:
        ap.add_argument("--mode", choices=MODES, default="full")
    ap.add_argument("--keycard", type=Path, required=True)
    ap.add_argument("--keycard-plain", type=Path,
                    help="the plain release build, when --keycard is the PGO one")
    ap.add_argument("--bare", type=Path, required=True)
    ap.add_argument("--pgo", action="store_true",
                    help="keycard and bare are the PGO builds (scripts/build-pgo --with-bare)")
    ap.add_argument("--loadgen", type=Path, required=True)
    ap.add_argument("--work", type=Path, required=True, help="raw files of this run")
    args = ap.parse_args()
    # A stopped run must stop its servers too: turn SIGTERM into an exit, which runs the
    # `finally` blocks that stop them.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args.work.mkdir(parents=True, exist_ok=True)
    paths = servers.Paths(keycard=args.keycard, bare=args.bare, loadgen=args.loadgen,
                          venv=BENCH / ".venv", data_dir=args.work / "data",
                          creds=args.work / "creds.json", work=args.work,
                          keycard_plain=args.keycard_plain)
    return args, paths


def build_label(args: argparse.Namespace) -> str:
    """How the measured keycard and bare were built, for the results' metadata."""
    return ("profile-guided: keycard and bare (scripts/build-pgo --with-bare)" if args.pgo
            else "plain release")


def create_directory(paths: servers.Paths, env) -> None:
    """A fresh directory (account, integration, env.tokens tokens) at paths; the tokens'
    credentials go to paths.creds for the generator."""
    creds = setup_data.create(paths.keycard, paths.data_dir, env.tokens, env.connections,
                              paths.database_url)
    paths.creds.write_text(json.dumps(creds))


def results_path(meta: dict, kind: str = "") -> Path:
    """bench/results/<date>-<host>[-<kind>].json, or with -2, -3, … when a run of that day
    is already there: a recorded run is never overwritten."""
    stem = f"{meta['date']}-{meta['host']}" + (f"-{kind}" if kind else "")
    folder = BENCH / "results"
    folder.mkdir(parents=True, exist_ok=True)
    out, n = folder / f"{stem}.json", 1
    while out.exists() or out.with_suffix(".md").exists():
        n += 1
        out = folder / f"{stem}-{n}.json"
    return out


def publish(out: Path, table: str, problems: list[str]) -> int:
    """Writes the markdown table next to the JSON results at `out`, prints it, and turns
    failed checks into a non-zero exit."""
    out.with_suffix(".md").write_text(table + "\n")
    print(table)
    print(f"\nresults: {out.relative_to(REPO)}")
    if problems:
        print("\nCHECKS FAILED:\n- " + "\n- ".join(problems), file=sys.stderr)
        return 1
    return 0


def side_by_side_max_runs(runner: Runner, sc, mode, rate_seen) -> dict[str, list[dict]]:
    """Max runs of keycard (and the plain build, when measured) each between two runs of bare,
    `mode.rounds` times: bare, keycard, bare, plain; then bare, plain, bare, keycard; then as
    first; and bare once more. On a shared VM whose speed drifts by 15–40% within minutes,
    only runs made side by side give a ratio worth quoting: the report takes keycard's against
    the mean of the bare runs just before and just after it, counted where those two agree.
    The reference, at a thirtieth of keycard's rate, gets one run."""
    between = ["keycard", PLAIN] if runner.paths.keycard_plain else ["keycard"]
    tops: dict[str, list[dict]] = {kind: [] for kind in (*sc.servers, *between)}
    plan = [(round_, run) for round_ in range(mode.rounds)
            for kind in (between if round_ % 2 == 0 else between[::-1])
            for run in ("bare", kind)]
    plan.append((mode.rounds - 1, "bare"))
    plan += [(0, kind) for kind in sc.servers if kind not in (*between, "bare")]
    for seq, (round_, kind) in enumerate(plan):
        top = least_noisy(mode, lambda: max_run(runner, kind, sc, mode, rate_seen))
        top.update(fraction=None, round=round_, seq=seq)
        tops[kind].append(top)
        log(f"{sc.name:9} {kind:9} max  {report.max_rps(top):9,.0f} req/s  "
            f"p99 {top['success'].get('p99_us', 0):8.0f} µs  "
            f"others on the CPUs {top['foreign_cpu_share']:4.0%}  (round {round_ + 1})")
    return tops


def max_run(runner: Runner, kind, sc, mode, rate_seen) -> dict:
    """A max-throughput run sized to last about mode.max_seconds; rerun once if the guess was
    so low that the run ended in under half that (too short to trust)."""
    for _ in range(3):
        rate = rate_seen[kind]
        r = runner.run(kind, sc, requests=max(1000, int(rate * mode.max_seconds)),
                       seconds=mode.max_seconds, warmup=warmup_for(rate, mode))
        rate_seen[kind] = r["steady_rps"] or r["achieved_rps"]
        if r["elapsed_s"] >= 0.5 * mode.max_seconds:
            break
    return r


def least_noisy(mode, measure) -> dict:
    """Repeats a measurement (up to mode.attempts) while other processes disturbed it."""
    best, attempts = measure(), 1
    while attempts < mode.attempts and best["foreign_cpu_share"] > NOISY:
        log(f"  others took {best['foreign_cpu_share']:.0%} of a benchmark CPU: measuring again")
        wait_for_quiet(mode.quiet_wait_seconds)
        again, attempts = measure(), attempts + 1
        best = min(best, again, key=lambda r: r["foreign_cpu_share"])
    best["attempts"] = attempts
    return best


def wait_for_quiet(limit: float) -> None:
    """Waits (at most `limit` s) for a second in which other processes leave the benchmark's
    CPUs alone."""
    env = from_environment()
    cpus = servers.cpu_list(env.server_cpus) + servers.cpu_list(env.loadgen_cpus)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = servers.busy_seconds(cpus)
        time.sleep(1.0)
        if (servers.busy_seconds(cpus) - before) / len(cpus) <= NOISY:
            return


def warmup_for(rate: float, mode) -> int:
    return int(min(20_000, max(200, rate * mode.warmup_seconds)))


def capture_bodies(paths: servers.Paths, env) -> int:
    """Runs keycard once to record its answers (bare and the reference answer the same bytes)
    and to create the customer record the record scenario reads. Returns the record's id."""
    port = servers.port_for("keycard", env.port_base)
    server = servers.start("keycard", paths, env.server_cpus, port, "setup")
    try:
        def probe(*extra):
            cmd = [str(paths.loadgen), "probe", "--connect", f"127.0.0.1:{port}",
                   "--host", f"localhost:{port}", "--creds", str(paths.creds), *extra]
            return json.loads(subprocess.run(cmd, check=True, capture_output=True,
                                             text=True).stdout)

        first, replay = probe("--twice")
        expect(first["status"] == 200 and replay["status"] == 401, "tokeninfo / replay", first)
        for name in ("tokeninfo", "mix"):
            (paths.work / f"body-{name}.json").write_text(first["body"])
        (paths.work / "body-failure.json").write_text(replay["body"])
        [made] = probe("--method", "POST", "--path", "/services/rest/record/v1/customer",
                       "--body", json.dumps({"companyName": "Bench Co", "email": "bench@example.com",
                                             "subsidiary": {"id": "1"}}))
        expect(made["status"] == 204, "record create", made)
        location = next(line for line in made["head"].split("\r\n")
                        if line.lower().startswith("location:"))
        record_id = int(location.rsplit("/", 1)[1])
        [got] = probe("--path", f"/services/rest/record/v1/customer/{record_id}")
        expect(got["status"] == 200, "record get", got)
        (paths.work / "body-record.json").write_text(got["body"])
        [floor] = probe("--path", "/healthz")
        expect(floor["status"] == 200, "healthz", floor)
        (paths.work / "body-floor.json").write_text(floor["body"])
        return record_id
    finally:
        servers.stop(server)


def expect(ok: bool, what: str, answer: dict) -> None:
    if not ok:
        raise RuntimeError(f"setup: {what} answered {answer['status']}: {answer['body']}")


def metadata(mode: str, env) -> dict:
    def cmd(*c):
        try:
            return subprocess.run(c, capture_output=True, text=True, cwd=REPO).stdout.strip()
        except OSError:
            return ""
    cpu_model = next((line.split(":", 1)[1].strip() for line in
                      Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), platform.processor())
    return {
        "mode": mode,
        "date": datetime.date.today().isoformat(),
        "host": socket.gethostname().split(".")[0],
        "cpu_model": cpu_model,
        "nproc": os.cpu_count(),
        "server_cpus": env.server_cpus, "loadgen_cpus": env.loadgen_cpus,
        "connections": env.connections, "tokens": env.tokens,
        "loadgen_sleeps": env.loadgen_sleeps,
        # BENCH_COMMIT: set by bench/lent, whose machine gets the files without their history.
        "keycard_commit": (os.environ.get("BENCH_COMMIT")
                           or cmd("git", "rev-parse", "--short", "HEAD")),
        "keycard_dirty": bool(cmd("git", "status", "--porcelain", "--", "crates")),
        "rustc": cmd("rustc", "--version"),
        "python": platform.python_version(),
    }


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
