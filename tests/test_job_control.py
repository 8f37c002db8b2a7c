"""Job control on both stores: scheduled jobs, priorities, fair claims across workspaces, concurrency
limits and unique jobs; first on the store (a clock the test moves), then over real HTTP."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobhouse.clock import ManualClock
from jobhouse.ids import new_id
from jobhouse.job import Job, NewJob, Outcome, Verdict
from jobhouse.queue import Queue
from jobhouse.store import open_store
from jobhouse.store.base import JobQuery, Store
from jobhouse.store.postgres import PostgresStore
from jobhouse.store.sqlite import SqliteStore
from tests.conftest import backend_url
from tests.helpers import assert_error, create, wait_done
from tests.servers import Machine, ServerProcess, running_server, running_workers
from tests.test_docs import REPO, code_blocks


def a_job(workspace: str = "ws", kind: str = "k", **fields: Any) -> NewJob:
    return NewJob(id=new_id(), workspace=workspace, kind=kind, title="A job", max_attempts=3, **fields)


async def claim_ids(store: Store, limit: int = 100, kinds: set[str] | None = None, **options: Any) -> list[str]:
    return [job.id for job in await store.claim("w", kinds or {"k"}, limit, lease=30, **options)]


def done(job: Job) -> Outcome:
    return Outcome(job.ref, Verdict.COMPLETED, 100, job.steps, result=b"null")


# -- the store ---------------------------------------------------------------------------------


async def test_higher_priorities_are_claimed_first_then_the_oldest(store: Store) -> None:
    low, plain, high, high_later = await store.enqueue(
        [a_job(priority=-5), a_job(), a_job(priority=7), a_job(priority=7)]
    )
    assert [j.priority for j in (low, plain, high)] == [-5, 0, 7]
    assert await claim_ids(store, 1) == [high.id]
    assert await claim_ids(store) == [high_later.id, plain.id, low.id]


async def test_claims_take_one_job_of_each_workspace_in_turn(store: Store) -> None:
    a = await store.enqueue([a_job("a") for _ in range(50)])
    b = await store.enqueue([a_job("b") for _ in range(2)])
    (c,) = await store.enqueue([a_job("c")])
    # b and c came after a's fifty, and still start in the first claim of three
    assert await claim_ids(store, 3) == [a[0].id, b[0].id, c.id]
    assert await claim_ids(store, 3) == [a[1].id, b[1].id, a[2].id]
    assert await claim_ids(store, 100) == [job.id for job in a[3:]]


async def test_a_workspace_that_created_one_by_one_is_served_in_turn_too(store: Store) -> None:
    made = []
    for _ in range(3):
        (one,) = await store.enqueue([a_job("a")])
        (other,) = await store.enqueue([a_job("b")])
        made += [one.id, other.id]
    assert await claim_ids(store) == made  # a, b, a, b, a, b: creation order already alternates


async def test_a_new_workspace_starts_next_behind_a_backlog_being_served(store: Store) -> None:
    backlog = await store.enqueue([a_job("a") for _ in range(20)])
    assert await claim_ids(store, 10) == [job.id for job in backlog[:10]]
    (late,) = await store.enqueue([a_job("b")])
    assert (await claim_ids(store, 2))[1] == late.id


async def test_a_scheduled_job_waits_for_its_time(store: Store, clock: ManualClock) -> None:
    later = clock.now() + timedelta(seconds=10)
    (job,) = await store.enqueue([a_job(run_at=later)])
    (ready,) = await store.enqueue([a_job()])
    assert job.scheduled_at == later
    assert ready.scheduled_at is None
    assert await claim_ids(store) == [ready.id]
    assert store.lineup.next_due == later
    clock.advance(9.999)
    assert await claim_ids(store) == []
    clock.advance(0.001)
    assert await claim_ids(store) == [job.id]
    assert store.lineup.next_due is None


async def test_a_scheduled_job_that_comes_due_lines_up_fairly(store: Store, clock: ManualClock) -> None:
    backlog = await store.enqueue([a_job("a") for _ in range(10)])
    (due,) = await store.enqueue([a_job("b", run_at=clock.now() + timedelta(seconds=1))])
    clock.advance(1)
    assert await claim_ids(store, 2) == [backlog[0].id, due.id]


async def test_a_thousand_jobs_due_at_one_instant_are_all_claimed_then(store: Store, clock: ManualClock) -> None:
    at = clock.now() + timedelta(seconds=2)
    jobs = await store.enqueue([a_job(f"ws{i % 3}", run_at=at) for i in range(1000)])
    assert await claim_ids(store, 1000) == []
    clock.advance(2)
    claimed = await claim_ids(store, 1000)
    assert sorted(claimed) == sorted(job.id for job in jobs)


async def test_a_scheduled_job_reads_queued_and_can_be_cancelled(store: Store, clock: ManualClock) -> None:
    (job,) = await store.enqueue([a_job(run_at=clock.now() + timedelta(seconds=5))])
    page = await store.list_jobs(JobQuery(workspace="ws", statuses=frozenset({job.status})))
    assert [j.id for j in page.jobs] == [job.id]
    cancelled, changed = await store.cancel(job.id)
    assert changed
    clock.advance(10)
    assert await claim_ids(store) == []
    assert cancelled.scheduled_at is None


async def test_limits_hold_per_key_and_free_a_place_when_a_job_ends(store: Store) -> None:
    x = await store.enqueue([a_job(kind="lim", concurrency_key="x") for _ in range(3)])
    y = await store.enqueue([a_job(kind="lim", concurrency_key="y") for _ in range(2)])
    (free,) = await store.enqueue([a_job(kind="k")])
    kinds = {"k", "lim"}
    first = await store.claim("w", kinds, 10, lease=30, limits={"lim": 1})
    assert sorted(j.id for j in first) == sorted([x[0].id, y[0].id, free.id])
    assert await store.claim("w", kinds, 10, lease=30, limits={"lim": 1}) == []
    await store.finish([done(next(j for j in first if j.id == x[0].id))])
    assert [j.id for j in await store.claim("w", kinds, 10, lease=30, limits={"lim": 1})] == [x[1].id]


async def test_jobs_held_to_a_limit_that_was_removed_still_run(store: Store) -> None:
    held = await store.enqueue([a_job(kind="lim", concurrency_key="") for _ in range(3)])
    assert sorted(await claim_ids(store, 10, {"lim"})) == sorted(j.id for j in held)


async def test_racing_claims_never_pass_a_limit(store: Store, tmp_path: Path, clock: ManualClock) -> None:
    await store.enqueue([a_job(kind="lim", concurrency_key="") for _ in range(40)])
    others: list[Store] = [type(store)(_same_store(store), clock=clock) for _ in range(3)]
    for other in others:
        await other.open()
    try:
        claims = [s.claim(f"w{i}", {"lim"}, 10, lease=30, limits={"lim": 3}) for i, s in enumerate([store, *others])]
        claimed = [job for jobs in await asyncio.gather(*claims) for job in jobs]
    finally:
        for other in others:
            await other.close()
    assert len(claimed) == 3


def _same_store(store: Store) -> str:
    """The address another store object would open `store` by."""
    if isinstance(store, SqliteStore):
        return store.path
    assert isinstance(store, PostgresStore)
    return f"{store.conninfo}{'&' if '?' in store.conninfo else '?'}schema={store.schema}"


async def test_a_unique_job_made_again_within_its_window_is_the_same_job(store: Store, clock: ManualClock) -> None:
    first, made = await store.create(a_job(unique_key="u:1", unique_for=60))
    again, made_again = await store.create(a_job(unique_key="u:1", unique_for=60))
    other, made_other = await store.create(a_job(unique_key="u:2", unique_for=60))
    assert (made, made_again, made_other) == (True, False, True)
    assert again.id == first.id
    assert other.id != first.id
    (through_enqueue,) = await store.enqueue([a_job(unique_key="u:1", unique_for=60)])
    assert through_enqueue.id == first.id
    elsewhere, made_elsewhere = await store.create(a_job("other-ws", unique_key="u:1", unique_for=60))
    assert made_elsewhere
    assert elsewhere.id != first.id
    clock.advance(61)
    later, made_later = await store.create(a_job(unique_key="u:1", unique_for=60))
    assert made_later
    assert later.id != first.id


async def test_racing_creates_of_one_unique_job_make_one(store: Store) -> None:
    results = await asyncio.gather(*(store.create(a_job(unique_key="race", unique_for=60)) for _ in range(20)))
    assert len({job.id for job, _ in results}) == 1
    assert sum(made for _, made in results) == 1


async def test_a_job_handed_back_unstarted_keeps_its_place(store: Store) -> None:
    a = await store.enqueue([a_job("a") for _ in range(3)])
    (b,) = await store.enqueue([a_job("b")])
    claimed = await store.claim("w", {"k"}, 1, lease=30)
    assert await store.release([claimed[0].ref], unstarted=True) == 1
    assert await claim_ids(store) == [a[0].id, b.id, a[1].id, a[2].id]


# -- over HTTP ---------------------------------------------------------------------------------


async def finished(client: httpx.AsyncClient, job_id: str, timeout_ms: int = 20_000) -> dict[str, Any]:
    """The job as the workspace surface shows it once it ended."""
    await wait_done(client, job_id, timeout_ms)
    job: dict[str, Any] = (await client.get(f"/api/jobs/{job_id}")).json()["job"]
    return job


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_a_job_created_with_a_delay_reads_queued_until_then_and_starts_after(client: httpx.AsyncClient) -> None:
    job = await create(client, "echo", delayMs=1200)
    assert job["status"] == "queued"
    scheduled = _time(job["scheduledAt"])
    assert abs(scheduled - _time(job["createdAt"]) - timedelta(milliseconds=1200)) < timedelta(milliseconds=50)
    assert (await client.get(f"/api/jobs/{job['id']}")).json()["job"]["status"] == "queued"
    ended = await finished(client, job["id"])
    assert ended["status"] == "completed"
    assert ended["scheduledAt"] is None
    assert _time(ended["startedAt"]) >= scheduled
    assert _time(ended["startedAt"]) - scheduled < timedelta(seconds=2)  # generous: timers, not a poll


async def test_a_job_created_for_a_time_starts_then(client: httpx.AsyncClient) -> None:
    at = datetime.now(UTC) + timedelta(seconds=1)
    job = await create(client, "echo", runAt=at.isoformat())
    assert abs(_time(job["scheduledAt"]) - at) < timedelta(milliseconds=1)
    ended = await finished(client, job["id"])
    assert _time(ended["startedAt"]) >= _time(job["scheduledAt"])


async def test_a_time_in_the_past_means_now(client: httpx.AsyncClient) -> None:
    job = await create(client, "echo", runAt="2001-01-01T00:00:00Z")
    assert job["scheduledAt"] is None
    assert (await finished(client, job["id"]))["status"] == "completed"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"runAt": "2030-01-01T00:00:00Z", "delayMs": 5}, "runAt or delayMs, not both"),
        ({"runAt": "2030-01-01T00:00:00"}, "needs a UTC offset"),
        ({"runAt": "2999-01-01T00:00:00Z"}, "days ahead"),
        ({"runAt": "next tuesday"}, "runAt"),
        ({"delayMs": -1}, "delayMs"),
        ({"delayMs": "soon"}, "delayMs"),
        ({"priority": 11}, "priority"),
        ({"priority": 1.5}, "priority"),
    ],
)
async def test_bad_schedules_and_priorities_are_400_and_make_nothing(
    client: httpx.AsyncClient, fields: dict[str, Any], message: str
) -> None:
    response = await client.post("/api/jobs", json={"type": "echo", **fields})
    assert message in assert_error(response, 400, "INVALID_REQUEST")
    assert (await client.get("/api/jobs")).json()["jobs"] == []


async def test_the_run_surface_takes_a_delay_and_a_priority(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/run/sources/sync", json={"delay_ms": 800, "priority": 3})
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] == "queued"
    assert job["priority"] == 3
    assert "scheduled_at" in job
    bad = await client.post("/api/v1/run/search/jobs", json={"query": "editor", "run_at": "later"})
    assert "run_at" in assert_error(bad, 400, "INVALID_REQUEST")


async def test_a_priority_is_shown_and_defaults_to_its_kind(client: httpx.AsyncClient) -> None:
    assert (await create(client, "echo", priority=-3))["priority"] == -3
    assert (await create(client, "echo"))["priority"] == 0


async def test_a_unique_kind_gives_back_the_job_it_already_has(client: httpx.AsyncClient) -> None:
    first = await client.post("/api/jobs", json={"type": "once", "input": {"key": "k1", "note": "a"}})
    again = await client.post("/api/jobs", json={"type": "once", "input": {"key": "k1", "note": "b"}})
    other = await client.post("/api/jobs", json={"type": "once", "input": {"key": "k2"}})
    assert first.status_code == again.status_code == other.status_code == 202
    assert again.json()["job"]["id"] == first.json()["job"]["id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert other.json()["job"]["id"] != first.json()["job"]["id"]
    listed = (await client.get("/api/jobs", params={"type": "once"})).json()["jobs"]
    assert len(listed) == 2


async def test_a_limited_kind_never_runs_more_at_once_than_its_limit(client: httpx.AsyncClient) -> None:
    made = [await create(client, "paced", input={"group": group, "seconds": 0.3}) for group in "aaaaab"]
    ended = [await finished(client, job["id"]) for job in made]
    assert all(job["status"] == "completed" for job in ended)
    spans = [(job["result"]["start"], job["result"]["end"], job["input"]["group"]) for job in ended]
    for start, _, group in spans:
        at_once = [s for s in spans if s[2] == group and s[0] <= start < s[1]]
        assert len(at_once) <= 2, f"{len(at_once)} of group {group} ran at once"
    # b's job did not wait behind a's: a limit holds back only its own key
    b_start = next(s[0] for s in spans if s[2] == "b")
    assert b_start < max(s[0] for s in spans if s[2] == "a")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_job_of_another_workspace_starts_within_a_second_behind_10000(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, machine: Machine
) -> None:
    """The issue's acceptance: 10,000 queued jobs of workspace A, then one of B, on two workers."""
    database = backend_url(request, backend, tmp_path / "jobhouse.db")
    with running_server(database, machine, args=["--no-workers"]) as server:
        store = open_store(database)
        await store.open(migrate=False)
        try:
            await store.enqueue([a_job("a", kind="stamp", input={"seconds": 0.05}) for _ in range(10_000)])
        finally:
            await store.close()
        async with httpx.AsyncClient(base_url=server.url, headers={"X-API-Key": await server.new_key("b")}) as b:
            with running_workers(database, 2):
                await _until_running(server.url, await server.new_key("a"))
                job = await create(b, "stamp")
                ended = await finished(b, job["id"], timeout_ms=30_000)
    waited = ended["result"]["started"] - _time(job["createdAt"]).timestamp()
    assert ended["status"] == "completed"
    assert waited < 1.0, f"B's job waited {waited:.2f}s behind A's backlog"


