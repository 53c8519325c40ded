#!/usr/bin/env bash
# Production start: migrate, apply gateway.yaml (if any), then serve
# gateway.asgi:application with $WORKERS processes on $HOST:$PORT.
#
#   SERVER=uvicorn (default: uvloop + httptools, the fastest measured here)
#   SERVER=daphne  (Channels' server; one process, WORKERS is ignored)
#
# The server replaces this script (exec), so its PID is the server's and every
# worker is its child.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON_BIN:-.venv/bin/python}"
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
WORKERS="${WORKERS:-2}"
# Prometheus values of every worker, added up at scrape time; emptied at each start.
export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-${TMPDIR:-/tmp}/llm-gateway-metrics-$PORT}"
rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
"$PYTHON" manage.py migrate --noinput >/dev/null
"$PYTHON" manage.py loadconfig --if-exists
case "${SERVER:-uvicorn}" in
  uvicorn)
    exec "$PYTHON" -m uvicorn gateway.asgi:application --host "$HOST" --port "$PORT" --workers "$WORKERS" \
      --loop uvloop --http httptools --lifespan off --no-access-log --no-proxy-headers --log-level warning ;;
  daphne)
    exec "$PYTHON" -m daphne -b "$HOST" -p "$PORT" gateway.asgi:application ;;
  *)
    echo "serve.sh: unknown SERVER=${SERVER} (uvicorn|daphne)" >&2; exit 2 ;;
esac
