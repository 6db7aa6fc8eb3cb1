#!/usr/bin/env bash
# Builds conformance/cnitool/cnitool against Debian's libcni (golang-github-appc-cni-dev), in GOPATH mode.
set -euo pipefail
cd "$(dirname "$0")"
export GO111MODULE=off GOPATH="$PWD/.gopath:/usr/share/gocode" GOCACHE="${GOCACHE:-$PWD/.gopath/cache}" GOFLAGS=
go build -o cnitool .
