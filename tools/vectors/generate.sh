#!/usr/bin/env bash
# Regenerates crates/keycard-oauth1/tests/fixtures/client_vectors.json from two
# independent OAuth 1.0a client libraries (see README.md in this folder).
#
#   tools/vectors/generate.sh           install pinned deps if needed, regenerate the fixture
#   tools/vectors/generate.sh --check   same, but only verify the fixture on disk is up to date
#
# Needs python3 (3.9+, with venv) and node + npm; reaches PyPI and the npm registry
# only when the pinned packages are not installed yet.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
export PYTHONDONTWRITEBYTECODE=1
PYTHON=${PYTHON:-python3}

# Python: oauthlib pinned in requirements.txt, installed into .venv (git-ignored).
if [ ! -x .venv/bin/python ] || ! cmp -s requirements.txt .venv/requirements.installed; then
  echo "generate.sh: installing Python deps into tools/vectors/.venv" >&2
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
  cp requirements.txt .venv/requirements.installed
fi

# Node: oauth-1.0a pinned in package.json + package-lock.json, installed into node_modules (git-ignored).
if [ ! -f node_modules/oauth-1.0a/package.json ] || ! cmp -s package-lock.json node_modules/.lock.installed; then
  echo "generate.sh: installing Node deps into tools/vectors/node_modules (npm ci)" >&2
  npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
  cp package-lock.json node_modules/.lock.installed
fi

exec .venv/bin/python generate.py "$@"
