"""The directory the benchmark runs against, made with the keycard CLI as an operator would:
`keycard init` (account 1234567, integration, role, user, first token), a concurrency limit
above the connection count, and more tokens for the same integration, user and role."""

import json
import subprocess
from pathlib import Path

ACCOUNT = "1234567"
INTEGRATION = "Demo Integration"
USER = "admin@example.com"
ROLE = "Integration Role"  # REST Web Services, customer: full (set up by `keycard init`)


def _keycard(binary: Path, data_dir: Path, *args: str, database_url: str | None = None) -> dict:
    database = ["--database-url", database_url] if database_url else []
    out = subprocess.run([str(binary), *args, "--data-dir", str(data_dir), *database, "--json"],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout) if out.stdout.strip() else {}


def create(binary: Path, data_dir: Path, tokens: int, connections: int,
           database_url: str | None = None) -> dict:
    """Returns the credentials file's content (loadgen and the reference server read it). The
    directory is SQLite in `data_dir`, or PostgreSQL at `database_url` (the master key stays in
    `data_dir`)."""
    def keycard(binary, data_dir, *args):
        return _keycard(binary, data_dir, *args, database_url=database_url)
    demo = keycard(binary, data_dir, "init", "--account", ACCOUNT)
    # NetSuite's standard tier allows 5 concurrent requests per account and answers the rest
    # with 429; a load test measures authentication, not that limit, so lift it above the
    # number of connections.
    keycard(binary, data_dir, "account", "update", ACCOUNT,
            "--concurrency-limit", str(max(1000, connections * 4)))
    creds = {
        "realm": ACCOUNT,
        "consumer_key": demo["consumer_key"],
        "consumer_secret": demo["consumer_secret"],
        "tokens": [{"token_id": demo["token_id"], "token_secret": demo["token_secret"]}],
    }
    for i in range(1, tokens):
        made = keycard(binary, data_dir, "token", "create", "--integration", INTEGRATION,
                       "--user", USER, "--role", ROLE, "--name", f"bench-{i:04d}")
        creds["tokens"].append({"token_id": made["token_id"], "token_secret": made["token_secret"]})
    return creds
