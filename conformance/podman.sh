#!/usr/bin/env bash
# podman running real containers on a bridge + local-ipam network. Everything lives in a temporary directory:
# podman's config (CONTAINERS_CONF), storage (--root, vfs), the conflist dir and local-ipam's data dir; the
# containers, the image and the bridge are removed at the end, also on failure. Prints "ok - ..." per check.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x dist/local-ipam ] || ./build.sh >/dev/null

need=()
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
[ -x /bin/busybox ] || need+=(busybox-static)
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
command -v ip >/dev/null || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
  echo "# installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }
fi

work=$(mktemp -d /tmp/local-ipam-podman.XXXXXX)
net=lipam-podman
bridge=lipampod0
subnet=10.196.0
image=localhost/local-ipam-busybox:test
export CONTAINERS_CONF=$work/containers.conf
pm() { podman --root "$work/root" --runroot "$work/runroot" --storage-driver vfs --runtime runc --cgroup-manager=cgroupfs "$@"; }
cleanup() {
  pm rm -f -t 0 --all >/dev/null 2>&1 || true
  pm rmi -f "$image" >/dev/null 2>&1 || true
  ip link del "$bridge" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "not ok - $*"; exit 1; }
ok() { echo "ok - $*"; }

mkdir -p "$work/bin" "$work/net.d" "$work/data" "$work/img/bin"
for p in bridge loopback portmap firewall tuning; do ln -s "/usr/lib/cni/$p" "$work/bin/$p"; done
cp dist/local-ipam "$work/bin/local-ipam"
cat > "$CONTAINERS_CONF" <<CONF
[containers]
default_ulimits = []
[network]
network_backend = "cni"
cni_plugin_dirs = ["$work/bin"]
network_config_dir = "$work/net.d"
CONF
cat > "$work/net.d/$net.conflist" <<CONF
{
  "cniVersion": "1.0.0",
  "name": "$net",
  "plugins": [{
    "type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": false,
    "capabilities": { "ips": true },
    "ipam": { "type": "local-ipam", "subnet": "$subnet.0/24", "rangeStart": "$subnet.10", "rangeEnd": "$subnet.50",
              "dataDir": "$work/data" }
  }]
}
CONF

# an image without any registry: busybox-static and a few applets
cp /bin/busybox "$work/img/bin/"
for c in sh ip cat ls sleep ping; do ln -s busybox "$work/img/bin/$c"; done
tar -C "$work/img" -cf "$work/bb.tar" .
pm import -q "$work/bb.tar" "$image" >/dev/null
ok "busybox image built offline"

leases() { ls "$work/data/$net" 2>/dev/null | grep -v -e '^lock$' -e '^last_reserved_ip' || true; }
addr_of() { pm inspect -f "{{(index .NetworkSettings.Networks \"$net\").IPAddress}}" "$1"; }
inside() { pm exec "$1" ip -4 -o addr show eth0 | awk '{print $4}'; }

ids=()
for name in a b c; do ids+=("$(pm run -d --name "lipam-$name" --network "$net" "$image" sleep 300)"); done
addrs=()
for name in a b c; do addrs+=("$(addr_of "lipam-$name")"); done
[ "$(printf '%s\n' "${addrs[@]}" | sort -u | wc -l)" = 3 ] || fail "three containers, three distinct addresses: ${addrs[*]}"
for a in "${addrs[@]}"; do
  last=${a##*.}
  [[ $a == "$subnet".* && $last -ge 10 && $last -le 50 ]] || fail "$a is outside $subnet.10-$subnet.50"
done
ok "three containers got distinct addresses in the range: ${addrs[*]}"

for i in 0 1 2; do
  name=lipam-$(printf 'abc' | cut -c$((i + 1)))
  [ "$(inside "$name")" = "${addrs[$i]}/24" ] || fail "$name carries $(inside "$name"), podman says ${addrs[$i]}"
  [ "$(sed -z 's/\r\n/|/' "$work/data/$net/${addrs[$i]}")" = "${ids[$i]}|eth0" ] || fail "lease file of ${addrs[$i]} does not name ${ids[$i]}"
done
ok "each container's eth0 carries its address, and each lease file names its container"

# busybox sends exactly -c pings: three, so one lost first packet (ARP) does not fail the run
pm exec lipam-a ping -c 3 -w 5 "${addrs[1]}" >/dev/null || fail "lipam-a cannot ping lipam-b at ${addrs[1]}"
ok "lipam-a pings lipam-b across the bridge"

pm run -d --name lipam-fixed --network "$net" --ip "$subnet.42" "$image" sleep 300 >/dev/null
[ "$(addr_of lipam-fixed)" = "$subnet.42" ] && [ "$(inside lipam-fixed)" = "$subnet.42/24" ] || fail "--ip $subnet.42 gave $(addr_of lipam-fixed)"
ok "podman run --ip $subnet.42 got exactly that address"

if pm run -d --name lipam-clash --network "$net" --ip "$subnet.42" "$image" sleep 300 >/dev/null 2>"$work/clash.err"; then
  fail "a second container got $subnet.42"
fi
grep -q "requested IP address $subnet.42 is not available" "$work/clash.err" || fail "unexpected error: $(cat "$work/clash.err")"
pm rm -f -t 0 lipam-clash >/dev/null 2>&1 || true
ok "a second --ip $subnet.42 is refused with host-local's message"

[ "$(leases | wc -l)" = 4 ] || fail "expected 4 lease files, found: $(leases | tr '\n' ' ')"
pm rm -f -t 0 lipam-a lipam-b lipam-c lipam-fixed >/dev/null
[ -z "$(leases)" ] || fail "lease files left after the containers were removed: $(leases | tr '\n' ' ')"
ok "after the containers are removed, their lease files are gone"

once=$(pm run --rm --network "$net" "$image" ip -4 -o addr show eth0 | awk '{print $4}')
[[ $once == "$subnet".*/24 ]] || fail "podman run --rm got no address ($once)"
[ -z "$(leases)" ] || fail "podman run --rm left a lease"
ok "podman run --rm got $once and left no lease"
