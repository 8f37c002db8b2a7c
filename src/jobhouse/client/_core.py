"""What `Client` and `AsyncClient` share, written once and free of I/O.

Every operation is a `Call`: the request to send and how to read its answer. The two clients only
send calls and sleep, each in its own way (blocking or awaiting); everything else is decided
here: the requests (`jobs_create`, `run_get`, ...), when to retry and how long to wait first
(`Retrying`), what an answer means (`outcome`), how `wait` long-polls past the server's limit
(`Poll`), and how `list` follows cursors (`Pager`). This is the sans-I/O shape that h11 and
httpx's own transports use: the logic is tested through both clients, and cannot differ between
them.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
import pydantic

from jobhouse.client._errors import ApiError, ConnectionFailed, error_from_response, retry_after
from jobhouse.client._models import (
    CancelResponse,
    Candidate,
    Job,
    JobPage,
    JobResponse,
    JobStats,
    RunJob,
    SearchResponse,
    Source,
    SourceList,
)

__all__ = [
    "DEFAULT_URL",
    "LONG_POLL_MAX",
    "Call",
    "Control",
    "Options",
    "Pager",
    "Poll",
    "Retrying",
    "connection_failed",
    "outcome",
    "quote_id",
]

T = TypeVar("T")
J = TypeVar("J", Job, RunJob)

DEFAULT_URL = "http://127.0.0.1:8000"
#: The longest the server holds one long-poll, in seconds (``timeout_ms`` is at most 120000).
LONG_POLL_MAX = 120.0
#: Statuses that say "not now, try again": nothing was done.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: Transport errors raised before the request left: safe to retry any call.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class Options:
    """A client's settings, resolved once: arguments first, then ``JOBHOUSE_URL``/``JOBHOUSE_KEY``."""

    url: str
    key: str | None
    timeout: float
    retries: int
    max_retry_wait: float
    backoff: float = 0.5

    @classmethod
    def resolve(
        cls,
        url: str | None,
        key: str | None,
        *,
        timeout: float,
        retries: int,
        max_retry_wait: float,
        environ: Mapping[str, str] = os.environ,
    ) -> Options:
        url = (url or environ.get("JOBHOUSE_URL") or DEFAULT_URL).rstrip("/")
        key = key or environ.get("JOBHOUSE_KEY") or None
        if retries < 0 or timeout <= 0 or max_retry_wait < 0:
            raise ValueError("timeout must be positive, retries and max_retry_wait not negative")
        return cls(url, key, timeout, retries, max_retry_wait)

    def http_options(self, headers: Mapping[str, str] | None) -> dict[str, Any]:
        """The keyword arguments of the `httpx.Client`/`httpx.AsyncClient` the client owns."""
        base = {"User-Agent": "jobhouse-python", "Accept": "application/json"}
        if self.key:
            base["Authorization"] = f"Bearer {self.key}"
        return {"base_url": self.url, "headers": {**base, **(headers or {})}, "timeout": self.timeout}


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request and how to read its successful answer."""

    method: str
    path: str
    parse: Callable[[Any], T]
    params: Mapping[str, str | int] = field(default_factory=dict)
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    #: Whether sending it twice does no more than sending it once (then it may be retried freely).
    idempotent: bool = True
    #: How long the server may hold it before answering (a long-poll), in seconds; None: no limit.
    hold: float | None = 0.0
    #: A 404 after a retry means it was done (a delete whose first answer was lost): no error.
    gone_is_done: bool = False

    def request(self, http: httpx.Client | httpx.AsyncClient, timeout: float) -> httpx.Request:
        read = None if self.hold is None else timeout + self.hold
        return http.build_request(
            self.method,
            self.path,
            params=dict(self.params),
            json=self.body,
            headers=dict(self.headers),
            timeout=httpx.Timeout(timeout, read=read),
        )


def outcome(call: Call[T], response: httpx.Response, retried: bool = False) -> T:
    """The value of a final answer, or the `ApiError` it stands for (`retried`: not the first try)."""
    if response.status_code == 404 and retried and call.gone_is_done:
        return call.parse(None)
    if not response.is_success:
        raise error_from_response(response)
    try:
        return call.parse(None if response.status_code == 204 else response.json())
    except (ValueError, pydantic.ValidationError) as exc:
        raise ApiError(
            f"Unexpected answer from {call.method} {call.path}: {exc}",
            status=response.status_code,
            code="UNEXPECTED_RESPONSE",
            response=response,
        ) from exc


def connection_failed(url: str, exc: httpx.TransportError) -> ConnectionFailed:
    detail = str(exc) or type(exc).__name__
    return ConnectionFailed(f"Could not reach the jobhouse server at {url}: {detail}")


class Retrying:
    """Decides, after each try of one call, whether to try again and how long to wait first.

    A retry waits what the server's ``Retry-After`` says (at most ``max_retry_wait``), or else
    backs off exponentially with jitter, so many clients do not come back at the same moment.
    Calls that are not idempotent are retried only when the server certainly did nothing: the
    connection could not be made, or a 429 (the server makes nothing over quota).
    """

    def __init__(self, options: Options, idempotent: bool) -> None:
        self.options = options
        self.idempotent = idempotent
        self.tries = 0

    def after_response(self, response: httpx.Response) -> float | None:
        status = response.status_code
        if status not in RETRY_STATUSES or not (self.idempotent or status == 429):
            return None
        return self._delay(retry_after(response))

    def after_error(self, exc: httpx.TransportError) -> float | None:
        if not (self.idempotent or isinstance(exc, NOT_SENT)):
            return None
        return self._delay(None)

    def reset(self) -> None:
        self.tries = 0

    def _delay(self, hint: float | None) -> float | None:
        if self.tries >= self.options.retries:
            return None
        self.tries += 1
        if hint is not None:
            return min(hint, self.options.max_retry_wait)
        backoff = min(self.options.max_retry_wait, self.options.backoff * 2.0 ** (self.tries - 1))
        return backoff * random.uniform(0.5, 1.0)


class Poll(Generic[J]):
    """`wait`: long-poll again and again, each time at most `LONG_POLL_MAX`, until the job ends or
    `timeout` seconds have passed. A server may hold a long-poll for less (its setting
    ``long_poll_max``); an early answer with a job still running just means "ask again"."""

    def __init__(self, call: Callable[[int], Call[J]], timeout: float | None) -> None:
        self.call: Callable[[int], Call[J]] = call
        self.deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)

    def next_call(self, job: J | None) -> Call[J] | None:
        """The next long-poll, or None when `job` (the last answer) is the one to return."""
        remaining = LONG_POLL_MAX if self.deadline is None else self.deadline - time.monotonic()
        if job is not None and (job.terminal or remaining <= 0):
            return None
        return self.call(int(min(LONG_POLL_MAX, max(0.0, remaining)) * 1000))


class Pager:
    """`list`: one page after another, following ``nextCursor`` until the last page."""

    def __init__(self, call: Callable[[str | None], Call[JobPage]]) -> None:
        self.call = call
        self.cursor: str | None = None
        self.done = False

    def next_call(self) -> Call[JobPage] | None:
        return None if self.done else self.call(self.cursor)

    def take(self, page: JobPage) -> list[Job]:
        if page.next_cursor is None or page.next_cursor == self.cursor or not page.jobs:
            self.done = True
        self.cursor = page.next_cursor
        return page.jobs


# -- the calls ---------------------------------------------------------------------------------


def quote_id(value: str) -> str:
    """An id as one path segment, whatever it holds."""
    return quote(str(value), safe="")


def _compact(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


def _idempotency(key: str | None) -> dict[str, str]:
    """A create's ``Idempotency-Key``: the caller's, or a fresh one. The same `Call` (so the same
    key) is sent on every retry, so a create retried after a lost answer makes one job."""
    return {"Idempotency-Key": key or str(uuid.uuid4())}


def _job(body: Any) -> Job:
    return JobResponse.model_validate(body).job


def _run_job(body: Any) -> RunJob:
    return RunJob.model_validate(body)


def _wait(timeout_ms: int | None) -> dict[str, str | int]:
    return {} if timeout_ms is None else {"wait": "done", "timeout_ms": timeout_ms}


@dataclass(frozen=True)
class Control:
    """When and how soon a new job runs (``docs/job-control.md``), as its wire values: `run_at` an
    ISO 8601 time with its offset, `delay_ms` whole milliseconds (rounded up: never earlier than
    asked). The server checks the ranges (a 400 `InvalidRequest`); only a naive `datetime` is
    refused here, since the client cannot know which zone it meant."""

    run_at: str | None = None
    delay_ms: int | None = None
    priority: int | None = None

    @classmethod
    def of(cls, run_at: datetime | None, delay: float | timedelta | None, priority: int | None) -> Control:
        if run_at is not None and run_at.utcoffset() is None:
            raise ValueError(
                f"run_at={run_at.isoformat()} has no time zone: pass an aware datetime,"
                " e.g. datetime.now(UTC) + timedelta(minutes=5)"
            )
        if delay is not None and not isinstance(delay, timedelta):
            delay = timedelta(seconds=delay)
        delay_ms = None if delay is None else -(-delay // timedelta(milliseconds=1))
        return cls(None if run_at is None else run_at.isoformat(), delay_ms, priority)

    def workspace(self) -> dict[str, Any]:
        """The fields of ``POST /api/jobs`` (camelCase)."""
        return _compact(runAt=self.run_at, delayMs=self.delay_ms, priority=self.priority)

    def run(self) -> dict[str, Any]:
        """The fields of the run surface's creates (snake_case)."""
        return _compact(run_at=self.run_at, delay_ms=self.delay_ms, priority=self.priority)


