"""The SDK's shared scenarios (clients/scenarios.json) over real HTTP, for `Client` and `AsyncClient`.

Each scenario is written once, against the async API, and registered under its name in
`SCENARIOS`; it runs with `AsyncClient` and with `Client` (whose blocking calls run on a thread,
so the event loop stays free for the beacon and the fault proxy). Faults come from
`tests.faultproxy` in front of the real server: nothing here mocks the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobhouse import Queue, open_store
from jobhouse.client import (
    AsyncClient,
    Client,
    ConnectionFailed,
    InvalidRequest,
    InvalidSelector,
    JobAlreadyFinished,
    JobNotFinished,
    JobNotFound,
    JobNotRetryable,
    QueueUnavailable,
    SourceNotFound,
    Unauthorized,
    UnknownJobType,
)
from tests import kinds
from tests.beacon import Beacon
from tests.faultproxy import FaultProxy
from tests.servers import REPO, Machine, ServerProcess, running_server

SCENARIO_LIST = json.loads((REPO / "clients" / "scenarios.json").read_text())
SCENARIOS: dict[str, Callable[[Ctx], Awaitable[None]]] = {}
FLAVOURS = ["async", "sync"]


def scenario(name: str) -> Callable[[Callable[[Ctx], Awaitable[None]]], Callable[[Ctx], Awaitable[None]]]:
    def register(function: Callable[[Ctx], Awaitable[None]]) -> Callable[[Ctx], Awaitable[None]]:
        assert name not in SCENARIOS, name
        SCENARIOS[name] = function
        return function

    return register


# -- a blocking Client, driven from async code --------------------------------------------------


async def _threaded_iter(iterator: Iterator[Any]) -> AsyncIterator[Any]:
    done = object()
    try:
        while (item := await asyncio.to_thread(next, iterator, done)) is not done:
            yield item
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            await asyncio.to_thread(close)


class _Threaded:
    """`target`'s methods as coroutines run on a thread; those returning an iterator return an
    async iterator instead."""

    def __init__(self, target: Any) -> None:
        self._target = target

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if name in {"jobs", "run", "sources"}:
            return _Threaded(value)
        if str(getattr(value, "__annotations__", {}).get("return", "")).startswith("Iterator["):
            return lambda *args, **kwargs: _threaded_iter(value(*args, **kwargs))

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await asyncio.to_thread(value, *args, **kwargs)

        return call


# -- what a scenario gets ------------------------------------------------------------------------


@dataclass
class Ctx:
    flavour: str
    server: ServerProcess
    key: str
    beacon: Beacon
    tmp_path: Path
    request: pytest.FixtureRequest
    stack: contextlib.AsyncExitStack
    http: httpx.AsyncClient = field(init=False)

    async def client(self, url: str | None = None, key: str | None = None, **options: Any) -> Any:
        """A client of this test's flavour, closed at the end of the test."""
        options.setdefault("max_retry_wait", 2.0)
        if self.flavour == "async":
            client = AsyncClient(url or self.server.url, self.key if key is None else key, **options)
            self.stack.push_async_callback(client.aclose)
            return client
        sync = Client(url or self.server.url, self.key if key is None else key, **options)
        self.stack.callback(sync.close)
        return _Threaded(sync)

    async def proxy(self, server: ServerProcess | None = None) -> FaultProxy:
        return await self.stack.enter_async_context(FaultProxy((server or self.server).url))


@pytest.fixture
async def ctx(
    request: pytest.FixtureRequest, server: ServerProcess, key: str, beacon: Beacon, tmp_path: Path
) -> AsyncIterator[Ctx]:
    async with contextlib.AsyncExitStack() as stack:
        context = Ctx(request.param, server, key, beacon, tmp_path, request, stack)
        context.http = await stack.enter_async_context(
            httpx.AsyncClient(base_url=server.url, headers={"X-API-Key": key}, timeout=30)
        )
        yield context


@pytest.fixture(scope="module")
def short_poll_server(tmp_path_factory: pytest.TempPathFactory, machine: Machine) -> Iterator[ServerProcess]:
    """A server that holds a long-poll for a quarter of a second at most (``JOBHOUSE_LONG_POLL_MAX``)."""
    db = tmp_path_factory.mktemp("short-poll") / "jobhouse.db"
    with running_server(db, machine, env={"JOBHOUSE_LONG_POLL_MAX": "0.25"}) as process:
        yield process


