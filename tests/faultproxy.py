"""A fault-injecting HTTP reverse proxy, for client tests in any language.

It sits on loopback in front of a real jobhouse server and forwards every request to it, except
the ones a test has asked it to spoil. The SDK tests use it to see what a user sees when the
server is overloaded or the network drops a connection, without mocking the server:

- ``status``: answer the request itself with an error status and the server's error envelope
  (``{"error", "code", "error_code"}``), plus ``Retry-After`` when asked; nothing is forwarded.
- ``drop-request``: close the connection without forwarding (the server never sees the request).
- ``drop-response``: forward the request, read the server's whole answer, then close the
  connection without sending any of it (the server acted; the client cannot know).
- ``drop-stream``: forward, pass the first ``after_events`` server-sent events through, then cut
  the connection (a stream lost halfway).
- ``hold-response``: forward the request and read the server's whole answer, then keep it until
  the test calls ``release()`` (in the proxy's loop only): an answer that arrives late, older than
  what happened meanwhile. ``held()`` waits until an answer is being kept.

Faults are set over HTTP on the proxy itself (never forwarded)::

    POST   /_faults  {"method": "POST", "path": "/api/jobs", "action": "status", "status": 503,
                      "retry_after": 1, "times": 1}
    GET    /_faults  -> {"faults": [...still to fire...], "hits": {"POST /api/jobs": 3, ...}}
    DELETE /_faults  -> forget every fault and count

``path`` is compared with the request's path exactly (query left out); ``method`` is optional.
``hits`` counts every request the proxy saw, forwarded or not.

Run it alone (``python -m tests.faultproxy --target http://127.0.0.1:8000``; it prints
``listening http://127.0.0.1:NNNN`` when ready), in a test's event loop (``async with
FaultProxy(target) as proxy``), or on a thread of its own for synchronous clients (``with
running_proxy(target) as proxy``). Responses are relayed as they arrive, so event streams are
not buffered.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

ACTIONS = {"status", "drop-request", "drop-response", "drop-stream", "hold-response"}
#: The error_code and message the server itself uses for a status (docs/api.md#errors).
ERRORS = {
    400: ("INVALID_REQUEST", "Invalid request"),
    401: ("UNAUTHORIZED", "Missing or invalid API key"),
    404: ("JOB_NOT_FOUND", "No job exists with the requested identifier"),
    409: ("JOB_ALREADY_FINISHED", "Job already finished"),
    413: ("PAYLOAD_TOO_LARGE", "Request body too large"),
    422: ("IDEMPOTENCY_KEY_REUSED", "Idempotency-Key was used with another request"),
    429: ("QUOTA_EXCEEDED", "Too many queued jobs"),
    500: ("INTERNAL_ERROR", "Internal server error"),
    503: ("STORE_UNAVAILABLE", "Job queue unavailable"),
}
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}
REASONS = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 400: "Bad Request", 404: "Not Found"}


@dataclass
class Fault:
    path: str
    action: str
    method: str | None = None
    times: int = 1
    status: int = 503
    retry_after: float | None = None
    error_code: str | None = None
    message: str | None = None
    after_events: int = 1

    @classmethod
    def parse(cls, body: Any) -> Fault:
        if not isinstance(body, dict) or not isinstance(body.get("path"), str):
            raise ValueError("a fault is an object with at least a path and an action")
        if body.get("action") not in ACTIONS:
            raise ValueError(f"action must be one of {sorted(ACTIONS)}")
        known = set(cls.__dataclass_fields__)
        unknown = set(body) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        fault = cls(**body)
        if fault.method:
            fault.method = fault.method.upper()
        if fault.times < 1:
            raise ValueError("times must be at least 1")
        return fault

    def matches(self, method: str, path: str) -> bool:
        return self.path == path and (self.method is None or self.method == method)


@dataclass
class Request:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name), None)


@dataclass
class FaultProxy:
    """The proxy in the current event loop: ``async with FaultProxy(target) as proxy: proxy.url``."""

    target: str
    host: str = "127.0.0.1"
    port: int = 0
    faults: list[Fault] = field(default_factory=list)
    hits: Counter[str] = field(default_factory=Counter)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: asyncio.Server | None = None
    _upstream: httpx.AsyncClient | None = None
    _connections: set[asyncio.Task[None]] = field(default_factory=set)
    _waiters: list[tuple[str, int, asyncio.Future[None]]] = field(default_factory=list)
    _holding: asyncio.Event = field(default_factory=asyncio.Event)
    _released: asyncio.Event = field(default_factory=asyncio.Event)

    # -- the test's side ---------------------------------------------------------------------

    def add(self, **fault: Any) -> Fault:
        """Arm a fault, as ``POST /_faults`` would (same fields)."""
        parsed = Fault.parse(fault)
        with self._lock:
            self.faults.append(parsed)
        return parsed

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()
            self.hits.clear()

    async def seen(self, hit: str, count: int = 1, timeout: float = 30) -> None:
        """Wait until the proxy has seen `count` requests ``"<METHOD> <path>"`` (in-loop use only)."""
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((hit, count, future))
        self._wake()
        async with asyncio.timeout(timeout):
            await future

    async def held(self, timeout: float = 30) -> None:
        """Wait until a ``hold-response`` fault keeps an answer."""
        async with asyncio.timeout(timeout):
            await self._holding.wait()

    def release(self) -> None:
        """Send the answers ``hold-response`` faults keep (and those still to come)."""
        self._released.set()

    def _wake(self) -> None:
        for waiter in list(self._waiters):
            hit, count, future = waiter
            if self.hits[hit] >= count:
                self._waiters.remove(waiter)
                if not future.done():
                    future.set_result(None)

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {"faults": [asdict(f) for f in self.faults], "hits": dict(self.hits)}

    # -- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> FaultProxy:
        self._upstream = httpx.AsyncClient(base_url=self.target, timeout=httpx.Timeout(None, connect=10))
        self._server = await asyncio.start_server(self._connection, self.host, self.port)
        host, port = self._server.sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self

    async def retarget(self, target: str) -> None:
        """Send what comes next to another server (as a load balancer does once a node is replaced);
        what is still being relayed from the old one is cut."""
        old, self.target = self._upstream, target
        self._upstream = httpx.AsyncClient(base_url=target, timeout=httpx.Timeout(None, connect=10))
        if old is not None:
            await old.aclose()

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        assert self._upstream is not None
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._upstream.aclose()

    # -- one client connection -----------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while (request := await _read_request(reader)) is not None:
                if not await self._serve(request, writer):
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ValueError, httpx.TransportError):
            pass
        except asyncio.CancelledError:
            pass  # the proxy is closing; ending quietly keeps asyncio's stream callback from logging it
        finally:
            self._connections.discard(task)
            writer.close()

    async def _serve(self, request: Request, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection must be closed."""
        if request.path == "/_faults":
            await self._control(request, writer)
            return True
        fault = self._take(request)
        self._wake()
        if fault is None:
            return await self._forward(request, writer)
        if fault.action == "status":
            code, message = ERRORS.get(fault.status, (f"HTTP_{fault.status}", "Error"))
            body = {"error": fault.message or message, "code": fault.status, "error_code": fault.error_code or code}
            headers = [] if fault.retry_after is None else [("Retry-After", f"{fault.retry_after:g}")]
            await _respond(writer, fault.status, body, headers)
            return True
        if fault.action == "drop-response":
            assert self._upstream is not None
            response = await self._upstream.send(self._outgoing(request))
            await response.aread()  # the server has acted and answered; the client never hears
            return False
        if fault.action == "hold-response":
            assert self._upstream is not None
            response = await self._upstream.send(self._outgoing(request))
            self._holding.set()
            await self._released.wait()
            skip = HOP_BY_HOP | {"content-length", "content-encoding"}
            headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in skip]
            _head(
                writer,
                response.status_code,
                response.reason_phrase,
                [*headers, ("Content-Length", str(len(response.content)))],
            )
            writer.write(response.content)
            await writer.drain()
            return True
        if fault.action == "drop-stream":
            await self._forward(request, writer, cut_after=fault.after_events)
        return False  # drop-request, or a stream cut short

    def _take(self, request: Request) -> Fault | None:
        with self._lock:
            self.hits[f"{request.method} {request.path}"] += 1
            for fault in self.faults:
                if fault.matches(request.method, request.path):
                    fault.times -= 1
                    if fault.times == 0:
                        self.faults.remove(fault)
                    return fault
        return None

    async def _control(self, request: Request, writer: asyncio.StreamWriter) -> None:
        if request.method == "POST":
            try:
                fault = self.add(**json.loads(request.body or b"null"))
            except (ValueError, TypeError) as exc:
                await _respond(writer, 400, {"error": str(exc), "code": 400, "error_code": "INVALID_REQUEST"})
                return
            await _respond(writer, 201, asdict(fault))
        elif request.method == "DELETE":
            self.clear()
            await _respond(writer, 200, self.state())
        else:
            await _respond(writer, 200, self.state())

    def _outgoing(self, request: Request) -> httpx.Request:
        assert self._upstream is not None
        headers = [(k, v) for k, v in request.headers if k.lower() not in HOP_BY_HOP | {"host", "content-length"}]
        return self._upstream.build_request(request.method, request.target, headers=headers, content=request.body)

    async def _forward(self, request: Request, writer: asyncio.StreamWriter, cut_after: int | None = None) -> bool:
        assert self._upstream is not None
        response = await self._upstream.send(self._outgoing(request), stream=True)
        try:
            length = response.headers.get("content-length")
            headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in HOP_BY_HOP]
            if length is None:
                headers.append(("Transfer-Encoding", "chunked"))
            _head(writer, response.status_code, response.reason_phrase, headers)
            await writer.drain()
            seen = b""
            async for chunk in response.aiter_raw():
                cut = None
                if cut_after is not None:
                    seen += chunk
                    if (cut := _end_of_event(seen, cut_after)) is not None:
                        chunk = chunk[: len(chunk) - (len(seen) - cut)]
                if chunk:
                    writer.write(chunk if length is not None else b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    await writer.drain()
                if cut is not None:
                    return False
            if length is None:
                writer.write(b"0\r\n\r\n")
                await writer.drain()
        finally:
            await response.aclose()
        return (request.header("connection") or "").lower() != "close"


def _end_of_event(stream: bytes, count: int) -> int | None:
    """The offset just past the `count`-th server-sent event (a block with a data line) in
    `stream`, or None if it has not all arrived yet."""
    events, has_data = 0, False
    for line in re.finditer(rb"([^\r\n]*)(\r\n|\r|\n)", stream):
        if line.group(1):
            has_data = has_data or line.group(1).startswith(b"data:")
            continue
        if has_data:
            events += 1
            if events == count:
                return line.end()
        has_data = False
    return None


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    line = await reader.readline()
    if not line:
        return None
    method, target, _ = line.decode("latin-1").split(" ", 2)
    headers: list[tuple[str, str]] = []
    while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = header.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))
    request = Request(method.upper(), target, headers, b"")
    if (request.header("transfer-encoding") or "").lower() == "chunked":
        parts = []
        while size := int((await reader.readline()).split(b";")[0], 16):
            parts.append(await reader.readexactly(size))
            await reader.readline()
        await reader.readline()
        request.body = b"".join(parts)
    elif length := int(request.header("content-length") or 0):
        request.body = await reader.readexactly(length)
    return request


