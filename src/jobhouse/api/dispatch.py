"""In front of Starlette's router: the body limit, then every route served straight from its endpoint.

Starlette's router tries the routes' patterns one by one (a status poll paid for twelve regular
expressions before it found its own) and then runs the endpoint through three more layers: the
exception middleware, the route, and the per-request wrapper that turns a function into an ASGI app.
`Dispatch` finds the route by an index of the routes' fixed path segments, checks it with the
route's own pattern, and calls the endpoint itself, so a request costs one pattern and one layer.
It also keeps event streams light: the layers it skips would otherwise keep seven frames (about
5 KB) alive for each stream's whole life.

Every request it does not serve (no route, a route without this method, a path with or without a
trailing slash too many) goes on to Starlette's router, which answers as it always has: 404, 405
with ``Allow``, the redirect. Errors become the usual envelope here as there (`jobhouse_error`,
`http_error`); anything unexpected goes on to the outer error handler, as from the router.

Every HTTP request gets an id: the client's (or a proxy's) ``X-Request-ID`` when it is sane (1-128
letters, digits and ``.:/+=@-``), else a new one (a random prefix per app and a counter: no system
call on the way). It goes back in the response's ``X-Request-ID`` header and tags every log line of
the request (`jobhouse.logs.bind_request`), the access log's and an unexpected error's included:
the request runs in a task of its own, so the tag goes with it.
"""

from __future__ import annotations

import inspect
import itertools
import re
import secrets
from collections.abc import Awaitable, Callable, Sequence
from time import perf_counter

from starlette._utils import get_route_path
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobhouse.api.errors import client_gone, envelope, http_error, jobhouse_error
from jobhouse.errors import JobhouseError
from jobhouse.logs import bind_request

Endpoint = Callable[[Request], Awaitable[Response]]
#: Told of each request answered: its route's template (None: no route), method, status and seconds.
Observe = Callable[[str | None, str, int, float], None]
#: A route, the path segments it fixes (by position), and its endpoint.
Indexed = tuple[Route, tuple[tuple[int, str], ...], Endpoint]


class Dispatch:
    """Refuses an oversized body (413) on every route, and serves the routes of `routes` whose
    endpoints are coroutine functions; everything else goes on to `app`."""

    def __init__(self, app: ASGIApp, routes: Sequence[Route], limit: int, observe: Observe | None = None) -> None:
        self.app = app
        self.limit = limit
        self.observe = observe
        self.too_large = f"Request body too large: the limit is {limit} bytes"
        self._id_prefix = secrets.token_hex(4).encode()
        self._ids = itertools.count()
        #: By the number of segments of a path: a route's parameters match one segment each.
        self.index: dict[int, list[Indexed]] = {}
        for route in routes:
            segments = route.path.split("/")
            if not inspect.iscoroutinefunction(route.endpoint) or any("{" in s and ":" in s for s in segments):
                continue  # not one of ours (or a parameter that may span segments): the router's
            fixed = tuple((at, segment) for at, segment in enumerate(segments) if "{" not in segment)
            self.index.setdefault(len(segments), []).append((route, fixed, route.endpoint))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        request_id = self._request_id(scope)
        refusal = self._refusal(scope)
        if refusal is not None:
            self._tell(scope, refusal.status_code, started)
            await tagged(refusal, request_id)(scope, receive, send)
            return
        endpoint = self._find(scope)
        if endpoint is None:
            await self._routed(scope, receive, tagging(send, request_id), started)
            return
        try:
            response = await endpoint(Request(scope, receive))
        except JobhouseError as exc:
            response = jobhouse_error(exc)
        except HTTPException as exc:
            response = http_error(exc)
        except ClientDisconnect:  # hung up mid-body: no one to answer, nothing wrong
            client_gone(scope["method"], scope["path"])
            return
        except Exception:
            self._tell(scope, 500, started)  # the outer handler answers 500
            raise
        # The time to the answer, its body excepted (an event stream's life is not a latency).
        self._tell(scope, response.status_code, started)
        await tagged(response, request_id)(scope, receive, send)

    def _tell(self, scope: Scope, status: int, started: float) -> None:
        if self.observe is not None:
            route = scope.get("route")
            path = route.path if isinstance(route, Route) else None
            self.observe(path, scope["method"], status, perf_counter() - started)

    async def _routed(self, scope: Scope, receive: Receive, send: Send, started: float) -> None:
        """What Starlette's router answers (404, 405, redirects, and the routes it serves), timed to
        the answer's head."""
        if self.observe is None:
            await self.app(scope, receive, send)
            return
        told = False

        async def sending(message: Message) -> None:
            nonlocal told
            if message["type"] == "http.response.start" and not told:
                told = True
                self._tell(scope, message["status"], started)
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            if not told:
                self._tell(scope, 500, started)
            raise

    def _request_id(self, scope: Scope) -> bytes:
        """The request's id (the client's when sane, else a new one), bound to what this request logs."""
        request_id = b""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value
                break
        if not _REQUEST_ID.fullmatch(request_id):
            request_id = b"%s%08x" % (self._id_prefix, next(self._ids))
        bind_request(request_id.decode())
        return request_id

    def _refusal(self, scope: Scope) -> Response | None:
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit():
                    return envelope(400, "Invalid Content-Length header", "BAD_REQUEST")
                if int(value) > self.limit:
                    return envelope(413, self.too_large, "PAYLOAD_TOO_LARGE")
        return None

    def _find(self, scope: Scope) -> Endpoint | None:
        """The endpoint of the first route that fully matches (path and method), as the router
        would choose it; None when there is none."""
        segments = get_route_path(scope).split("/")
        for route, fixed, endpoint in self.index.get(len(segments), ()):
            for at, segment in fixed:
                if segments[at] != segment:
                    break
            else:
                match, child = route.matches(scope)
                if match is Match.FULL:
                    scope["route"] = route
                    scope.update(child)
                    return endpoint
        return None


#: A request id taken as the client sent it (no ``_``, so that no API key is ever echoed as one).
_REQUEST_ID = re.compile(rb"[A-Za-z0-9][A-Za-z0-9.:/+=@-]{0,127}")


def tagged(response: Response, request_id: bytes) -> Response:
    """`response` with the ``X-Request-ID`` header (in a new list: some responses share theirs)."""
    response.raw_headers = [*response.raw_headers, (b"x-request-id", request_id)]
    return response


def tagging(send: Send, request_id: bytes) -> Send:
    """`send` that adds the ``X-Request-ID`` header to the response, for the answers the router makes."""
    header = (b"x-request-id", request_id)

    async def send_tagged(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), header]
        await send(message)

    return send_tagged
