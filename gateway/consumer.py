"""The client API (`/v1/*` proxy paths and `/api/v1/generate`): a lean ASGI
app under the Channels router.

It reads the body, then runs the pipeline in this request's task while it
listens for the client going away: Daphne only reports a disconnect through
`receive()`, so a watcher task waits on it and cancels the request's task the
moment it comes, which closes the upstream call. The quota is settled and the
usage recorded from what the pipeline saw: before the response's last byte, or
here when the client went away first.
"""

from __future__ import annotations

import asyncio
import logging

from django.conf import settings

from core.errors import GatewayError
from gateway import endpoints
from gateway.asgi_io import read_body, send_error
from gateway.call import Call
from gateway.pipeline import Pipeline

logger = logging.getLogger("gateway.v1")


class V1Consumer:
    async def __call__(self, scope, receive, send) -> None:
        resolved = endpoints.resolve(scope["method"], scope["path"])
        try:
            if isinstance(resolved, GatewayError):
                raise resolved
            body = await read_body(receive, settings.MAX_REQUEST_BYTES) if scope["method"] == "POST" else b""
        except ConnectionAbortedError:
            return
        except GatewayError as err:
            await send_error(send, err, anthropic=endpoints.answers_in_anthropic_shape(scope["path"]))
            return

        call = Call(*resolved, scope)
        # The pipeline runs in this task; a watcher task cancels it if the client leaves.
        task = asyncio.current_task()
        watcher = asyncio.get_running_loop().create_task(_cancel_on_disconnect(receive, task, call))
        try:
            await Pipeline(call, send).run(body)
        except asyncio.CancelledError:
            if not call.disconnected:
                raise  # cancelled by the server, not by the watcher
            task.uncancel()
        finally:
            watcher.cancel()
            # Settles and records a call the pipeline did not finish (client gone). Never raises.
            try:
                await call.finish()
            except Exception:
                logger.exception("Could not settle request %s", call.request_id)


async def _cancel_on_disconnect(receive, task: asyncio.Task, call: Call) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    if not call.finished:
        call.client_disconnected()
        task.cancel()
