#!/usr/bin/env bash
# Builds dist/local-ipam: esbuild bundles src/ into one CommonJS file, then `bun build --compile` turns it into a
# self-contained executable with bytecode (half the start-up time). Everything comes from npm; nothing is
# downloaded at build time.
set -euo pipefail
cd "$(dirname "$0")"
[ -x node_modules/.bin/bun ] && [ -x node_modules/.bin/esbuild ] || npm ci --no-audit --no-fund
version=$(node -p 'require("./package.json").version')
mkdir -p dist
node_modules/.bin/esbuild src/main.ts --bundle --platform=node --format=cjs --target=node20 \
  --external:bun:ffi --define:__LOCAL_IPAM_VERSION__="\"$version\"" --minify --legal-comments=none \
  --outfile=dist/local-ipam.cjs --log-level=warning
node_modules/.bin/bun build --compile --bytecode --minify dist/local-ipam.cjs --outfile dist/local-ipam >/dev/null
echo "built dist/local-ipam $version ($(du -h dist/local-ipam | cut -f1))"
