#!/usr/bin/env bash
# Schemathesis against local-api with the OpenAPI document it serves (docs/openapi.json):
# no 5xx and no answer that breaks the document. Starts target/debug/local-api (built first
# unless SKIP_BUILD=1) on a free 127.0.0.1 port, runs a bounded schemathesis, stops the server.
#
#   bash tests/load/schemathesis.sh            # installs schemathesis into a venv if missing
#   ST_MAX_EXAMPLES=50 ST_MAX_TIME=120 bash tests/load/schemathesis.sh
#
# Exits non-zero when schemathesis finds a failure or the server dies. The whole run takes
# ST_MAX_TIME (120 s) plus start-up; the first run also installs schemathesis (about 40 s).
#
# Checks: all of schemathesis's, negative_data_rejection included (the schemas describe the
# lenient parsing: unknown keys allowed, `null` read as absent, surrounding whitespace
# trimmed), except:
# - positive_data_acceptance: a schema-valid request carries secrets the server never
#   issued (tokens, codes, ids, passwords), and the contract answers those with 400
#   (invalid_grant, invalid_verification_code, invalid_username_or_password,
#   invalid_password), 403 or 412 (WeChat is not configured locally), never 2xx.
# The stateful phase is off: the document declares no links. One worker: with more,
# CPython 3.11's `ast.parse` is not thread-safe and hypothesis fails with "AST constructor
# recursion depth mismatch".
set -euo pipefail
cd "$(dirname "$0")/../.."

SCHEMATHESIS_VERSION="${SCHEMATHESIS_VERSION:-4.32.5}"
MAX_EXAMPLES="${ST_MAX_EXAMPLES:-25}"
MAX_TIME="${ST_MAX_TIME:-120}"
SEED="${ST_SEED:-20240601}"
target_dir="${CARGO_TARGET_DIR:-target}"
work="$(mktemp -d "${TMPDIR:-/tmp}/schemathesis.XXXXXX")"

# schemathesis lives in its own venv so its pins never meet the other test tools'.
venv="${ST_VENV:-${TMPDIR:-/tmp}/schemathesis-venv-$SCHEMATHESIS_VERSION}"
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  cargo build --quiet --locked -p local-api --bin local-api
fi

server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# PORT=0: the server picks a free port and prints it. Every request comes from this one
# client, so the per-client limits (and the per-address, per-name and SMS budgets) are raised
# beyond the run, as in tests/load/generated_requests.rs: schemathesis reaches the operations
# behind them instead of only the 429 (which is allowed too).
PORT=0 RUST_LOG=warn AUTH_STORE=memory AUTH_DELIVERY=outbox \
  AUTH_CODE_SENDS_PER_IP_PER_HOUR=100000000 \
  AUTH_VERIFY_ATTEMPTS_PER_IP_PER_HOUR=100000000 \
  AUTH_PROVIDER_GRANTS_PER_IP_PER_HOUR=100000000 \
  AUTH_SIGNIN_FAILURES_PER_IP_PER_HOUR=100000000 \
  AUTH_SIGNUPS_PER_IP_PER_HOUR=100000000 \
  AUTH_SMS_SENDS_PER_HOUR=100000000 \
  AUTH_CODE_SENDS_PER_ADDRESS_PER_HOUR=100000000 \
  AUTH_PASSWORD_FREE_FAILURES=100000000 \
  AUTH_CODE_RESEND_INTERVAL_SECS=0 \
  "$target_dir/debug/local-api" > "$work/server.out" 2> "$work/server.err" &
server_pid=$!
origin=""
for _ in $(seq 1 100); do
  origin="$(sed -n 's#^local-api listening on \(http://127\.0\.0\.1:[0-9]*\).*#\1#p' "$work/server.out")"
  [ -n "$origin" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.err" >&2; exit 1; }
  sleep 0.1
done
[ -n "$origin" ] || { echo "local-api did not start" >&2; exit 1; }
echo "local-api at $origin"

# A real account, so that the signed-in operations are tested past the token check.
sign_up() {
  curl -fsS -XPOST "$origin/auth/v1/signup" -d "{\"username\":\"$1\",\"password\":\"correct horse battery\"}" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}

# One schemathesis run over the operations its filter arguments select.
run_schemathesis() {
  local seconds="$1"
  shift
  timeout --signal=INT --kill-after=20 "$((seconds + 60))" \
    "$venv/bin/schemathesis" --config-file tests/load/schemathesis.toml \
    run "$origin/auth/v1/openapi.json" \
    --url "$origin" \
    --checks all \
    --exclude-checks positive_data_acceptance \
    --phases examples,coverage,fuzzing \
    --max-examples "$MAX_EXAMPLES" \
    --max-time "$seconds" \
    --seed "$SEED" \
    --workers 1 \
    --request-timeout 10 \
    --suppress-health-check all \
    --no-color \
    "$@"
}

status=0
# Sign-out and revoke end the session they are given, so they run last with their own.
ST_ACCESS_TOKEN="$(sign_up schemathesis)"
export ST_ACCESS_TOKEN
run_schemathesis "$((MAX_TIME * 5 / 6))" \
  --exclude-operation-id Revoke --exclude-operation-id SignOut || status=$?
ST_ACCESS_TOKEN="$(sign_up schemathesis-signout)"
run_schemathesis "$((MAX_TIME / 6))" \
  --include-operation-id Revoke --include-operation-id SignOut || status=$?

if ! kill -0 "$server_pid" 2>/dev/null; then
  echo "local-api died during the run" >&2
  tail -n 50 "$work/server.err" >&2
  exit 1
fi
if ! curl -fsS "$origin/auth/v1/openapi.json" > /dev/null; then
  echo "local-api stopped answering" >&2
  exit 1
fi
exit "$status"
