#!/usr/bin/env bash
# The streaming-redaction memory check of issue 6, in one command: run `otpgate demo` with a
# 5,000,000-record registry, pull the partner export of every district (`district_id=0`, ~1.7 GB of
# redacted JSON) as the demo partner `icmr` over mTLS, check it parses as JSON with every record,
# and print its size, the wall time and the demo process's peak RSS (VmHWM: gateway + registry),
# and check the audit trail's completion record counts every record.
#
#   bash scripts/export-rss.sh [BENEFICIARIES]        (default 5000000; needs curl, python3)
set -euo pipefail
N="${1:-5000000}"
cd "$(dirname "$0")/.."
cargo build --release --quiet
BIN="$PWD/target/release/otpgate"
WORK="$(mktemp -d)"
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
cd "$WORK"
"$BIN" demo --beneficiaries "$N" --listen 127.0.0.1:0 --admin 127.0.0.1:0 >out.txt 2>err.txt &
PID=$!
for _ in $(seq 100); do grep -q '^listening https ' out.txt 2>/dev/null && break; sleep 0.1; done
URL="$(awk '/^listening https /{print $3}' out.txt)"
[ -n "$URL" ] || { echo "demo did not start:" >&2; cat err.txt >&2; exit 1; }
D=otpgate-demo-data
curl -sS --fail --cacert $D/ca.pem --cert $D/partner-icmr.pem --key $D/partner-icmr-key.pem \
  -H "x-api-key: $(cat $D/partner-icmr.apikey)" -o export.json \
  -w 'export: HTTP %{http_code}, %{size_download} bytes in %{time_total} s\n' \
  "$URL/api/v2/partner/beneficiaries/export?district_id=0"
grep VmHWM "/proc/$PID/status" | awk '{printf "peak RSS of the demo process: %.1f MiB\n", $2 / 1024}'
python3 - "$N" <<'PY'
import json, sys
with open("export.json") as f:
    doc = json.load(f)
n = len(doc["beneficiaries"])
assert n == int(sys.argv[1]), f"{n} records, expected {sys.argv[1]}"
assert not any("name" in r or "appointments" in r for r in doc["beneficiaries"][:1000]), "research profile"
print(f"valid JSON, {n} records, redacted")
PY
# The audit trail's completion record of the export (written as the stream ends).
python3 - "$N" <<'PY'
import json, sys, time
for _ in range(50):
    done = [r for r in map(json.loads, open("otpgate-demo-data/audit.log"))
            if r.get("route") == "partner-export" and r.get("reason") == "stream_complete"]
    if done:
        assert done[-1]["record_count"] == int(sys.argv[1]), done[-1]
        print(f"audit: stream_complete, record_count {done[-1]['record_count']}")
        break
    time.sleep(0.1)
else:
    sys.exit("no stream_complete audit record")
PY
