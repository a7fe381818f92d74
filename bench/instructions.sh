#!/usr/bin/env bash
# Instructions per request (valgrind callgrind): a count that does not depend on what else the
# machine is doing, to compare two builds of otpgate on a shared 2-core VM where timings are noise.
# Userland only (the kernel's TCP work is not counted; bench/run.sh measures that beside nginx).
#
#   bash bench/instructions.sh                         # target/release/otpgate, pass-through + citizen
#   OTPGATE_BIN=path TARGETS=pass bash bench/instructions.sh
#   CONNS=1000 TARGETS=pass bash bench/instructions.sh # the same at 1,000 connections
#   H2=1 TARGETS=pass bash bench/instructions.sh       # HTTP/2 (h2load, h2c) instead of wrk
#   KEEP=dir bash bench/instructions.sh                # keep the callgrind files: callgrind_annotate --inclusive=yes dir/pass.out
#
# Setup as bench/run.sh: an nginx backend with the same 1 KB JSON, the synthetic registry, the
# shipped policy with OTPs to an outbox, the session limit raised and a pass-through route. A
# warm-up, then the counters are zeroed, DURATION seconds of load (wrk, CONNS connections), a
# dump; total instructions of the gateway process / requests answered. Not run in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/common.sh
source bench/common.sh
DURATION=${DURATION:-8} CONNS=${CONNS:-8} TARGETS=${TARGETS:-"pass citizen"} H2=${H2:-0}
BASE=${PORT_BASE:-18180}
BACKEND=$BASE GATE=$((BASE + 3)) ADMIN=$((BASE + 4)) REGISTRY=$((BASE + 5))
need nginx nginx-light
need wrk wrk
need valgrind valgrind
need h2load nghttp2-client
BIN=${OTPGATE_BIN:-target/release/otpgate}
[ -n "${OTPGATE_BIN:-}" ] || cargo build --release --locked --quiet --bin otpgate
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

bench_setup "$BIN" $((CONNS + 10000))

load() { # URL [HEADER] -> requests answered (fails on any non-2xx answer)
  local out
  if [ "$H2" = 1 ]; then
    out=$(taskset -c 1 h2load -c "$CONNS" -m 8 -D "$1" ${3:+-H "$3"} "$2")
    grep -q ' 0 failed, 0 errored' <<<"$out" || { echo "$out" >&2; return 1; }
    awk '/^status codes:/ {print $3}' <<<"$out"
  else
    out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"$1"s --latency ${3:+-H "$3"} "$2")
    if grep -q Non-2xx <<<"$out"; then echo "$out" >&2; return 1; fi
    awk '/requests in/ {print $1}' <<<"$out"
  fi
}

for target in $TARGETS; do
  data="$work/data-$target"
  mkdir -p "$data"
  out="$work/$target.out"
  taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$out" "$BIN" serve --config "$work/policy" \
    --keys-dir "$work/keys" --data-dir "$data" --listen-plain 127.0.0.1:$GATE --admin 127.0.0.1:$ADMIN \
    --upstream registry=http://127.0.0.1:$REGISTRY --insecure-otp-outbox >"$work/$target.log" 2>&1 &
  gate=$!
  for _ in $(seq 600); do curl -fs "http://127.0.0.1:$ADMIN/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
  url="http://127.0.0.1:$GATE/bench/data.json" header=
  if [ "$target" = citizen ]; then
    url="http://127.0.0.1:$GATE/api/v2/appointment/beneficiaries"
    token=$(session $GATE "$data")
    header="Authorization: Bearer $token"
  fi
  load 2 "$url" "$header" >/dev/null
  callgrind_control --zero "$gate" >/dev/null
  n=$(load "$DURATION" "$url" "$header")
  callgrind_control --dump "$gate" >/dev/null
  kill -INT "$gate"
  wait "$gate" || true
  total=$(callgrind_annotate "$out.1" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  proto=$([ "$H2" = 1 ] && echo h2c || echo http/1.1)
  printf "%-8s %-9s %5s conns %7s requests %9s instructions/request\n" "$target" "$proto" "$CONNS" "$n" $((total / n))
  if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$out.1" "$KEEP/$target.out"; fi
done
