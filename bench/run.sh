#!/usr/bin/env bash
# Gateway overhead benchmark, ours and LiteLLM's in the same run, with the shared
# harness (../shared/bench: nginx mock upstream on 127.0.0.1:18080, wrk).
#
#   bench/run.sh [PEER...]        PEER: litellm-1w | litellm-2w | portkey (default: litellm-2w)
#
# Env: WORKERS (2), SERVER (uvicorn|daphne), PORT (18100), REPEAT (1), and the
#      harness's DURATION, WARMUP, CONCURRENCY, MODES. PEERS_DIR (default
#      ../peers) holds the peers' virtualenvs and the mock's files.
#      BENCH_DATABASE_URL (postgres://postgres@127.0.0.1:5432/gateway_bench),
#      BENCH_REDIS_URL (redis://127.0.0.1:6379/3). Both are wiped and rebuilt.
#
# Our gateway runs with every feature on: auth, quotas and budgets at key, user
# and tenant level, RPM/TPM and parallel limits (set high enough never to
# refuse), routing with circuit breaker, usage recording, PostgreSQL + Redis.
# Results are appended to bench/RESULTS.md (raw JSON in bench/results/).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
HARNESS="$ROOT/../shared/bench"
export PEERS_DIR="${PEERS_DIR:-$ROOT/../peers}"
export RESULTS="${RESULTS:-$ROOT/bench/RESULTS.md}"
PEERS=("$@"); [ ${#PEERS[@]} -gt 0 ] || PEERS=(litellm-2w)
WORKERS="${WORKERS:-2}"
SERVER="${SERVER:-uvicorn}"
PORT="${PORT:-18100}"
REPEAT="${REPEAT:-1}"
DB_URL="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/gateway_bench}"
export DATABASE_URL="$DB_URL" REDIS_URL="${BENCH_REDIS_URL:-redis://127.0.0.1:6379/3}"
export GATEWAY_CONFIG="$ROOT/bench/gateway-bench.yaml" LOG_LEVEL=WARNING
mkdir -p "$PEERS_DIR"

source scripts/venv.sh requirements.txt
PY=.venv/bin/python

echo "== fresh database and Redis for the benchmark"
$PY - "$DB_URL" <<'PYEOF'
import sys
from urllib.parse import urlsplit
import psycopg
url = urlsplit(sys.argv[1]); name = url.path.lstrip("/")
admin = url._replace(path="/postgres").geturl()
with psycopg.connect(admin, autocommit=True) as conn:
    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.execute(f'CREATE DATABASE "{name}"')
PYEOF
$PY -c "import redis, os; redis.Redis.from_url(os.environ['REDIS_URL']).flushdb()"
$PY manage.py migrate --noinput >/dev/null
$PY manage.py loadconfig "$GATEWAY_CONFIG"
KEY="$($PY manage.py genkey --tenant bench --user bench --name bench --json \
  --token-quota 1000000000000 --budget-usd 10000000 --rpm 1000000000 --tpm 2000000000 --max-parallel 100000 \
  | $PY -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')"
$PY - <<'PYEOF'
import os, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings"); django.setup()
from accounts.models import ApiUser, Tenant
# Quotas and limits on every level, high enough never to refuse.
Tenant.objects.filter(name="bench").update(token_quota=10**12, budget_usd=10**7, rpm=10**9, tpm=2 * 10**9)
ApiUser.objects.filter(username="bench").update(token_quota=10**12, budget_usd=10**7, rpm=10**9, tpm=2 * 10**9)
PYEOF

cleanup() {
  [ -n "${GW_PID:-}" ] && kill "$GW_PID" 2>/dev/null && wait "$GW_PID" 2>/dev/null || true
  "$HARNESS/mock/mock.sh" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

"$HARNESS/mock/mock.sh" start
echo "== our gateway: SERVER=$SERVER WORKERS=$WORKERS on 127.0.0.1:$PORT"
PORT="$PORT" WORKERS="$WORKERS" SERVER="$SERVER" bench/serve.sh > "$PEERS_DIR/gateway-bench.log" 2>&1 &
GW_PID=$!
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "http://127.0.0.1:$PORT/api/v1/health" 2>/dev/null && break
  sleep 0.2
done
LABEL="llm-gateway $(git rev-parse --short HEAD), $SERVER, $WORKERS worker(s), PostgreSQL + Redis, all features on"
for r in $(seq 1 "$REPEAT"); do
  GATEWAY_PIDS="$GW_PID" NOTE="bench/run.sh; SERVER=$SERVER WORKERS=$WORKERS; key with quotas, budgets, RPM/TPM and parallel limits on key, user and tenant; usage recorded" \
    "$HARNESS/run_bench.sh" "http://127.0.0.1:$PORT/v1" "$KEY" bench-model "$LABEL run $r/$REPEAT"
done
kill "$GW_PID"; wait "$GW_PID" 2>/dev/null || true; GW_PID=
"$HARNESS/mock/mock.sh" stop

[ "${PEERS[0]}" = none ] && exit 0
echo "== peers: ${PEERS[*]}"
# The peers get none of our environment (LiteLLM would pick up DATABASE_URL).
env -u DATABASE_URL -u REDIS_URL -u GATEWAY_CONFIG REPEAT="$REPEAT" "$HARNESS/run_peers.sh" "${PEERS[@]}"
python3 "$HARNESS/lib/summarize.py" bench/results/*.json || true
