#!/usr/bin/env bash
# The whole test suite, as the README gives it and as CI runs it.
# Installs and starts what the tests need, then runs every test target.
set -euo pipefail
cd "$(dirname "$0")/.."

# Real components the tests talk to. Redis backs the distributed store's tests.
if command -v redis-cli >/dev/null 2>&1 && ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null 2>&1 || true
fi

# A real OpenTelemetry collector for the OTLP export tests.
if ! python3 -c "import rotel" >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check rotel
fi

# A published CoWIN client (PyPI `cowin`, pinned with its own old pins, so in a venv of its own),
# run unmodified against the demo by integration-tests/cowin_client.rs.
COWIN_VENV=target/cowin-venv
if ! "$COWIN_VENV/bin/python" -c "import cowin_api" >/dev/null 2>&1; then
  python3 -m venv "$COWIN_VENV"
  "$COWIN_VENV/bin/pip" install --quiet --disable-pip-version-check "cowin==0.0.5"
fi
export COWIN_PYTHON="$PWD/$COWIN_VENV/bin/python"

cargo test --locked --all-targets "$@"

# --- Alert rules (monitoring/): syntax and unit tests with promtool -----------------------------
# promtool comes with Debian's `prometheus` package (its server is not started here).
if ! command -v promtool >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }
fi
promtool check rules monitoring/otpgate-rules.yaml
(cd monitoring && promtool test rules otpgate-rules.test.yaml)

# --- Helm chart tests (helm/otpgate; owner: helm-tests/) ------------------------------------
# The real Helm SDK from PyPI: helm-python-sdk's wheel bundles libhelm_c (Helm's Go SDK behind a
# C ABI, loaded with ctypes), so no helm binary, Go toolchain or network is needed after install.
# The rendered policy files are checked with the otpgate binary built above.
if ! python3 -c "import helm_python, sys; sys.exit(helm_python.__version__ != '0.2.2')" >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "helm-python-sdk==0.2.2"
fi
[ -x target/debug/otpgate ] || cargo build --locked --bin otpgate
OTPGATE_BIN=target/debug/otpgate python3 helm-tests/test_chart.py
# --- end of Helm chart tests -------------------------------------------------------------------
