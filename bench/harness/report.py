"""From the list of runs to the summary (figures, ratios, targets) and the markdown tables."""

from .config import PLAIN, SCENARIOS, SERVERS, TARGET_LOAD


def pick(runs, server, scenario, mode, offered_fraction=None):
    for r in runs:
        if (r["server"], r["scenario"], r["mode"]) == (server, scenario, mode) and (
                offered_fraction is None or abs(r["fraction"] - offered_fraction) < 1e-9):
            return r
    return None


def max_rps(run: dict) -> float:
    """A max run's sustained rate: the second half of the run (see loadgen's steady_rps), not
    the whole run, whose start is flattered by queues absorbing a burst (keycard's audit queue
    takes 10,000 records before requests wait on SQLite)."""
    return run.get("steady_rps") or run["achieved_rps"]


def median_run(tops: list[dict]) -> dict:
    """Of a server's max runs, the one with the median sustained rate (the lower middle one
    of an even count)."""
    ranked = sorted(tops, key=max_rps)
    return ranked[(len(ranked) - 1) // 2]


def round_ratios(runs: list[dict], scenario: str, other: str,
                 server: str = "keycard") -> list[float]:
    """`server`'s max over `other`'s in each round of side-by-side runs, in round order."""
    def by_round(server):
        return {r.get("round", 0): max_rps(r) for r in runs
                if (r["server"], r["scenario"], r["mode"]) == (server, scenario, "max")}
    mine, theirs = by_round(server), by_round(other)
    return [mine[k] / theirs[k] for k in sorted(mine) if theirs.get(k)]


def bracketed_runs(runs: list[dict], scenario: str, server: str = "keycard",
                   ceiling: str = "bare") -> list[dict]:
    """Each of `server`'s max runs in `scenario` with the `ceiling` runs made just before and
    just after it (runs in the order made, `seq`): its max over their mean (`ratio`), and how
    far the two moved (`spread`: (faster − slower) / faster). Empty for runs recorded before
    the bracketing (thirtieth session), which have no `seq`."""
    made = sorted((r for r in runs if (r["scenario"], r["mode"]) == (scenario, "max")
                   and "seq" in r), key=lambda r: r["seq"])
    brackets = []
    for i, run in enumerate(made):
        if run["server"] != server:
            continue
        before = next((r for r in reversed(made[:i]) if r["server"] == ceiling), None)
        after = next((r for r in made[i + 1:] if r["server"] == ceiling), None)
        if before is None or after is None:
            continue
        b, a = max_rps(before), max_rps(after)
        brackets.append({"ratio": max_rps(run) / ((b + a) / 2), "before": b, "after": a,
                         "spread": abs(b - a) / max(b, a)})
    return brackets


def steady(brackets: list[dict]) -> list[dict]:
    """The bracketed runs whose ceiling held within CEILING_SPREAD across them."""
    return [b for b in brackets if b["spread"] <= CEILING_SPREAD]


def lower_median(values: list[float]) -> float:
    return sorted(values)[(len(values) - 1) // 2]


def lat(block: dict) -> dict:
    return {k: block.get(k) for k in ("p50_us", "p99_us", "p999_us")} if block else {}


def summarize(runs: list[dict]) -> dict:
    summary = {}
    for sc in SCENARIOS:
        per = {}
        for server in (*SERVERS, PLAIN):
            tops = [r for r in runs
                    if (r["server"], r["scenario"], r["mode"]) == (server, sc.name, "max")]
            at = pick(runs, server, sc.name, "open", TARGET_LOAD)
            if not tops:
                continue
            top = median_run(tops)
            per[server] = {
                "max_rps": max_rps(top),
                "max_rps_per_round": [max_rps(r) for r in tops],
                "whole_run_rps": top["achieved_rps"],
                "others_on_cpus": top["foreign_cpu_share"],
                "at_max": lat(top["success"]),
                "at_max_failure": lat(top["failure"]),
                "server_cpu_us_per_request": top["server_cpu_us_per_request"],
                # Runs recorded before the split have only the total.
                "server_user_us_per_request": top.get("server_user_us_per_request"),
                "server_system_us_per_request": top.get("server_system_us_per_request"),
                # Since the thirty-second session: the same by thread (measure.per_request).
                "threads_per_request": top.get("threads_per_request"),
                "generator_cpu_util_at_max": top["generator_cpu_util"],
                f"at_{int(TARGET_LOAD * 100)}pct": {
                    "offered_rps": at["offered_rps"], "achieved_rps": at["achieved_rps"],
                    "success": lat(at["success"]), "failure": lat(at["failure"]),
                } if at else None,
            }
        # keycard/bare: each keycard max run against the mean of the bare runs just before and
        # after it; the median over the rounds where bare held steady across it, when most
        # did (else over all, and the target stays undecided). Runs from before the
        # bracketing: the median of the rounds' ratios (each round's two runs side by side).
        # keycard/reference: keycard's median max over the reference's one run.
        # With the plain build measured: the PGO build's ratio to it, round by round.
        ratios, rounds = {}, {}
        brackets = bracketed_runs(runs, sc.name)
        pairs = [("keycard", "bare"), ("keycard", "reference"), ("keycard", PLAIN)]
        for server, other in pairs:
            if server in per and other in per and per[other]["max_rps"]:
                name = f"{server}/{other}"
                if other == "bare" and brackets:
                    rounds[name] = [b["ratio"] for b in brackets]
                    held = steady(brackets)
                    counted = held if 2 * len(held) > len(brackets) else brackets
                    ratios[name] = lower_median([b["ratio"] for b in counted])
                elif len(paired := round_ratios(runs, sc.name, other, server)) > 1:
                    rounds[name] = paired
                    ratios[name] = lower_median(paired)
                else:
                    ratios[name] = per[server]["max_rps"] / per[other]["max_rps"]
        summary[sc.name] = {"title": sc.title, "servers": per, "ratios": ratios,
                            "ratio_rounds": rounds, "brackets": brackets}
    return summary


# How far bare's max may move across a keycard run (between a scenario's rounds, before the
# thirtieth session) before keycard/bare is not taken as a measurement: bare does the same
# work every time, so a larger spread is the machine changing speed under the ceiling
# (seventeenth session: 111,784, 150,387 and 114,697 req/s in one run's tokeninfo rounds,
# while its other scenarios' rounds held within 4%).
CEILING_SPREAD = 0.15


def ceiling_spread(summary: dict, scenario: str) -> float | None:
    """(fastest − slowest) / fastest of bare's max rounds in `scenario`, if it had several."""
    rounds = ((summary.get(scenario, {}).get("servers", {}).get("bare") or {})
              .get("max_rps_per_round") or [])
    return (max(rounds) - min(rounds)) / max(rounds) if len(rounds) > 1 and max(rounds) else None


def unsteady_ceiling(summary: dict, scenario: str) -> float | None:
    """Runs from before the bracketing: bare's spread in `scenario` when it is above
    CEILING_SPREAD: that scenario's keycard/bare is then not a measurement."""
    if summary.get(scenario, {}).get("brackets"):
        return None
    spread = ceiling_spread(summary, scenario)
    return spread if spread is not None and spread > CEILING_SPREAD else None


def unsettled(summary: dict, scenario: str) -> str | None:
    """Why `scenario`'s keycard/bare is not a measurement, if it is not: bare moved by more
    than CEILING_SPREAD across keycard's run in most rounds (before the bracketing: between
    the scenario's rounds)."""
    brackets = summary.get(scenario, {}).get("brackets")
    if brackets:
        moved = len(brackets) - len(steady(brackets))
        if 2 * (len(brackets) - moved) > len(brackets):
            return None
        return (f"bare moved by more than {CEILING_SPREAD:.0%} across keycard's run in "
                f"{moved} of {len(brackets)} rounds")
    spread = unsteady_ceiling(summary, scenario)
    return None if spread is None else f"bare's rounds spread {spread:.0%}"


def targets(summary: dict) -> dict:
    """keycard's stated goals, read from the tokeninfo scenario. The ratio to bare is left
    undecided when bare did not hold steady ([`unsettled`])."""
    t = summary.get("tokeninfo", {})
    ratios = t.get("ratios", {})
    at = (t.get("servers", {}).get("keycard") or {}).get(f"at_{int(TARGET_LOAD * 100)}pct")
    p99 = at["success"]["p99_us"] if at else None
    why = unsettled(summary, "tokeninfo")
    to_bare = _met(ratios.get("keycard/bare"), lambda v: v >= 0.70)
    if why is not None:
        to_bare.update(met=None, unsettled=why)
    return {
        "keycard/bare >= 0.70": to_bare,
        "keycard/reference >= 20": _met(ratios.get("keycard/reference"), lambda v: v >= 20),
        "p99 < 1 ms at 80% of keycard max": _met(p99, lambda v: v < 1000),
    }


def _met(value, test):
    return {"value": value, "met": None if value is None else bool(test(value))}


def fmt_us(v) -> str:
    if v is None:
        return "–"
    return f"{v / 1000:.2f} ms" if v >= 1000 else f"{v:.0f} µs"


def fmt_rps(v) -> str:
    return "–" if v is None else f"{v:,.0f}"


def markdown(summary: dict, runs: list[dict], meta: dict) -> str:
    pct = f"at_{int(TARGET_LOAD * 100)}pct"
    lines = [f"Mode `{meta['mode']}`, {meta['date']}, {meta['host']} ({meta['cpu_model']}, "
             f"{meta['nproc']} CPUs), server on CPUs {meta['server_cpus']}, loadgen on "
             f"{meta['loadgen_cpus']}, {meta['connections']} connections, {meta['tokens']} tokens.",
             "", "Max throughput (requests/s) and ratios:", "",
             "| scenario | keycard | bare | reference | keycard/bare | keycard/reference |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, s in summary.items():
        per, r = s["servers"], s["ratios"]
        cell = lambda k: fmt_rps(per.get(k, {}).get("max_rps"))  # noqa: E731
        lines.append(f"| {s['title']} | {cell('keycard')} | {cell('bare')} | {cell('reference')} "
                     f"| {_ratio(r.get('keycard/bare'))} | {_ratio(r.get('keycard/reference'))} |")
    bracketed = [(s["title"], s["brackets"], unsettled(summary, name))
                 for name, s in summary.items() if s.get("brackets")]
    if bracketed:
        lines += ["", "keycard/bare in each round: keycard's max over the mean of bare's runs "
                  "just before and just after it (bare's two in parentheses). The table "
                  f"shows the median of the rounds where bare held within {CEILING_SPREAD:.0%}, "
                  "when most did, and each server's median run:", ""]
        for title, brackets, why in bracketed:
            cells = [f"{b['ratio']:.2f} (bare {fmt_rps(b['before'])} → {fmt_rps(b['after'])}"
                     + ("" if b["spread"] <= CEILING_SPREAD
                        else f": moved {b['spread']:.0%}, not counted") + ")"
                     for b in brackets]
            lines.append(f"- {title}: {', '.join(cells)}")
            if why:
                lines.append(f"  - **{why}**: the machine changed speed under the ceiling, so "
                             "this median ratio is not a measurement")
    paired = [(s["title"], r) for s in summary.values() if not s.get("brackets")
              for r in [s.get("ratio_rounds", {}).get("keycard/bare")] if r]
    if paired:
        lines += ["", "keycard/bare in each round of side-by-side max runs (the table shows "
                  "the median ratio, and each server's median run):", ""]
        lines += [f"- {title}: {', '.join(f'{v:.2f}' for v in r)}" for title, r in paired]
        unsteady = [(s["title"], spread, s["servers"]["bare"]["max_rps_per_round"])
                    for name, s in summary.items()
                    for spread in [unsteady_ceiling(summary, name)] if spread is not None]
        for title, spread, rounds in unsteady:
            lines.append(f"- **{title}: bare's own max moved by {spread:.0%} between rounds** "
                         f"({', '.join(fmt_rps(v) for v in rounds)} req/s): the machine changed "
                         "speed under the ceiling, so this median ratio is not a measurement")
    plain = [(s["title"], s["servers"][PLAIN], s["ratios"], s.get("ratio_rounds", {}))
             for s in summary.values() if PLAIN in s["servers"]]
    if plain:
        lines += ["", "keycard and bare are profile-guided builds (scripts/build-pgo --with-bare); "
                  f"{PLAIN}, keycard's plain `cargo build --release`, ran in the same max rounds "
                  "(max requests/s; the ratio: median of the rounds, then each round):", "",
                  f"| scenario | {PLAIN} | keycard/{PLAIN} |", "|---|---:|---:|"]
        for title, v, r, rr in plain:
            each = lambda k: (f"({', '.join(f'{x:.2f}' for x in rr[k])})"  # noqa: E731
                              if rr.get(k) else "")
            lines.append(f"| {title} | {fmt_rps(v['max_rps'])} | "
                         f"{_ratio(r.get(f'keycard/{PLAIN}'))} {each(f'keycard/{PLAIN}')} |")
    lines += ["", f"Latency of successes (p50 / p99 / p99.9): at max (closed loop, every "
              f"connection busy) and at {int(TARGET_LOAD * 100)}% of the server's own max "
              "(open loop, from the scheduled send time); server CPU per request at max, and its "
              "user and system (kernel) shares:", "",
              "| scenario | server | at max | at 80% offered | at 80% | CPU/request | user | system |",
              "|---|---|---|---:|---|---:|---:|---:|"]
    for name, s in summary.items():
        for server, v in s["servers"].items():
            at = v.get(pct) or {}
            lines.append(f"| {name} | {server} | {_trio(v['at_max'])} | "
                         f"{fmt_rps(at.get('offered_rps'))} | {_trio(at.get('success'))} | "
                         f"{v['server_cpu_us_per_request']:.1f} µs | "
                         f"{_micros(v.get('server_user_us_per_request'))} | "
                         f"{_micros(v.get('server_system_us_per_request'))} |")
    lines += thread_lines(summary)
    mix = summary.get("mix", {}).get("servers", {})
    if mix:
        lines += ["", "Failures vs successes (mix scenario; failures are 401s: half bad "
                  "signatures, half replays), p50 / p99 / p99.9:", "",
                  "| server | successes at max | failures at max | successes at 80% | "
                  "failures at 80% |", "|---|---|---|---|---|"]
        for server, v in mix.items():
            at = v.get(pct) or {}
            lines.append(f"| {server} | {_trio(v['at_max'])} | {_trio(v['at_max_failure'])} | "
                         f"{_trio(at.get('success'))} | {_trio(at.get('failure'))} |")
    lines += ["", "Sweep (tokeninfo, open loop): offered → achieved requests/s, success "
              "p50 / p99 / p99.9:", "", "| server | offered | achieved | latency |",
              "|---|---:|---:|---|"]
    for r in sorted((r for r in runs if r["scenario"] == "tokeninfo" and r["mode"] == "open"),
                    key=lambda r: (SERVERS.index(r["server"]), r["offered_rps"])):
        lines.append(f"| {r['server']} | {fmt_rps(r['offered_rps'])} | "
                     f"{fmt_rps(r['achieved_rps'])} | {_trio(r['success'])} |")
    lines += ["", "Targets (tokeninfo):", ""]
    for name, t in meta["targets"].items():
        if t.get("unsettled"):
            mark = f"undecided: {t['unsettled']}"
        else:
            mark = {True: "met", False: "NOT met", None: "not measured"}[t["met"]]
        value = t["value"]
        shown = "–" if value is None else (f"{value:.2f}" if "ratio" in name or "/" in name
                                           else fmt_us(value))
        lines.append(f"- {name}: {shown} ({mark})")
    lines += stall_lines(meta)
    gen = meta["generator"]
    lines += ["", f"Generator: {gen['presign_ns_per_request']:.0f} ns to pre-sign a request; "
              f"at bare's max it used {gen['cpu_util_at_bare_max'] * 100:.0f}% of its CPUs.",
              f"Noise: other processes took {meta['others_on_cpus']['mean']:.0%} of the "
              f"server's or the generator's CPUs on average over the runs (worst run "
              f"{meta['others_on_cpus']['max']:.0%})."]
    return "\n".join(lines)


def stall_lines(meta: dict) -> list[str]:
    """The machine's own stalls, measured before the runs with nothing else running (a thread
    spinning on the clock on the first server and generator CPU): the floor under the open-loop
    tail latencies. Empty for runs recorded without them."""
    stalls = meta.get("stalls")
    if not stalls:
        return []
    sides = {"server_cpu": "the server's CPU", "loadgen_cpu": "the generator's CPU"}
    parts = [f"on {label} (CPU {s['cpu']}) {s['gaps_over_1ms_per_s']:.1f} a second longer than "
             f"1 ms, the longest {fmt_us(s['longest_us'])}, {s['lost_share']:.2%} of the time lost "
             "in gaps over 100 µs"
             for side, label in sides.items() if (s := stalls.get(side))]
    seconds = max(s["seconds"] for s in stalls.values())
    return ["", f"Machine stalls, with nothing else running ({seconds:.0f} s of a thread reading "
            "the clock in a loop): " + "; ".join(parts) + ". Each stall queues the requests due "
            "during it, and at 80% load the server drains that queue with a fifth of its "
            "capacity, so a p99 at 80% load below the longest stall is not measurable here."]


def thread_lines(summary: dict) -> list[str]:
    """keycard's and bare's CPU per tokeninfo request at max by thread: where keycard's
    CPU beyond bare's goes (the request runtime, the trail's checkpoints, …), and how often
    each thread was preempted. Empty for runs recorded without it."""
    servers = summary.get("tokeninfo", {}).get("servers", {})
    rows = [(server, name, t) for server in ("keycard", "bare")
            for name, t in sorted((servers.get(server, {}).get("threads_per_request")
                                   or {}).items())]
    if not rows:
        return []
    lines = ["", "By thread, tokeninfo at max (median run): CPU per request (user, system), "
             "time spent ready to run while another thread had the CPU, and context switches "
             "per 1,000 requests (the thread waited / it was preempted):", "",
             "| server | thread | user | system | waiting for the CPU | switches, waited / "
             "preempted |", "|---|---|---:|---:|---:|---:|"]
    for server, name, t in rows:
        lines.append(f"| {server} | `{name}` | {t['user_us']:.2f} µs | {t['system_us']:.2f} µs"
                     f" | {t['waiting_us']:.2f} µs | {t['voluntary_per_1k']:.1f} / "
                     f"{t['involuntary_per_1k']:.1f} |")
    return lines


def _ratio(v) -> str:
    return "–" if v is None else f"{v:.2f}×"


def _trio(block) -> str:
    if not block or block.get("p50_us") is None:
        return "–"
    return " / ".join(fmt_us(block[k]) for k in ("p50_us", "p99_us", "p999_us"))


def _micros(value) -> str:
    return "–" if value is None else f"{value:.1f} µs"