def jobs_create(
    type: str,
    *,
    input: Mapping[str, Any] | None,
    metadata: Mapping[str, Any] | None,
    competitor_id: str | None,
    display_title: str | None,
    idempotency_key: str | None,
    control: Control = Control(),
) -> Call[Job]:
    body = _compact(
        type=type,
        input=None if input is None else dict(input),
        metadata=None if metadata is None else dict(metadata),
        competitorId=competitor_id,
        displayTitle=display_title,
        **control.workspace(),
    )
    return Call("POST", "/api/jobs", _job, body=body, headers=_idempotency(idempotency_key))


def jobs_get(id: str, timeout_ms: int | None = None) -> Call[Job]:
    hold = 0.0 if timeout_ms is None else timeout_ms / 1000
    return Call("GET", f"/api/jobs/{quote_id(id)}", _job, params=_wait(timeout_ms), hold=hold)


def jobs_cancel(id: str) -> Call[Job]:
    return Call("POST", f"/api/jobs/{quote_id(id)}/cancel", lambda body: CancelResponse.model_validate(body).job)


def jobs_retry(id: str) -> Call[Job]:
    # Not sent again after a lost answer: a second retry would run the job once more.
    return Call("POST", f"/api/jobs/{quote_id(id)}/retry", _job, idempotent=False)