async def _until_running(url: str, key: str) -> None:
    """Until the workers run A's jobs (their start-up is not what is measured)."""
    async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}) as a:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            page = (await a.get("/api/jobs", params={"status": "completed", "limit": 1})).json()
            if page["jobs"]:
                return
            await asyncio.sleep(0.05)
    raise AssertionError("the workers never started")


@pytest.mark.slow
async def test_a_thousand_jobs_scheduled_for_one_instant_all_start_soon_after_it(
    server: ServerProcess, client: httpx.AsyncClient
) -> None:
    """None starts early; all start within a generous bound of the instant here (a shared server on a
    loaded test machine): the issue's 1 s is measured on idle workers, see docs/job-control.md."""
    first = await create(client, "stamp")  # its workspace is the key's
    at = datetime.now(UTC) + timedelta(seconds=2)
    store = open_store(server.database)
    await store.open(migrate=False)
    try:
        await store.enqueue([a_job(first["workspaceId"], kind="stamp", run_at=at) for _ in range(1000)])
    finally:
        await store.close()
    completed = await _all_completed(client, 1001)
    started = [job["result"]["started"] for job in completed if job["id"] != first["id"]]
    late = [moment - at.timestamp() for moment in started]
    assert len(late) == 1000
    assert min(late) >= 0
    assert max(late) < 3.0, f"the last of 1,000 started {max(late):.2f}s after its time"