def test_every_shared_scenario_is_implemented_here() -> None:
    names = [entry["name"] for entry in SCENARIO_LIST]
    assert len(names) == len(set(names))
    assert all(set(entry) == {"name", "description"} and entry["description"] for entry in SCENARIO_LIST)
    assert set(names) == set(SCENARIOS)


@pytest.mark.parametrize("ctx", FLAVOURS, indirect=True)
@pytest.mark.parametrize("name", [entry["name"] for entry in SCENARIO_LIST])
async def test_scenario(name: str, ctx: Ctx) -> None:
    await SCENARIOS[name](ctx)


# -- the scenarios ---------------------------------------------------------------------------------


@scenario("create")
async def create(ctx: Ctx) -> None:
    client = await ctx.client()
    job = await client.jobs.create(
        "echo", input={"n": 1}, metadata={"by": "ana"}, competitor_id="acme", display_title="Echo for acme"
    )
    assert uuid.UUID(job.id)
    assert (job.status, job.type, job.competitor_id, job.display_title) == ("queued", "echo", "acme", "Echo for acme")
    assert job.metadata == {"by": "ana"}
    assert not job.terminal

    done = await client.jobs.wait(job.id, timeout=30)

    assert (done.id, done.status, done.outcome) == (job.id, "completed", "completed")
    assert done.result == {"input": {"n": 1}}
    assert done.completed_at is not None
    assert done.completed_at >= done.created_at


@scenario("wait-past-long-poll-max")
async def wait_past_long_poll_max(ctx: Ctx) -> None:
    server = ctx.request.getfixturevalue("short_poll_server")
    key = await server.new_key()
    proxy = await ctx.proxy(server)
    client = await ctx.client(proxy.url, key)
    job = await client.jobs.create("hold", input={"beacon": ctx.beacon.address})
    await ctx.beacon.seen(f"started {job.id}")

    waiting = asyncio.create_task(client.jobs.wait(job.id))
    # Three long-polls means the server answered two of them (after its 0.25 s) with the job running.
    await proxy.seen(f"GET /api/jobs/{job.id}", 3)
    assert not waiting.done()
    ctx.beacon.release(job.id)
    done = await waiting

    assert done.status == "completed"
    assert done.result["released"] is True


@scenario("wait-timeout-returns-job-as-is")
async def wait_timeout_returns_job_as_is(ctx: Ctx) -> None:
    client = await ctx.client()
    job = await client.jobs.create("hold", input={"beacon": ctx.beacon.address})
    await ctx.beacon.seen(f"started {job.id}")
    try:
        started = time.monotonic()
        running = await client.jobs.wait(job.id, timeout=0.5)
        assert running.status == "running"
        assert 0.4 < time.monotonic() - started < 20
        at_once = await client.run.wait(job.id, timeout=0)
        assert at_once.status == "running"
    finally:
        ctx.beacon.release(job.id)
    assert (await client.jobs.wait(job.id, timeout=30)).status == "completed"


@scenario("list-1200-through-cursors")
async def list_1200_through_cursors(ctx: Ctx) -> None:
    workspace = f"ws-list-{uuid.uuid4().hex[:8]}"  # a workspace of its own, holding exactly these jobs
    key = await ctx.server.new_key(workspace)
    made = await _create_many(ctx.server.database, workspace, 1200)
    client = await ctx.client(key=key)

    listed = [job async for job in client.jobs.list(page_size=500)]

    ids = [job.id for job in listed]
    assert len(ids) == len(set(ids)) == 1200
    assert set(ids) == set(made)
    assert ids == sorted(ids, reverse=True)  # newest first: ids are UUIDv7s
    small_pages = [job.id async for job in client.jobs.list(type="echo", page_size=7)]
    assert small_pages == ids


async def _create_many(database: str, workspace: str, count: int) -> list[str]:
    """`count` echo jobs in `workspace`, queued straight into the server's store in one transaction
    (setup: the scenario is the listing)."""
    queue = Queue(open_store(database), kinds.jobs)
    await queue.store.open(migrate=False)
    try:
        made = await queue.enqueue_many([queue.new_job("echo", workspace=workspace) for _ in range(count)])
    finally:
        await queue.store.close()
    return [job.id for job in made]


