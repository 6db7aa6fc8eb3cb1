#!/usr/bin/env bash
# native/build.sh <out-binary> <x86_64|arm64|asan> <name>=<bundle.js> [<name>=<bundle.js> ...]
#
# Turns esbuild bundles (plain scripts, --format=iife) into one native executable: qjsc compiles each bundle to
# QuickJS bytecode, listed by name in a generated blobs.c and linked with host.c, module.c (the __sys object)
# and the engine. The first bundle is what the binary runs; one named "cli" runs instead when the binary is
# started with arguments and without CNI_COMMAND; the others are libraries the code loads with __sys.load(name).
#   x86_64  static, musl (musl-gcc -static), baseline x86-64 CPU, -O2, unused sections dropped, stripped
#   arm64   static, glibc (aarch64-linux-gnu-gcc -static), armv8-a baseline, -O2, stripped
#   asan    dynamic, gcc -fsanitize=address,undefined, halts on the first report of either; frees everything
#           at exit so LeakSanitizer and the engine's own leak assert see refcount mistakes
#
# The engine is QuickJS 2021-03-27 from the npm package qjsc (node_modules/qjsc/deps/quickjs_2021_03_27),
# checked against native/quickjs.sha256, copied to dist/engine/src and patched there with
# native/quickjs.patch (node_modules/ is never modified). Compiled engines are cached per variant under
# dist/engine/<variant>/, the host compiler under dist/engine/host/; a cache is rebuilt when the source,
# patch or flags change. The bytecode format depends only on the engine version and CONFIG_BIGNUM, both the
# same for every variant, so one host qjsc serves all three.
set -euo pipefail

usage() { echo "usage: $0 <out-binary> <x86_64|arm64|asan> <name>=<bundle.js> [<name>=<bundle.js> ...]" >&2; exit 2; }
[ $# -ge 3 ] || usage
out=$1 variant=$2
shift 2
blobs=("$@")
for b in "${blobs[@]}"; do
  [[ $b =~ ^[a-z][a-z0-9_]*=.+ ]] || usage
  [ -f "${b#*=}" ] || { echo "$0: no bundle at ${b#*=}" >&2; exit 2; }
done

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
upstream=$root/node_modules/qjsc/deps/quickjs_2021_03_27
engine=$root/dist/engine
version=2021-03-27

die() { echo "native/build.sh: $*" >&2; exit 1; }

# Installs a missing compiler from Debian (the machines here are Debian bookworm, as root).
need() { # need <command> <debian packages...>
  command -v "$1" >/dev/null && return
  [ "$(id -u)" = 0 ] || die "$1 is missing: apt-get install ${*:2}"
  echo "native/build.sh: installing ${*:2}" >&2
  apt-get install -y --no-install-recommends "${@:2}" >/dev/null 2>&1 ||
    { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${@:2}" >/dev/null; }
}

defines=(-D_GNU_SOURCE "-DCONFIG_VERSION=\"$version\"" -DCONFIG_BIGNUM)
engine_files=(quickjs libregexp libunicode cutils libbf)
case $variant in
  x86_64)
    need musl-gcc musl-tools
    cc=musl-gcc
    cflags=(-O2 -march=x86-64 -mtune=generic -ffunction-sections -fdata-sections)
    ldflags=(-static -Wl,--gc-sections -s)
    ;;
  arm64)
    need aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu libc6-dev-arm64-cross
    cc=aarch64-linux-gnu-gcc
    cflags=(-O2 -march=armv8-a -ffunction-sections -fdata-sections)
    ldflags=(-static -Wl,--gc-sections -s)
    ;;
  asan)
    need gcc build-essential
    cc=gcc
    # -fno-sanitize-recover=all: the first UBSan report aborts (ASan always does). The engine's known
    # benign reports are patched out (native/quickjs.patch) rather than silenced with -fno-sanitize.
    cflags=(-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
      -DLOCAL_IPAM_SANITIZE)
    ldflags=(-fsanitize=address,undefined)
    ;;
  *) usage ;;
esac
need gcc build-essential
need patch patch

# --- the engine source: verified, copied, patched ---
[ -f "$upstream/VERSION" ] || die "no QuickJS source at $upstream: run npm ci"
mkdir -p "$engine"
exec 9>"$engine/.lock" && flock 9 # builds running at once share the caches below: one at a time
(cd "$upstream" && sha256sum --quiet -c "$here/quickjs.sha256") ||
  die "the QuickJS source in node_modules/qjsc is not the one native/quickjs.sha256 names"
