#!/usr/bin/env bash
# otpgate beside nginx on the same work (issue 15): one command, ratios from alternating runs.
#
#   bash bench/run.sh                       # 3 rounds x 10 s per target, 32 connections
#   ROUNDS=5 DURATION=20 CONNS=256 bash bench/run.sh
#   OTPGATE_BIN=path bash bench/run.sh      # a binary built earlier (skips the release build)
#   PERF_DIR=dir bash bench/run.sh          # also profile otpgate (perf, cpu-clock) in round 1:
#                                           # dir/TARGET.data and dir/TARGET.txt (perf report)
#
# Targets, all HTTP/1.1 plain on loopback, the proxy pinned to cpu 0, backends and wrk on cpu 1:
#   nginx-proxy     nginx proxy_pass (1 worker, upstream keepalive) to an nginx backend (1 KB JSON)
#   otpgate-pass    otpgate, a public pass-through route to the same nginx backend
#   otpgate-citizen otpgate, GET /api/v2/appointment/beneficiaries with a session: token, session
#                   store, limits (raised so nothing is refused), ownership, citizen redaction and a
#                   durable audit record per request, against the synthetic registry
# Printed per run: req/s, p50/p99 (wrk), CPU-µs per request of the proxy process (utime+stime from
# /proc, kernel work included); then each target's mean as a ratio to nginx-proxy.
# Installs nginx and wrk from the distribution if missing. Not run in CI (a load run).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-10} CONNS=${CONNS:-32}
for pkg in nginx:nginx-light wrk:wrk; do
  if ! command -v "${pkg%%:*}" >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkg#*:}" >/dev/null \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkg#*:}" >/dev/null; }
  fi
done
BIN=${OTPGATE_BIN:-target/release/otpgate}
[ -n "${OTPGATE_BIN:-}" ] || cargo build --release --locked --quiet --bin otpgate

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for f in "$work"/nginx-*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
  sleep 0.5
  rm -rf "$work"
}
trap cleanup EXIT
BACKEND=18081 PROXY=18082 GATE=18083 ADMIN=18084 REGISTRY=18085

# --- nginx: a backend with a 1 KB JSON document, and a proxy in front of it --------------------
python3 -c "import json; print(json.dumps({'centers': [{'center_id': i, 'name': 'Centre %d' % i, 'pincode': 110000 + i} for i in range(16)]})[:1000])" \
  >"$work/data.json"
nginx_conf() { # NAME CPU BODY
  cat >"$work/nginx-$1.conf" <<CONF
worker_processes 1;
worker_cpu_affinity $(if [ "$2" = 0 ]; then echo 01; else echo 10; fi);
pid $work/nginx-$1.pid;
error_log $work/nginx-$1.err;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work; proxy_temp_path $work; fastcgi_temp_path $work; uwsgi_temp_path $work; scgi_temp_path $work;
  $3
}
CONF
  nginx -c "$work/nginx-$1.conf" -e "$work/nginx-$1.err"
}
nginx_conf backend 1 "server { listen 127.0.0.1:$BACKEND; location = /bench/data.json { default_type application/json; alias $work/data.json; } }"
nginx_conf proxy 0 "upstream backend { server 127.0.0.1:$BACKEND; keepalive 64; }
  server { listen 127.0.0.1:$PROXY; location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }"
sleep 0.5
proxy_pid=$(pgrep -P "$(cat "$work/nginx-proxy.pid")" | head -1)

