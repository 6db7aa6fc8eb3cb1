#!/usr/bin/env bash
# Builds dist/local-ipam: esbuild bundles src/ into two CommonJS files, the plugin (src/main.ts) and the operator
# CLI (src/cli/index.ts), then `bun build --compile` embeds both in one self-contained executable with bytecode
# (half the start-up time). The plugin requires the CLI bundle only when run as the CLI, so the plugin's start
# never loads it. Everything comes from npm; nothing is downloaded at build time.
set -euo pipefail
cd "$(dirname "$0")"
[ -x node_modules/.bin/bun ] && [ -x node_modules/.bin/esbuild ] || npm ci --no-audit --no-fund
version=$(node -p 'require("./package.json").version')
mkdir -p dist
common=(--bundle --platform=node --format=cjs --target=node20 --external:bun:ffi --minify --legal-comments=none
  --define:__LOCAL_IPAM_VERSION__="\"$version\"" --log-level=warning)
node_modules/.bin/esbuild src/main.ts "${common[@]}" --define:__LOCAL_IPAM_CLI__='"./cli.cjs"' --external:./cli.cjs \
  --outfile=dist/local-ipam.cjs
node_modules/.bin/esbuild src/cli/index.ts "${common[@]}" --outfile=dist/cli.cjs
# A Bun executable reads .env and bunfig.toml from its working directory unless told not to: for a plugin run as
# root by the container runtime that would let a stray file change its environment or preload code (and the
# look-ups cost ~12 ms per start here). Both are turned off.
(cd dist && ../node_modules/.bin/bun build --compile --bytecode --minify \
  --no-compile-autoload-dotenv --no-compile-autoload-bunfig \
  ./local-ipam.cjs ./cli.cjs --outfile local-ipam >/dev/null)
echo "built dist/local-ipam $version ($(du -h dist/local-ipam | cut -f1))"
