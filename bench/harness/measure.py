"""One measured run: start the server, drive it with loadgen, stop it, check what it logged."""

import json
import resource
import subprocess
import time

from . import audit, servers
from .config import KEYCARDS, Env, Scenario


class Runner:
    def __init__(self, env: Env, paths: servers.Paths, record_id: int):
        self.env = env
        self.paths = paths
        self.record_id = record_id
        self.problems: list[str] = []

    def audit_counts(self) -> tuple[int, int]:
        return audit.counts(self.paths.data_dir, self.paths.database_url)

    def path(self, scenario: Scenario) -> str:
        return scenario.path.format(record_id=self.record_id)

    def run(self, kind: str, scenario: Scenario, *, requests: int | None = None,
            rate: float | None = None, seconds: float, warmup: int) -> dict:
        port = servers.port_for(kind, self.env.port_base)
        before = self.audit_counts() if kind in KEYCARDS else None
        server = servers.start(kind, self.paths, self.env.server_cpus, port, scenario.name)
        try:
            cpus = servers.cpu_list(self.env.server_cpus)
            gen_cpus = servers.cpu_list(self.env.loadgen_cpus)
            split0, busy0 = servers.cpu_split(server.proc.pid), servers.busy_seconds(cpus)
            threads0 = servers.thread_times(server.proc.pid)
            gen0, gen_busy0 = children_cpu(), servers.busy_seconds(gen_cpus)
            result = self.loadgen(port, scenario, requests, rate, seconds, warmup)
            user, system = (end - start for end, start
                            in zip(servers.cpu_split(server.proc.pid), split0))
            result.update(server_cpu_s=user + system, server_user_s=user, server_system_s=system,
                          threads=servers.thread_deltas(
                              threads0, servers.thread_times(server.proc.pid)))
            # Other processes' share of the server's and the generator's CPUs during the run:
            # the noise gauge (this machine is shared).
            wall = result["wall_s"]
            foreign = servers.busy_seconds(cpus) - busy0 - result["server_cpu_s"]
            gen_foreign = servers.busy_seconds(gen_cpus) - gen_busy0 - (children_cpu() - gen0)
            result["others_share_server_cpus"] = max(0.0, foreign) / (wall * len(cpus))
            result["others_share_loadgen_cpus"] = max(0.0, gen_foreign) / (wall * len(gen_cpus))
            result["foreign_cpu_share"] = max(result["others_share_server_cpus"],
                                              result["others_share_loadgen_cpus"])
        finally:
            servers.stop(server)
        result.update(server=kind, scenario=scenario.name)
        answered = result["completed"] + result["warmup"]["completed"]
        for key in ("cpu", "user", "system"):
            result[f"server_{key}_us_per_request"] = result[f"server_{key}_s"] * 1e6 / max(answered, 1)
        result["threads_per_request"] = per_request(result["threads"], answered)
        self.verify(kind, scenario, result, before)
        return result

    def loadgen(self, port: int, scenario: Scenario, requests, rate, seconds, warmup) -> dict:
        cmd = ["taskset", "-c", self.env.loadgen_cpus, str(self.paths.loadgen), "run",
               "--connect", f"127.0.0.1:{port}", "--host", f"localhost:{port}",
               "--path", self.path(scenario), "--creds", str(self.paths.creds),
               "--connections", str(self.env.connections), "--warmup", str(warmup),
               "--fail-percent", str(scenario.fail_percent)]
        if self.env.loadgen_sleeps:
            cmd.append("--sleep-when-busy")
        if rate is None:
            # Max mode: a request budget sized for `seconds`, with a hard stop at twice that.
            cmd += ["--requests", str(requests), "--max-seconds", str(max(2 * seconds, 2.0))]
        else:
            cmd += ["--rate", f"{rate:.1f}", "--duration", str(seconds)]
        started = time.monotonic()
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
        result = json.loads(out.stdout)
        result["wall_s"] = time.monotonic() - started
        return result

    def verify(self, kind: str, scenario: Scenario, result: dict, before) -> None:
        where = f"{kind}/{scenario.name}/{result['mode']}@{result['offered_rps'] or 'max'}"
        if result["io_errors"]:
            self.problems.append(f"{where}: {result['io_errors']} requests got no answer")
        # bare answers 200 to everything, bad signatures included: only the others are judged.
        if kind != "bare" and result["unexpected_status"]:
            self.problems.append(f"{where}: {result['unexpected_status']} unexpected statuses "
                                 f"{result['statuses']}")
        if kind in KEYCARDS:
            check = audit.check(before, self.audit_counts(), result, scenario.authenticated)
            result["audit"] = check
            if not check["ok"]:
                self.problems.append(f"{where}: login audit mismatch {check}")


def per_request(threads: dict, answered: int) -> dict[str, dict[str, float]]:
    """Each thread's CPU (user, system) and time waiting for the CPU in µs per request, and
    its context switches per 1,000 requests; threads that did nothing measurable left out."""
    n = max(answered, 1)
    return {name: {"user_us": t["user_s"] * 1e6 / n, "system_us": t["system_s"] * 1e6 / n,
                   "waiting_us": t["waiting_s"] * 1e6 / n,
                   "voluntary_per_1k": t["voluntary_switches"] * 1e3 / n,
                   "involuntary_per_1k": t["involuntary_switches"] * 1e3 / n}
            for name, t in threads.items()
            if t["user_s"] + t["system_s"] > 0 or t["involuntary_switches"] > 0}


def machine_stalls(paths: servers.Paths, env: Env, seconds: float) -> dict | None:
    """What the machine alone does to a running thread: `hiccups` (bench/src/bin/hiccups.rs)
    spinning on the clock for `seconds` on the first server CPU and the first generator CPU
    at once, with nothing else running; `None` where the binary is missing (a lent machine
    prepared before it existed)."""
    tool = paths.loadgen.parent / "hiccups"
    if not tool.is_file():
        return None
    sides = {"server_cpu": servers.cpu_list(env.server_cpus)[0],
             "loadgen_cpu": servers.cpu_list(env.loadgen_cpus)[0]}
    spinning = {side: subprocess.Popen(["taskset", "-c", str(cpu), str(tool), str(seconds)],
                                       stdout=subprocess.PIPE, text=True)
                for side, cpu in sides.items()}
    stalls = {}
    for side, proc in spinning.items():
        out, _ = proc.communicate(timeout=seconds + 30)
        stalls[side] = {"cpu": sides[side], **json.loads(out)}
    return stalls


def children_cpu() -> float:
    """CPU seconds of this harness' finished children (loadgen runs as one, via taskset's exec)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