# --- otpgate: the shipped policy, OTPs to an outbox, limits raised, plus a pass-through route ----
mkdir -p "$work/policy" "$work/data"
cp policies/*.yaml "$work/policy/"
sed -i 's|      webhook: {url: "http://127.0.0.1:8025/otp", timeout: 3s}|      outbox: {path: otp-outbox.jsonl}|' "$work/policy/citizens.yaml"
sed -i 's|{key: session, rate: \[{limit: 30, per: 15m}\]}|{key: session, rate: [{limit: 1000000000, per: 1m}]}|' "$work/policy/routes.yaml"
cat >"$work/policy/zz-bench.yaml" <<YAML
upstreams:
  backend: {url: 'http://127.0.0.1:$BACKEND'}
routes:
  - {name: bench-pass, methods: [GET], path: /bench/data.json, access: public, upstream: backend}
YAML
"$BIN" keys generate --dir "$work/keys" >/dev/null
taskset -c 1 "$BIN" registry-sim --listen 127.0.0.1:$REGISTRY --identity-key-file "$work/keys/identity.key" \
  >"$work/registry.out" 2>&1 &
pids+=($!)
taskset -c 0 "$BIN" serve --config "$work/policy" --keys-dir "$work/keys" --data-dir "$work/data" \
  --listen-plain 127.0.0.1:$GATE --admin 127.0.0.1:$ADMIN --upstream registry=http://127.0.0.1:$REGISTRY \
  --insecure-otp-outbox >"$work/otpgate.out" 2>&1 &
gate_pid=$!
pids+=($gate_pid)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$ADMIN/readyz" >/dev/null 2>&1 && break; sleep 0.1; done

# A citizen session for the citizen route.
txn=$(curl -fs -X POST "http://127.0.0.1:$GATE/api/v2/auth/public/generateOTP" -d '{"mobile":"9000000001"}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["txnId"])')
otp=$(python3 -c 'import json,sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("txnId") == sys.argv[2]: print(m["otp"])' "$work/data/otp-outbox.jsonl" "$txn")
sha=$(printf %s "$otp" | sha256sum | cut -d' ' -f1)
token=$(curl -fs -X POST "http://127.0.0.1:$GATE/api/v2/auth/public/confirmOTP" -d "{\"otp\":\"$sha\",\"txnId\":\"$txn\"}" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
curl -fs -o /dev/null -H "Authorization: Bearer $token" "http://127.0.0.1:$GATE/api/v2/appointment/beneficiaries"
curl -fs -o /dev/null "http://127.0.0.1:$GATE/bench/data.json"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
ms() { # wrk latency ("812.00us", "1.20ms", "2.00s") in ms
  awk '{ v = $1; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 }; printf "%.2f", v }' <<<"$1"
}
# run PID URL [HEADER] -> "req/s p50 p99 cpu_us_per_req non2xx"
run() {
  local pid=$1 url=$2 header=${3:-} before after out rps reqs p50 p99 bad
  before=$(cpu_ticks "$pid")
  if [ -n "$header" ]; then
    out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"$DURATION"s --latency -H "$header" "$url")
  else
    out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"$DURATION"s --latency "$url")
  fi
  after=$(cpu_ticks "$pid")
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  p50=$(ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
  p99=$(ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
  bad=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  awk -v r="$rps" -v n="$reqs" -v t=$((after - before)) -v hz="$hz" -v a="$p50" -v b="$p99" -v x="${bad:-0}" \
    'BEGIN { printf "%.0f %s %s %.1f %d\n", r, a, b, t * 1e6 / hz / n, x }'
}

printf "%-16s %-5s %10s %9s %9s %12s\n" target round "req/s" "p50 ms" "p99 ms" "CPU-us/req"
declare -A rps cpu p99
for r in $(seq "$ROUNDS"); do
  for target in nginx-proxy otpgate-pass otpgate-citizen; do
    if [ -n "${PERF_DIR:-}" ] && [ "$r" = 1 ] && [ $target != nginx-proxy ]; then
      mkdir -p "$PERF_DIR"
      perf record -q -e cpu-clock -F 499 -g -p "$gate_pid" -o "$PERF_DIR/$target.data" -- sleep "$DURATION" \
        >/dev/null 2>&1 &
      perf_pid=$!
    fi
    case $target in
      nginx-proxy) line=$(run "$proxy_pid" "http://127.0.0.1:$PROXY/bench/data.json") ;;
      otpgate-pass) line=$(run "$gate_pid" "http://127.0.0.1:$GATE/bench/data.json") ;;
      otpgate-citizen) line=$(run "$gate_pid" "http://127.0.0.1:$GATE/api/v2/appointment/beneficiaries" "Authorization: Bearer $token") ;;
    esac
    read -r q a b c bad <<<"$line"
    if [ -n "${perf_pid:-}" ]; then
      wait "$perf_pid" || true
      perf report -i "$PERF_DIR/$target.data" --stdio --no-children --percent-limit 1 2>/dev/null >"$PERF_DIR/$target.txt" || true
      perf_pid=
    fi
    if [ "$bad" != 0 ]; then echo "$target: $bad answers were not 2xx (a limit or an error): the run is void" >&2; exit 1; fi
    printf "%-16s %-5s %10s %9s %9s %12s\n" $target "$r" "$q" "$a" "$b" "$c"
    rps[$target]=$(awk -v s="${rps[$target]:-0}" -v v="$q" 'BEGIN{print s + v}')
    cpu[$target]=$(awk -v s="${cpu[$target]:-0}" -v v="$c" 'BEGIN{print s + v}')
    p99[$target]=$(awk -v s="${p99[$target]:-0}" -v v="$b" 'BEGIN{print s + v}')
  done
done
echo
printf "%-16s %12s %14s %10s   (means of %d rounds, %d connections)\n" target "req/s ratio" "CPU/req ratio" "p99 ms" "$ROUNDS" "$CONNS"
for target in nginx-proxy otpgate-pass otpgate-citizen; do
  awk -v t=$target -v q="${rps[$target]}" -v q0="${rps[nginx-proxy]}" -v c="${cpu[$target]}" -v c0="${cpu[nginx-proxy]}" \
    -v p="${p99[$target]}" -v n="$ROUNDS" 'BEGIN { printf "%-16s %11.2fx %13.2fx %10.2f\n", t, q / q0, c / c0, p / n }'
done
