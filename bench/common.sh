# shellcheck shell=bash
# Shared by bench/run.sh and bench/instructions.sh (sourced): the bench copy of the policy and a
# citizen sign-in. Not a script of its own.

# bench_policy DIR BACKEND_PORT MAX_CONNECTIONS: the shipped policy in DIR with OTPs to an outbox,
# the citizen session limit raised, room for MAX_CONNECTIONS and a pass-through route
# /bench/data.json to the nginx backend; fails if the shipped text an edit expects has moved.
bench_policy() {
  mkdir -p "$1"
  cp policies/*.yaml "$1/"
  bench_edit "$1/citizens.yaml" 's|      webhook: {url: "http://127.0.0.1:8025/otp", timeout: 3s}|      outbox: {path: otp-outbox.jsonl}|'
  bench_edit "$1/routes.yaml" 's|{key: session, rate: \[{limit: 30, per: 15m}\]}|{key: session, rate: [{limit: 1000000000, per: 1m}]}|'
  # Open connections per listener (default 10000).
  bench_edit "$1/gateway.yaml" "s|max_connections: 10000 |max_connections: $3 |"
  cat >"$1/zz-bench.yaml" <<YAML
upstreams:
  backend: {url: 'http://127.0.0.1:$2'}
routes:
  - {name: bench-pass, methods: [GET], path: /bench/data.json, access: public, upstream: backend}
YAML
}

bench_edit() { # FILE SED-EXPRESSION, failing if it changed nothing
  local before
  before=$(md5sum <"$1")
  sed -i "$2" "$1"
  [ "$(md5sum <"$1")" != "$before" ] || { echo "bench: '$2' changed nothing in $1 (the policy moved?)" >&2; exit 1; }
}

# session PORT DATA: OTP sign-in through the gateway on PORT (its outbox in DATA); prints the token.
session() {
  local txn otp sha token
  txn=$(curl -fs -X POST "http://127.0.0.1:$1/api/v2/auth/public/generateOTP" -d '{"mobile":"9000000001"}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["txnId"])')
  for _ in $(seq 50); do grep -q "$txn" "$2/otp-outbox.jsonl" 2>/dev/null && break; sleep 0.1; done
  otp=$(python3 -c 'import json,sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("txnId") == sys.argv[2]: print(m["otp"])' "$2/otp-outbox.jsonl" "$txn")
  sha=$(printf %s "$otp" | sha256sum | cut -d' ' -f1)
  token=$(curl -fs -X POST "http://127.0.0.1:$1/api/v2/auth/public/confirmOTP" -d "{\"otp\":\"$sha\",\"txnId\":\"$txn\"}" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  curl -fs -o /dev/null -H "Authorization: Bearer $token" "http://127.0.0.1:$1/api/v2/appointment/beneficiaries"
  printf %s "$token"
}

need() { # COMMAND PACKAGE: install PACKAGE from the distribution when COMMAND is missing
  command -v "$1" >/dev/null 2>&1 && return
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null; }
}

bench_data() { # FILE: the 1 KB JSON document every backend serves
  python3 -c "import json; print(json.dumps({'centers': [{'center_id': i, 'name': 'Centre %d' % i, 'pincode': 110000 + i} for i in range(16)]})[:1000])" \
    >"$1"
}

# bench_backend DIR PORT: nginx (one worker, on cpu 1) serving DIR/data.json at /bench/data.json on
# PORT, keeping connections for the whole run; its pid file is DIR/nginx.pid.
bench_backend() {
  bench_data "$1/data.json"
  cat >"$1/nginx.conf" <<CONF
worker_processes 1;
worker_cpu_affinity 10;
pid $1/nginx.pid;
error_log $1/nginx.err;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $1; proxy_temp_path $1; fastcgi_temp_path $1; uwsgi_temp_path $1; scgi_temp_path $1;
  server { listen 127.0.0.1:$2 backlog=4096; keepalive_requests 1000000;
           location = /bench/data.json { default_type application/json; alias $1/data.json; } }
}
CONF
  nginx -c "$1/nginx.conf" -e "$1/nginx.err"
}

# bench_setup BIN MAX_CONNECTIONS: what bench/instructions.sh and bench/ab.sh run against — a
# scratch dir in $work (removed at exit, with every process in $pids), the nginx backend on
# $BACKEND, the bench policy (bench_policy), keys made by BIN and its synthetic registry on
# $REGISTRY (cpu 1).
bench_setup() {
  work=$(mktemp -d)
  pids=()
  trap bench_cleanup EXIT
  bench_backend "$work" "$BACKEND"
  bench_policy "$work/policy" "$BACKEND" "$2"
  "$1" keys generate --dir "$work/keys" >/dev/null
  taskset -c 1 "$1" registry-sim --listen 127.0.0.1:"$REGISTRY" --identity-key-file "$work/keys/identity.key" \
    >"$work/registry.out" 2>&1 &
  pids+=($!)
}

# bench_cleanup: the EXIT trap of a script that keeps its scratch dir in $work and the processes it
# started in $pids: stops them and the nginx of $work, removes $work.
bench_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  sleep 0.5
  rm -rf "$work"
}
