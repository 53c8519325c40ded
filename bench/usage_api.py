"""Time every usage endpoint over a realistic usage table.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/usage_api.py --rows 1000000

Creates its own database on the DATABASE_URL's server (`gateway_usage_bench`,
dropped and recreated; the URL's own database is only connected to, never
touched), migrates it, loads `--rows` usage records spread over 90 days (20
tenants, 200 users and keys, 10 models, 5 providers) with COPY, runs VACUUM
ANALYZE, then calls each endpoint through Django's test client as the global
admin and as the admin of the busiest tenant: one warm-up, then the median of
`--runs`. Exits 1 if any median is over `--limit-ms`.

SQLite is refused unless `--allow-sqlite` (a throwaway file; numbers not comparable).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
ADMIN_KEY = "bench-global-admin-key-0123456789"
DB_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
DAYS_OF_DATA = 90

# model -> (provider, USD per 1M input tokens, USD per 1M output tokens, share of traffic)
MODELS = {
    "gpt-4o": ("openai", 2.50, 10.00, 12),
    "gpt-4o-mini": ("openai", 0.15, 0.60, 30),
    "o3-mini": ("openai", 1.10, 4.40, 4),
    "text-embedding-3-small": ("openai", 0.02, 0.0, 8),
    "claude-3-5-sonnet": ("anthropic", 3.00, 15.00, 10),
    "claude-3-5-haiku": ("anthropic", 0.80, 4.00, 12),
    "gemini-1.5-pro": ("google", 1.25, 5.00, 4),
    "gemini-1.5-flash": ("google", 0.075, 0.30, 8),
    "llama-3.1-70b": ("groq", 0.59, 0.79, 6),
    "llama3:8b": ("ollama", 0.0, 0.0, 6),
}
SERVICES = ["chatbot", "search", "summarize", "translate", "support", "codegen", "classify", "rag"]
# (status, error code, share)
OUTCOMES = [(200, "", 930), (429, "rate_limited", 20), (502, "upstream_error", 20), (400, "invalid_request", 10),
            (499, "client_disconnected", 10), (504, "upstream_timeout", 10)]  # fmt: skip
COLUMNS = (
    "created_at", "request_id", "tenant_id", "user_id", "key_id", "username", "service", "task_type", "endpoint",
    "requested_model", "provider", "upstream_model", "input_tokens", "output_tokens", "cached_tokens", "cost_usd",
    "priced", "latency_ms", "status", "error_code", "cached", "stream", "attempts", "disconnected", "estimated",
)  # fmt: skip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5, help="timed calls per endpoint and role (median reported)")
    parser.add_argument("--limit-ms", type=float, default=200.0, help="fail if a median is over this")
    parser.add_argument("--db-name", default="gateway_usage_bench")
    parser.add_argument("--keep", action="store_true", help="leave the bench database in place afterwards")
    parser.add_argument("--reuse", action="store_true", help="use a kept bench database as it is (no reload)")
    parser.add_argument("--allow-sqlite", action="store_true", help="run on a temporary SQLite file")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    if not DB_NAME.fullmatch(args.db_name):
        parser.error("--db-name: lower-case letters, digits and '_' only")
    return args


# --- database ------------------------------------------------------------------


def point_at_bench_database(args: argparse.Namespace) -> str:
    """Make DATABASE_URL name the bench database (recreated unless --reuse); return the vendor."""
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        if not args.allow_sqlite:
            sys.exit("bench/usage_api.py: DATABASE_URL is not set; point it at PostgreSQL (or pass --allow-sqlite)")
        path = Path(tempfile.gettempdir()) / f"{args.db_name}.sqlite3"
        if not args.reuse:
            path.unlink(missing_ok=True)
        os.environ["SQLITE_PATH"] = str(path)
        return "sqlite"
    parts = urlsplit(url)
    if parts.path.lstrip("/") == args.db_name:
        sys.exit(f"bench/usage_api.py: DATABASE_URL already names {args.db_name!r}; give the server's usual database")
    if not args.reuse:
        recreate_database(url, args.db_name)
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path="/" + args.db_name))
    return "postgresql"


def recreate_database(url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    # Connected to the URL's database only to issue CREATE/DROP DATABASE, which act on `name` alone.
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# --- data ------------------------------------------------------------------------


def make_accounts():
    """20 tenants of 10 users with a key each, and an admin key for the busiest tenant."""
    from accounts.models import ApiKey, ApiUser, Tenant

    keys = []
    for t in range(20):
        tenant = Tenant.objects.create(name=f"tenant-{t:02d}")
        for u in range(10):
            user = ApiUser.objects.create(tenant=tenant, username=f"user-{t:02d}-{u}")
            key, _ = ApiKey.objects.create_key(user=user, name=f"{user.username}-key")
            keys.append(key)
    busiest = Tenant.objects.get(name="tenant-00")
    owner = ApiUser.objects.create(tenant=busiest, username="bench-owner")
    _, admin_raw = ApiKey.objects.create_key(user=owner, name="bench-admin", is_admin=True)
    return keys, busiest, admin_raw


def generate_rows(count: int, keys: list, rng: random.Random):
    """Rows as tuples in COLUMNS order, oldest first (as an append-only table holds them)."""
    now = datetime.now(UTC)
    span = DAYS_OF_DATA * 86400
    # Tenant traffic is skewed (1/rank): the busiest tenant has about a quarter of it.
    tenant_weights = [1 / (rank + 1) for rank in range(20)]
    by_tenant = [keys[t * 10 : (t + 1) * 10] for t in range(20)]
    models = list(MODELS)
    model_weights = [MODELS[m][3] for m in models]
    outcome_weights = [share for _, _, share in OUTCOMES]
    offsets = sorted(rng.random() * span for _ in range(count))
    for i, offset in enumerate(offsets):
        created = now - timedelta(seconds=span - offset)
        key = rng.choice(by_tenant[rng.choices(range(20), tenant_weights)[0]])
        model = rng.choices(models, model_weights)[0]
        provider, price_in, price_out, _ = MODELS[model]
        status, error, _ = rng.choices(OUTCOMES, outcome_weights)[0]
        embedding = model.startswith("text-embedding")
        endpoint = "embeddings" if embedding else rng.choices(["chat", "generate", "messages"], [70, 20, 10])[0]
        # /api/v1/generate names the end customer; the other endpoints the key's user.
        username = f"customer-{rng.randrange(2000):04d}" if endpoint == "generate" else key.user.username
        cached = status == 200 and rng.random() < 0.08
        input_tokens = int(rng.lognormvariate(6, 1)) + 5
        output_tokens = 0 if embedding or status != 200 else int(rng.lognormvariate(5, 1))
        cached_tokens = input_tokens // 2 if not cached and rng.random() < 0.2 else 0
        cost = 0.0 if cached or status != 200 else (input_tokens * price_in + output_tokens * price_out) / 1e6
        latency = rng.randrange(1, 10) if cached else int(rng.lognormvariate(6.5, 0.7))
        yield (
            created, f"bench-{i:012d}", key.tenant_id, key.user_id, key.pk, username, rng.choice(SERVICES),
            "", endpoint, model, provider, model, input_tokens, output_tokens, cached_tokens,
            Decimal(f"{cost:.8f}"), True, latency, status, error, cached,
            endpoint == "chat" and rng.random() < 0.4, 0 if cached else 1 + (status == 502), status == 499, False,
        )  # fmt: skip


def copy_rows(rows) -> None:
    """PostgreSQL COPY of tab-separated text, in chunks."""
    from django.db import connection

    def text(value) -> str:
        if isinstance(value, bool):
            return "t" if value else "f"
        if isinstance(value, datetime):
            return value.isoformat()
        return str(value)

    connection.ensure_connection()
    statement = f"COPY usage_usagerecord ({', '.join(COLUMNS)}) FROM STDIN"
    with connection.connection.cursor() as cursor, cursor.copy(statement) as copy:
        chunk = []
        for row in rows:
            chunk.append("\t".join(map(text, row)))
            if len(chunk) == 50_000:
                copy.write("\n".join(chunk) + "\n")
                chunk = []
        if chunk:
            copy.write("\n".join(chunk) + "\n")


def insert_rows(rows) -> None:
    """SQLite: bulk_create in batches."""
    from usage.models import UsageRecord

    batch = []
    for row in rows:
        batch.append(UsageRecord(**dict(zip(COLUMNS, row, strict=True))))
        if len(batch) == 5000:
            UsageRecord.objects.bulk_create(batch)
            batch = []
    UsageRecord.objects.bulk_create(batch)


def load(args: argparse.Namespace, vendor: str):
    from django.core.management import call_command
    from django.db import connection

    from accounts.models import ApiKey, Tenant

    if args.reuse:
        busiest = Tenant.objects.get(name="tenant-00")
        key = ApiKey.objects.get(name="bench-admin")
        admin_raw = key.rotate()  # the plaintext was not kept
        return busiest, admin_raw
    call_command("migrate", verbosity=0, interactive=False)
    keys, busiest, admin_raw = make_accounts()
    keys = list(ApiKey.objects.filter(pk__in=[k.pk for k in keys]).select_related("user").order_by("pk"))
    started = time.perf_counter()
    rows = generate_rows(args.rows, keys, random.Random(args.seed))
    (copy_rows if vendor == "postgresql" else insert_rows)(rows)
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE usage_usagerecord" if vendor == "postgresql" else "ANALYZE")
    print(f"loaded {args.rows:,} rows in {loaded:.1f} s; analyzed in {time.perf_counter() - started:.1f} s")
    return busiest, admin_raw


# --- timing ----------------------------------------------------------------------

CASES = [
    ("summary", "/api/v1/usage/summary"),
    ("by-provider", "/api/v1/usage/by-provider"),
    ("by-service", "/api/v1/usage/by-service"),
    ("by-model", "/api/v1/usage/by-model"),
    ("by-key", "/api/v1/usage/by-key"),
    ("by-customer", "/api/v1/usage/by-customer"),
    ("timeseries hour", "/api/v1/usage/timeseries?bucket=hour"),
    ("timeseries day", "/api/v1/usage/timeseries?bucket=day"),
    ("list_costs", "/admin/list_costs"),
    ("list_costs by_model", "/admin/list_costs?by_model=true"),
]


# Not gated: wider windows than the default, and the admin pages (staff session).
EXTRA_CASES = [
    ("summary days=365", "/api/v1/usage/summary?days=365"),
    ("by-customer days=365", "/api/v1/usage/by-customer?days=365"),
    ("timeseries day, 365", "/api/v1/usage/timeseries?days=365&bucket=day"),
    ("list_costs 30 days", "/admin/list_costs?last_hours=720"),
    ("admin changelist", "/admin/usage/usagerecord/"),
    ("admin changelist 5xx", "/admin/usage/usagerecord/?status_class=5xx"),
    ("admin chart 30 days", "/admin/usage/usagerecord/chart/?days=30"),
]


def median_ms(client, path: str, key: str | None, runs: int) -> float:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    response = client.get(path, **headers)  # warm-up
    if response.status_code != 200:
        raise SystemExit(f"{path}: HTTP {response.status_code} {response.content[:300]!r}")
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        client.get(path, **headers)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> int:
    args = parse_args()
    original_url = os.environ.get("DATABASE_URL", "")
    vendor = point_at_bench_database(args)
    os.environ["GATEWAY_ADMIN_KEY"] = ADMIN_KEY
    os.environ.pop("REDIS_URL", None)  # the bench must not write to a shared Redis
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings")
    sys.path.insert(0, str(ROOT))

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connections
    from django.test import Client
    from django.test.utils import setup_test_environment

    from usage.models import UsageRecord

    setup_test_environment()  # lets the test client's "testserver" host in
    try:
        busiest, tenant_raw = load(args, vendor)
        total = UsageRecord.objects.count()
        in_busiest = UsageRecord.objects.filter(tenant_id=busiest.pk).count()
        print(f"{vendor}: {total:,} usage rows over {DAYS_OF_DATA} days; busiest tenant {busiest.name}: {in_busiest:,}")
        print(f"median of {args.runs} calls after one warm-up; days=30 (default), list_costs last 24 h (default)\n")
        client = Client()
        print(f"| {'endpoint':<22} | {'global admin ms':>15} | {'tenant admin ms':>15} |")
        print(f"|{'-' * 24}|{'-' * 16}:|{'-' * 16}:|")
        worst = 0.0
        for name, path in CASES:
            as_global = median_ms(client, path, ADMIN_KEY, args.runs)
            as_tenant = median_ms(client, path, tenant_raw, args.runs)
            worst = max(worst, as_global, as_tenant)
            print(f"| {name:<22} | {as_global:>15.1f} | {as_tenant:>15.1f} |", flush=True)
        print("\nnot gated (global admin; admin pages as a superuser session):\n")
        staff = Client()
        root, _ = get_user_model().objects.get_or_create(
            username="bench-root", defaults={"is_staff": True, "is_superuser": True}
        )
        staff.force_login(root)
        print(f"| {'endpoint':<22} | {'ms':>15} |")
        print(f"|{'-' * 24}|{'-' * 16}:|")
        for name, path in EXTRA_CASES:
            admin_page = path.startswith("/admin/usage/")
            took = median_ms(staff if admin_page else client, path, None if admin_page else ADMIN_KEY, args.runs)
            print(f"| {name:<22} | {took:>15.1f} |", flush=True)
    finally:
        connections.close_all()
        if vendor == "postgresql" and not args.keep:
            drop_database(original_url, args.db_name)
    if worst > args.limit_ms:
        print(f"\nFAIL: slowest median {worst:.1f} ms is over {args.limit_ms:.0f} ms")
        return 1
    print(f"\nOK: every median under {args.limit_ms:.0f} ms (slowest {worst:.1f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
