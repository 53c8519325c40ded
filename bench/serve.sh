#!/usr/bin/env bash
# The gateway as production runs it (scripts/serve.sh), in the foreground, for
# the benchmark: PostgreSQL + Redis from DATABASE_URL / REDIS_URL, $WORKERS
# processes on 127.0.0.1:$PORT, every process a child of this one.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DATABASE_URL:?set DATABASE_URL=postgres://...}"
: "${REDIS_URL:?set REDIS_URL=redis://...}"
export HOST=127.0.0.1
exec scripts/serve.sh
