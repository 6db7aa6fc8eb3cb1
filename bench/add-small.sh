#!/usr/bin/env bash
# ADD on a /24 that holds 50 leases: dist/local-ipam against /usr/lib/cni/host-local in one hyperfine run,
# medians over many runs (a DEL before each timed ADD, not timed). Usage: bench/add-small.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-200}
command -v hyperfine >/dev/null || { echo "apt-get install hyperfine" >&2; exit 1; }
[ -x dist/local-ipam ] || ./build.sh
unset NODE_EXTRA_CA_CERTS
work=$(mktemp -d /tmp/local-ipam-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
for p in local-ipam host-local; do
  mkdir -p "$work/$p/bench"
  for i in $(seq 10 59); do printf 'pre%s\r\neth0' "$i" > "$work/$p/bench/10.50.0.$i"; done
  printf '{"cniVersion":"1.0.0","name":"bench","ipam":{"type":"x","subnet":"10.50.0.0/24","dataDir":"%s"}}' "$work/$p" > "$work/$p.json"
done
export CNI_CONTAINERID=bench1 CNI_NETNS=/var/run/netns/bench CNI_IFNAME=eth0 CNI_PATH=/opt/cni/bin
li="$PWD/dist/local-ipam"; hl=/usr/lib/cni/host-local
hyperfine --style basic --warmup 10 --runs "$runs" --export-json "$work/add.json" \
  --prepare "CNI_COMMAND=DEL $li < $work/local-ipam.json" "CNI_COMMAND=ADD $li < $work/local-ipam.json" \
  --prepare "CNI_COMMAND=DEL $hl < $work/host-local.json" "CNI_COMMAND=ADD $hl < $work/host-local.json" >/dev/null
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).results;
  const m = r.map((x) => x.median * 1000);
  console.log(`ADD on a /24 with 50 leases, median of ${r[0].times.length} runs (hyperfine, shell start-up subtracted)`);
  console.log(`  local-ipam  ${m[0].toFixed(2)} ms`);
  console.log(`  host-local  ${m[1].toFixed(2)} ms`);
  console.log(`  ratio       ${(m[0] / m[1]).toFixed(2)}`);
' "$work/add.json"