src_key=$(cat "$here/quickjs.sha256" "$here/quickjs.patch" | sha256sum | cut -c1-16)
src=$engine/src
if [ "$(cat "$src/.key" 2>/dev/null)" != "$src_key" ]; then
  rm -rf "$src" && mkdir -p "$src"
  (cd "$upstream" && cp $(cut -c67- "$here/quickjs.sha256") "$src/")
  patch -d "$src" -p1 --quiet --forward < "$here/quickjs.patch"
  echo "$src_key" > "$src/.key"
fi

# Compiles the named engine files into $dir/libquickjs.a (in parallel) unless $dir/.key says it is current.
build_lib() { # build_lib <dir> <cc> <flags...>
  local dir=$1 cc=$2 key pids=() f
  shift 2
  key=$(echo "$src_key $cc $($cc --version | head -1) $*" | sha256sum | cut -c1-16)
  [ "$(cat "$dir/.key" 2>/dev/null)" = "$key" ] && return
  rm -rf "$dir" && mkdir -p "$dir"
  echo "native/build.sh: compiling QuickJS $version for $(basename "$dir")" >&2
  for f in "${engine_files[@]}" "${extra_files[@]}"; do
    $cc "$@" "${defines[@]}" -w -c "$src/$f.c" -o "$dir/$f.o" & pids+=($!)
  done
  for f in "${pids[@]}"; do wait "$f" || die "compiling QuickJS for $(basename "$dir") failed"; done
  ar rcs "$dir/libquickjs.a" $(printf "$dir/%s.o " "${engine_files[@]}")
  echo "$key" > "$dir/.key"
}

# --- the host compiler: qjsc from the same source, for this machine ---
extra_files=(quickjs-libc qjsc)
build_lib "$engine/host" gcc -O2
if [ ! -x "$engine/host/qjsc" ] || [ "$engine/host/qjsc" -ot "$engine/host/.key" ]; then
  gcc -o "$engine/host/qjsc" "$engine/host/qjsc.o" "$engine/host/quickjs-libc.o" "$engine/host/libquickjs.a" \
    -lm -ldl -lpthread
fi
extra_files=()

# --- the engine library for the target ---
build_lib "$engine/$variant" "$cc" "${cflags[@]}"

# --- bytecode and link ---
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# qjsc names the source file in debug info: run it next to the bundle so no build path is embedded.
{
  echo '#include <stddef.h>'
  echo '#include <stdint.h>'
  echo 'struct blob { const char *name; const uint8_t *code; const uint32_t *size; };'
} > "$tmp/blobs.c"
table=""
for b in "${blobs[@]}"; do
  name=${b%%=*} bundle=${b#*=}
  (cd "$(dirname "$bundle")" && "$engine/host/qjsc" -c -N "local_ipam_bc_$name" -o "$tmp/${name}_bc.c" \
    "$(basename "$bundle")") || die "qjsc could not compile $bundle"
  echo "extern const uint8_t local_ipam_bc_$name[]; extern const uint32_t local_ipam_bc_${name}_size;" >> "$tmp/blobs.c"
  table+="  { \"$name\", local_ipam_bc_$name, &local_ipam_bc_${name}_size },"$'\n'
done
printf 'const struct blob local_ipam_blobs[] = {\n%s  { NULL, NULL, NULL },\n};\n' "$table" >> "$tmp/blobs.c"
mkdir -p "$(dirname "$out")"
warn=(-std=gnu11 -Wall -Wextra -Wno-unused-parameter -Werror)
$cc "${cflags[@]}" "${defines[@]}" "${warn[@]}" -isystem "$src" -c "$here/host.c" -o "$tmp/host.o"
$cc "${cflags[@]}" "${defines[@]}" "${warn[@]}" -isystem "$src" -c "$here/module.c" -o "$tmp/module.o"
$cc "${cflags[@]}" "${defines[@]}" "${warn[@]}" -isystem "$src" -c "$here/alloc.c" -o "$tmp/alloc.o"
objs=("$tmp/host.o" "$tmp/module.o" "$tmp/alloc.o")
for c in "$tmp"/*.c; do
  $cc "${cflags[@]}" -c "$c" -o "${c%.c}.o"
  objs+=("${c%.c}.o")
done
$cc "${ldflags[@]}" -o "$out.tmp" "${objs[@]}" "$engine/$variant/libquickjs.a" -lm -lpthread
if [ "$variant" != asan ]; then
  file -b "$out.tmp" | grep -q 'statically linked' || die "$out is not statically linked: $(file -b "$out.tmp")"
fi
mv "$out.tmp" "$out"
echo "built $out ($variant, $(stat -c %s "$out") bytes)"
