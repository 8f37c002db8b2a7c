"""uvicorn's HTTP/1.1 protocols with limits: what a connection may cost before the app sees a request.

uvicorn reads whatever a client sends: headers of any size and number (httptools buffers a header
however long it grows, and a 100 MB one took almost a minute to take in), for as long as the client
likes (a connection that trickles a header line now and then is held forever), and it answers its
own refusals in plain text. The protocols here are uvicorn's own, with these changes:

- **header timeout**: from a request's first byte until its headers are complete, at most
  `header_timeout` seconds; then 408 and the connection closes (slowloris);
- **idle timeout**: a connection that says nothing, before its first request or between two, is
  closed after `idle_timeout` seconds (uvicorn's keep-alive timeout, which it does not arm for a
  connection's first request);
- **header size and count**: the request line and headers of one request are read up to
  `max_header_bytes` (the parser is never fed more); beyond that, or beyond `max_headers` header
  lines, 431. A request target longer than `max_url` is a 414;
- **concurrency**: past `limit_concurrency` open connections, or requests in progress, a request is
  a 503 with ``Retry-After`` (uvicorn's own answer is plain text);
- **malformed requests** are a 400; every refusal is the JSON error envelope
  (`jobhouse.api.errors`), with ``Connection: close``.

A refused connection is closed gently: the answer goes out, then the end of the server's side
(``write_eof``); what the client still sends is read and dropped (up to `LINGER_BYTES`, then no
more is read) and the socket closes `LINGER` seconds later. Closing at once, with the client's
bytes unread, would send a reset, and a reset can reach the client before it has read the answer.
Nothing is logged above DEBUG for a refusal: a log flood would cost an abuser nothing.

`protocol_class` makes the protocol for uvicorn's ``http=``: httptools when it is installed (the
`fast` extra), else h11 (whose buffer limit is set to `max_header_bytes`, and whose whole heads are
measured against it too). Both are tested alike (`tests/test_limits.py`).
"""

from __future__ import annotations

import asyncio
import http
import logging
from dataclasses import dataclass
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from jobhouse.api.errors import jobhouse_error
from jobhouse.errors import (
    HeadersTooLarge,
    JobhouseError,
    MalformedRequest,
    RequestTimeout,
    ServerBusy,
    UrlTooLong,
)

if TYPE_CHECKING:
    from jobhouse.settings import Settings

log = logging.getLogger(__name__)

#: Sent with every response, the app's and the server's own (uvicorn's ``headers=``): no content
#: sniffing, no caching (answers carry a workspace's data), no referrer, and no framing.
SECURITY_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("Cache-Control", "no-store"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
]
#: After a refusal: how long, and how many bytes, the server reads and drops before it closes.
LINGER = 1.0
LINGER_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """What one connection may cost (the settings of the same names; 0 `limit_concurrency`: none)."""

    header_timeout: float = 10.0
    idle_timeout: float = 5.0
    max_header_bytes: int = 16 * 1024
    max_headers: int = 100
    max_url: int = 8 * 1024
    limit_concurrency: int = 0

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            header_timeout=settings.header_timeout,
            idle_timeout=settings.idle_timeout,
            max_header_bytes=settings.max_header_bytes,
            max_headers=settings.max_headers,
            max_url=settings.max_url,
            limit_concurrency=settings.limit_concurrency,
        )


def refusal(exc: JobhouseError, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """A whole HTTP/1.1 response: `exc` in the error envelope, the server's headers (date, security),
    and ``Connection: close``."""
    response = jobhouse_error(exc)
    status = response.status_code
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, http.HTTPStatus(status).phrase.encode())]
    for name, value in (*default_headers, *response.raw_headers, (b"connection", b"close")):
        lines.append(b"%s: %s\r\n" % (name, value))
    return b"".join((*lines, b"\r\n", response.body))


#: How late the idle timer may fire and still close: later, the event loop was held up, not the client.
IDLE_LATE = 1.0