async def _all_completed(client: httpx.AsyncClient, count: int) -> list[dict[str, Any]]:
    """The workspace's jobs once `count` of them have completed (read a page of 500 at a time)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        jobs: list[dict[str, Any]] = []
        cursor = None
        while True:
            params = {"status": "completed", "limit": 500, **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/api/jobs", params=params)).json()
            jobs += page["jobs"]
            if not (cursor := page["nextCursor"]):
                break
        if len(jobs) >= count:
            return jobs
        await asyncio.sleep(0.2)
    raise AssertionError(f"only {len(jobs)} of {count} jobs completed")


# -- docs/job-control.md -----------------------------------------------------------------------


def test_every_python_block_in_job_control_md_is_cut_from_the_example() -> None:
    source = (REPO / "docs" / "examples" / "job_control.py").read_text("utf-8")
    blocks = code_blocks((REPO / "docs" / "job-control.md").read_text("utf-8"), "python")
    assert blocks
    for block in blocks:
        assert block in source, f"docs/job-control.md shows code that docs/examples/job_control.py lacks:\n{block}"


async def test_the_example_kinds_do_what_the_page_says(store: Store, clock: ManualClock) -> None:
    from docs.examples.job_control import jobs

    queue = Queue(store, jobs)
    reindex = await queue.enqueue("reindex", workspace="ws")
    receipt = await queue.enqueue("send-receipt", workspace="ws", input={"email": "ana@example.com"})
    calls = [await queue.enqueue("call-partner-api", workspace="ws", input={"partner": p}) for p in "aaab"]
    first = await queue.enqueue("refresh-report", workspace="ws", input={"report_id": 7})
    again = await queue.enqueue("refresh-report", workspace="ws", input={"report_id": 7})
    assert again.id == first.id
    claimed = [job.id for job in await queue.claim("w", jobs.names(), 10, lease=30)]
    assert claimed[0] == receipt.id  # priority 5 first
    assert claimed[-1] == reindex.id  # priority -5 last
    assert set(claimed) == {receipt.id, reindex.id, first.id, calls[0].id, calls[1].id, calls[3].id}
    clock.advance(301)
    later = await queue.enqueue("refresh-report", workspace="ws", input={"report_id": 7})
    assert later.id != first.id
