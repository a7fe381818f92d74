#!/usr/bin/env bash
# otpgate beside nginx on the same work (issue 15): one command, ratios from alternating runs.
#
#   bash bench/run.sh                       # every section, 3 rounds x 10 s per target, 32 connections
#   ROUNDS=5 DURATION=20 CONNS=256 bash bench/run.sh
#   OTPGATE_BIN=path bash bench/run.sh      # a binary built earlier (skips the release build)
#   PERF_DIR=dir bash bench/run.sh          # also profile otpgate (perf, cpu-clock) in round 1 of the
#                                           # closed-loop section: dir/TARGET.data and dir/TARGET.txt
#   DURATION=3 ROUNDS=1 bash bench/run.sh   # a quick check that everything runs
#
# Sections, each switchable (defaults in brackets); every section alternates its targets round by
# round, and every run must answer 2xx only (one other answer or socket error voids the bench):
#   1. closed loop [CLOSED_LOOP=1]: wrk, CONNS connections, HTTP/1.1 plain — req/s, p50/p99,
#      CPU-µs per request, ratios to nginx-proxy (the original table).
#   2. fixed rate [RATE=10000, CITIZEN_RATE=2000; RATE=0 skips]: bench/openloop (open loop, latency
#      from each request's intended send time, WARMUP=2 s not counted, OL_CONNS=CONNS connections)
#      offers RATE req/s to nginx-proxy and otpgate-pass, CITIZEN_RATE to otpgate-citizen (and to
#      nginx-proxy again, the reference at that rate) — p99 and p99 minus nginx's p99 at the same rate.
#      `!` marks a target that did not keep up; "gen late" is the generator's own lateness (p99), part
#      of every latency: openloop costs some 50 µs of CPU per request on cpu 1, beside the backend.
#      OL_ARGS=--per-second prints each run's latencies second by second (stderr).
#   3. HTTP/2 [H2=1]: h2load, H2_CONNS=32 connections x H2_STREAMS=8 streams, h2c with prior
#      knowledge on plain ports — req/s, CPU-µs per request, ratio to nginx's h2.
#   4. TLS [TLS=1]: wrk over HTTPS (HTTP/1.1, keep-alive: steady state, the handshakes are a few
#      per run; bench/tls-handshakes.sh measures those) — req/s, p99, CPU-µs per request, ratios.
#   5. connection scaling [CONNS_LIST="32 1000"; empty skips]: section 1's pass-through beside nginx
#      for each connection count — req/s per count, so that a cliff shows.
#   Redis store [STORE=memory; STORE=redis adds it]: a second otpgate with `--store REDIS_URL`
#      (default redis://127.0.0.1:6379/0) under a key prefix of its own (deleted at the end;
#      nothing else is touched) adds the target otpgate-citizen-redis to sections 1 and 2.
#      Redis's own CPU is not in its CPU-µs per request.
#
# Targets, on loopback, the proxies pinned to cpu 0, backends and load generators on cpu 1:
#   nginx-proxy     nginx proxy_pass (1 worker, upstream keepalive) to an nginx backend (1 KB JSON)
#   otpgate-pass    otpgate, a public pass-through route to the same nginx backend
#   otpgate-citizen otpgate, GET /api/v2/appointment/beneficiaries with a session: token, session
#                   store, limits (raised so nothing is refused), ownership, citizen redaction and a
#                   durable audit record per request, against the synthetic registry
# CPU-µs per request: utime+stime of the proxy process from /proc (kernel work included) over the
# run, divided by the requests answered. The h2 and TLS variants are further listeners of the same
# two proxy processes (nginx's servers set keepalive_requests high so that connections stay up for
# the whole run, as otpgate's do: its default of 1000 made wrk reconnect mid-run).
# Instructions per request (callgrind), repeatable on a busy machine: bench/instructions.sh.
# Ports: PORT_BASE+1 to +10 (PORT_BASE=18080), loopback only.
# Installs nginx, wrk, h2load and redis-cli from the distribution if missing, and builds
# bench/openloop (its own crate and Cargo.lock; OPENLOOP_BIN=path skips the build). Not run in CI.
set -euo pipefail
shopt -s inherit_errexit # a failing tool inside $(...) stops the bench too
cd "$(dirname "$0")/.."
# shellcheck source=bench/common.sh
source bench/common.sh
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-10} CONNS=${CONNS:-32}
CLOSED_LOOP=${CLOSED_LOOP:-1}
RATE=${RATE:-10000} CITIZEN_RATE=${CITIZEN_RATE:-2000} WARMUP=${WARMUP:-2} OL_CONNS=${OL_CONNS:-$CONNS}
H2=${H2:-1} H2_CONNS=${H2_CONNS:-32} H2_STREAMS=${H2_STREAMS:-8}
TLS=${TLS:-1}
CONNS_LIST=${CONNS_LIST-32 1000}
STORE=${STORE:-memory} REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
case $STORE in memory | redis) ;; *) echo "STORE=$STORE: memory or redis" >&2; exit 2 ;; esac

