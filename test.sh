#!/usr/bin/env bash
# Run the whole test suite (extra arguments go to pytest).
# SQLite + in-process cache by default; set DATABASE_URL / REDIS_URL to test on PostgreSQL + Redis.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/venv.sh requirements-dev.txt
exec .venv/bin/python -m pytest "$@"
