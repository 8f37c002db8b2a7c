"""The dispatcher in front of Starlette's router answers every request byte for byte as the router does.

Two servers on loopback share one runtime: the API as it is, and the same API whose dispatcher serves
no route itself (only the body limit), so that every request goes through Starlette's router. Each
request is sent as raw bytes to both, and the raw answers must be equal (less the ``date`` header).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Generator
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware

from jobhouse.api import create_app
from jobhouse.api.dispatch import Dispatch
from jobhouse.keys import create_key
from jobhouse.runtime import Runtime
from jobhouse.settings import Settings
from tests import kinds


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@contextlib.asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[tuple[str, int]]:
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, lifespan="off", log_level="warning", access_log=False, server_header=False
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the server did not start"
        await asyncio.sleep(0.01)
    (sock,) = server.servers[0].sockets
    try:
        yield "127.0.0.1", sock.getsockname()[1]
    finally:
        server.should_exit = True
        await task


def through_the_router(app: Starlette) -> Starlette:
    """`app` with a dispatcher that serves nothing itself: every request reaches Starlette's router."""
    app.user_middleware = [
        Middleware(Dispatch, routes=[], limit=m.kwargs["limit"]) if m.cls is Dispatch else m
        for m in app.user_middleware
    ]
    return app


async def raw(address: tuple[str, int], request: bytes) -> bytes:
    """The raw answer to `request` (sent with ``Connection: close``), without its ``date`` header and
    its ``x-request-id`` (a new one per request: `test_every_answer_carries_a_request_id`)."""
    reader, writer = await asyncio.open_connection(*address)
    writer.write(request)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith((b"date:", b"x-request-id:"))]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def request(method: str, path: str, key: str | None, body: bytes = b"", **headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: test", "Connection: close"]
    if key is not None:
        lines.append(f"X-API-Key: {key}")
    if body or method in ("POST", "PUT"):
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    settings = Settings(database=f"sqlite:///{tmp_path / 'j.db'}", scan_workers=0, sources=())
    runtime = Runtime(settings, registry=kinds.jobs, sources=[])
    await runtime.open()
    try:
        yield runtime
    finally:
        await runtime.close()


async def test_every_answer_is_the_routers_byte_for_byte(runtime: Runtime) -> None:
    key, _ = await create_key(runtime.store, "ws")
    queued, _ = await runtime.service.submit(runtime.queue.new_job("echo", workspace="ws", input={"n": 1}))
    cancelled, _ = await runtime.service.submit(runtime.queue.new_job("echo", workspace="ws"))
    await runtime.service.cancel(cancelled.id, "ws")
    other = str(uuid.uuid4())
    requests = [
        request("GET", "/healthz", None),
        request("HEAD", "/healthz", None),
        request("PUT", "/healthz", None),
        request("GET", "/readyz", None),
        request("GET", "/openapi.json", None),
        request("GET", f"/api/jobs/{queued.id}", key),
        request("HEAD", f"/api/jobs/{queued.id}", key),
        request("GET", f"/api/jobs/{queued.id.upper()}", key),
        request("GET", f"/api/jobs/{queued.id}?wait=done&timeout_ms=0", key),
        request("GET", f"/api/jobs/{queued.id}?wait=soon", key),
        request("GET", f"/api/jobs/{queued.id}", None),
        request("GET", f"/api/jobs/{queued.id}", "jh_000000000000_" + "A" * 43),
        request("GET", f"/api/jobs/{other}", key),
        request("GET", "/api/jobs/not-a-job", key),
        request("GET", f"/api/jobs/{queued.id}/", key),
        request("GET", "/api/jobs/", key),
        request("GET", "/API/JOBS", key),
        request("GET", "/nowhere", None),
        request("DELETE", f"/api/jobs/{queued.id}", key),
        request("OPTIONS", "/api/jobs", key),
        request("GET", "/api/jobs", key),
        request("GET", "/api/jobs?status=failed&limit=1", key),
        request("GET", "/api/jobs?limit=x", key),
        request("POST", f"/api/jobs/{cancelled.id}/cancel", key),
        request("GET", f"/api/jobs/{cancelled.id}/events", key),
        request("GET", f"/api/v1/run/jobs/{queued.id}", key),
        request("GET", f"/api/v1/run/jobs/{cancelled.id}/events", key),
        request("GET", "/api/v1/run/sources", key),
        request("POST", "/api/jobs", key, b'{"type": "echo", '),
        request("POST", "/api/jobs", key, b'{"type": "nope"}'),
        request("POST", "/api/jobs", key, b"{}", Content_Length="99999999"),
        request("POST", "/api/jobs", key, b"{}", Content_Length="many"),
        request("POST", "/api/jobs", None, b'{"type": "echo"}'),
    ]
    async with serving(create_app(runtime)) as dispatched, serving(through_the_router(create_app(runtime))) as routed:
        for sent in requests:
            ours, theirs = await raw(dispatched, sent), await raw(routed, sent)
            assert ours == theirs, sent.split(b"\r\n")[0]
            assert ours.startswith(b"HTTP/1.1 "), ours


async def test_a_create_is_answered_alike(runtime: Runtime) -> None:
    """A create makes a new job each time, so here only the shape of the answers is compared; then
    each server reads back the job the other made, byte for byte."""
    key, _ = await create_key(runtime.store, "ws")
    sent = request("POST", "/api/jobs", key, b'{"type": "echo", "input": {"n": 1}, "metadata": {"m": true}}')
    async with serving(create_app(runtime)) as dispatched, serving(through_the_router(create_app(runtime))) as routed:
        answers = [await raw(dispatched, sent), await raw(routed, sent)]
        heads = [answer.partition(b"\r\n\r\n")[0].split(b"\r\n") for answer in answers]
        assert [[line.split(b":")[0] for line in head] for head in heads] == [
            [b"HTTP/1.1 202 Accepted", b"location", b"content-length", b"content-type", b"connection"]
        ] * 2
        for head in heads:
            location = head[1].split(b" ")[1].decode()
            assert await raw(dispatched, request("GET", location, key)) == await raw(
                routed, request("GET", location, key)
            )


async def test_every_answer_carries_a_request_id(runtime: Runtime) -> None:
    """Served by the dispatcher or by the router, every answer has an id: a new one each, or the one sent."""
    key, _ = await create_key(runtime.store, "ws")

    async def request_id(address: tuple[str, int], sent: bytes) -> bytes:
        reader, writer = await asyncio.open_connection(*address)
        writer.write(sent)
        head = (await asyncio.wait_for(reader.read(), 10)).partition(b"\r\n\r\n")[0]
        writer.close()
        (line,) = [line for line in head.split(b"\r\n") if line.lower().startswith(b"x-request-id: ")]
        return line.split(b" ", 1)[1]

    async with serving(create_app(runtime)) as dispatched, serving(through_the_router(create_app(runtime))) as routed:
        for address in (dispatched, routed):
            made = [await request_id(address, request("GET", path, key)) for path in ("/api/jobs", "/nowhere")]
            assert made[0] != made[1]
            assert all(len(made_id) == 16 for made_id in made)
            assert await request_id(address, request("GET", "/nowhere", None, X_Request_ID="abc-123")) == b"abc-123"
