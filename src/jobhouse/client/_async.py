"""`AsyncClient`: `Client` (`jobhouse.client._sync`) for asyncio, method for method; both build
their calls in `jobhouse.client._core`, so only the sending differs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, TypeVar

import httpx

from jobhouse.client import _core as core
from jobhouse.client import _sse as sse
from jobhouse.client._models import Candidate, Job, JobEvent, JobStats, RunJob, RunJobEvent, Source
from jobhouse.client._sse import EventFeed

__all__ = ["AsyncClient"]

T = TypeVar("T")
E = TypeVar("E", JobEvent, RunJobEvent)


class AsyncClient:
    """An asyncio client of a jobhouse server: `Client`, awaited.

    `url` and `key` default to the environment variables ``JOBHOUSE_URL`` (else
    ``http://127.0.0.1:8000``) and ``JOBHOUSE_KEY``. `timeout` bounds each request (a long-poll
    gets its own wait on top); `retries` is how many times a call that may be retried is tried
    again (see `jobhouse.client._core.Retrying`), waiting at most `max_retry_wait` seconds each
    time. `transport` is handed to `httpx.Client`, `headers` are added to every request.

    In-process use: ``AsyncClient(transport=httpx.ASGITransport(app))`` calls the app directly,
    with no socket (see docs/python-client.md).

    Use it as an async context manager, or call `aclose()`, to release its connections.
    """

    def __init__(
        self,
        url: str | None = None,
        key: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        max_retry_wait: float = 30.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.options = core.Options.resolve(url, key, timeout=timeout, retries=retries, max_retry_wait=max_retry_wait)
        self._http = httpx.AsyncClient(**self.options.http_options(headers), transport=transport)
        self.jobs = Jobs(self)
        self.run = Run(self)
        self.sources = Sources(self)

    @property
    def url(self) -> str:
        return self.options.url

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self.aclose()

    async def _send(self, call: core.Call[T]) -> T:
        """Send `call`, retrying as its kind allows; its value, or the `ApiError` it came to."""
        retrying = core.Retrying(self.options, call.idempotent)
        while True:
            try:
                response = await self._http.send(call.request(self._http, self.options.timeout))
            except httpx.TransportError as exc:
                delay = retrying.after_error(exc)
                if delay is None:
                    raise core.connection_failed(self.url, exc) from exc
            else:
                delay = retrying.after_response(response)
                if delay is None:
                    return core.outcome(call, response, retried=retrying.tries > 0)
            await asyncio.sleep(delay)

    async def _poll(self, poll: core.Poll[core.J]) -> core.J:
        job = None
        while (call := poll.next_call(job)) is not None:
            job = await self._send(call)
        assert job is not None
        return job

    async def _follow(self, feed: EventFeed[E]) -> AsyncIterator[E]:
        """The events of `feed`, reconnecting after a lost connection until the stream is over."""
        while (call := feed.call()) is not None:
            error = None
            try:
                response = await self._http.send(call.request(self._http, self.options.timeout), stream=True)
                try:
                    if response.is_error:
                        await response.aread()
                    if feed.opened(response):
                        async for line in response.aiter_lines():
                            if (event := feed.line(line)) is not None:
                                yield event
                        feed.closed()
                finally:
                    await response.aclose()
            except httpx.TransportError as exc:
                error = exc
            if not feed.finished:
                await asyncio.sleep(feed.lost(error, self.url))


class Jobs:
    """The workspace surface, ``/api/jobs``: every job of the key's workspace."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create(
        self,
        type: str,
        *,
        input: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        competitor_id: str | None = None,
        display_title: str | None = None,
        idempotency_key: str | None = None,
        run_at: datetime | None = None,
        delay: float | timedelta | None = None,
        priority: int | None = None,
    ) -> Job:
        """Create a job of kind `type`; it comes back queued. The request carries an
        ``Idempotency-Key`` (`idempotency_key`, or a new UUID), so retrying it never makes two jobs.

        `run_at` (an aware `datetime`; a naive one is a `ValueError`) or `delay` (seconds, or a
        `timedelta`) makes it wait until then, reading queued with `scheduled_at`; `priority`
        (-10 to 10, higher first) overrides its kind's."""
        call = core.jobs_create(
            type,
            input=input,
            metadata=metadata,
            competitor_id=competitor_id,
            display_title=display_title,
            idempotency_key=idempotency_key,
            control=core.Control.of(run_at, delay, priority),
        )
        return await self._client._send(call)

    async def get(self, id: str) -> Job:
        """The job as it is now."""
        return await self._client._send(core.jobs_get(id))

    async def wait(self, id: str, timeout: float | None = None) -> Job:
        """The job once it has ended, or as it is after `timeout` seconds (None: no limit)."""
        return await self._client._poll(core.Poll(lambda ms: core.jobs_get(id, ms), timeout))

    async def list(
        self,
        *,
        status: str | None = None,
        type: str | None = None,
        competitor_id: str | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[Job]:
        """Every job of the workspace that matches the filters, newest first, page by page."""
        filters = core.jobs_filters(status, type, competitor_id)
        pager = core.Pager(lambda cursor: core.jobs_page(filters, page_size, cursor))
        while (call := pager.next_call()) is not None:
            for job in pager.take(await self._client._send(call)):
                yield job

    async def cancel(self, id: str) -> Job:
        """Cancel a queued or running job; it comes back cancelled (status ``failed``, `cancelled` true)."""
        return await self._client._send(core.jobs_cancel(id))

    async def retry(self, id: str) -> Job:
        """Run a failed or cancelled job again, as its next attempt; it comes back queued, its `errors`
        kept. `JobNotRetryable` (409) if it is queued, running or completed."""
        return await self._client._send(core.jobs_retry(id))

    async def stats(self, *, since: datetime | None = None) -> JobStats:
        """The workspace's jobs by type: queued, scheduled and running now, and ended since `since`
        (an aware `datetime`; by default, 24 hours ago). Exact, and one request."""
        return await self._client._send(core.jobs_stats(since))

    async def delete(self, id: str) -> None:
        """Delete a finished job (with its events and webhook deliveries). `JobNotFinished` (409) if
        it is queued or running: cancel it first."""
        await self._client._send(core.jobs_delete(id))

    def events(self, id: str, *, last_event_id: int | str | None = None) -> AsyncIterator[JobEvent]:
        """The job's changes as they happen, from its creation (or after `last_event_id`), until it ends."""
        return self._client._follow(sse.job_feed(self._client.options, id, last_event_id))

    def stream(
        self,
        *,
        status: str | None = None,
        type: str | None = None,
        competitor_id: str | None = None,
        last_event_id: int | str | None = None,
    ) -> AsyncIterator[JobEvent]:
        """Every change of every job of the workspace that matches the filters, from now (or after
        `last_event_id`), for as long as you iterate."""
        filters = core.jobs_filters(status, type, competitor_id)
        return self._client._follow(sse.workspace_feed(self._client.options, filters, last_event_id))


class Run:
    """The run surface, ``/api/v1/run``: candidate searches, and any job by its run-surface shape."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def search(
        self,
        app: str,
        *,
        os: str | None = None,
        kind: str | None = None,
        limit: int | None = None,
        version: str | None = None,
        source: str | None = None,
    ) -> list[Candidate]:
        """The candidates for `app`, best first, answered at once."""
        body = core.selector(app, os=os, kind=kind, limit=limit, version=version, source=source)
        return await self._client._send(core.run_search(body))

    async def create_search(
        self,
        app: str,
        *,
        os: str | None = None,
        kind: str | None = None,
        limit: int | None = None,
        version: str | None = None,
        source: str | None = None,
        idempotency_key: str | None = None,
        run_at: datetime | None = None,
        delay: float | timedelta | None = None,
        priority: int | None = None,
    ) -> RunJob:
        """The same search as a job (``search-resolve``); its result is ``{"candidates": [...]}``.
        `run_at`, `delay` and `priority` as for `Jobs.create`."""
        body = core.selector(app, os=os, kind=kind, limit=limit, version=version, source=source)
        control = core.Control.of(run_at, delay, priority)
        return await self._client._send(core.run_create_search(body, idempotency_key, control))

    async def get(self, job_id: str, *, wait: str | None = None, timeout_ms: int = 0) -> RunJob:
        """The job now, or with ``wait="done"`` once it ends or `timeout_ms` passes (one request)."""
        return await self._client._send(core.run_get(job_id, timeout_ms if wait == "done" else None))

    async def wait(self, job_id: str, timeout: float | None = None) -> RunJob:
        """The job once it has ended, or as it is after `timeout` seconds (None: no limit)."""
        return await self._client._poll(core.Poll(lambda ms: core.run_get(job_id, ms), timeout))

    async def cancel(self, job_id: str) -> RunJob:
        """Cancel a queued or running job; it comes back ``cancelled``."""
        return await self._client._send(core.run_cancel(job_id))

    def events(self, job_id: str, *, last_event_id: int | str | None = None) -> AsyncIterator[RunJobEvent]:
        """The job's changes in run-surface shape, until it ends (see `Jobs.events`)."""
        return self._client._follow(sse.run_job_feed(self._client.options, job_id, last_event_id))


class Sources:
    """The candidate sources the searches read."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def list(self) -> list[Source]:
        """Every source, with its last sync."""
        return await self._client._send(core.sources_list())

    async def sync(
        self,
        source_id: str | None = None,
        *,
        force: bool = False,
        idempotency_key: str | None = None,
        run_at: datetime | None = None,
        delay: float | timedelta | None = None,
        priority: int | None = None,
    ) -> RunJob:
        """Queue a ``source-sync`` job for one source, or all; `force` reads unchanged files again.
        `run_at`, `delay` and `priority` as for `Jobs.create`."""
        control = core.Control.of(run_at, delay, priority)
        return await self._client._send(core.sources_sync(source_id, force, idempotency_key, control))
