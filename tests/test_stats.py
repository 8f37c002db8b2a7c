"""``GET /api/jobs/stats`` over real HTTP, on both stores: a workspace's jobs by type, queued,
scheduled and running now and ended since a time; consistent with ``GET /api/jobs``, exact past any
page size, blind to other workspaces; its bad ``since`` refused; the SDK's ``jobs.stats()``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import orjson
import pytest

import jobhouse.client
from jobhouse.api import models, workspace
from jobhouse.api.openapi import document
from jobhouse.api.responses import JSONResponse
from jobhouse.api.views import millis
from jobhouse.ids import new_id
from jobhouse.job import NewJob, Outcome, Verdict
from jobhouse.store import open_store
from jobhouse.store.base import KindStats, Store
from tests.conftest import BACKENDS, backend_url
from tests.helpers import api_client, assert_error, create, wait_done
from tests.openapi_check import Document
from tests.servers import Machine, ServerPool, ServerProcess, start_server

ZERO = {"queued": 0, "scheduled": 0, "running": 0, "failed": 0, "cancelled": 0, "completed": 0, "oldestQueuedAt": None}


@pytest.fixture(scope="module", params=BACKENDS)
def idle(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, machine: Machine) -> ServerProcess:
    """A server without workers, per backend, for this module alone: its jobs stay as the tests leave
    them (the tests move them on through the store, as a worker would)."""

    def start() -> ServerProcess:
        database = backend_url(request, request.param, tmp_path_factory.mktemp("stats") / "jobhouse.db")
        return start_server(database, machine, args=["--no-workers"])

    pool: ServerPool = request.getfixturevalue(
        "session_pg_servers" if request.param == "postgres" else "session_servers"
    )
    return pool.get(f"stats-idle-{request.param}", start)


@pytest.fixture
async def worker(idle: ServerProcess) -> AsyncIterator[Store]:
    """The idle server's store, opened by the test: what a worker process does, it does by hand."""
    store = open_store(idle.database)
    await store.open(migrate=False)
    try:
        yield store
    finally:
        await store.close()


