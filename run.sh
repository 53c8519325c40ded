#!/usr/bin/env bash
# Start a working gateway on this machine: virtualenv, dependencies, migrations,
# a demo tenant and key (printed), then the ASGI server on $HOST:$PORT.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/venv.sh requirements.txt
.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py loadconfig --if-exists
.venv/bin/python manage.py bootstrap_demo
echo "Gateway on http://${HOST:-127.0.0.1}:${PORT:-8000}  (admin UI: /admin/, API docs: /api/docs/)"
exec .venv/bin/daphne -b "${HOST:-127.0.0.1}" -p "${PORT:-8000}" gateway.asgi:application
