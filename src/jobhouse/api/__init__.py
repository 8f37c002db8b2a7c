"""The HTTP API: an app factory over a `Runtime`. Depends on the core; the core knows nothing of it."""

from __future__ import annotations

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jobhouse.api import run, streams, webhooks, workspace
from jobhouse.api.dispatch import Dispatch
from jobhouse.api.errors import EXCEPTION_HANDLERS
from jobhouse.api.metrics import metrics_routes
from jobhouse.api.responses import RenderedJSON, json_response
from jobhouse.api.ui import ui_routes
from jobhouse.runtime import Runtime

__all__ = ["create_app"]

#: What a browser page may send, and may read back, across origins (when CORS is on).
CORS_REQUEST_HEADERS = ("Authorization", "X-API-Key", "Content-Type", "Idempotency-Key", "Last-Event-ID")
CORS_RESPONSE_HEADERS = ("Location", "Retry-After", "Idempotent-Replayed", "WWW-Authenticate", "X-Request-ID")


def cors(origins: tuple[str, ...]) -> Middleware:
    """Cross-origin access for browser pages of `origins` (``*``: any). Keys travel in headers, never
    in cookies, so credentials mode stays off; preflights are cached for ten minutes."""
    return Middleware(
        CORSMiddleware,
        allow_origins=list(origins),
        allow_methods=["GET", "POST", "DELETE"],
        allow_headers=list(CORS_REQUEST_HEADERS),
        expose_headers=list(CORS_RESPONSE_HEADERS),
        max_age=600,
    )


def create_app(runtime: Runtime) -> Starlette:
    """The ASGI app serving both API surfaces over `runtime` (opened and closed by the caller)."""
    spec: bytes | None = None  # the document, built on first use (most servers are never asked for it)

    async def openapi(request: Request) -> Response:
        nonlocal spec
        if spec is None:
            from jobhouse.api.openapi import document

            spec = orjson.dumps(document(runtime.registry.names(), list(runtime.searcher.sources)))
        return RenderedJSON(spec)

    async def healthz(request: Request) -> Response:
        feed = runtime.feed
        long_polls, streams = feed.watching()
        status = "stopping" if feed.closing else "ok"
        return json_response({"status": status, "long_polls": long_polls, "streams": streams})

    async def readyz(request: Request) -> Response:
        schema = await runtime.ready()  # StoreUnavailable and SchemaMismatch become the 503 envelope
        return json_response({"status": "ready", "schema": schema})

    routes = [
        *streams.routes,  # first: "/api/jobs/events" is not a job id
        *run.routes,
        *workspace.routes,
        *webhooks.routes,
        Route("/openapi.json", openapi, methods=["GET"], include_in_schema=False),
        Route("/healthz", healthz, methods=["GET"], include_in_schema=False),
        Route("/readyz", readyz, methods=["GET"], include_in_schema=False),
        *metrics_routes(runtime),
        *(ui_routes() if runtime.settings.ui else []),  # the dashboard: a public page; its calls carry the key
    ]
    observe = runtime.metrics.request if runtime.settings.metrics else None  # API latency, by route template
    middleware = [Middleware(Dispatch, routes=routes, limit=runtime.settings.max_body, observe=observe)]
    if runtime.settings.cors_origins:
        # Outermost, so that refusals (401, 413, ...) carry the headers too and a page can read them.
        middleware.insert(0, cors(runtime.settings.cors_origins))
    app = Starlette(routes=routes, exception_handlers=EXCEPTION_HANDLERS, middleware=middleware)
    app.state.runtime = runtime
    return app
