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
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence

from starlette._utils import get_route_path
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from jobhouse.api.errors import envelope, http_error, jobhouse_error
from jobhouse.errors import JobhouseError

Endpoint = Callable[[Request], Awaitable[Response]]
#: A route, the path segments it fixes (by position), and its endpoint.
Indexed = tuple[Route, tuple[tuple[int, str], ...], Endpoint]


class Dispatch:
    """Refuses an oversized body (413) on every route, and serves the routes of `routes` whose
    endpoints are coroutine functions; everything else goes on to `app`."""

    def __init__(self, app: ASGIApp, routes: Sequence[Route], limit: int) -> None:
        self.app = app
        self.limit = limit
        self.too_large = f"Request body too large: the limit is {limit} bytes"
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
        refusal = self._refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        endpoint = self._find(scope)
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        try:
            response = await endpoint(Request(scope, receive))
        except JobhouseError as exc:
            response = jobhouse_error(exc)
        except HTTPException as exc:
            response = http_error(exc)
        await response(scope, receive, send)

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
