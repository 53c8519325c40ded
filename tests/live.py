"""The gateway served for real on 127.0.0.1, for tests that use HTTP clients
(the official SDKs). `LiveGateway`: uvicorn runs the ASGI application in a
thread, sharing this process's settings and test database. `DaphneGateway`:
Daphne in a subprocess, for what only the production server shows."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import uvicorn
from asgiref.sync import sync_to_async
from django.db import connections

from gateway.asgi import application


class LiveGateway:
    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(application, log_level="warning", lifespan="off", timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("test gateway did not start")
            time.sleep(0.01)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.serve(sockets=[self.socket]))

    @property
    def v1(self) -> str:
        return self.url + "/v1"

    def stop(self) -> None:
        # The server's database work ran in asgiref's sync thread: close its
        # connections there, or PostgreSQL cannot drop the test database.
        from usage import recorder

        def finish() -> None:
            recorder.flush_sync()  # while the test database still exists
            connections.close_all()

        closing = asyncio.run_coroutine_threadsafe(sync_to_async(finish)(), self.loop)
        closing.result(timeout=10)
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()


class DaphneGateway:
    """The gateway under Daphne in its own process, as production runs it,
    pointed at this test run's database (and Redis, when set)."""

    def __init__(self) -> None:
        from django.conf import settings

        db = settings.DATABASES["default"]
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SQLITE_PATH")}
        if db["ENGINE"].endswith("sqlite3"):
            env["SQLITE_PATH"] = str(db["NAME"])
        else:
            auth = f"{db['USER']}:{db['PASSWORD']}@" if db["PASSWORD"] else f"{db['USER']}@"
            env["DATABASE_URL"] = f"postgres://{auth}{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
        if settings.REDIS_URL:
            env["REDIS_URL"] = settings.REDIS_URL
        env.update(
            RETRY_BACKOFF_BASE="0", ROUTING_REFRESH_SECONDS="0", GATEWAY_CONFIG="/nonexistent.yaml", LOG_LEVEL="WARNING"
        )
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "gateway.asgi:application"],
            cwd=Path(__file__).resolve().parents[1],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("daphne did not start: " + self.process.stderr.read().decode()[-2000:]) from None
                time.sleep(0.05)

    @property
    def v1(self) -> str:
        return self.url + "/v1"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def flush_usage(timeout: float = 5.0) -> None:
    """Write every queued usage record now (a server's background task may be
    writing them at the same moment: wait until nothing is pending)."""
    from usage import recorder

    deadline = time.monotonic() + timeout
    while True:
        recorder.flush_sync()
        if not recorder.pending():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{recorder.pending()} usage records still pending")
        time.sleep(0.02)
