"""The /v1 client API: a lean ASGI app under the Channels router.

Placeholder until the proxy pipeline lands: every path answers the contract's
404 JSON, so clients already get well-formed errors.
"""

from __future__ import annotations

from django.conf import settings

from gateway.errors import GatewayError
from gateway.lib.asgi import read_body, send_error


class V1Consumer:
    async def __call__(self, scope, receive, send) -> None:
        try:
            await read_body(receive, settings.MAX_REQUEST_BYTES)
        except ConnectionAbortedError:
            return
        except GatewayError as err:
            await send_error(send, err)
            return
        await send_error(send, GatewayError("not_found", f"Unknown path: {scope['path']}"))
