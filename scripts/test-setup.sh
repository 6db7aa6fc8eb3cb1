#!/usr/bin/env bash
# Installs what the test suites need on a fresh Debian machine (root), and nothing when all is present:
# - the oracle and real clients: containernetworking-plugins (host-local, bridge, loopback), golang-go and
#   golang-github-appc-cni-dev (the cnitool driver), podman, runc, busybox-static (images built offline),
#   containerd (the CRI suite), etcd-server and etcd-client (cluster pools), iproute2, iputils-ping;
# - the native build: build-essential, musl-tools, gcc-aarch64-linux-gnu with libc6-dev-arm64-cross, patch, file;
# - running the other CPUs' builds: qemu-user-static; measuring: time (GNU time for peak memory); openssl (etcd's
#   TLS certificates); util-linux (flock(1)).
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null; }
[ -x /usr/lib/cni/host-local ] && [ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
have flock || need+=(util-linux)
have go || need+=(golang-go)
[ -d /usr/share/gocode/src/github.com/containernetworking/cni/libcni ] || need+=(golang-github-appc-cni-dev)
have ip || need+=(iproute2)
have ping || need+=(iputils-ping)
have podman || need+=(podman)
have runc || need+=(runc)
[ -x /bin/busybox ] || need+=(busybox-static)
have containerd || need+=(containerd)
have etcd || need+=(etcd-server)
have etcdctl || need+=(etcd-client)
have gcc && have make || need+=(build-essential)
have musl-gcc || need+=(musl-tools)
have aarch64-linux-gnu-gcc || need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
have patch || need+=(patch)
have file || need+=(file)
have qemu-aarch64-static && have qemu-x86_64-static || need+=(qemu-user-static)
[ -x /usr/bin/time ] || need+=(time)
have openssl || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "test setup: missing ${need[*]}; run as root or apt-get install them" >&2
    exit 1
  fi
  echo "test setup: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
[ -d node_modules ] || npm ci --no-audit --no-fund
