"""JSON for the request path: orjson, with the stdlib's error type.

The /v1 path parses and writes JSON for every request and every stream
chunk; orjson does both several times faster than `json`.
"""

from __future__ import annotations

import orjson

JSONDecodeError = orjson.JSONDecodeError  # a subclass of ValueError


def loads(data: bytes | str):
    return orjson.loads(data)


def dumps(obj) -> bytes:
    """Compact UTF-8 JSON bytes."""
    return orjson.dumps(obj)
