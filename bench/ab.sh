#!/usr/bin/env bash
# Two builds of otpgate side by side (A, then B, round after round): what a change bought in time,
# beside bench/instructions.sh's instruction counts. Both run the same policy against the same
# backends, both pinned to cpu 0 (one under load at a time); wrk and the backends on cpu 1.
#
#   A=path/to/old B=path/to/new bash bench/ab.sh        # ROUNDS=5 DURATION=8 CONNS=32 TARGETS="pass citizen"
#
# Prints req/s and CPU-µs per request (utime+stime of the gateway process over the run) per round,
# then B ÷ A for each target: req/s ratio and CPU/req ratio (means of the rounds). One answer that
# is not 2xx voids the run. Ports PORT_BASE+1.. (PORT_BASE=18280), loopback only. Not run in CI.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
# shellcheck source=bench/common.sh
source bench/common.sh
: "${A:?A=path to the first otpgate binary}" "${B:?B=path to the second otpgate binary}"
ROUNDS=${ROUNDS:-5} DURATION=${DURATION:-8} CONNS=${CONNS:-32} TARGETS=${TARGETS:-"pass citizen"}
BASE=${PORT_BASE:-18280}
BACKEND=$((BASE + 1)) REGISTRY=$((BASE + 2))
need nginx nginx-light
need wrk wrk

bench_setup "$A" $((CONNS + 10000))

declare -A gate_pid gate_port token
n=0
for build in A B; do
  n=$((n + 1))
  port=$((BASE + 2 + 2 * n)) admin=$((BASE + 3 + 2 * n))
  mkdir -p "$work/data-$build"
  taskset -c 0 "${!build}" serve --config "$work/policy" --keys-dir "$work/keys" --data-dir "$work/data-$build" \
    --listen-plain 127.0.0.1:$port --admin 127.0.0.1:$admin --upstream registry=http://127.0.0.1:$REGISTRY \
    --insecure-otp-outbox >"$work/$build.log" 2>&1 &
  gate_pid[$build]=$! gate_port[$build]=$port
  pids+=($!)
  for _ in $(seq 300); do curl -fs "http://127.0.0.1:$admin/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
  token[$build]=$(session "$port" "$work/data-$build")
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
run() { # BUILD TARGET -> "req/s cpu-us/req"
  local url="http://127.0.0.1:${gate_port[$1]}/bench/data.json" header= out before after
  if [ "$2" = citizen ]; then
    url="http://127.0.0.1:${gate_port[$1]}/api/v2/appointment/beneficiaries"
    header="Authorization: Bearer ${token[$1]}"
  fi
  before=$(cpu_ticks "${gate_pid[$1]}")
  out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"$DURATION"s ${header:+-H "$header"} "$url")
  after=$(cpu_ticks "${gate_pid[$1]}")
  if grep -q -e Non-2xx -e 'Socket errors' <<<"$out"; then echo "$out" >&2; return 1; fi
  awk -v t=$((after - before)) -v hz="$hz" '/requests in/ {n = $1} /^Requests\/sec/ {r = $2}
    END {printf "%.0f %.1f\n", r, t / hz * 1e6 / n}' <<<"$out"
}

for target in $TARGETS; do
  for build in A B; do run "$build" "$target" >/dev/null; done # warm-up
done
printf "%-8s %-5s %5s %10s %12s\n" target build round req/s CPU-us/req
declare -A sum_rps sum_cpu
for round in $(seq "$ROUNDS"); do
  for target in $TARGETS; do
    for build in A B; do
      read -r rps cpu < <(run "$build" "$target")
      printf "%-8s %-5s %5s %10s %12s\n" "$target" "$build" "$round" "$rps" "$cpu"
      sum_rps[$target$build]=$(awk -v a="${sum_rps[$target$build]:-0}" -v b="$rps" 'BEGIN {print a + b}')
      sum_cpu[$target$build]=$(awk -v a="${sum_cpu[$target$build]:-0}" -v b="$cpu" 'BEGIN {print a + b}')
    done
  done
done
printf "\n%-8s %12s %14s   (B / A, means of %s rounds, %s connections)\n" target "req/s ratio" "CPU/req ratio" "$ROUNDS" "$CONNS"
for target in $TARGETS; do
  awk -v ra="${sum_rps[${target}A]}" -v rb="${sum_rps[${target}B]}" -v ca="${sum_cpu[${target}A]}" \
    -v cb="${sum_cpu[${target}B]}" -v t="$target" 'BEGIN {printf "%-8s %11.2fx %13.2fx\n", t, rb / ra, cb / ca}'
done
