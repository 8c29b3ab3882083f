#!/usr/bin/env bash
# Packs the package as `npm publish` would, installs the tarball into a fresh project in a temporary
# folder, and there runs scripts/consumer/smoke.mjs with Node and type-checks, compiles and runs
# scripts/consumer/check.ts with tsc. The in-repo tests import src/, so they cannot catch what this
# catches: a file missing from `files`, a wrong `exports` path, a runtime import that is only a dev
# dependency, or declarations that do not type-check in a consumer's strict project.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# `npm pack` runs the prepack script, which builds dist/.
tarball=$(npm pack --silent --pack-destination "$work" | tail -n 1)
echo "packed $tarball"

mkdir "$work/consumer"
cp scripts/consumer/smoke.mjs scripts/consumer/check.ts scripts/consumer/tsconfig.json "$work/consumer/"
cd "$work/consumer"
echo '{ "name": "sdk-consumer", "private": true, "type": "module" }' > package.json

# The same TypeScript and Node types as this repository, so that the versions come from the npm
# cache that `npm ci` filled. The peer dependency @bufbuild/protobuf is installed by npm itself.
version_of() { node -p "require('$repo/package.json').devDependencies['$1']"; }
npm install --no-audit --no-fund --prefer-offline --loglevel=error \
  "$work/$tarball" "typescript@$(version_of typescript)" "@types/node@$(version_of @types/node)"

npm ls --all

node smoke.mjs
npx tsc -p tsconfig.json
node out/check.js
echo "consumer test passed"