def jobs_delete(id: str) -> Call[None]:
    return Call("DELETE", f"/api/jobs/{quote_id(id)}", lambda body: None, gone_is_done=True)


def jobs_page(filters: Mapping[str, str | None], page_size: int, cursor: str | None) -> Call[JobPage]:
    params = _compact(**filters, limit=page_size, cursor=cursor)
    return Call("GET", "/api/jobs", JobPage.model_validate, params=params)


def jobs_stats(since: datetime | None) -> Call[JobStats]:
    """The workspace's statistics; `since` (an aware `datetime`) starts the counts of ended jobs."""
    if since is not None and since.utcoffset() is None:
        raise ValueError(
            f"since={since.isoformat()} has no time zone: pass an aware datetime,"
            " e.g. datetime.now(UTC) - timedelta(hours=1)"
        )
    params: dict[str, str | int] = {} if since is None else {"since": since.isoformat()}
    return Call("GET", "/api/jobs/stats", JobStats.model_validate, params=params)


def jobs_filters(status: str | None, type: str | None, competitor_id: str | None) -> dict[str, str | None]:
    """The filters of ``GET /api/jobs`` and ``GET /api/jobs/events``, by their wire names."""
    return {"status": status, "type": type, "competitorId": competitor_id}


def selector(
    app: str, *, os: str | None, kind: str | None, limit: int | None, version: str | None, source: str | None
) -> dict[str, Any]:
    """A search's body (a selector); left-out fields take the server's defaults."""
    return _compact(app=app, os=os, kind=kind, limit=limit, version=version, source=source)


def run_search(body: Mapping[str, Any]) -> Call[list[Candidate]]:
    # A search changes nothing, so it is retried like a GET.
    return Call("POST", "/api/v1/run/search", lambda b: SearchResponse.model_validate(b).candidates, body=dict(body))


def run_create_search(
    body: Mapping[str, Any], idempotency_key: str | None, control: Control = Control()
) -> Call[RunJob]:
    headers = _idempotency(idempotency_key)
    return Call("POST", "/api/v1/run/search/jobs", _run_job, body={**body, **control.run()}, headers=headers)


def run_get(job_id: str, timeout_ms: int | None = None) -> Call[RunJob]:
    hold = 0.0 if timeout_ms is None else timeout_ms / 1000
    return Call("GET", f"/api/v1/run/jobs/{quote_id(job_id)}", _run_job, params=_wait(timeout_ms), hold=hold)


def run_cancel(job_id: str) -> Call[RunJob]:
    return Call("POST", f"/api/v1/run/jobs/{quote_id(job_id)}/cancel", _run_job)


def sources_list() -> Call[list[Source]]:
    return Call("GET", "/api/v1/run/sources", lambda body: SourceList.model_validate(body).sources)


def sources_sync(
    source_id: str | None, force: bool, idempotency_key: str | None, control: Control = Control()
) -> Call[RunJob]:
    path = "/api/v1/run/sources/sync" if source_id is None else f"/api/v1/run/sources/{quote_id(source_id)}/sync"
    body = {**({"force": True} if force else {}), **control.run()} or None
    return Call("POST", path, _run_job, body=body, headers=_idempotency(idempotency_key))