class _Guard:
    """What both protocols add: the timers, the concurrency check and the refusal. It uses the
    attributes uvicorn's protocols have."""

    limits: ClassVar[Limits] = Limits()
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    server_state: ServerState
    client: tuple[str, int] | None
    timeout_keep_alive_task: asyncio.TimerHandle | None
    cycle: Any

    def _guard_init(self) -> None:
        self.timeout_keep_alive: int = self.limits.idle_timeout  # type: ignore[assignment]  # uvicorn's is an int
        self.limit_concurrency: int | None = None  # checked here instead, to answer in the envelope
        self.head_timer: asyncio.TimerHandle | None = None
        self.refused = False
        self.dropped = 0
        #: Set by a parser callback just before it raises, to say why the request is refused.
        self.refusal: JobhouseError | None = None

    def responding(self) -> bool:
        """Whether a response is under way (a refusal cannot be written in the middle of one)."""
        return self.cycle is not None and not self.cycle.response_complete

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]  # uvicorn's protocol, next in the MRO
        self.arm_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        self.disarm_head()
        super().connection_lost(exc)  # type: ignore[misc]

    def arm_idle(self) -> None:
        """Close the connection if it stays silent for `idle_timeout` (as uvicorn does between requests)."""
        if self.timeout_keep_alive_task is None:
            deadline = self.loop.time() + self.limits.idle_timeout
            self.timeout_keep_alive_task = self.loop.call_at(deadline, self.close_idle, deadline)

    def close_idle(self, deadline: float) -> None:
        self.timeout_keep_alive_task = None
        if self.loop.time() - deadline > IDLE_LATE:
            # The loop was held up (thousands of connections at once on a busy machine): what the
            # client sent may be waiting unread, so its silence is not known. It gets another period.
            self.arm_idle()
        elif not self.transport.is_closing():
            self.transport.close()

    def arm_head(self) -> None:
        """A request has begun: its headers must be complete within `header_timeout`."""
        if self.head_timer is None:
            self.head_timer = self.loop.call_later(self.limits.header_timeout, self.head_timed_out)

    def disarm_head(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def head_timed_out(self) -> None:
        self.head_timer = None
        timeout = self.limits.header_timeout
        self.refuse(RequestTimeout(f"Request headers not complete within {timeout:g} seconds"))

    def busy(self) -> bool:
        """Whether one more request would pass `limit_concurrency` (connections or running requests)."""
        limit = self.limits.limit_concurrency
        state = self.server_state
        return bool(limit) and (len(state.connections) > limit or len(state.tasks) >= limit)

    def fail(self, exc: JobhouseError) -> NoReturn:
        """From a parser callback: refuse the request with `exc` (the parser stops at the raise)."""
        self.refusal = exc
        raise exc

    def refuse(self, exc: JobhouseError) -> None:
        """Answer `exc` in the envelope and close the connection, gently (see the module's docstring)."""
        if self.refused or self.transport.is_closing():
            return
        self.refused = True
        self.disarm_head()
        if self.timeout_keep_alive_task is not None:
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = None
        log.debug("refused a request from %s: %s", self.client, exc.message)
        if self.responding():  # the app is still answering an earlier (pipelined) request
            self.transport.close()
            return
        self.transport.write(refusal(exc, self.server_state.default_headers))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER, self.transport.close)

    def drop(self, data: bytes) -> None:
        """After a refusal: what the client still sends, read and dropped up to `LINGER_BYTES`; then
        no more is read (the client's sends stall) until the socket closes, `LINGER` after the refusal."""
        self.dropped += len(data)
        if self.dropped > LINGER_BYTES:
            self.transport.pause_reading()

    def _unsupported_upgrade_warning(self) -> None:
        """An ``Upgrade`` request (no WebSocket is spoken here) is served as plain HTTP; uvicorn's two
        warnings for each would let anyone flood the log."""
        log.debug("served an Upgrade request from %s as plain HTTP", self.client)

    def too_many_headers(self, count: int) -> None:
        if count > self.limits.max_headers:
            self.fail(HeadersTooLarge(f"Too many request headers: the limit is {self.limits.max_headers}"))

    def url_too_long(self, length: int) -> None:
        if length > self.limits.max_url:
            self.fail(UrlTooLong(f"Request URL too long: the limit is {self.limits.max_url} bytes"))

    def headers_too_large(self) -> HeadersTooLarge:
        return HeadersTooLarge(f"Request headers too large: the limit is {self.limits.max_header_bytes} bytes")

    def check_busy(self) -> None:
        if self.busy():
            self.fail(ServerBusy("The server is busy: too many connections or requests at once; try again"))


