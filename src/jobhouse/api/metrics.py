"""``GET /metrics``: the Prometheus scrape of a `Runtime`'s `jobhouse.metrics.Metrics`.

Served by ``jobhouse serve`` beside the API, and by ``jobhouse worker --metrics-port`` on a
listener of its own (`metrics_app`). It needs no API key: with `metrics_token` set, it needs
``Authorization: Bearer <metrics_token>`` instead (401 otherwise). The store's queued and running
jobs are counted at each scrape; when the store does not answer, the scrape still comes, with
``jobhouse_store_up 0`` and without them.
"""

from __future__ import annotations

import hmac

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jobhouse.api.errors import EXCEPTION_HANDLERS
from jobhouse.errors import NotAuthenticated, StoreUnavailable
from jobhouse.metrics import CONTENT_TYPE
from jobhouse.runtime import Runtime
from jobhouse.store.base import JobCount


def metrics_routes(runtime: Runtime) -> list[Route]:
    """``/metrics`` for `runtime`, or nothing when the `metrics` setting is off."""
    if not runtime.settings.metrics:
        return []
    token = runtime.settings.metrics_token
    expected = f"Bearer {token}".encode() if token else None

    async def metrics(request: Request) -> Response:
        if expected is not None:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                raise NotAuthenticated("A valid metrics token is required")
        counts: list[JobCount] | None
        try:
            counts = await runtime.metrics.timed("active_counts", runtime.store.active_counts())
        except StoreUnavailable:
            counts = None
        body = runtime.metrics.exposition(counts, runtime.store.clock.now(), runtime.feed.watching())
        return Response(body, media_type=CONTENT_TYPE)

    return [Route("/metrics", metrics, methods=["GET"], include_in_schema=False)]


def metrics_app(runtime: Runtime) -> Starlette:
    """An app that serves only ``/metrics`` (the worker's own listener)."""
    return Starlette(routes=metrics_routes(runtime), exception_handlers=EXCEPTION_HANDLERS)
