#!/usr/bin/env bash
# native/smoke.sh [x86_64|arm64|asan ...]
#
# Builds native/smoke.js with native/build.sh for each variant (all three by default) and runs it:
#   x86_64  natively, and under `qemu-x86_64-static -cpu qemu64` (a CPU without SSE4/AVX: proves the
#           baseline build)
#   arm64   under qemu-aarch64-static (binfmt is not registered here: called explicitly)
#   asan    natively; any AddressSanitizer, UndefinedBehaviorSanitizer or LeakSanitizer report fails the run
# Each run gets a fresh directory with a FIFO, a symlink, a file whose name is not UTF-8 and a lock file held
# by flock(1) for 5 s. Then the ways the process can end are checked: __sys.exit, __exitStatus, an uncaught
# exception, runaway recursion, a signal; and native/oom.js runs __sys and engine
# paths with the heap at its 256 MiB limit. Exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(x86_64 arm64 asan)
out=dist/smoke
mkdir -p "$out"
umask 022
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# distinct exit codes, so a sanitizer report is never mistaken for the script's own exit status 1
export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:exitcode=86
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:exitcode=87

# run_case <label> <expected status> <stderr pattern or ''> <runner...> -- <args...>
run_case() {
  local label=$1 want=$2 pattern=$3 status err
  shift 3
  err=$(mktemp)
  { "$@" >/dev/null 2>"$err"; } 2>/dev/null # (bash would report "Terminated" for the SIGTERM case)
  status=$?
  if [ "$status" != "$want" ]; then
    fail "$label: exit status $status, want $want; stderr: $(head -c 2000 "$err")"
  elif [ -n "$pattern" ] && ! grep -qE "$pattern" "$err"; then
    fail "$label: stderr does not match /$pattern/: $(head -c 2000 "$err")"
  elif [ -z "$pattern" ] && [ -s "$err" ]; then
    fail "$label: unexpected stderr: $(head -c 2000 "$err")"
  else
    echo "ok   $label"
  fi
  rm -f "$err"
}

# full <label> <runner...>: the whole smoke.js in a freshly prepared directory
full() {
  local label=$1 dir holder status log
  shift
  dir=$(mktemp -d /tmp/local-ipam-smoke.XXXXXX)
  mkfifo "$dir/fifo"
  : > "$dir/target"
  ln -s target "$dir/link"
  mkdir "$dir/names"
  : > "$dir/names/a"$'\xff'"b"
  : > "$dir/held"
  flock -x "$dir/held" -c 'echo locked; exec sleep 5' > "$dir/holder.out" &
  holder=$!
  for _ in $(seq 100); do grep -q locked "$dir/holder.out" 2>/dev/null && break; sleep 0.05; done
  # another file system for EXDEV, when /dev/shm is one
  local other=
  if [ -d /dev/shm ] && [ "$(stat -c %d /dev/shm)" != "$(stat -c %d "$dir")" ]; then
    other=$(mktemp -d /dev/shm/local-ipam-smoke.XXXXXX)
  fi
  # unix sockets for unixRequest: one that answers "pong <request>" (then more after the newline, which must not
  # be read), one that accepts and never answers
  node -e '
    const net = require("node:net");
    const [dir] = process.argv.slice(1);
    net.createServer((s) => {
      let got = "";
      s.setEncoding("utf8").on("data", (d) => {
        got += d;
        if (got.endsWith("\n")) s.end(`pong ${got.trim()}\nnot this\n`);
      });
    }).listen(`${dir}/answers.sock`);
    net.createServer(() => {}).listen(`${dir}/silent.sock`, () => process.stdout.write("ready\n"));
  ' "$dir" > "$dir/sockets.out" &
  local sockets=$!
  for _ in $(seq 100); do grep -q ready "$dir/sockets.out" 2>/dev/null && break; sleep 0.05; done
  log=$out/$label.log
  env SMOKE_DIR="$dir" SMOKE_OTHER_FS="$other" '__proto__=not a prototype' SMOKE_BAD_UTF8=$'a\xff\xfeb' \
    SMOKE_EQ='x=y=z' SMOKE_EMPTY= "$@" first 'two words' $'\xc3\xbc\xf0\x9f\x98\x80' '' > "$log" 2>&1
  status=$?
  kill "$sockets" 2>/dev/null
  wait "$holder" "$sockets" 2>/dev/null
  rm -rf "$dir" ${other:+"$other"}
  local summary
  summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
  if [ "$status" != 0 ] || [ -z "$summary" ]; then
    grep -v '^ok ' "$log" | head -40
    fail "$label: smoke.js exited $status (${summary:-no summary line}); log in $log"
  else
    echo "ok   $label: $summary"
  fi
}

for v in "${variants[@]}"; do
  bin=$out/smoke-$v
  native/build.sh "$bin" "$v" main=native/smoke.js || { fail "$v: build"; continue; }
  native/build.sh "$out/oom-$v" "$v" main=native/oom.js || { fail "$v: build oom.js"; continue; }
  case $v in
    x86_64) runners=("native:" "qemu64:qemu-x86_64-static -cpu qemu64") ;;
    arm64) runners=("qemu:qemu-aarch64-static") ;;
    asan) runners=("native:") ;;
    *) fail "unknown variant $v"; continue ;;
  esac
  for r in "${runners[@]}"; do
    name=${r%%:*}
    read -r -a cmd <<< "${r#*:}"
    cmd+=("$bin")
    label="$v-$name"
    full "$label" "${cmd[@]}"
    run_case "$label exit 7" 7 '' "${cmd[@]}" --exit 7
    run_case "$label __exitStatus 5" 5 '' "${cmd[@]}" --status 5
    run_case "$label empty script" 0 '' "${cmd[@]}" --empty
    run_case "$label uncaught exception" 1 '^local-ipam: internal error: TypeError: boom second line$' "${cmd[@]}" --throw
    run_case "$label runaway recursion" 1 '^local-ipam: internal error: .*(stack overflow|call stack)' \
      "${cmd[@]}" --deep
    run_case "$label SIGTERM" 143 '' "${cmd[@]}" --kill
    oom_cmd=("${cmd[@]}")
    oom_cmd[-1]=$out/oom-$v
    if out_text=$("${oom_cmd[@]}" 2>&1) && [[ $out_text == "oom: "* ]]; then
      echo "ok   $label at the memory limit (oom.js): ${out_text#oom: }"
    else
      fail "$label oom.js: $(head -c 3000 <<< "$out_text")"
    fi
  done
done

if [ "$failures" -gt 0 ]; then
  echo "native smoke: $failures failure(s)"
  exit 1
fi
echo "native smoke: all passed (${variants[*]})"