need nginx nginx-light
need wrk wrk
[ "$H2" = 0 ] || need h2load nghttp2-client
[ "$TLS" = 0 ] || need openssl openssl
[ "$STORE" != redis ] || need redis-cli redis-tools
BIN=${OTPGATE_BIN:-${CARGO_TARGET_DIR:-target}/release/otpgate}
[ -n "${OTPGATE_BIN:-}" ] || cargo build --release --locked --quiet --bin otpgate
if [ "$RATE" != 0 ]; then
  OPENLOOP=${OPENLOOP_BIN:-${CARGO_TARGET_DIR:-bench/openloop/target}/release/openloop}
  [ -n "${OPENLOOP_BIN:-}" ] || cargo build --release --locked --quiet --manifest-path bench/openloop/Cargo.toml
fi

# Descriptors: wrk holds one per connection, a proxy two (client and upstream side).
# shellcheck disable=SC2086 # CONNS_LIST is a list
max_conns=$(printf '%s\n' "$CONNS" "$OL_CONNS" "$H2_CONNS" $CONNS_LIST | sort -n | tail -1)
hard=$(ulimit -Hn)
[ "$hard" != unlimited ] || hard=1048576
ulimit -n "$hard"
if [ $((2 * max_conns + 256)) -gt "$hard" ]; then
  echo "$max_conns connections need about $((2 * max_conns + 256)) descriptors; the limit is $hard" >&2
  exit 1
fi
worker_conns=$((2 * max_conns + 256 > 4096 ? 2 * max_conns + 256 : 4096))

work=$(mktemp -d)
pids=()
redis_prefix=
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for f in "$work"/nginx-*.pid; do if [ -f "$f" ]; then kill "$(cat "$f")" 2>/dev/null || true; fi; done
  if [ -n "$redis_prefix" ]; then # only the keys this run wrote
    redis-cli -u "$REDIS_URL" --scan --pattern "$redis_prefix*" | xargs -r -d '\n' redis-cli -u "$REDIS_URL" del >/dev/null || true
  fi
  sleep 0.5
  rm -rf "$work"
}
trap cleanup EXIT
# Loopback ports PORT_BASE+1 to +10 (PORT_BASE=28080 runs a second bench beside a first one).
PORT_BASE=${PORT_BASE:-18080}
BACKEND=$((PORT_BASE + 1)) PROXY=$((PORT_BASE + 2)) GATE=$((PORT_BASE + 3)) ADMIN=$((PORT_BASE + 4))
REGISTRY=$((PORT_BASE + 5)) PROXY_H2=$((PORT_BASE + 6)) PROXY_TLS=$((PORT_BASE + 7)) GATE_TLS=$((PORT_BASE + 8))
GATE_REDIS=$((PORT_BASE + 9)) ADMIN_REDIS=$((PORT_BASE + 10))

