"""Server-sent event streams (docs/events.md), without I/O: shared by both clients.

An `EventFeed` is one logical stream across however many connections it takes. The client opens
the request the feed gives it, tells the feed what came back (`opened`), hands it the lines it
reads (`line`), and when the connection ends without the stream having ended, asks the feed how
long to wait (`lost`) before opening the next request, which carries ``Last-Event-ID``: the
server then sends exactly the events after the last one seen, so none is missed or repeated.
A job's stream ends when the server closes it after a terminal event (or with a ``204`` to a
resume with nothing left): a job retried after it ended has more than one end in its history, and
the server closes the stream only after the last. The workspace stream never ends by itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

import httpx
import pydantic

from jobhouse.client._core import Call, Options, Retrying, connection_failed, quote_id
from jobhouse.client._errors import ApiError, error_from_response
from jobhouse.client._models import JobChange, JobEvent, RunJobChange, RunJobEvent

__all__ = ["EventFeed", "job_feed", "run_job_feed", "workspace_feed"]

E = TypeVar("E", JobEvent, RunJobEvent)


def job_event(id: int, event: str, data: Any) -> JobEvent:
    return JobEvent(id=id, event=event, job=JobChange.model_validate(data))


def run_job_event(id: int, event: str, data: Any) -> RunJobEvent:
    return RunJobEvent(id=id, event=event, job=RunJobChange.model_validate(data))


def job_feed(options: Options, id: str, last_event_id: int | str | None) -> EventFeed[JobEvent]:
    """``GET /api/jobs/{id}/events``: one job, until it ends."""
    return EventFeed(options, f"/api/jobs/{quote_id(id)}/events", job_event, last_event_id=last_event_id)


def run_job_feed(options: Options, job_id: str, last_event_id: int | str | None) -> EventFeed[RunJobEvent]:
    """``GET /api/v1/run/jobs/{job_id}/events``: one job on the run surface, until it ends."""
    path = f"/api/v1/run/jobs/{quote_id(job_id)}/events"
    return EventFeed(options, path, run_job_event, last_event_id=last_event_id)


def workspace_feed(
    options: Options, filters: Mapping[str, str | None], last_event_id: int | str | None
) -> EventFeed[JobEvent]:
    """``GET /api/jobs/events``: every job of the workspace that matches `filters`, never ending."""
    return EventFeed(options, "/api/jobs/events", job_event, params=filters, last_event_id=last_event_id, ends=False)


class EventFeed(Generic[E]):
    """The state of one event stream: where it is (``last_event_id``), whether it is over, and the
    decoder of the frames of the current connection."""

    def __init__(
        self,
        options: Options,
        path: str,
        parse: Callable[[int, str, Any], E],
        *,
        params: Mapping[str, str | None] | None = None,
        last_event_id: int | str | None = None,
        ends: bool = True,
    ) -> None:
        self.options = options
        self.path = path
        self.parse: Callable[[int, str, Any], E] = parse
        self.params = {name: value for name, value in (params or {}).items() if value is not None}
        self.last_event_id = None if last_event_id is None else str(last_event_id)
        self.ends = ends
        self.finished = False
        #: Whether the last event read was a terminal one (the stream is over if the server closes now).
        self.ended = False
        self.reconnect_delay = 1.0  # until the server's `retry:` says otherwise
        self.retrying = Retrying(options, idempotent=True)
        self._delay: float | None = None
        self._reset()

    def _reset(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None

    # -- the client's side -----------------------------------------------------------------------

    def call(self) -> Call[None] | None:
        """The request that opens (or resumes) the stream; None once it is over."""
        if self.finished:
            return None
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = self.last_event_id
        # A stream is quiet between events, but the server sends a ping every 15 s (``sse_ping``):
        # a connection silent for a minute more than the timeout is dead, and is resumed.
        return Call("GET", self.path, lambda _: None, params=self.params, headers=headers, hold=60.0)

    def opened(self, response: httpx.Response) -> bool:
        """Whether to read this response's lines. A 204 ends the stream (nothing after the last
        event, and the job is over); a 429/503 is retried; any other error is raised (the client
        reads an error's body before calling this)."""
        self._reset()
        self._delay = None
        if response.status_code == 204:
            self.finished = True
            return False
        if response.is_success:
            return True
        self._delay = self.retrying.after_response(response)
        if self._delay is None:
            raise error_from_response(response)
        return False

    def line(self, line: str) -> E | None:
        """Take one line of the stream; the event it completes, if any."""
        self.retrying.reset()  # the connection works: a later loss starts a fresh count
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment: the server's keep-alive ping
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isdigit():
            self.reconnect_delay = int(value) / 1000
        return None

    def closed(self) -> None:
        """The server closed the connection cleanly: after a terminal event, the stream is over."""
        if self.ends and self.ended:
            self.finished = True

    def lost(self, error: httpx.TransportError | None, url: str) -> float:
        """The connection ended (with `error`, or cleanly) before the stream did: how long to wait
        before resuming. Raises `ConnectionFailed` once `retries` tries in a row came to nothing."""
        if self._delay is not None:  # the server said "later" when we opened it
            return self._delay
        delay = self.retrying.after_error(error or httpx.RemoteProtocolError("stream closed"))
        if delay is None:
            if error is None:
                raise ApiError(f"The event stream {self.path} keeps closing before its end")
            raise connection_failed(url, error)
        return min(self.reconnect_delay, self.options.max_retry_wait) if self.retrying.tries == 1 else delay

    # -- the frames --------------------------------------------------------------------------------

    def _dispatch(self) -> E | None:
        if self._id is not None:
            self.last_event_id = self._id
        event, data, id = self._event or "message", "\n".join(self._data), self._id or self.last_event_id
        self._reset()
        if not data:
            return None
        try:
            parsed = self.parse(int(id or 0), event, json.loads(data))
        except (ValueError, pydantic.ValidationError) as exc:
            raise ApiError(f"Unexpected event on {self.path}: {exc}", code="UNEXPECTED_RESPONSE") from exc
        self.ended = parsed.terminal
        return parsed