async def stats(client: httpx.AsyncClient, **params: str) -> dict[str, Any]:
    response = await client.get("/api/jobs/stats", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def by_type(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    assert [kind["type"] for kind in body["kinds"]] == sorted(kind["type"] for kind in body["kinds"])
    return {kind.pop("type"): kind for kind in body["kinds"]}


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def listed(client: httpx.AsyncClient, status: str, type: str) -> int:
    """How many jobs ``GET /api/jobs`` lists with this status and type."""
    response = await client.get("/api/jobs", params={"status": status, "type": type, "limit": "500"})
    assert response.status_code == 200
    assert response.json()["nextCursor"] is None
    return len(response.json()["jobs"])


async def test_each_state_is_counted_by_type_as_the_listing_shows_it(idle: ServerProcess, worker: Store) -> None:
    key, other_key = await idle.new_key(), await idle.new_key()
    async with api_client(idle.url, {"Authorization": f"Bearer {key}"}) as client:
        assert (await stats(client))["kinds"] == []
        echoes = [await create(client, "echo") for _ in range(4)]
        await create(client, "echo", delayMs=3_600_000)
        for kind in ("boom", "boom", "collect", "collect"):
            await create(client, kind)
        async with api_client(idle.url, {"X-API-Key": other_key}) as other:
            others = [await create(other, "echo") for _ in range(4)]
            assert (await other.post(f"/api/jobs/{others[0]['id']}/cancel")).status_code == 200
        # as a worker would: both boom jobs fail, one collect job completes and the other runs
        booms = await worker.claim("by-hand", {"boom"}, 10, lease=600)
        await worker.finish([Outcome(job.ref, Verdict.FAILED, 0, job.steps) for job in booms])
        collects = await worker.claim("by-hand", {"collect"}, 10, lease=600)
        assert (len(booms), len(collects)) == (2, 2)
        await worker.finish([Outcome(collects[0].ref, Verdict.COMPLETED, 100, collects[0].steps)])
        cancelled = (await client.post(f"/api/jobs/{echoes[0]['id']}/cancel")).json()["job"]

        body = await stats(client)

        assert moment(body["at"]) - moment(body["since"]) == timedelta(hours=24)
        assert moment(body["at"]) >= moment(cancelled["completedAt"])
        kinds = by_type(body)
        assert kinds == {
            "boom": {**ZERO, "failed": 2},
            "collect": {**ZERO, "running": 1, "completed": 1},
            "echo": {
                **ZERO,
                "queued": 3,
                "scheduled": 1,
                "failed": 1,
                "cancelled": 1,
                "oldestQueuedAt": echoes[1]["createdAt"],
            },
        }
        # what the listings show: queued holds the scheduled job too, failed the cancelled one
        for type, figures in kinds.items():
            assert await listed(client, "queued", type) == figures["queued"] + figures["scheduled"]
            assert await listed(client, "running", type) == figures["running"]
            assert await listed(client, "failed", type) == figures["failed"]
            assert await listed(client, "cancelled", type) == figures["cancelled"]
            assert await listed(client, "completed", type) == figures["completed"]

    # the other workspace sees its own jobs only, and this one's never
    async with api_client(idle.url, {"X-API-Key": other_key}) as other:
        assert by_type(await stats(other)) == {
            "echo": {**ZERO, "queued": 3, "failed": 1, "cancelled": 1, "oldestQueuedAt": others[1]["createdAt"]}
        }


async def test_counts_are_exact_past_any_page(idle: ServerProcess, worker: Store) -> None:
    key = await idle.new_key("stats-many")
    jobs = [NewJob(id=new_id(), workspace="stats-many", kind="echo", title="Echo", max_attempts=1) for _ in range(3000)]
    made = await worker.enqueue(jobs)
    async with api_client(idle.url, {"Authorization": f"Bearer {key}"}) as client:
        kinds = by_type(await stats(client))
    assert kinds == {"echo": {**ZERO, "queued": 3000, "oldestQueuedAt": millis(made[0].created_at)}}


async def test_since_starts_the_counts_of_ended_jobs(idle: ServerProcess) -> None:
    key = await idle.new_key()
    async with api_client(idle.url, {"Authorization": f"Bearer {key}"}) as client:
        job = await create(client, "echo")
        ended = (await client.post(f"/api/jobs/{job['id']}/cancel")).json()["job"]["completedAt"]
        counted = {**ZERO, "failed": 1, "cancelled": 1}

        assert by_type(await stats(client, since=ended)) == {"echo": counted}
        after = (moment(ended) + timedelta(milliseconds=1)).isoformat().replace("+00:00", "Z")
        assert (await stats(client, since=after))["kinds"] == []
        # any offset, given back in UTC; to the millisecond, as the counts were cut
        two_hours_east = moment(ended).astimezone(timezone(timedelta(hours=2)))
        body = await stats(client, since=two_hours_east.isoformat())
        assert (body["since"], by_type(body)) == (ended, {"echo": counted})
        finer = (moment(ended) + timedelta(microseconds=999)).isoformat()
        assert (await stats(client, since=finer))["since"] == ended
        # a time ahead counts no ended job; the first and last times there are count as any other
        assert (await stats(client, since="9999-12-31T23:59:59.999Z"))["kinds"] == []
        first = await stats(client, since="0001-01-01T00:00:00Z")
        assert (first["since"], by_type(first)) == ("0001-01-01T00:00:00.000Z", {"echo": counted})


@pytest.mark.parametrize(
    "since",
    [
        "yesterday",
        "",
        "2026-01-01",
        "2026-01-01T00:00:00",  # no offset
        "2026-13-01T00:00:00Z",
        "2026-01-01T00:00:00 01:00",  # a '+' sent unencoded arrives as a space
        "0001-01-01T00:00:00+01:00",  # before the first representable time in UTC
        "1" * 300,
    ],
)
async def test_a_bad_since_is_a_400_that_names_it_and_nothing_changes(
    idle_client: httpx.AsyncClient, since: str
) -> None:
    await create(idle_client, "echo")
    before = await stats(idle_client)

    response = await idle_client.get("/api/jobs/stats", params={"since": since})

    assert "since" in assert_error(response, 400, "INVALID_REQUEST")
    after = await stats(idle_client)
    assert after["kinds"] == before["kinds"]
    assert len((await idle_client.get("/api/jobs")).json()["jobs"]) == 1


async def test_stats_is_not_a_job_id(idle_client: httpx.AsyncClient) -> None:
    await create(idle_client, "echo")
    assert (await idle_client.get("/api/jobs/stats")).json()["kinds"][0]["type"] == "echo"
    assert_error(await idle_client.post("/api/jobs/stats"), 405, "METHOD_NOT_ALLOWED")
    assert_error(await idle_client.delete("/api/jobs/stats"), 404, "JOB_NOT_FOUND")


async def test_real_runs_are_counted_as_they_end(client: httpx.AsyncClient) -> None:
    done = await create(client, "echo")
    broken = await create(client, "boom")
    for job in (done, broken):
        await wait_done(client, job["id"])

    kinds = by_type(await stats(client))

    assert kinds == {"boom": {**ZERO, "failed": 1}, "echo": {**ZERO, "completed": 1}}


# -- the SDK -------------------------------------------------------------------------------------


def test_the_blocking_sdk_reads_the_stats(idle_server: ServerProcess) -> None:
    key = asyncio.run(idle_server.new_key())
    with jobhouse.client.Client(idle_server.url, key) as jh:
        dropped = jh.jobs.cancel(jh.jobs.create("echo").id)
        waiting = jh.jobs.create("echo")

        stats = jh.jobs.stats()

        assert isinstance(stats, jobhouse.client.JobStats)
        assert stats.at - stats.since == timedelta(hours=24)
        assert stats.kinds == [
            jobhouse.client.KindStats(
                type="echo", queued=1, scheduled=0, running=0, failed=1, cancelled=1, completed=0,
                oldest_queued_at=waiting.created_at,
            )
        ]  # fmt: skip
        assert dropped.completed_at is not None
        later = jh.jobs.stats(since=dropped.completed_at + timedelta(milliseconds=1))
        assert (later.kinds[0].queued, later.kinds[0].failed) == (1, 0)
        with pytest.raises(ValueError, match="no time zone"):
            jh.jobs.stats(since=datetime(2030, 1, 1))


async def test_the_async_sdk_reads_the_stats(idle_server: ServerProcess) -> None:
    key = await idle_server.new_key()
    async with jobhouse.client.AsyncClient(idle_server.url, key) as jh:
        job = await jh.jobs.create("echo", delay=3600)
        east = timezone(timedelta(hours=5, minutes=30))

        stats = await jh.jobs.stats(since=job.created_at.astimezone(east))

        assert stats.since == job.created_at
        (echo,) = stats.kinds
        assert (echo.type, echo.queued, echo.scheduled, echo.oldest_queued_at) == ("echo", 0, 1, None)
        assert stats.model_dump(mode="json", by_alias=True)["kinds"][0]["oldestQueuedAt"] is None


def test_the_body_is_its_model_byte_for_byte() -> None:
    at = datetime(2026, 3, 2, 8, 20, 3, 118_512, tzinfo=UTC)
    kinds = [
        KindStats("a", ready=3, scheduled=1, running=2, completed=40, failed=4, cancelled=1, oldest_ready=at),
        KindStats("b", completed=1),
    ]
    body = models.JobStats.of(kinds=[workspace.kind_stats(kind) for kind in kinds], since=millis(at), at=millis(at))
    rendered = JSONResponse(body).body
    schema = {"$ref": "#/components/schemas/JobStats"}

    assert Document(document(["a", "b"], [])).problems(schema, orjson.loads(rendered)) == []
    assert rendered == body.__pydantic_serializer__.to_json(body)
    assert models.JobStats.model_validate_json(rendered, strict=True) == body
    assert orjson.loads(rendered)["kinds"][0] == {
        "type": "a", "queued": 3, "scheduled": 1, "running": 2, "failed": 5, "cancelled": 1, "completed": 40,
        "oldestQueuedAt": "2026-03-02T08:20:03.118Z",
    }  # fmt: skip
