#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine (root): the reference plugin host-local and the
# bridge plugin (containernetworking-plugins), flock(1), Go with Debian's libcni for the cnitool driver, iproute2
# and ping for real namespaces, podman with runc and busybox-static for real containers. Does nothing when all is
# present.
set -euo pipefail
need=()
[ -x /usr/lib/cni/host-local ] || need+=(containernetworking-plugins)
command -v flock >/dev/null || need+=(util-linux)
command -v mkfifo >/dev/null || need+=(coreutils)
command -v go >/dev/null || need+=(golang-go)
[ -d /usr/share/gocode/src/github.com/containernetworking/cni/libcni ] || need+=(golang-github-appc-cni-dev)
command -v ip >/dev/null || need+=(iproute2)
command -v ping >/dev/null || need+=(iputils-ping)
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
[ -x /bin/busybox ] || need+=(busybox-static)
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
