"""Server-sent events from an upstream (providers/adapters/base.py `sse_batches`):
parsed per read, so the events that arrived together are relayed in one write."""

from __future__ import annotations

import pytest

from providers.adapters.base import sse_batches


async def batches_of(*reads: bytes) -> list[list[tuple[str | None, bytes]]]:
    async def chunks():
        for read in reads:
            yield read

    return [batch async for batch in sse_batches(chunks())]


async def test_events_of_one_read_are_one_batch():
    assert await batches_of(b"data: a\n\ndata: b\n\n", b"data: c\n\n") == [
        [(None, b"a"), (None, b"b")],
        [(None, b"c")],
    ]


async def test_an_event_split_across_reads_comes_once_complete_and_no_batch_is_empty():
    assert await batches_of(b"data: a\n\ndata: b", b"c\n", b"\ndata: d\n\n") == [
        [(None, b"a")],
        [(None, b"bc"), (None, b"d")],
    ]


async def test_reads_without_a_whole_event_yield_nothing():
    assert await batches_of(b"", b": keep-alive comment\n\n", b"data: x") == [[(None, b"x")]]


async def test_event_names_crlf_and_multi_line_data():
    reads = (
        b'event: message_start\r\ndata: {"a":1}\r\n\r\nevent: ping\r\ndata:{}\r\n\r\n',
        b"data: one\ndata: two\n\n",
    )
    assert await batches_of(*reads) == [
        [("message_start", b'{"a":1}'), ("ping", b"{}")],
        [(None, b"one\ntwo")],
    ]


@pytest.mark.parametrize("tail", [b"data: last", b"data: last\n", b"data: last\n  "])
async def test_a_last_event_without_its_blank_line_still_counts(tail):
    assert await batches_of(b"data: first\n\n", tail) == [[(None, b"first")], [(None, b"last")]]