@scenario("list-filters")
async def list_filters(ctx: Ctx) -> None:
    client = await ctx.client()
    echo_a = await client.jobs.create("echo", competitor_id="a")
    echo_b = await client.jobs.create("echo", competitor_id="b")
    boom = await client.jobs.create("boom", competitor_id="a")
    for job in (echo_a, echo_b, boom):
        await client.jobs.wait(job.id, timeout=30)

    async def ids(**filters: Any) -> list[str]:
        return [job.id async for job in client.jobs.list(**filters)]

    assert await ids() == [boom.id, echo_b.id, echo_a.id]
    assert await ids(type="echo") == [echo_b.id, echo_a.id]
    assert await ids(competitor_id="a") == [boom.id, echo_a.id]
    assert await ids(status="failed") == [boom.id]
    assert await ids(status="completed", competitor_id="b") == [echo_b.id]
    assert await ids(status="cancelled") == []


@scenario("cancel")
async def cancel(ctx: Ctx) -> None:
    client = await ctx.client()
    job = await client.jobs.create("hold", input={"beacon": ctx.beacon.address})
    await ctx.beacon.seen(f"started {job.id}")

    cancelled = await client.jobs.cancel(job.id)

    assert (cancelled.status, cancelled.current_step, cancelled.outcome) == ("failed", "Cancelled", "cancelled")
    assert cancelled.cancelled
    assert cancelled.error is not None
    assert cancelled.error.type == "cancelled"
    assert (await client.jobs.cancel(job.id)).outcome == "cancelled"  # again: the same answer
    on_run = await client.run.cancel(job.id)
    assert (on_run.status, on_run.outcome) == ("cancelled", "cancelled")

    finished = await client.jobs.create("echo")
    await client.jobs.wait(finished.id, timeout=30)
    with pytest.raises(JobAlreadyFinished) as refused:
        await client.jobs.cancel(finished.id)
    assert (refused.value.status, refused.value.code) == (409, "JOB_ALREADY_FINISHED")


@scenario("not-found-404")
async def not_found_404(ctx: Ctx) -> None:
    client = await ctx.client()
    missing = str(uuid.uuid4())
    calls = [
        lambda: client.jobs.get(missing),
        lambda: client.jobs.wait(missing, timeout=5),
        lambda: client.jobs.cancel(missing),
        lambda: client.run.get(missing),
        lambda: client.run.cancel(missing),
        lambda: client.jobs.get("not-a-uuid"),
    ]
    for call in calls:
        with pytest.raises(JobNotFound) as raised:
            await call()
        assert (raised.value.status, raised.value.code) == (404, "JOB_NOT_FOUND")
        assert raised.value.message == "No job exists with the requested identifier"

    theirs = await (await ctx.client(key=await ctx.server.new_key())).jobs.create("echo")
    with pytest.raises(JobNotFound):  # another workspace's job reads as no job at all
        await client.jobs.get(theirs.id)
    with pytest.raises(SourceNotFound):
        await client.sources.sync("no-such-source")


@scenario("unauthorized-401")
async def unauthorized_401(ctx: Ctx) -> None:
    proxy = await ctx.proxy()
    client = await ctx.client(proxy.url, "jh_000000000000_" + "x" * 43)

    with pytest.raises(Unauthorized) as raised:
        await client.jobs.create("echo")

    assert (raised.value.status, raised.value.code) == (401, "UNAUTHORIZED")
    assert raised.value.response is not None
    assert raised.value.response.headers["www-authenticate"].startswith("Bearer")
    assert proxy.hits["POST /api/jobs"] == 1  # refused for good: not retried
    with pytest.raises(Unauthorized):
        await (await ctx.client(proxy.url, "")).jobs.get(str(uuid.uuid4()))


@scenario("invalid-request-400")
async def invalid_request_400(ctx: Ctx) -> None:
    client = await ctx.client()
    with pytest.raises(UnknownJobType) as unknown:
        await client.jobs.create("no-such-kind")
    assert (unknown.value.status, unknown.value.code) == (400, "UNKNOWN_JOB_TYPE")
    assert isinstance(unknown.value, InvalidRequest)

    with pytest.raises(InvalidSelector) as selector:
        await client.run.search("   ")
    assert selector.value.code == "INVALID_SELECTOR"

    with pytest.raises(InvalidRequest) as status:
        await anext(aiter(client.jobs.list(status="bogus")))
    assert status.value.code == "INVALID_REQUEST"
    assert "status" in status.value.message
    assert [job async for job in client.jobs.list()] == []  # nothing was made


