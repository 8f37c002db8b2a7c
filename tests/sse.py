"""Reading server-sent event streams in the tests, the way any SSE client would (the WHATWG rules:
``field: value`` lines, a blank line ends an event, ``:`` starts a comment)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Frame:
    """One event as a client sees it, and when it arrived (wall clock, for latency checks)."""

    id: str | None
    event: str
    data: Any
    received: float = field(default_factory=time.time)

    @property
    def seq(self) -> int:
        assert self.id is not None
        return int(self.id)


@dataclass
class Stream:
    """What one request read: its frames, the comments between them, and how it answered."""

    status: int
    headers: httpx.Headers
    frames: list[Frame] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    retry: int | None = None
    ended: bool = False  # the server closed the stream (rather than the reader stopping)
    body: bytes = b""


async def frames_of(response: httpx.Response, stream: Stream) -> AsyncIterator[Frame]:
    fields: dict[str, str] = {}
    data: list[str] = []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield Frame(fields.get("id"), fields.get("event", "message"), json.loads("\n".join(data)))
            fields, data = {}, []
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "":
            stream.comments.append(value)
        elif name == "data":
            data.append(value)
        elif name == "retry":
            stream.retry = int(value)
        else:
            fields[name] = value


async def read(
    client: httpx.AsyncClient,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    until: Callable[[Frame], bool] | None = None,
    on_frame: Callable[[Frame], Any] | None = None,
) -> Stream:
    """Read the stream at `path` until the server ends it, or until a frame satisfies `until` (then
    the reader hangs up, as a client that lost its connection would)."""
    async with client.stream("GET", path, headers=headers, params=params) as response:
        stream = Stream(response.status_code, response.headers)
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            stream.body = await response.aread()
            return stream
        async for frame in frames_of(response, stream):
            stream.frames.append(frame)
            if on_frame is not None:
                await on_frame(frame)
            if until is not None and until(frame):
                return stream
        stream.ended = True
        return stream
