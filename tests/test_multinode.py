"""Many nodes on one PostgreSQL: two API servers without workers, two worker processes."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests import pg
from tests.beacon import Beacon
from tests.helpers import create
from tests.kinds import SEED_STEPS
from tests.servers import ServerProcess, running_server, running_workers
from tests.sse import Frame, read

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture(scope="module")
def cluster(
    pg_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    schema = pg.new_schema()
    url = pg.with_schema(pg_database, schema)
    try:
        with (
            running_server(url, args=["--no-workers"]) as one,
            running_server(url, args=["--no-workers"]) as two,
            running_workers(url, 2),
        ):
            yield one, two
    finally:
        pg.drop_schema(pg_database, schema)


@pytest.fixture
async def nodes(cluster: tuple[ServerProcess, ServerProcess]) -> AsyncIterator[list[httpx.AsyncClient]]:
    key = await cluster[0].new_key()
    async with (
        httpx.AsyncClient(base_url=cluster[0].url, headers={"X-API-Key": key}, timeout=60) as one,
        httpx.AsyncClient(base_url=cluster[1].url, headers={"X-API-Key": key}, timeout=60) as two,
    ):
        yield [one, two]


async def test_a_long_poll_on_node_two_answers_within_100ms_of_completion(
    nodes: list[httpx.AsyncClient], beacon: Beacon
) -> None:
    """Three long-polls: the best within 100 ms of the end (the mechanism), none slower than a
    generous bound (a loaded CI machine can stall any process for a moment)."""
    one, two = nodes
    delays = []
    for _ in range(3):
        job = await create(one, "hold", input={"beacon": beacon.address})
        poll = asyncio.create_task(two.get(f"/api/jobs/{job['id']}", params={"wait": "done", "timeout_ms": 60000}))
        await beacon.seen(f"started {job['id']}")
        beacon.release(job["id"])

        done = (await poll).json()["job"]
        answered = datetime.now(UTC)
        assert done["status"] == "completed"
        ended = datetime.fromisoformat(done["completedAt"].replace("Z", "+00:00"))
        delays.append((answered - ended).total_seconds())
    assert min(delays) < 0.101, delays
    assert max(delays) < 1.0, delays


async def test_a_cancel_sent_to_node_two_stops_a_handler_in_a_worker_process(
    nodes: list[httpx.AsyncClient], beacon: Beacon
) -> None:
    one, two = nodes
    job = await create(one, "hold", input={"beacon": beacon.address})
    await beacon.seen(f"started {job['id']}")

    started = time.monotonic()
    response = await two.post(f"/api/jobs/{job['id']}/cancel")
    await beacon.seen(f"interrupted {job['id']}", timeout=5)

    assert time.monotonic() - started < 1.0
    assert response.json()["job"]["currentStep"] == "Cancelled"
    beacon.release(job["id"])
    final = (await one.get(f"/api/v1/run/jobs/{job['id']}")).json()
    assert final["status"] == "cancelled"


@pytest.mark.timeout(180)  # about 20 s alone; a loaded CI machine runs it beside two other test processes
async def test_1000_jobs_run_exactly_once_across_both_workers(nodes: list[httpx.AsyncClient], tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    log.touch()
    semaphore = asyncio.Semaphore(32)

    async def make(index: int) -> str:
        async with semaphore:
            job = await create(nodes[index % 2], "record", input={"log": str(log)})
            return str(job["id"])

    ids = await asyncio.gather(*(make(i) for i in range(1000)))

    # How each job ended, from node two's stream of the workspace (replayed from its first event,
    # then live, until every job has ended): one request, where a long-poll per job made a thousand.
    ended: dict[str, dict[str, object]] = {}

    async def note(frame: Frame) -> None:
        if frame.data["status"] in {"completed", "failed"}:
            ended[frame.data["id"]] = frame.data

    stream = await read(
        nodes[1], "/api/jobs/events", headers={"Last-Event-ID": "0"}, on_frame=note, until=lambda _: len(ended) == 1000
    )
    assert stream.status == 200
    assert set(ended) == set(ids)
    jobs = list(ended.values())

    assert all(job["status"] == "completed" and job["attempt"] == 1 for job in jobs)
    runs = [line.split() for line in log.read_text().splitlines() if " start " in line]
    assert Counter(job_id for job_id, *_ in runs) == Counter(ids)
    pids = Counter(pid for _, _, pid, *_ in runs)
    assert len(pids) == 2, pids
    assert min(pids.values()) > 50, pids


async def test_a_stream_on_node_two_follows_a_job_made_on_node_one_step_by_step(
    nodes: list[httpx.AsyncClient], beacon: Beacon
) -> None:
    one, two = nodes
    delays = []
    for _ in range(3):
        job = await create(one, "collect", input={"beacon": beacon.address, "hold_at": "ingest"})

        async def release_at_ingest(frame: Frame, job_id: str = job["id"]) -> None:
            if frame.data["currentStep"] == "Processing Intel":
                beacon.release(job_id)

        stream = await read(two, f"/api/jobs/{job['id']}/events", on_frame=release_at_ingest)
        assert stream.ended
        assert [f.seq for f in stream.frames] == sorted({f.seq for f in stream.frames})
        entered = []
        for frame in stream.frames:
            if frame.data["currentStep"] and frame.data["currentStep"] not in entered:
                entered.append(frame.data["currentStep"])
        assert entered == [name for _, name in SEED_STEPS]
        last = stream.frames[-1]
        assert last.data["status"] == "completed"
        delays.append(last.received - datetime.fromisoformat(last.data["updatedAt"].replace("Z", "+00:00")).timestamp())
    assert sorted(delays)[1] < 0.101, delays  # the median of three


async def test_a_stream_resumed_on_another_node_misses_nothing_and_repeats_nothing(
    nodes: list[httpx.AsyncClient], beacon: Beacon
) -> None:
    one, two = nodes
    job = await create(one, "collect", input={"beacon": beacon.address, "hold_at": "build-matrix"})
    path = f"/api/jobs/{job['id']}/events"
    first = await read(one, path, until=lambda f: f.data["currentStep"] == "Building Competitor Matrix")
    beacon.release(job["id"])
    second = await read(two, path, headers={"Last-Event-ID": first.frames[-1].id or ""})
    whole = await read(one, path)
    assert second.ended
    assert [f.id for f in first.frames + second.frames] == [f.id for f in whole.frames]
