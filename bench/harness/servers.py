"""Starting and stopping the three servers, each pinned to SERVER_CPUS with taskset.

Every measured run gets a freshly started server: no run inherits another's nonce store,
queued audit writes or cache state, and keycard's audit trail is flushed (SIGTERM) before
its rows are counted.
"""

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .config import BENCH, KEYCARDS, PLAIN


@dataclass
class Paths:
    keycard: Path
    bare: Path
    loadgen: Path
    venv: Path
    data_dir: Path
    creds: Path
    work: Path  # this run's raw directory: logs, bodies
    keycard_args: tuple = ()  # extra `keycard serve` flags (e.g. --redis-url)
    database_url: str | None = None  # the directory, when not SQLite in data_dir
    # The plain release build, when `keycard` is the profile-guided one (the full run).
    keycard_plain: Path | None = None


@dataclass
class Running:
    kind: str
    proc: subprocess.Popen
    port: int
    log: Path


def port_for(kind: str, base: int) -> int:
    return base + {"keycard": 0, PLAIN: 5, "bare": 10, "reference": 20}[kind]


def command(kind: str, paths: Paths, port: int, scenario: str) -> tuple[list[str], dict]:
    listen = f"127.0.0.1:{port}"
    env = dict(os.environ)
    if kind in KEYCARDS:
        # Default settings, default log level (KEYCARD_LOG): what an operator runs.
        database = ("--database-url", paths.database_url) if paths.database_url else ()
        binary = paths.keycard if kind == "keycard" else paths.keycard_plain
        return [str(binary), "serve", "--data-dir", str(paths.data_dir),
                "--listen", listen, *database, *paths.keycard_args], env
    body = paths.work / f"body-{scenario}.json"
    if kind == "bare":
        return [str(paths.bare), "--listen", listen, "--body-file", str(body)], env
    env.update(BENCH_CREDS=str(paths.creds), BENCH_BODY=str(body),
               BENCH_FAIL_BODY=str(paths.work / "body-failure.json"))
    # One gthread worker with one thread: a single process, so the in-memory nonce set sees
    # every request (more workers would each keep their own set and let replays through), and
    # gthread rather than sync because sync closes the connection after every response.
    return [str(paths.venv / "bin" / "gunicorn"), "--workers", "1", "--worker-class", "gthread",
            "--threads", "1", "--keep-alive", "75", "--backlog", "2048", "--log-level", "warning",
            "--bind", listen, "--chdir", str(BENCH / "reference"), "server:app"], env


def start(kind: str, paths: Paths, cpus: str, port: int, scenario: str) -> Running:
    cmd, env = command(kind, paths, port, scenario)
    log = paths.work / f"{kind}.log"
    with open(log, "a", encoding="utf-8") as out:
        proc = subprocess.Popen(["taskset", "-c", cpus, *cmd], stdout=out, stderr=out, env=env)
    wait_listening(proc, port, log)
    return Running(kind, proc, port, log)


def wait_listening(proc: subprocess.Popen, port: int, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}; see {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    proc.kill()
    raise RuntimeError(f"server did not listen on {port} within {timeout} s; see {log}")


def stop(server: Running, timeout: float = 60.0) -> None:
    """Graceful stop (SIGTERM): keycard drains its audit queue to SQLite before exiting."""
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGTERM)
    try:
        server.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()
        raise RuntimeError(f"{server.kind} did not stop within {timeout} s after SIGTERM")


def cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process and its children, from /proc: the system share
    is the kernel's work for the process (sockets, the audit trail's file writes)."""
    user = system = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    pending = [pid]
    while pending:
        p = pending.pop()
        try:
            stat = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            user += int(stat[11]) / tick
            system += int(stat[12]) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return user, system


# What `thread_times` reads for each thread, summed over the threads of one name.
THREAD_FIELDS = ("user_s", "system_s", "waiting_s", "voluntary_switches", "involuntary_switches")


def thread_times(pid: int) -> dict[str, dict[str, float]]:
    """A process's threads by name (`tokio-rt-worker`, `keycard-checkpo`, …, as the kernel
    keeps it: 15 bytes), from /proc: user and system CPU seconds, seconds spent ready to run
    while another thread had the CPU (`schedstat`; 0 where the kernel keeps no scheduler
    statistics), and context switches, voluntary (the thread waited for something) and
    involuntary (it was preempted). Threads of one name are summed; a thread that ended
    between two readings drops out of the later one."""
    tick = os.sysconf("SC_CLK_TCK")
    threads: dict[str, dict[str, float]] = {}
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except (FileNotFoundError, ProcessLookupError):
        return threads
    for task in tasks:
        try:
            name = (task / "comm").read_text().strip()
            stat = (task / "stat").read_text().rsplit(")", 1)[1].split()
            status = dict(line.split(":", 1) for line in
                          (task / "status").read_text().splitlines() if ":" in line)
            try:
                waiting_ns = int((task / "schedstat").read_text().split()[1])
            except (FileNotFoundError, IndexError, ValueError):
                waiting_ns = 0
        except (FileNotFoundError, ProcessLookupError):
            continue
        sums = threads.setdefault(name, dict.fromkeys(THREAD_FIELDS, 0.0))
        sums["user_s"] += int(stat[11]) / tick
        sums["system_s"] += int(stat[12]) / tick
        sums["waiting_s"] += waiting_ns / 1e9
        sums["voluntary_switches"] += int(status["voluntary_ctxt_switches"])
        sums["involuntary_switches"] += int(status["nonvoluntary_ctxt_switches"])
    return threads


def thread_deltas(before: dict, after: dict) -> dict[str, dict[str, float]]:
    """What each thread name of `after` added since `before` (threads started in between
    count from zero)."""
    return {name: {k: v - before.get(name, {}).get(k, 0.0) for k, v in sums.items()}
            for name, sums in after.items()}


def cpu_list(cpus: str) -> list[int]:
    out = []
    for part in cpus.split(","):
        lo, _, hi = part.partition("-")
        out += range(int(lo), int(hi or lo) + 1)
    return out


def busy_seconds(cpus: list[int]) -> float:
    """CPU time the given CPUs spent not idle, from /proc/stat: with the server's own CPU time
    subtracted, what other processes took from it (this machine is shared)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for line in Path("/proc/stat").read_text().splitlines():
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
            total += user + nice + system + irq + softirq + steal
    return total / tick
