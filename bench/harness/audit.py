"""The login audit check: keycard must write one login record per request it answered, and as
many `Success` records as the generator sent good requests. Counted from SQLite (read-only) or
PostgreSQL (psql) while the server is stopped, so every queued record has been flushed."""

import sqlite3
import subprocess
from pathlib import Path

# On PostgreSQL one row per attempt (status Success/Failure); on SQLite the rows written before
# migration 0007 and, since, blocks of records (crates/keycard-store/src/login_blocks.rs).
TABLE = "login_audit"
BLOCKS = "login_audit_blocks"


def counts(data_dir: Path, database_url: str | None = None) -> tuple[int, int]:
    """(all rows, Success rows), from PostgreSQL when `database_url` is given."""
    if database_url:
        out = subprocess.run(
            ["psql", database_url, "-Atc",
             f"SELECT COUNT(*) || ' ' || COALESCE(SUM((status = 'Success')::int), 0) FROM {TABLE}"],
            check=True, capture_output=True, text=True).stdout.split()
        return int(out[0]), int(out[1])
    path = data_dir / "keycard.db"
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        total, ok = db.execute(
            f"SELECT COUNT(*), COALESCE(SUM(status = 'Success'), 0) FROM {TABLE}").fetchone()
        has_blocks = db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (BLOCKS,)).fetchone()
        return (int(total), int(ok)) if not has_blocks else tuple(
            a + b for a, b in zip((total, ok), _block_counts(db, path)))
    finally:
        db.close()


# Per database: (last block id decoded, blocks up to it, records, Success records). A long
# benchmark run writes millions of records; decoding only the blocks added since the last count
# keeps each count short. The blocks are append-only: a changed count of the blocks already
# decoded (a pruned trail, another database at the same path) means decoding all of them again.
_decoded: dict[Path, tuple[int, int, int, int]] = {}


def _block_counts(db: sqlite3.Connection, path: Path) -> tuple[int, int]:
    last, blocks, total, ok = _decoded.get(path, (0, 0, 0, 0))
    if db.execute(f"SELECT COUNT(*) FROM {BLOCKS} WHERE id <= ?", (last,)).fetchone()[0] != blocks:
        last, blocks, total, ok = 0, 0, 0, 0
    for block_id, block in db.execute(
            f"SELECT id, records FROM {BLOCKS} WHERE id > ? ORDER BY id", (last,)):
        for record in decode_block(block):
            total += 1
            ok += record["status"] == "Success"
        last, blocks = block_id, blocks + 1
    _decoded[path] = (last, blocks, total, ok)
    return total, ok


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


FIELDS = ["request_id", "ip", "account", "integration", "token_name", "user", "role",
          "surface", "request_uri", "status", "detail", "diagnosis"]


# Version 3: the fields by their bit in a record's mask of changed fields.
CHANGE_ORDER = ["token_name", "request_uri", "status", "detail", "diagnosis", "user",
                "integration", "role", "account", "ip", "surface"]


def decode_block(block: bytes) -> list[dict]:
    """The records of one block, written here from the format's description (not from the Rust
    code) so that the count checks the encoding too. Version byte 1, 2 or 3, then per record:
    `at` as a zigzag varint (versions 2 and 3: of the difference from the previous record's
    `at`, from 0); in versions 2 and 3 the request id as a varint n, keycard's own
    16-hex-digit ids as n = zigzag(value - the last such value in the block, from 0) + 1,
    other ids as n = 0 followed by a field; then, in versions 1 and 2, the fields (version 1
    all twelve, version 2 the eleven after the request id), each a varint n: 0 absent, 1 the
    previous record's value, else n - 2 bytes of UTF-8; in version 3 a varint mask of the
    fields that differ from the previous record's (all absent before the first), bit i for
    CHANGE_ORDER[i], then each of those in that order as a varint n: 0 absent, else n - 1
    bytes of UTF-8."""
    if not block or block[0] not in (1, 2, 3):
        raise ValueError("not a version-1, 2 or 3 block of the login trail")
    version = block[0]
    at = 1

    def varint() -> int:
        nonlocal at
        value = shift = 0
        while True:
            byte = block[at]
            at += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    def unzigzag(raw: int) -> int:
        return (raw >> 1) ^ -(raw & 1)

    def field(name: str):
        nonlocal at
        n = varint()
        if n == 0:
            return None
        if n == 1:
            if not records or records[-1][name] is None:
                raise ValueError("a repeat of nothing in a block of the login trail")
            return records[-1][name]
        text = block[at:at + n - 2].decode("utf-8")
        at += n - 2
        return text

    def present():
        nonlocal at
        n = varint()
        if n == 0:
            return None
        text = block[at:at + n - 1].decode("utf-8")
        if at + n - 1 > len(block):
            raise ValueError("a field runs past the end of a block of the login trail")
        at += n - 1
        return text

    records: list[dict] = []
    previous_at = previous_id = 0
    while at < len(block):
        moment = unzigzag(varint())
        if version >= 2:
            moment = (previous_at + moment + 2**63) % 2**64 - 2**63
        previous_at = moment
        record = {"at": moment}
        fields = FIELDS
        if version >= 2:
            n = varint()
            if n == 0:
                record["request_id"] = field("request_id")
            else:
                previous_id = (previous_id + unzigzag(n - 1)) % 2**64
                record["request_id"] = f"{previous_id:016x}"
            fields = FIELDS[1:]
        if version == 3:
            changed = varint()
            if changed >> len(CHANGE_ORDER):
                raise ValueError("a mask of unknown fields in a block of the login trail")
            for bit, name in enumerate(CHANGE_ORDER):
                if changed >> bit & 1:
                    record[name] = present()
                else:
                    record[name] = records[-1][name] if records else None
        else:
            for name in fields:
                record[name] = field(name)
        if at > len(block) or record["status"] not in ("Success", "Failure") \
                or record["request_id"] is None:
            raise ValueError("a damaged block of the login trail")
        records.append(record)
    return records