# --- a test certificate for the TLS rows: the demo's ECDSA P-256 pair (as bench/tls-handshakes.sh) --
if [ "$TLS" != 0 ]; then
  "$BIN" demo --listen 127.0.0.1:0 --admin 127.0.0.1:0 --data-dir "$work/demo" >"$work/demo.out" 2>&1 &
  demo_pid=$!
  pids+=("$demo_pid")
  for _ in $(seq 100); do grep -q "listening https" "$work/demo.out" 2>/dev/null && break; sleep 0.1; done
  kill "$demo_pid"
  wait "$demo_pid" || true
  if [ ! -s "$work/demo/server.pem" ] || [ ! -s "$work/demo/server-key.pem" ]; then
    echo "no demo certificate in $work/demo:" >&2
    cat "$work/demo.out" >&2
    exit 1
  fi
  cert=$work/demo/server.pem key=$work/demo/server-key.pem
fi

# --- nginx: a backend with a 1 KB JSON document, and a proxy in front of it --------------------
bench_data "$work/data.json"
nginx_conf() { # NAME CPU BODY
  cat >"$work/nginx-$1.conf" <<CONF
worker_processes 1;
worker_cpu_affinity $(if [ "$2" = 0 ]; then echo 01; else echo 10; fi);
worker_rlimit_nofile $((worker_conns + 256 < hard ? worker_conns + 256 : hard));
pid $work/nginx-$1.pid;
error_log $work/nginx-$1.err;
events { worker_connections $worker_conns; }
http {
  access_log off;
  client_body_temp_path $work; proxy_temp_path $work; fastcgi_temp_path $work; uwsgi_temp_path $work; scgi_temp_path $work;
  $3
}
CONF
  nginx -c "$work/nginx-$1.conf" -e "$work/nginx-$1.err"
}
nginx_conf backend 1 "server { listen 127.0.0.1:$BACKEND backlog=4096; location = /bench/data.json { default_type application/json; alias $work/data.json; } }"
proxy_loc="location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection \"\"; }"
proxy_servers="server { listen 127.0.0.1:$PROXY backlog=4096; keepalive_requests 1000000; $proxy_loc }"
# HTTP/2 over plain TCP (h2c, prior knowledge; nginx 1.22's syntax) and HTTPS HTTP/1.1.
[ "$H2" = 0 ] || proxy_servers+="
  server { listen 127.0.0.1:$PROXY_H2 http2; keepalive_requests 1000000; $proxy_loc }"
[ "$TLS" = 0 ] || proxy_servers+="
  server { listen 127.0.0.1:$PROXY_TLS ssl; ssl_certificate $cert; ssl_certificate_key $key;
    ssl_protocols TLSv1.2 TLSv1.3; keepalive_requests 1000000; $proxy_loc }"
# The upstream keepalive pool holds as many idle connections as there can be requests at once
# (64 at least): a smaller pool would have nginx open and close backend connections per request
# in the connection-scaling runs.
nginx_conf proxy 0 "upstream backend { server 127.0.0.1:$BACKEND; keepalive $((max_conns > 64 ? max_conns : 64)); }
  $proxy_servers"
sleep 0.5
proxy_pid=$(pgrep -P "$(cat "$work/nginx-proxy.pid")" | head -1)

# --- otpgate: the shipped policy, OTPs to an outbox, limits raised, plus a pass-through route ----
mkdir -p "$work/policy" "$work/data"
bench_policy "$work/policy" "$BACKEND" $((max_conns + 10000))
"$BIN" keys generate --dir "$work/keys" >/dev/null
taskset -c 1 "$BIN" registry-sim --listen 127.0.0.1:$REGISTRY --identity-key-file "$work/keys/identity.key" \
  >"$work/registry.out" 2>&1 &
pids+=("$!")
tls_args=()
[ "$TLS" = 0 ] || tls_args=(--listen "127.0.0.1:$GATE_TLS" --tls-cert "$cert" --tls-key "$key")
taskset -c 0 "$BIN" serve --config "$work/policy" --keys-dir "$work/keys" --data-dir "$work/data" \
  --listen-plain 127.0.0.1:$GATE --admin 127.0.0.1:$ADMIN --upstream registry=http://127.0.0.1:$REGISTRY \
  "${tls_args[@]}" --insecure-otp-outbox >"$work/otpgate.out" 2>&1 &
