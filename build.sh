#!/usr/bin/env bash
# Builds local-ipam. The TypeScript in src/ is the source of truth: esbuild bundles it into one plain script,
# native/build.sh compiles that to QuickJS bytecode and links it with the small C host into a static executable.
#
#   ./build.sh [plugin]   dist/local-ipam: the CNI plugin and the operator CLI, x86-64, static, no AVX needed;
#                         dist/local-ipam-agent: the node agent, one script for Node.js
#   ./build.sh image      also dist/local-ipam-image.tar: the OCI image of the DaemonSet (scripts/build-image.sh)
#   ./build.sh all        also dist/local-ipam-arm64 (static arm64), dist/test/local-ipam (the same code with
#                         its fault points compiled in, for the fault tests) and dist/test/local-ipam-asan
#                         (ASan+UBSan, for the fuzzer); npm test builds this
#
# A C toolchain, musl and the arm64 cross compiler are installed from Debian when missing (native/build.sh);
# the engine's source comes from node_modules (qjsc@0.3.0, pinned). Nothing is downloaded at build time.
set -euo pipefail
cd "$(dirname "$0")"
what=${1:-plugin}
case $what in plugin | all | image) ;; *) echo "usage: $0 [plugin|all|image]" >&2; exit 2 ;; esac

[ -x node_modules/.bin/esbuild ] && [ -d node_modules/qjsc ] || npm ci --no-audit --no-fund
version=$(node -p 'require("./package.json").version')
build=$(git describe --tags --always --dirty 2>/dev/null || echo unknown)
mkdir -p dist/test

# bundle <entry> <out.js> <faults: true|false> [esbuild options...]
bundle() {
  local entry=$1 out=$2 faults=$3
  shift 3
  node_modules/.bin/esbuild "$entry" --bundle --format=iife --platform=neutral --main-fields=main,module \
    --target=es2020 --minify --legal-comments=none --log-level=warning \
    --define:__LOCAL_IPAM_VERSION__="\"$version\"" --define:__LOCAL_IPAM_BUILD__="\"$build\"" \
    --define:__LOCAL_IPAM_FAULTS__="$faults" --outfile="$out" "$@"
}

# native <out> <variant> <dir with plugin.js cli.js>: the three scripts of the executable (the plugin; the CLI,
# run instead when the binary gets arguments; ipaddr.js, loaded on the first IPv6 address)
native() {
  native/build.sh "$1" "$2" plugin="$3/plugin.js" cli="$3/cli.js" ipaddr=dist/ipaddr.js
}

lazy=(--alias:ipaddr.js=./src/platform/ipaddr-native.cjs)
bundle node_modules/ipaddr.js/lib/ipaddr.js dist/ipaddr.js false --global-name=__lib_ipaddr
mkdir -p dist/release
bundle src/main.ts dist/release/plugin.js false "${lazy[@]}"
bundle src/cli/main.ts dist/release/cli.js false "${lazy[@]}"
native dist/local-ipam x86_64 dist/release
# V8 for a process that mostly waits: no JIT, small heaps (docs/agent-at-rest.md); the image uses the same flags
agent_flags="--jitless --no-expose-wasm --max-semi-space-size=1 --max-old-space-size=64"
node_modules/.bin/esbuild src/agent/main.ts --bundle --platform=node --target=node20 --format=cjs \
  --legal-comments=none --log-level=warning --banner:js="#!/usr/bin/env -S node $agent_flags" \
  --define:__LOCAL_IPAM_VERSION__="\"$version\"" --define:__LOCAL_IPAM_BUILD__="\"$build\"" \
  --define:__LOCAL_IPAM_FAULTS__=false --outfile=dist/local-ipam-agent
chmod 0755 dist/local-ipam-agent
echo '{ "type": "commonjs" }' > dist/package.json # the agent is CommonJS here too, as anywhere without package.json
if [ "$what" = all ]; then
  native dist/local-ipam-arm64 arm64 dist/release
  bundle src/main.ts dist/test/plugin.js true "${lazy[@]}"
  bundle src/cli/main.ts dist/test/cli.js true "${lazy[@]}"
  native dist/test/local-ipam x86_64 dist/test
  native dist/test/local-ipam-asan asan dist/test
fi
echo "built local-ipam $version ($build): dist/local-ipam $(stat -c %s dist/local-ipam) bytes"
[ "$what" != image ] || scripts/build-image.sh
