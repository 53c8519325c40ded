"""The gateway served for real on 127.0.0.1, for tests that use HTTP clients
(the official SDKs). uvicorn runs the same ASGI application in a thread, so
the server shares this process's settings and test database."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

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
        closing = asyncio.run_coroutine_threadsafe(sync_to_async(connections.close_all)(), self.loop)
        closing.result(timeout=10)
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()
