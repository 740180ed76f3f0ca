"""Throughput and p99 latency against offered load, for keycard, bare and the reference, from
the open-loop sweep of one results file (bench/results/*.json).

    bench/.venv/bin/python bench/plot.py bench/results/<date>-<host>.json docs/bench-throughput.svg
"""

import json
import sys

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

STYLE = {"keycard": ("C0", "o"), "bare": ("C2", "s"), "reference": ("C3", "^")}


def main(results_path: str, out_path: str) -> None:
    with open(results_path, encoding="utf-8") as f:
        data = json.load(f)
    meta = data["meta"]
    runs = [r for r in data["runs"] if r["scenario"] == "tokeninfo" and r["mode"] == "open"]
    # Hash every SVG the same way, so re-running on the same data gives the same file.
    plt.rcParams["svg.hashsalt"] = "keycard-bench"
    fig, (thr, p99) = plt.subplots(1, 2, figsize=(11, 4.2))
    for server, (color, marker) in STYLE.items():
        points = sorted((r["offered_rps"], r["achieved_rps"], r["success"].get("p99_us"))
                        for r in runs if r["server"] == server)
        if not points:
            continue
        offered = [p[0] for p in points]
        thr.plot(offered, [p[1] for p in points], marker=marker, color=color, label=server)
        p99.plot(offered, [p[2] / 1000 for p in points], marker=marker, color=color,
                 label=server)
    lo = min((r["offered_rps"] for r in runs), default=1)
    hi = max((r["offered_rps"] for r in runs), default=10)
    thr.plot([lo, hi], [lo, hi], ls=":", color="grey", label="achieved = offered")
    for ax in (thr, p99):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("offered load (requests/s, open loop)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    thr.set_ylabel("achieved throughput (requests/s)")
    p99.set_ylabel("p99 latency (ms)")
    p99.axhline(1.0, ls="--", color="grey", lw=0.8)
    fig.suptitle(f"GET /rest/tokeninfo, signed (HMAC-SHA256): {meta['date']}, {meta['cpu_model']}, "
                 f"server CPUs {meta['server_cpus']}, loadgen CPUs {meta['loadgen_cpus']}",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(out_path, metadata={"Date": None})


if __name__ == "__main__":
    main(*sys.argv[1:3])
