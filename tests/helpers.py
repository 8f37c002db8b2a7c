"""Small assertions shared by the HTTP tests, and a change feed to run beside a store."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import re
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from jobhouse.events import JobEvent
from jobhouse.feed import Feed, Subscription
from jobhouse.store.base import Store
from tests.openapi_check import ResponseCheck

#: Every /api route, as (method, path), with a well-formed id where the path takes one.
API_ROUTES = [
    ("POST", "/api/v1/run/search/jobs"),
    ("POST", "/api/v1/run/search"),
    ("GET", "/api/v1/run/jobs/550e8400-e29b-41d4-a716-446655440000"),
    ("POST", "/api/v1/run/jobs/550e8400-e29b-41d4-a716-446655440000/cancel"),
    ("GET", "/api/v1/run/sources"),
    ("POST", "/api/v1/run/sources/sync"),
    ("POST", "/api/v1/run/sources/path/sync"),
    ("GET", "/api/jobs"),
    ("POST", "/api/jobs"),
    ("GET", "/api/jobs/stats"),
    ("GET", "/api/jobs/550e8400-e29b-41d4-a716-446655440000"),
    ("POST", "/api/jobs/550e8400-e29b-41d4-a716-446655440000/cancel"),
    ("POST", "/api/jobs/550e8400-e29b-41d4-a716-446655440000/retry"),
    ("DELETE", "/api/jobs/550e8400-e29b-41d4-a716-446655440000"),
    ("GET", "/api/jobs/events"),
    ("GET", "/api/jobs/550e8400-e29b-41d4-a716-446655440000/events"),
    ("GET", "/api/v1/run/jobs/550e8400-e29b-41d4-a716-446655440000/events"),
    # webhooks
    ("GET", "/api/webhooks"),
    ("POST", "/api/webhooks"),
    ("GET", "/api/webhooks/550e8400-e29b-41d4-a716-446655440000"),
    ("DELETE", "/api/webhooks/550e8400-e29b-41d4-a716-446655440000"),
    ("GET", "/api/webhooks/secret"),
    ("POST", "/api/webhooks/secret"),
    ("GET", "/api/webhooks/deliveries"),
    ("GET", "/api/jobs/550e8400-e29b-41d4-a716-446655440000/deliveries"),
]
RUN_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
WORKSPACE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def assert_error(response: httpx.Response, status: int, error_code: str, message: str | None = None) -> str:
    """The response is the error envelope with this status and code; returns the message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "code", "error_code"}, body
    assert body["code"] == status
    assert body["error_code"] == error_code, body
    assert isinstance(body["error"], str)
    assert body["error"]
    if message is not None:
        assert body["error"] == message
    return str(body["error"])


def is_uuid(value: Any) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except (ValueError, TypeError, AttributeError):
        return False


async def wait_done(client: httpx.AsyncClient, job_id: str, timeout_ms: int = 20000) -> dict[str, Any]:
    """Long-poll a job (run surface) until it ends."""
    response = await client.get(f"/api/v1/run/jobs/{job_id}", params={"wait": "done", "timeout_ms": timeout_ms})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] in {"done", "failed", "cancelled"}, body
    return body


async def create(client: httpx.AsyncClient, type: str, **fields: Any) -> dict[str, Any]:
    """Create a job on the workspace surface; returns the job object."""
    response = await client.post("/api/jobs", json={"type": type, **fields})
    assert response.status_code == 202, response.text
    job: dict[str, Any] = response.json()["job"]
    return job


@contextlib.asynccontextmanager
async def api_client(url: str, headers: dict[str, str], timeout: float = 30) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the jobhouse server at `url` whose every response must match the server's
    /openapi.json (see tests/openapi_check.py): one that does not fails the test."""
    check = ResponseCheck(url)
    async with httpx.AsyncClient(
        base_url=url, headers=headers, timeout=timeout, event_hooks={"response": [check]}
    ) as http:
        yield http
    check.assert_clean()


@contextlib.asynccontextmanager
async def running_feed(store: Store, **options: Any) -> AsyncIterator[Feed]:
    """A change feed following `store`, as a server process runs one."""
    feed = Feed(store, **options)
    stop = asyncio.Event()
    task = asyncio.create_task(feed.run(stop))
    try:
        yield feed
    finally:
        stop.set()
        await task


async def ended(subscription: Subscription, timeout: float = 5.0) -> JobEvent:
    """The terminal event that `subscription` receives within `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while True:
            for event in await subscription.next(timeout):
                if event.is_terminal:
                    return event


@contextlib.contextmanager
def imported(path: Path, name: str) -> Iterator[ModuleType]:
    """The Python file at `path` (a docs example) imported as the module `name`, for the block."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # pydantic resolves a model's annotations through sys.modules
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[name]