gate_pid=$!
pids+=("$gate_pid")
# With STORE=redis, a second gateway on the shared store, under a key prefix of this run's own.
if [ "$STORE" = redis ]; then
  redis_prefix="otpgate-bench-$(date +%s)-$$:"
  mkdir -p "$work/data-redis"
  taskset -c 0 "$BIN" serve --config "$work/policy" --keys-dir "$work/keys" --data-dir "$work/data-redis" \
    --listen-plain 127.0.0.1:$GATE_REDIS --admin 127.0.0.1:$ADMIN_REDIS --upstream registry=http://127.0.0.1:$REGISTRY \
    --store "$REDIS_URL" --store-prefix "$redis_prefix" --replica-id bench --insecure-otp-outbox \
    >"$work/otpgate-redis.out" 2>&1 &
  gate_redis_pid=$!
  pids+=("$gate_redis_pid")
fi
wait_ready() { # ADMIN_PORT LOG
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$1/readyz" >/dev/null 2>&1 && return; sleep 0.1; done
  echo "otpgate (admin $1) is not ready:" >&2
  cat "$2" >&2
  exit 1
}
wait_ready $ADMIN "$work/otpgate.out"
[ "$STORE" != redis ] || wait_ready $ADMIN_REDIS "$work/otpgate-redis.out"
if [ "$STORE" = redis ] && curl -fs "http://127.0.0.1:$ADMIN_REDIS/readyz" | grep -q degraded; then
  echo "otpgate-redis: the store is unreachable ($REDIS_URL)" >&2
  exit 1
fi

token=$(session $GATE "$work/data")
curl -fs -o /dev/null "http://127.0.0.1:$GATE/bench/data.json"
[ "$STORE" != redis ] || token_redis=$(session $GATE_REDIS "$work/data-redis")
citizen_path=/api/v2/appointment/beneficiaries

# Each target: its process (for CPU), its plain URL, the header it needs.
targets=(nginx-proxy otpgate-pass otpgate-citizen)
[ "$STORE" != redis ] || targets+=(otpgate-citizen-redis)
declare -A pid_of url_of header_of
pid_of=([nginx-proxy]=$proxy_pid [otpgate-pass]=$gate_pid [otpgate-citizen]=$gate_pid)
url_of=([nginx-proxy]="http://127.0.0.1:$PROXY/bench/data.json" [otpgate-pass]="http://127.0.0.1:$GATE/bench/data.json"
  [otpgate-citizen]="http://127.0.0.1:$GATE$citizen_path")
header_of=([nginx-proxy]="" [otpgate-pass]="" [otpgate-citizen]="Authorization: Bearer $token")
if [ "$STORE" = redis ]; then
  pid_of[otpgate-citizen-redis]=$gate_redis_pid
  url_of[otpgate-citizen-redis]="http://127.0.0.1:$GATE_REDIS$citizen_path"
  header_of[otpgate-citizen-redis]="Authorization: Bearer $token_redis"
fi

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
ms() { # wrk latency ("812.00us", "1.20ms", "2.00s") in ms
  awk '{ v = $1; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 }; printf "%.2f", v }' <<<"$1"
}
void() { # TARGET WHAT: a run with an answer other than 2xx, or a socket error, measures nothing
  echo "$1: $2: the run is void" >&2
  exit 1
}
# Sums over rounds, and their means.
declare -A sum
acc() { sum[$1]=$(awk -v s="${sum[$1]:-0}" -v v="$2" 'BEGIN { print s + v }'); }
mean() { awk -v s="${sum[$1]:-0}" -v n="$ROUNDS" 'BEGIN { printf "%.2f", s / n }'; }