@scenario("retry-503-with-retry-after")
async def retry_503_with_retry_after(ctx: Ctx) -> None:
    proxy = await ctx.proxy()
    client = await ctx.client(proxy.url)
    proxy.add(method="POST", path="/api/jobs", action="status", status=503, retry_after=1, times=2)

    started = time.monotonic()
    job = await client.jobs.create("echo")

    assert time.monotonic() - started >= 1.8  # it waited what Retry-After said, twice
    assert proxy.hits["POST /api/jobs"] == 3
    assert [listed.id async for listed in client.jobs.list()] == [job.id]

    proxy.add(method="GET", path=f"/api/jobs/{job.id}", action="status", status=503, retry_after=0, times=10)
    impatient = await ctx.client(proxy.url, retries=2)
    with pytest.raises(QueueUnavailable) as raised:
        await impatient.jobs.get(job.id)
    assert (raised.value.status, raised.value.code, raised.value.retry_after) == (503, "STORE_UNAVAILABLE", 0)
    assert proxy.hits[f"GET /api/jobs/{job.id}"] == 3  # one try and two retries


@scenario("idempotent-create-after-dropped-connection")
async def idempotent_create_after_dropped_connection(ctx: Ctx) -> None:
    proxy = await ctx.proxy()
    client = await ctx.client(proxy.url)
    proxy.add(method="POST", path="/api/jobs", action="drop-response", times=1)

    job = await client.jobs.create("echo", input={"once": True})

    assert proxy.hits["POST /api/jobs"] == 2  # the server made the job the first time
    assert [listed.id async for listed in client.jobs.list()] == [job.id]

    proxy.add(method="POST", path="/api/v1/run/search/jobs", action="drop-request", times=1)
    search = await client.run.create_search("firefox")
    assert proxy.hits["POST /api/v1/run/search/jobs"] == 2
    assert [listed.id async for listed in client.jobs.list(type="search-resolve")] == [search.job_id]


@scenario("events-four-steps-in-order")
async def events_four_steps_in_order(ctx: Ctx) -> None:
    client = await ctx.client()
    job = await client.jobs.create("collect", competitor_id="acme")

    async with asyncio.timeout(30):  # the iteration ends by itself after the terminal event
        events = [event async for event in client.jobs.events(job.id)]

    assert_four_steps_in_order(events)
    assert events[0].job.competitor_id == "acme"
    assert events[-1].job.result_type == "battlecard"
    run_events = [event async for event in client.run.events(job.id)]
    assert [event.id for event in run_events] == [event.id for event in events]
    assert run_events[-1].job.status == "done"


def assert_four_steps_in_order(events: list[Any]) -> None:
    """From created to completed, each step running and then completed, one after the other."""
    assert events[0].event == "created"
    assert events[0].job.status == "queued"
    assert events[-1].terminal
    assert events[-1].job.status == "completed"
    assert all(not event.terminal for event in events[:-1])
    ids = [event.id for event in events]
    assert ids == sorted(set(ids))
    progress = [event.job.progress for event in events]
    assert progress == sorted(progress)
    assert progress[-1] == 100
    moments = []  # (event index, step index, status) of each step status change
    for index, event in enumerate(events):
        for number, step in enumerate(event.job.steps):
            if index == 0 or events[index - 1].job.steps[number].status != step.status:
                moments.append((number, step.status))
    expected = [(n, "pending") for n in range(4)]
    expected += list(itertools.chain.from_iterable(((n, "running"), (n, "completed")) for n in range(4)))
    assert moments == expected


@scenario("events-resume-last-event-id")
async def events_resume_last_event_id(ctx: Ctx) -> None:
    proxy = await ctx.proxy()
    client = await ctx.client(proxy.url)
    job = await client.jobs.create("collect", input={"beacon": ctx.beacon.address, "hold_at": "build-matrix"})
    path = f"/api/jobs/{job.id}/events"
    proxy.add(method="GET", path=path, action="drop-stream", after_events=3, times=1)

    async def follow() -> list[Any]:
        return [event async for event in client.jobs.events(job.id)]

    following = asyncio.create_task(follow())
    await ctx.beacon.seen(f"at build-matrix {job.id}")
    await proxy.seen(f"GET {path}", 2)  # cut after three events, and resumed
    ctx.beacon.release(job.id)
    async with asyncio.timeout(30):
        events = await following

    assert_four_steps_in_order(events)  # every event once, in order, across the cut
    assert proxy.hits[f"GET {path}"] == 2
    direct = await ctx.client()
    everything = [event async for event in direct.jobs.events(job.id)]
    assert [event.id for event in everything] == [event.id for event in events]

    after_third = [event async for event in direct.jobs.events(job.id, last_event_id=events[2].id)]
    assert [event.id for event in after_third] == [event.id for event in events[3:]]
    assert [event async for event in direct.jobs.events(job.id, last_event_id=events[-1].id)] == []


