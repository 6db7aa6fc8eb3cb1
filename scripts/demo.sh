#!/usr/bin/env bash
# A demo allocation: ADD, CHECK and DEL of one dual-stack container against a temporary data dir, printing
# what a runtime would see and the files local-ipam leaves behind.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=dist/local-ipam
[ -x "$bin" ] || ./build.sh
data=$(mktemp -d /tmp/local-ipam-demo.XXXXXX)
trap 'rm -rf "$data"' EXIT
conf=$(cat <<JSON
{
  "cniVersion": "1.0.0",
  "name": "demo-net",
  "type": "bridge",
  "ipam": {
    "type": "local-ipam",
    "dataDir": "$data",
    "ranges": [[{ "subnet": "10.244.1.0/24" }], [{ "subnet": "fd00:244:1::/64" }]],
    "routes": [{ "dst": "0.0.0.0/0" }, { "dst": "::/0" }]
  }
}
JSON
)
export CNI_CONTAINERID=demo-container CNI_NETNS=/var/run/netns/demo CNI_IFNAME=eth0 CNI_PATH=/opt/cni/bin
step() { # command, then what to say
  echo "\$ CNI_COMMAND=$1 local-ipam < config   # $2"
  set +e
  out=$(CNI_COMMAND=$1 "$bin" <<<"$conf")
  rc=$?
  set -e
  [ -n "$out" ] && echo "$out"
  echo "(exit $rc)"
  echo
}
step ADD "allocate an IPv4 and an IPv6 address"
echo "files in $data/demo-net:"
for f in "$data"/demo-net/*; do printf '  %-20s %s\n' "$(basename "$f")" "$(sed -z 's/\r/\\r/g; s/\n/\\n/g' "$f")"; done
echo
step CHECK "the lease is there"
step ADD "a second ADD for the same container and interface is refused"
step DEL "release"
step CHECK "gone now"
echo "files left: $(ls "$data/demo-net" | tr '\n' ' ')"