# wrk_run PID CONNECTIONS URL [HEADER] -> "req/s p50 p99 cpu_us_per_req non2xx socket_errors"
wrk_run() {
  local pid=$1 conns=$2 url=$3 header=${4:-} before after out rps reqs p50 p99 bad errs
  local hdr=()
  [ -z "$header" ] || hdr=(-H "$header")
  before=$(cpu_ticks "$pid")
  out=$(taskset -c 1 wrk -t1 -c"$conns" -d"$DURATION"s --latency "${hdr[@]}" "$url")
  after=$(cpu_ticks "$pid")
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  p50=$(ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
  p99=$(ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
  bad=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  errs=$(awk -F'[ ,]+' '/Socket errors/ {print $5 + $7 + $9 + $11}' <<<"$out") # "  Socket errors: connect 0, read 0, write 0, timeout 0"
  awk -v r="$rps" -v n="$reqs" -v t=$((after - before)) -v hz="$hz" -v a="$p50" -v b="$p99" -v x="${bad:-0}" -v e="${errs:-0}" \
    'BEGIN { printf "%.0f %s %s %.1f %d %d\n", r, a, b, t * 1e6 / hz / n, x, e }'
}
# The original name and output of section 1's runs.
run() { wrk_run "$1" "$CONNS" "$2" "${3:-}"; }

# --- 1. closed loop: wrk, as many requests as CONNS connections can get answered ------------------
if [ "$CLOSED_LOOP" != 0 ]; then
  w=16 # the target column (wider for otpgate-citizen-redis)
  [ "$STORE" != redis ] || w=22
  printf "%-${w}s %-5s %10s %9s %9s %12s\n" target round "req/s" "p50 ms" "p99 ms" "CPU-us/req"
  declare -A rps cpu p99
  for r in $(seq "$ROUNDS"); do
    for target in "${targets[@]}"; do
      if [ -n "${PERF_DIR:-}" ] && [ "$r" = 1 ] && [ "$target" != nginx-proxy ]; then
        mkdir -p "$PERF_DIR"
        perf record -q -e cpu-clock -F 499 -g -p "${pid_of[$target]}" -o "$PERF_DIR/$target.data" -- sleep "$DURATION" \
          >/dev/null 2>&1 &
        perf_pid=$!
      fi
      line=$(run "${pid_of[$target]}" "${url_of[$target]}" "${header_of[$target]}")
      read -r q a b c bad errs <<<"$line"
      if [ -n "${perf_pid:-}" ]; then
        wait "$perf_pid" || true
        perf report -i "$PERF_DIR/$target.data" --stdio --no-children --percent-limit 1 2>/dev/null >"$PERF_DIR/$target.txt" || true
        perf_pid=
      fi
      if [ "$bad" != 0 ]; then void "$target" "$bad answers were not 2xx (a limit or an error)"; fi
      if [ "$errs" != 0 ]; then void "$target" "$errs socket errors (wrk: connect, read, write, timeout)"; fi
      printf "%-${w}s %-5s %10s %9s %9s %12s\n" "$target" "$r" "$q" "$a" "$b" "$c"
      rps[$target]=$(awk -v s="${rps[$target]:-0}" -v v="$q" 'BEGIN{print s + v}')
      cpu[$target]=$(awk -v s="${cpu[$target]:-0}" -v v="$c" 'BEGIN{print s + v}')
      p99[$target]=$(awk -v s="${p99[$target]:-0}" -v v="$b" 'BEGIN{print s + v}')
    done
  done
  echo
  printf "%-${w}s %12s %14s %10s   (means of %d rounds, %d connections)\n" target "req/s ratio" "CPU/req ratio" "p99 ms" "$ROUNDS" "$CONNS"
  for target in "${targets[@]}"; do
    awk -v t="$target" -v q="${rps[$target]}" -v q0="${rps[nginx-proxy]}" -v c="${cpu[$target]}" -v c0="${cpu[nginx-proxy]}" \
      -v p="${p99[$target]}" -v n="$ROUNDS" -v w="$w" 'BEGIN { printf "%-*s %11.2fx %13.2fx %10.2f\n", w, t, q / q0, c / c0, p / n }'
  done
fi

# --- 2. fixed rate: p99 at a given offered load, open loop ---------------------------------------
# bench/openloop sends at fixed intervals whatever the answers do (a request whose connection is
# still busy queues, and the wait counts), so a stall shows in every request it delayed; wrk's
# closed loop would send less instead (coordinated omission). nginx-proxy is measured at each rate
# used, so that every p99 is compared with nginx's at the same rate.
# ol_run PID RATE URL [HEADER] -> "achieved p50 p99 p999 max cpu_us_per_req non2xx errors unsent late_p99"
# (late_p99: how late the generator itself sent, on idle connections — its own share of every latency)
ol_run() {
  local pid=$1 rate=$2 url=$3 header=${4:-} before after out
  local hdr=()
  [ -z "$header" ] || hdr=(-H "$header")
  before=$(cpu_ticks "$pid")
  # shellcheck disable=SC2086 # OL_ARGS: extra options, e.g. --per-second (a table per second, on stderr)
  out=$(taskset -c 1 "$OPENLOOP" -R "$rate" -c "$OL_CONNS" -d "$DURATION" -w "$WARMUP" ${OL_ARGS:-} "${hdr[@]}" "$url")
  after=$(cpu_ticks "$pid")
  # key=value fields; CPU over the whole run (warm-up included) per answer (warm-up included).
  awk -v t=$((after - before)) -v hz="$hz" '{
      for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
      printf "%s %s %s %s %s %.1f %d %d %d %s\n", f["achieved"], f["p50"], f["p99"], f["p999"], f["max"],
        t * 1e6 / hz / (f["total"] > 0 ? f["total"] : 1), f["non2xx"], f["errors"], f["unsent"], f["late_p99"] }' <<<"$out"
}
if [ "$RATE" != 0 ]; then
  # Each run: TARGET@RATE.
  runs=("nginx-proxy@$RATE" "otpgate-pass@$RATE")
  [ "$CITIZEN_RATE" = "$RATE" ] || runs+=("nginx-proxy@$CITIZEN_RATE")
  runs+=("otpgate-citizen@$CITIZEN_RATE")
  [ "$STORE" != redis ] || runs+=("otpgate-citizen-redis@$CITIZEN_RATE")
  echo
  echo "fixed rate: open loop, $OL_CONNS connections, ${WARMUP}s warm-up + ${DURATION}s measured; latency from the intended send time"
  echo "  (gen late: p99 of how late the generator itself sent on idle connections, ms — part of every latency)"
  printf "%-22s %7s %-5s %9s %8s %8s %9s %9s %11s %9s\n" target rate round achieved "p50 ms" "p99 ms" "p99.9 ms" "max ms" \
    "CPU-us/req" "gen late"
  for r in $(seq "$ROUNDS"); do
    for run in "${runs[@]}"; do
      target=${run%@*} rate=${run#*@}
      line=$(ol_run "${pid_of[$target]}" "$rate" "${url_of[$target]}" "${header_of[$target]}")
      read -r got a b c d cu bad errs unsent late <<<"$line"
      if [ "$bad" != 0 ]; then void "$target" "$bad answers were not 2xx (a limit or an error)"; fi
      if [ "$errs" != 0 ]; then void "$target" "$errs requests failed (openloop's stderr has the first)"; fi
      flag=
      # Not keeping up: the latency then grows with the run's length, not a property of the rate.
      if [ "$unsent" != 0 ] || awk -v g="$got" -v r="$rate" 'BEGIN { exit !(g < 0.97 * r) }'; then flag=" !"; fi
      printf "%-22s %7s %-5s %9.0f %8s %8s %9s %9s %11s %9s%s\n" "$target" "$rate" "$r" "$got" "$a" "$b" "$c" "$d" "$cu" "$late" "$flag"
      if [ -n "$flag" ]; then
        echo "  ! $target did not sustain $rate req/s ($unsent requests never sent): its latencies grow with the run" >&2
        acc "ol.flag.$run" 1
      fi
      acc "ol.p99.$run" "$b"
      acc "ol.cpu.$run" "$cu"
    done
  done
  echo
  printf "%-22s %7s %10s %16s %12s   (means of %d rounds)\n" target rate "p99 ms" "p99 - nginx ms" "CPU-us/req" "$ROUNDS"
  for run in "${runs[@]}"; do
    target=${run%@*} rate=${run#*@}
    printf "%-22s %7s %10s %16s %12s%s\n" "$target" "$rate" "$(mean "ol.p99.$run")" \
      "$(awk -v a="$(mean "ol.p99.$run")" -v b="$(mean "ol.p99.nginx-proxy@$rate")" 'BEGIN { printf "%+.2f", a - b }')" \
      "$(mean "ol.cpu.$run")" "$([ -z "${sum[ol.flag.$run]:-}" ] || echo "   ! not sustained in ${sum[ol.flag.$run]} of $ROUNDS rounds")"
  done
fi

# --- 3. HTTP/2: h2load, h2c with prior knowledge, the pass-through ---------------------------------
# h2_run PID URL -> "req/s cpu_us_per_req bad" (bad: answers not 2xx + failed/errored/timed-out requests;
# -1 when h2load did not speak h2c or printed no totals)
h2_run() {
  local pid=$1 url=$2 before after out
  before=$(cpu_ticks "$pid")
  out=$(taskset -c 1 h2load -c "$H2_CONNS" -m "$H2_STREAMS" -D "$DURATION" "$url")
  after=$(cpu_ticks "$pid")
  # "finished in 3.00s, 41234.33 req/s, 44.1MB/s"
  # "requests: 123703 total, 123959 started, 123703 done, 123703 succeeded, 0 failed, 0 errored, 0 timeout"
  # "status codes: 123703 2xx, 0 3xx, 0 4xx, 0 5xx"
  awk -F'[ ,]+' -v t=$((after - before)) -v hz="$hz" '
    /^Application protocol:/ { proto = $3 }
    /^finished in/ { rps = $4 }
    /^requests:/ { done = $6; bad += $10 + $12 + $14 }
    /^status codes:/ { ok = $3; bad += $5 + $7 + $9 }
    END { if (proto != "h2c" || done == "" || ok == "") { print "0 0 -1"; exit } printf "%.0f %.1f %d\n", rps, t * 1e6 / hz / (done > 0 ? done : 1), bad }' <<<"$out"
}
if [ "$H2" != 0 ]; then
  echo
  echo "HTTP/2 (h2c, prior knowledge): h2load, $H2_CONNS connections x $H2_STREAMS streams, the pass-through"
  printf "%-16s %-5s %10s %12s\n" target round "req/s" "CPU-us/req"
  for r in $(seq "$ROUNDS"); do
    for target in nginx-proxy-h2 otpgate-pass-h2; do
      if [ $target = nginx-proxy-h2 ]; then
        line=$(h2_run "$proxy_pid" "http://127.0.0.1:$PROXY_H2/bench/data.json")
      else
        line=$(h2_run "$gate_pid" "http://127.0.0.1:$GATE/bench/data.json")
      fi
      read -r q c bad <<<"$line"
      if [ "$bad" = -1 ]; then void $target "h2load did not speak h2c, or printed no totals"; fi
      if [ "$bad" != 0 ]; then void $target "$bad requests failed or were not 2xx"; fi
      printf "%-16s %-5s %10s %12s\n" $target "$r" "$q" "$c"
      acc "h2.rps.$target" "$q"
      acc "h2.cpu.$target" "$c"
    done
  done
  echo
  printf "%-16s %10s %12s %12s %14s   (means of %d rounds)\n" target "req/s" "CPU-us/req" "req/s ratio" "CPU/req ratio" "$ROUNDS"
  for target in nginx-proxy-h2 otpgate-pass-h2; do
    awk -v t=$target -v q="$(mean "h2.rps.$target")" -v q0="$(mean h2.rps.nginx-proxy-h2)" -v c="$(mean "h2.cpu.$target")" \
      -v c0="$(mean h2.cpu.nginx-proxy-h2)" 'BEGIN { printf "%-16s %10.0f %12.1f %11.2fx %13.2fx\n", t, q, c, q / q0, c / c0 }'
  done
fi

# --- 4. TLS: HTTPS HTTP/1.1, keep-alive (steady state, not handshakes) ----------------------------
if [ "$TLS" != 0 ]; then
  negotiated() { openssl s_client -connect "127.0.0.1:$1" </dev/null 2>/dev/null | grep -m1 -o 'TLSv1.[0-9], Cipher is [A-Z0-9_-]*' || echo "?"; }
  echo
  echo "TLS: wrk over HTTPS, HTTP/1.1 keep-alive, $CONNS connections, the pass-through (demo ECDSA P-256 certificate)"
  echo "  nginx:   $(negotiated $PROXY_TLS)"
  echo "  otpgate: $(negotiated $GATE_TLS)"
  printf "%-16s %-5s %10s %9s %9s %12s\n" target round "req/s" "p50 ms" "p99 ms" "CPU-us/req"
  for r in $(seq "$ROUNDS"); do
    for target in nginx-proxy-tls otpgate-pass-tls; do
      if [ $target = nginx-proxy-tls ]; then
        line=$(wrk_run "$proxy_pid" "$CONNS" "https://127.0.0.1:$PROXY_TLS/bench/data.json")
      else
        line=$(wrk_run "$gate_pid" "$CONNS" "https://127.0.0.1:$GATE_TLS/bench/data.json")
      fi
      read -r q a b c bad errs <<<"$line"
      if [ "$bad" != 0 ]; then void $target "$bad answers were not 2xx"; fi
      if [ "$errs" != 0 ]; then void $target "$errs socket errors"; fi
      printf "%-16s %-5s %10s %9s %9s %12s\n" $target "$r" "$q" "$a" "$b" "$c"
      acc "tls.rps.$target" "$q"
      acc "tls.cpu.$target" "$c"
      acc "tls.p99.$target" "$b"
    done
  done
  echo
  printf "%-16s %10s %12s %10s %12s %14s   (means of %d rounds)\n" target "req/s" "CPU-us/req" "p99 ms" "req/s ratio" "CPU/req ratio" "$ROUNDS"
  for target in nginx-proxy-tls otpgate-pass-tls; do
    awk -v t=$target -v q="$(mean "tls.rps.$target")" -v q0="$(mean tls.rps.nginx-proxy-tls)" -v c="$(mean "tls.cpu.$target")" \
      -v c0="$(mean tls.cpu.nginx-proxy-tls)" -v p="$(mean "tls.p99.$target")" \
      'BEGIN { printf "%-16s %10.0f %12.1f %10.2f %11.2fx %13.2fx\n", t, q, c, p, q / q0, c / c0 }'
  done
fi

# --- 5. connection scaling: the pass-through beside nginx at each connection count ----------------
if [ -n "${CONNS_LIST// /}" ]; then
  echo
  echo "connection scaling: wrk, HTTP/1.1 plain, the pass-through, connections in {$CONNS_LIST}"
  printf "%-16s %7s %-5s %10s %9s %12s\n" target conns round "req/s" "p99 ms" "CPU-us/req"
  for r in $(seq "$ROUNDS"); do
    for n in $CONNS_LIST; do
      for target in nginx-proxy otpgate-pass; do
        line=$(wrk_run "${pid_of[$target]}" "$n" "${url_of[$target]}")
        read -r q a b c bad errs <<<"$line"
        if [ "$bad" != 0 ]; then void "$target" "$n connections: $bad answers were not 2xx"; fi
        if [ "$errs" != 0 ]; then void "$target" "$n connections: $errs socket errors"; fi
        printf "%-16s %7s %-5s %10s %9s %12s\n" "$target" "$n" "$r" "$q" "$b" "$c"
        acc "cs.rps.$target.$n" "$q"
        acc "cs.p99.$target.$n" "$b"
      done
    done
  done
  echo
  printf "%7s %12s %12s %12s %12s %12s   (means of %d rounds)\n" conns "nginx req/s" "gate req/s" "req/s ratio" "nginx p99" "gate p99" "$ROUNDS"
  for n in $CONNS_LIST; do
    awk -v n="$n" -v q0="$(mean "cs.rps.nginx-proxy.$n")" -v q="$(mean "cs.rps.otpgate-pass.$n")" \
      -v p0="$(mean "cs.p99.nginx-proxy.$n")" -v p="$(mean "cs.p99.otpgate-pass.$n")" \
      'BEGIN { printf "%7s %12.0f %12.0f %11.2fx %12.2f %12.2f\n", n, q0, q, q / q0, p0, p }'
  done
fi