if find_spec("httptools") is not None:
    import httptools
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class GuardedHttpTools(_Guard, HttpToolsProtocol):
        """uvicorn's httptools protocol with the limits (httptools itself has none).

        The parser is fed a request's head only up to `max_header_bytes`: the bytes of the head so
        far are counted from the end of the previous request (a head that a pipelining client sends
        in the same read as the end of the previous request may get up to twice the limit).
        """

        def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any], **kw: Any) -> None:
            super().__init__(config, server_state, app_state, **kw)
            self._guard_init()
            self.head_bytes = 0
            self.in_body = False
            self.header_count = 0

        def data_received(self, data: bytes) -> None:
            if self.refused:
                self.drop(data)
                return
            self._unset_keepalive_if_required()
            limit = self.limits.max_header_bytes
            while data:
                if self.in_body:
                    self._feed(data)
                    return
                piece, data = data[: limit - self.head_bytes], data[limit - self.head_bytes :]
                self.head_bytes += len(piece)
                if not self._feed(piece):
                    return
                if not self.in_body and self.head_bytes >= limit:
                    self.refuse(self.headers_too_large())
                    return
            if not self.in_body and self.head_bytes:
                # A request's head began and is not complete: it has `header_timeout` from now (a
                # head that arrives whole, as nearly all do, never needs a timer).
                self.arm_head()

        def _feed(self, data: bytes) -> bool:
            """Parse `data`; False once the connection is done with (refused, or upgraded)."""
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserUpgrade:
                log.debug("served an Upgrade request from %s as plain HTTP", self.client)
                return False
            except httptools.HttpParserError:
                self.refuse(self.refusal or MalformedRequest())
                return False
            return not self.refused

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self.header_count = 0
            self.refusal = None

        def on_url(self, url: bytes) -> None:
            super().on_url(url)
            self.url_too_long(len(self.url))

        def on_header(self, name: bytes, value: bytes) -> None:
            self.header_count += 1
            self.too_many_headers(self.header_count)
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self.disarm_head()
            self.in_body = True
            self.check_busy()
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self.in_body = False
            self.head_bytes = 0
            super().on_message_complete()


class _H11Connection(h11.Connection):
    """h11's connection, which shows each request to its guard's `check_request` before uvicorn acts
    on it, and keeps the error it raised last."""

    def __init__(self, guard: GuardedH11, max_head: int) -> None:
        super().__init__(h11.SERVER, max_incomplete_event_size=max_head)
        self.guard = guard
        self.error: h11.RemoteProtocolError | None = None

    def next_event(self) -> h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]:
        try:
            event = super().next_event()
            if isinstance(event, h11.Request):
                self.guard.check_request(event)
        except h11.RemoteProtocolError as exc:
            self.error = exc
            raise
        return event


class GuardedH11(_Guard, H11Protocol):
    """uvicorn's h11 protocol with the limits (h11 itself refuses a head still incomplete past its
    buffer limit; `check_request` measures one that came whole)."""

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any], **kw: Any) -> None:
        super().__init__(config, server_state, app_state, **kw)
        self._guard_init()
        self.conn = self.guarded = _H11Connection(self, self.limits.max_header_bytes)

    def data_received(self, data: bytes) -> None:
        if self.refused:
            self.drop(data)
            return
        if self.conn.their_state is h11.IDLE:  # the client is sending a request's head
            self.arm_head()
        super().data_received(data)

    def check_request(self, event: h11.Request) -> None:
        """A request's head is complete: refuse it here if it breaks a limit (raising to uvicorn)."""
        self.disarm_head()
        try:
            # h11 checks its buffer only while a head is incomplete: one that came whole is measured here,
            # as it reads on the wire (the request line, then a "name: value" line per header).
            head = len(event.method) + len(event.target) + 14
            head += sum(len(name) + len(value) + 4 for name, value in event.headers)
            if head > self.limits.max_header_bytes:
                self.fail(self.headers_too_large())
            self.url_too_long(len(event.target))
            self.too_many_headers(len(event.headers))
            self.check_busy()
        except JobhouseError as exc:
            raise h11.RemoteProtocolError(exc.message) from exc

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request h11 refused, in the envelope (and 431 where h11 says so)."""
        error = self.guarded.error
        if self.refusal is None and error is not None and error.error_status_hint == 431:
            self.refusal = self.headers_too_large()
        self.refuse(self.refusal or MalformedRequest())


def protocol_class(parser: str, limits: Limits) -> type[asyncio.Protocol]:
    """The protocol for uvicorn's ``http=`` with `limits`: httptools or h11, as `parser` names it."""
    base: type[_Guard] = GuardedHttpTools if parser == "httptools" else GuardedH11
    made: type[asyncio.Protocol] = type(base.__name__, (base,), {"limits": limits})
    return made