def _head(writer: asyncio.StreamWriter, status: int, reason: str, headers: list[tuple[str, str]]) -> None:
    lines = [f"HTTP/1.1 {status} {reason or REASONS.get(status, 'Status')}", *(f"{k}: {v}" for k, v in headers)]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))


async def _respond(
    writer: asyncio.StreamWriter, status: int, body: Any, headers: list[tuple[str, str]] | None = None
) -> None:
    content = json.dumps(body).encode()
    base = [("Content-Type", "application/json"), ("Content-Length", str(len(content)))]
    _head(writer, status, REASONS.get(status, "Error"), base + (headers or []))
    writer.write(content)
    await writer.drain()


@contextlib.contextmanager
def running_proxy(target: str) -> Iterator[FaultProxy]:
    """The proxy on a thread and event loop of its own, so synchronous clients can use it."""
    started = threading.Event()
    stop: list[asyncio.Event] = []
    holder: list[FaultProxy] = []
    failure: list[BaseException] = []

    async def main() -> None:
        stop.append(asyncio.Event())
        try:
            async with FaultProxy(target) as proxy:
                holder.append(proxy)
                started.set()
                await stop[0].wait()
        except BaseException as exc:
            failure.append(exc)
            started.set()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    started.wait(10)
    if failure or not holder:
        raise RuntimeError(f"the fault proxy did not start: {failure}")
    try:
        yield holder[0]
    finally:
        loop.call_soon_threadsafe(stop[0].set)
        thread.join(10)
        loop.close()


async def _main(target: str, host: str, port: int) -> None:
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    async with FaultProxy(target, host, port) as proxy:
        print(f"listening {proxy.url}", flush=True)
        await done.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", required=True, help="the server to forward to, e.g. http://127.0.0.1:8000")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 (the default) picks a free port")
    options = parser.parse_args()
    asyncio.run(_main(options.target.rstrip("/"), options.host, options.port))
