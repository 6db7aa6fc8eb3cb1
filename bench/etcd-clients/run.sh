#!/usr/bin/env bash
# Measures the local-ipam etcd client (src/cluster/etcd.ts, JSON gateway) against the npm package etcd3 (gRPC) on a
# local TLS etcd: cold start, warm txn latency, idle RSS. etcd3 is installed into a temporary directory, never
# into the repository. Needs etcd-server and etcd-client (apt), npm registry access. Usage: bench/etcd-clients/run.sh
# Environment: COLD_RUNS (30), WARM_ROUNDS (3), BENCH_ETCD_DIR (parent of etcd's temp dir; default os.tmpdir()),
# WITH_BUN=0 to leave out the Bun row.
set -euo pipefail
cd "$(dirname "$0")/../.."
unset NODE_EXTRA_CA_CERTS
command -v etcd >/dev/null || { echo "apt-get install etcd-server etcd-client" >&2; exit 1; }
work=$(mktemp -d /tmp/local-ipam-etcd-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/etcd3"
echo '{"private": true, "type": "module"}' > "$work/etcd3/package.json"
(cd "$work/etcd3" && npm install --no-audit --no-fund --loglevel=error etcd3@1.1.2 >/dev/null)
cp bench/etcd-clients/etcd3-child.mjs "$work/etcd3/"
npx esbuild bench/etcd-clients/jsongw-child.ts --bundle --platform=node --format=esm --log-level=warning \
  --outfile="$work/jsongw-child.mjs"
npx esbuild bench/etcd-clients/run.ts --bundle --platform=node --log-level=warning --outfile="$work/run.cjs"
node "$work/run.cjs" "$work"
