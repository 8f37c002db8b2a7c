"""Server-sent event streams (`docs/events.md`): one job's changes on either surface, and a workspace's.

A stream first replays what the client missed from the store's change log (all of a job's history,
or a workspace's events after `Last-Event-ID`), then follows the change feed (`jobhouse.feed.Feed`).
It subscribes *before* it reads the log, so nothing committed in between is lost, and drops by number
what it has already sent. Each event's frame is built once (by sse-starlette's `ServerSentEvent`) and
shared by every stream that sends it.

The response is `EventStream`, not sse-starlette's `EventSourceResponse` or Starlette's
`StreamingResponse`: those run an anyio task group of three (two) tasks per connection, 34 KB (23 KB)
of memory each where a bare uvicorn stream costs 9 KB, so five thousand watchers would cost 170 MB.
`EventStream` streams from the request's own task and watches for the client hanging up with one more.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import TYPE_CHECKING, Any

import orjson
from sse_starlette import ServerSentEvent
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from jobhouse.api import params, run, views, workspace
from jobhouse.api.models import json_fields
from jobhouse.disclosure import Disclosure
from jobhouse.errors import InvalidRequest
from jobhouse.events import JobEvent
from jobhouse.feed import Subscription, attach_jobs
from jobhouse.store.base import Store

if TYPE_CHECKING:
    from jobhouse.runtime import Runtime

#: Events read from the change log per query while replaying.
PAGE = 500
_SEP = "\n"
#: First frame of every stream: a browser's `EventSource` reconnects after one second.
_RETRY = ServerSentEvent(retry=1000, sep=_SEP).encode()
#: Sent while nothing happens, so that proxies keep the connection open.
_PING = ServerSentEvent(comment="ping", sep=_SEP).encode()
_MAX_ID = 10**18

Render = Callable[[JobEvent, Disclosure], Any]
#: How each surface renders an event's data, by the name its frames are kept under.
SURFACES: dict[str, Render] = {"run": views.run_event, "workspace": views.workspace_event}


def last_event_id(request: Request) -> int | None:
    """The `Last-Event-ID` header: the number of the last event the client saw (None: none)."""
    value = request.headers.get("last-event-id", "").strip()
    if not value:
        return None
    if not value.isdigit() or not value.isascii() or int(value) >= _MAX_ID:
        raise InvalidRequest("Invalid Last-Event-ID: must be the id of an event, a non-negative integer")
    return int(value)


def frame(event: JobEvent, surface: str, shown: Disclosure) -> bytes:
    """The event's frame on `surface`, built once (`shown` is the server's, the same for every stream)."""
    built = event.views.get(surface)
    if built is None:
        data = orjson.dumps(SURFACES[surface](event, shown), default=json_fields).decode()
        built = ServerSentEvent(data, id=str(event.seq), event=event.change.value, sep=_SEP).encode()
        event.views[surface] = built
    return built


def replay(events: Sequence[JobEvent], surface: str, shown: Disclosure, last: int) -> tuple[bytes, int, bool]:
    """The frames of `events` as one chunk; the last number sent, and whether the last event is a
    terminal one (a job's history may hold an end that a retry followed: only its last end counts)."""
    chunks = [frame(event, surface, shown) for event in events]
    if not events:
        return b"", last, False
    return b"".join(chunks), events[-1].seq, events[-1].is_terminal


class EventStream(Response):
    """A ``text/event-stream`` response: the frames, sent as they come, until they end or the client
    is found gone.

    A client that hangs up is noticed at the latest `check` seconds later (`sse_ping`: a stream with
    nothing to say pings that often, and a busy one looks before a send once that much time passed);
    the server then stops following the job for it. Watching for the hang-up as it happens would
    take a task per stream (1 KB each) for nothing a client sees.
    """

    media_type = "text/event-stream"

    #: The same for every stream, so built once: thousands of open streams share one list. The server
    #: adds ``Cache-Control: no-store`` and ``X-Content-Type-Options: nosniff`` to every response.
    HEADERS = [
        (b"content-type", b"text/event-stream; charset=utf-8"),
        (b"x-accel-buffering", b"no"),
    ]

    def __init__(self, frames: AsyncGenerator[bytes, None], check: float) -> None:
        self.frames = frames
        self.check = check
        self.status_code = 200
        self.background = None
        self.raw_headers = self.HEADERS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            look_at = loop.time() + self.check
            async for chunk in self.frames:
                if chunk is _PING or loop.time() >= look_at:
                    if await _gone(receive):
                        return
                    look_at = loop.time() + self.check
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await self.frames.aclose()


async def _gone(receive: Receive) -> bool:
    """Whether the client has hung up, without waiting: the server has told the app by then."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(0):
            while (await receive())["type"] != "http.disconnect":
                pass
            return True
    return False


def _respond(rt: Runtime, frames: AsyncGenerator[bytes, None]) -> Response:
    return EventStream(frames, rt.settings.sse_ping)


# -- one job ------------------------------------------------------------------------------------


async def _job_stream(request: Request, param: str, surface: str) -> Response:
    key_workspace = await params.workspace(request)
    rt = params.runtime(request)
    job = await rt.service.get(params.job_id(request, param), key_workspace)
    after = last_event_id(request)
    if after is not None and job.is_terminal and not await rt.store.events(after, job_id=job.id, limit=1):
        return Response(status_code=204)  # nothing more will come: an EventSource stops reconnecting
    owner = params.owner(request)
    rt.feed.admit(owner)  # over a cap: 429 now, before the stream starts (see `jobhouse.feed`)
    return _respond(rt, _job_frames(rt, job.id, after or 0, surface, owner))


async def _job_frames(rt: Runtime, job_id: str, after: int, surface: str, owner: str) -> AsyncGenerator[bytes, None]:
    yield _RETRY
    store, ping, shown = rt.store, rt.settings.sse_ping, rt.disclosure
    async with rt.feed.job(job_id, owner=owner) as live:
        last, ended = after, False
        while True:  # the history, a page per write; no event of it stays referenced from here
            page = await store.events(last, job_id=job_id, limit=PAGE)
            await attach_jobs(store, page)
            chunk, last, ends = replay(page, surface, shown, last)
            ended = ends if page else ended
            more, page = len(page) == PAGE, []
            if chunk:
                yield chunk
            if not more:
                break
        if ended:  # its last event so far is an end: the stream is over
            return
        chunk = b""
        async with contextlib.aclosing(_live(live, store, ping, last, surface, shown, until_end=True)) as frames:
            async for sent in frames:  # then live
                yield sent


async def run_job_events(request: Request) -> Response:
    return await _job_stream(request, "job_id", "run")


async def workspace_job_events(request: Request) -> Response:
    return await _job_stream(request, "id", "workspace")


# -- a workspace --------------------------------------------------------------------------------


async def workspace_events(request: Request) -> Response:
    key_workspace = await params.workspace(request)
    subject, kind, statuses = workspace.filters(request)
    after = last_event_id(request)

    def accept(event: JobEvent) -> bool:
        return (
            (subject is None or event.subject == subject)
            and (kind is None or event.kind == kind)
            and (statuses is None or event.status in statuses)
        )

    rt = params.runtime(request)
    owner = params.owner(request)
    rt.feed.admit(owner)  # over a cap: 429 now, before the stream starts (see `jobhouse.feed`)
    return _respond(rt, _workspace_frames(rt, key_workspace, accept, after, owner))


async def _workspace_frames(
    rt: Runtime, name: str, accept: Callable[[JobEvent], bool], after: int | None, owner: str
) -> AsyncGenerator[bytes, None]:
    yield _RETRY
    store, ping, shown = rt.store, rt.settings.sse_ping, rt.disclosure
    async with rt.feed.workspace(name, accept, owner=owner) as live:
        cursor = after
        while cursor is not None and cursor < live.start:  # what the client missed, up to the feed's start
            page = await store.events(cursor, workspace=name, upto=live.start, limit=PAGE)
            chosen = [e for e in page if accept(e)]
            await attach_jobs(store, chosen)
            chunk, _, _ = replay(chosen, "workspace", shown, cursor)
            cursor, page, chosen = (page[-1].seq if len(page) == PAGE else None), [], []
            if chunk:
                yield chunk
        chunk = b""
        frames = _live(live, store, ping, max(live.start, after or 0), "workspace", shown, until_end=False)
        async with contextlib.aclosing(frames):
            async for sent in frames:
                yield sent


async def _live(
    live: Subscription,
    store: Store,
    ping: float,
    last: int,
    surface: str,
    shown: Disclosure,
    *,
    until_end: bool,
) -> AsyncGenerator[bytes, None]:
    """The frames of a subscription's events numbered above `last` as they come (with `until_end`,
    up to a job's end), and a ping whenever `ping` seconds pass without one."""
    while True:
        events = await live.next(ping)
        if not events:
            if live.closed:
                return
            yield _PING
            continue
        await attach_jobs(store, events)
        for event in events:
            if event.seq > last:
                last = event.seq
                yield frame(event, surface, shown)
                if until_end and event.is_terminal:
                    return


routes = [
    Route(f"{workspace.PREFIX}/events", workspace_events, methods=["GET"]),
    Route(f"{workspace.PREFIX}/{{id}}/events", workspace_job_events, methods=["GET"]),
    Route(f"{run.PREFIX}/jobs/{{job_id}}/events", run_job_events, methods=["GET"]),
]
