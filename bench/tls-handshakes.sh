#!/usr/bin/env bash
# Full vs resumed TLS handshakes: server CPU per connection, otpgate beside nginx (issue 17).
#
#   bash bench/tls-handshakes.sh            # 3 alternating rounds of 5 s per case
#   ROUNDS=5 SECONDS_PER_RUN=10 bash bench/tls-handshakes.sh
#
# Both servers present the same certificate and key (the demo's ECDSA P-256 pair), speak TLS 1.3,
# run on one pinned core (cpu 0) with the client on the other (cpu 1), and answer one small GET per
# connection (a 404: the request after the handshake is what delivers the session tickets).
# `openssl s_time -new` makes every connection a full handshake; `-reuse` resumes the first
# connection's session on every later one. Server CPU comes from /proc/PID/stat (utime+stime) of
# the otpgate process and of nginx's single worker, divided by the connections made.
# Installs nginx from the distribution if missing. Not run in CI (a load run).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
if ! command -v nginx >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light >/dev/null; }
fi
# OTPGATE_BIN=path skips the build (a binary built earlier from this tree).
BIN=${OTPGATE_BIN:-target/release/otpgate}
[ -n "${OTPGATE_BIN:-}" ] || cargo build --release --locked --quiet --bin otpgate
work=$(mktemp -d)
cleanup() {
  [ -n "${gw:-}" ] && kill "$gw" 2>/dev/null || true
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  sleep 0.5
  rm -rf "$work"
}
trap cleanup EXIT

# otpgate: the demo (its registry idles in the same process), HTTPS on a fixed port.
OTP_PORT=18443 NGX_PORT=18444
taskset -c 0 "$BIN" demo --listen 127.0.0.1:$OTP_PORT --admin 127.0.0.1:0 \
  --data-dir "$work/demo" >"$work/otpgate.out" 2>&1 &
gw=$!
for _ in $(seq 100); do grep -q "listening https" "$work/otpgate.out" 2>/dev/null && break; sleep 0.1; done

mkdir -p "$work/nginx"
cat >"$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx; proxy_temp_path $work/nginx; fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
  server {
    listen 127.0.0.1:$NGX_PORT ssl;
    ssl_certificate $work/demo/server.pem;
    ssl_certificate_key $work/demo/server-key.pem;
    ssl_protocols TLSv1.3;
    ssl_session_cache shared:SSL:10m;
    ssl_session_tickets on;
    location / { default_type application/json; return 404 '{"errorCode":"GWY4040"}'; }
  }
}
CONF
taskset -c 0 nginx -c "$work/nginx.conf" -e "$work/nginx/error.log"
sleep 0.5
ngx_worker=$(pgrep -P "$(cat "$work/nginx.pid")" | head -1)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# run PID PORT MODE -> "conns real_seconds cpu_us_per_conn"; a resumed run must resume every time
# after its first connection (s_time prints `r` for each).
run() {
  local pid=$1 port=$2 mode=$3 before after out line
  before=$(cpu_ticks "$pid")
  out=$(taskset -c 1 openssl s_time -connect 127.0.0.1:"$port" -"$mode" -tls1_3 -time "$SECONDS_PER_RUN" \
        -www / 2>/dev/null)
  after=$(cpu_ticks "$pid")
  if [ "$mode" = reuse ] && [ "$(grep -o '\*' <<<"$out" | wc -l)" -gt 1 ]; then
    echo "port $port: sessions were not resumed" >&2
    exit 1
  fi
  line=$(grep -E "connections in [0-9]+ real seconds" <<<"$out" | tail -1)
  awk -v t=$((after - before)) -v hz="$hz" '{ printf "%d %d %.1f\n", $1, $4, t * 1e6 / hz / $1 }' <<<"$line"
}

printf "%-8s %-8s %-6s %12s %16s\n" server mode round "conn/s" "CPU-us/conn"
declare -A sum
for r in $(seq "$ROUNDS"); do
  for mode in new reuse; do
    for server in nginx otpgate; do
      if [ $server = nginx ]; then pid=$ngx_worker port=$NGX_PORT; else pid=$gw port=$OTP_PORT; fi
      read -r conns secs us < <(run "$pid" "$port" $mode)
      printf "%-8s %-8s %-6s %12.0f %16s\n" $server $mode "$r" "$(awk -v c="$conns" -v s="$secs" 'BEGIN{print c/s}')" "$us"
      sum[$server.$mode]=$(awk -v a="${sum[$server.$mode]:-0}" -v b="$us" 'BEGIN{print a+b}')
    done
  done
done
echo
avg() { awk -v s="${sum[$1]}" -v n="$ROUNDS" 'BEGIN{printf "%.1f", s/n}'; }
for server in nginx otpgate; do
  printf "%-8s full %s us  resumed %s us  resumed/full %.2f\n" $server "$(avg $server.new)" "$(avg $server.reuse)" \
    "$(awk -v a="$(avg $server.reuse)" -v b="$(avg $server.new)" 'BEGIN{print a/b}')"
done
printf "otpgate/nginx CPU per connection: full %.2f, resumed %.2f\n" \
  "$(awk -v a="$(avg otpgate.new)" -v b="$(avg nginx.new)" 'BEGIN{print a/b}')" \
  "$(awk -v a="$(avg otpgate.reuse)" -v b="$(avg nginx.reuse)" 'BEGIN{print a/b}')"