@scenario("run-search")
async def run_search(ctx: Ctx) -> None:
    client = await ctx.client()
    found = await client.run.search("firefox", os="linux", limit=3)
    assert 1 <= len(found) <= 3
    assert found[0].app == "firefox"
    assert found[0].os == "linux"
    assert [c.score for c in found] == sorted((c.score for c in found), reverse=True)

    job = await client.run.create_search("firefox", os="linux", limit=3)
    assert (job.kind, job.status) == ("search-resolve", "queued")
    done = await client.run.wait(job.job_id, timeout=30)
    assert (done.status, done.result_type) == ("done", "search-response")
    assert [c["id"] for c in done.result["candidates"]] == [c.id for c in found]
    once = await client.run.get(job.job_id, wait="done", timeout_ms=1000)
    assert once.status == "done"


@scenario("sources-list-and-sync")
async def sources_list_and_sync(ctx: Ctx) -> None:
    client = await ctx.client()
    listed = await client.sources.list()
    assert {"path", "desktop", "dpkg", "apt"} <= {source.id for source in listed}

    job = await client.sources.sync("path", force=True)
    assert job.kind == "source-sync"
    done = await client.run.wait(job.job_id, timeout=30)
    assert done.status == "done", done.error
    assert set(done.result["sources"]) == {"path"}
    path = next(source for source in await client.sources.list() if source.id == "path")
    assert path.synced_at is not None
    assert path.candidate_count > 0


# -- the workspace stream (not a shared scenario: the TypeScript SDK has its own) ---------------


@pytest.mark.parametrize("ctx", FLAVOURS, indirect=True)
async def test_the_workspace_stream_resumes_follows_and_filters(ctx: Ctx) -> None:
    client = await ctx.client()
    first = await client.jobs.create("echo", competitor_id="a")
    boom = await client.jobs.create("boom")
    second = await client.jobs.create("echo", competitor_id="b")
    for job in (first, boom, second):
        await client.jobs.wait(job.id, timeout=30)
    history = {job.id: [e.id async for e in client.jobs.events(job.id)] for job in (first, second)}

    async def until_ended(stream: AsyncIterator[Any], ids: set[str]) -> list[Any]:
        seen: list[Any] = []
        async with contextlib.aclosing(stream), asyncio.timeout(30):
            async for event in stream:
                seen.append(event)
                if ids <= {e.job.id for e in seen if e.terminal}:
                    return seen
        raise AssertionError("the workspace stream ended by itself")

    # With a last event id, it replays the workspace's events after it (no race with the creates).
    replayed = await until_ended(
        client.jobs.stream(type="echo", last_event_id=history[first.id][0] - 1), {first.id, second.id}
    )
    assert boom.id not in {event.job.id for event in replayed}  # filtered out: not an echo
    assert [event.id for event in replayed] == sorted(history[first.id] + history[second.id])

    # Then it follows live: a job created after the last event seen arrives.
    stream = client.jobs.stream(status="completed", last_event_id=replayed[-1].id)
    third = await client.jobs.create("echo")
    live = await until_ended(stream, {third.id})
    assert [(event.job.id, event.job.status) for event in live] == [(third.id, "completed")]


# -- retry and delete (shared scenarios) -------------------------------------------------------------


@scenario("retry")
async def retry(ctx: Ctx) -> None:
    client = await ctx.client()
    job = await client.jobs.create("boom")
    first = await client.jobs.wait(job.id, timeout=30)
    assert (first.status, first.attempt, first.max_attempts) == ("failed", 1, 1)

    again = await client.jobs.retry(job.id)

    assert (again.id, again.status, again.error, again.attempt, again.max_attempts) == (job.id, "queued", None, 1, 2)
    assert [error.attempt for error in again.errors] == [1]
    second = await client.jobs.wait(job.id, timeout=30)
    assert (second.status, second.attempt, second.max_attempts) == ("failed", 2, 2)
    assert [(error.attempt, error.type) for error in second.errors] == [(1, "ValueError"), (2, "ValueError")]

    finished = await client.jobs.create("echo")
    await client.jobs.wait(finished.id, timeout=30)
    with pytest.raises(JobNotRetryable) as refused:
        await client.jobs.retry(finished.id)
    assert (refused.value.status, refused.value.code) == (409, "JOB_NOT_RETRYABLE")

    proxy = await ctx.proxy()
    lossy = await ctx.client(proxy.url)
    proxy.add(method="POST", path=f"/api/jobs/{job.id}/retry", action="drop-response", times=1)
    with pytest.raises(ConnectionFailed):
        await lossy.jobs.retry(job.id)
    assert proxy.hits[f"POST /api/jobs/{job.id}/retry"] == 1  # not sent again
    third = await client.jobs.wait(job.id, timeout=30)
    assert (third.status, third.attempt, len(third.errors)) == ("failed", 3, 3)


