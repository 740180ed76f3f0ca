#!/usr/bin/env bash
# Installs what the browser tests need and prints the Chromium to drive (scripts/test exports
# it as KEYCARD_TEST_CHROMIUM):
#   - Chromium from Debian's packages, when the machine has none;
#   - puppeteer-core, pinned in package.json + package-lock.json, into node_modules (git-ignored;
#     --ignore-scripts: it must not fetch a browser of its own).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

find_chromium() {
  command -v chromium || command -v chromium-browser || true
}

if [ -z "$(find_chromium)" ]; then
  command -v apt-get >/dev/null 2>&1 || { echo "setup.sh: no chromium and no apt-get to install it" >&2; exit 1; }
  echo "setup.sh: installing chromium from Debian's packages" >&2
  as_root=()
  [ "$(id -u)" = 0 ] || as_root=(sudo)
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
chromium="$(find_chromium)"
[ -n "$chromium" ] || { echo "setup.sh: chromium is still missing after the install" >&2; exit 1; }

if [ ! -f node_modules/puppeteer-core/package.json ] || ! cmp -s package-lock.json node_modules/.lock.installed; then
  echo "setup.sh: installing Node deps into tools/browser/node_modules (npm ci)" >&2
  npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >&2
  cp package-lock.json node_modules/.lock.installed
fi
echo "$chromium"
