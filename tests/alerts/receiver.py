"""A real HTTP receiver for alert deliveries: a tiny server on 127.0.0.1 in a
thread that records every POSTed body and answers with the statuses queued
for it (200 when none is)."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        receiver = self.server.receiver
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, delay = receiver._next()
        if delay:
            time.sleep(delay)
        receiver._record(self.path, dict(self.headers), body)
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: Receiver


class Receiver:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._statuses: deque[int] = deque()
        self.delay = 0.0
        self.bodies: list[Any] = []
        self.headers: list[dict] = []
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.receiver = self
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def answer(self, *statuses: int) -> None:
        """Answer the next requests with these statuses, in order."""
        with self._lock:
            self._statuses.extend(statuses)

    def _next(self) -> tuple[int, float]:
        with self._lock:
            return (self._statuses.popleft() if self._statuses else 200), self.delay

    def _record(self, path: str, headers: dict, body: bytes) -> None:
        with self._lock:
            self.headers.append(headers)
            self.bodies.append(json.loads(body) if body else None)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.bodies) >= count:
                    return list(self.bodies)
            time.sleep(0.01)
        raise AssertionError(f"{count} deliveries expected, {len(self.bodies)} received")

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
