"""The login audit check: keycard must write one login record per request it answered, and as
many `Success` records as the generator sent good requests. Counted from SQLite (read-only) or
PostgreSQL (psql) while the server is stopped, so every queued record has been flushed."""

import sqlite3
import subprocess
from pathlib import Path

# README and the migrations call it login_audit (one row per attempt, status Success/Failure).
TABLE = "login_audit"


def counts(data_dir: Path, database_url: str | None = None) -> tuple[int, int]:
    """(all rows, Success rows), from PostgreSQL when `database_url` is given."""
    if database_url:
        out = subprocess.run(
            ["psql", database_url, "-Atc",
             f"SELECT COUNT(*) || ' ' || COALESCE(SUM((status = 'Success')::int), 0) FROM {TABLE}"],
            check=True, capture_output=True, text=True).stdout.split()
        return int(out[0]), int(out[1])
    db = sqlite3.connect(f"file:{data_dir / 'keycard.db'}?mode=ro", uri=True)
    try:
        total, ok = db.execute(
            f"SELECT COUNT(*), COALESCE(SUM(status = 'Success'), 0) FROM {TABLE}").fetchone()
        return int(total), int(ok)
    finally:
        db.close()


def check(before: tuple[int, int], after: tuple[int, int], result: dict,
          authenticated: bool = True) -> dict:
    """Compares the audit rows a run added with what the generator saw answered (none at all
    when keycard does not authenticate the scenario's requests)."""
    warm = result["warmup"]
    answered = warm["completed"] + result["completed"] if authenticated else 0
    expected_ok = warm["expected_success"] + result["expected_success"] if authenticated else 0
    rows, ok = after[0] - before[0], after[1] - before[1]
    return {
        "rows": rows, "rows_expected": answered,
        "success": ok, "success_expected": expected_ok,
        "ok": rows == answered and ok == expected_ok,
    }