@scenario("delete")
async def delete(ctx: Ctx) -> None:
    client = await ctx.client()
    done = await client.jobs.create("echo")
    await client.jobs.wait(done.id, timeout=30)

    assert await client.jobs.delete(done.id) is None

    with pytest.raises(JobNotFound):
        await client.jobs.get(done.id)
    assert done.id not in [job.id async for job in client.jobs.list()]

    held = await client.jobs.create("hold", input={"beacon": ctx.beacon.address})
    await ctx.beacon.seen(f"started {held.id}")
    with pytest.raises(JobNotFinished) as refused:
        await client.jobs.delete(held.id)
    assert (refused.value.status, refused.value.code) == (409, "JOB_NOT_FINISHED")
    assert (await client.jobs.get(held.id)).status == "running"
    await client.jobs.cancel(held.id)

    proxy = await ctx.proxy()
    lossy = await ctx.client(proxy.url)
    proxy.add(method="DELETE", path=f"/api/jobs/{held.id}", action="drop-response", times=1)
    await lossy.jobs.delete(held.id)
    assert proxy.hits[f"DELETE /api/jobs/{held.id}"] == 2  # sent again, and the job was gone: deleted
    with pytest.raises(JobNotFound):
        await client.jobs.get(held.id)


# -- job control: scheduled jobs and priorities (shared scenarios) ----------------------------------


@scenario("scheduled")
async def scheduled(ctx: Ctx) -> None:
    client = await ctx.client()
    delayed = await client.jobs.create("echo", delay=0.3)
    at = datetime.now(UTC) + timedelta(milliseconds=600)  # ahead still when it arrives, on a slow machine too
    timed = await client.jobs.create("echo", run_at=at)

    assert (delayed.status, timed.status) == ("queued", "queued")
    assert delayed.scheduled_at is not None
    assert abs(delayed.scheduled_at - delayed.created_at - timedelta(milliseconds=300)) < timedelta(milliseconds=50)
    assert timed.scheduled_at is not None
    assert abs(timed.scheduled_at - at) < timedelta(milliseconds=1)
    for job in (delayed, timed):
        done = await client.jobs.wait(job.id, timeout=30)
        assert (done.status, done.scheduled_at) == ("completed", None)
        assert done.started_at is not None
        assert done.started_at >= job.scheduled_at

    with pytest.raises(ValueError, match="no time zone"):
        await client.jobs.create("echo", run_at=datetime(2030, 1, 1, 9, 0))  # naive: nothing is sent
    assert {job.id async for job in client.jobs.list()} == {delayed.id, timed.id}


@scenario("priority")
async def priority(ctx: Ctx) -> None:
    client = await ctx.client()
    urgent = await client.jobs.create("echo", priority=7)
    plain = await client.jobs.create("echo")

    assert (urgent.priority, plain.priority) == (7, 0)
    assert (await client.jobs.get(urgent.id)).priority == 7
    with pytest.raises(InvalidRequest) as refused:
        await client.jobs.create("echo", priority=11)
    assert (refused.value.status, refused.value.code) == (400, "INVALID_REQUEST")
    assert "priority" in refused.value.message


@pytest.mark.parametrize("ctx", FLAVOURS, indirect=True)
async def test_the_run_surface_creates_take_a_delay_a_time_and_a_priority(ctx: Ctx) -> None:
    """Not a shared scenario: `run.create_search` and `sources.sync` with job-control arguments."""
    client = await ctx.client()
    search = await client.run.create_search("firefox", os="linux", delay=timedelta(seconds=0.3), priority=-4)
    assert (search.status, search.priority) == ("queued", -4)
    assert search.scheduled_at is not None
    sync = await client.sources.sync("path", run_at=datetime.now(UTC) - timedelta(hours=1), priority=2)
    assert (sync.priority, sync.scheduled_at) == (2, None)  # a time past is now
    done = await client.run.wait(search.job_id, timeout=30)
    assert (done.status, done.scheduled_at) == ("done", None)
    assert (await client.run.wait(sync.job_id, timeout=30)).status == "done"
