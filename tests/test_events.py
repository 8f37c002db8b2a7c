"""Server-sent event streams over real HTTP, on both stores (docs/events.md)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests.beacon import Beacon
from tests.helpers import assert_error, create
from tests.kinds import SEED_STEPS
from tests.openapi_check import document_of, origin_of
from tests.servers import Machine, ServerProcess, running_server
from tests.sse import Frame, Stream, read

STEP_NAMES = [name for _, name in SEED_STEPS]


async def check_data(client: httpx.AsyncClient, path: str, stream: Stream) -> None:
    """Every frame's data is what the document says the stream's events carry."""
    document = await document_of(origin_of(client.base_url))
    schema = document.event_data(path)
    for frame in stream.frames:
        assert document.problems(schema, frame.data) == [], frame


def steps_entered(frames: list[Frame], field: str = "currentStep") -> list[str]:
    """The current steps the frames show, each once, in the order they first appear."""
    entered: list[str] = []
    for frame in frames:
        step = frame.data[field]
        if step is not None and step not in entered:
            entered.append(step)
    return entered


def moment(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def test_a_subscriber_sees_every_step_of_a_four_step_job_in_order(
    client: httpx.AsyncClient, beacon: Beacon
) -> None:
    job = await create(client, "collect", competitorId="acme", input={"beacon": beacon.address, "hold_at": "ingest"})
    path = f"/api/jobs/{job['id']}/events"

    async def release_at_ingest(frame: Frame) -> None:
        if frame.data["currentStep"] == "Processing Intel":
            beacon.release(job["id"])

    stream = await read(client, path, on_frame=release_at_ingest)

    assert stream.status == 200
    assert stream.ended  # the server closed it after the terminal event
    assert stream.retry == 1000
    assert stream.headers["cache-control"] == "no-store"
    frames = stream.frames
    assert [f.seq for f in frames] == sorted({f.seq for f in frames})  # strictly increasing
    assert frames[0].event == "created"
    assert frames[0].data["status"] == "queued"
    assert frames[1].event == "status"
    assert (frames[1].data["status"], frames[1].data["attempt"]) == ("running", 1)
    assert steps_entered(frames) == STEP_NAMES
    assert {f.event for f in frames[2:-1]} <= {"step", "progress"}
    progress = [f.data["progress"] for f in frames]
    assert progress == sorted(progress)
    last = frames[-1]
    assert (last.event, last.data["status"], last.data["progress"]) == ("status", "completed", 100)
    assert last.data["result"] == {"battlecard": "for acme", "metadata_seen": {}}
    assert last.data["resultType"] == "battlecard"
    assert all(step["status"] == "completed" for step in last.data["steps"])
    assert last.received - moment(last.data["updatedAt"]) < 2  # generous: the benchmark measures it
    await check_data(client, path, stream)


async def test_the_run_surface_streams_the_same_changes_in_its_own_words(client: httpx.AsyncClient) -> None:
    job = await create(client, "collect", competitorId="acme")
    finished = await client.get(f"/api/jobs/{job['id']}", params={"wait": "done", "timeout_ms": 20000})
    assert finished.json()["job"]["status"] == "completed"

    path = f"/api/v1/run/jobs/{job['id']}/events"
    run = await read(client, path)
    workspace = await read(client, f"/api/jobs/{job['id']}/events")

    assert run.ended
    assert [f.id for f in run.frames] == [f.id for f in workspace.frames]  # the same changes, the same ids
    assert [f.event for f in run.frames] == [f.event for f in workspace.frames]
    assert steps_entered(run.frames, "current_step") == STEP_NAMES
    assert run.frames[-1].data["status"] == "done"
    assert run.frames[-1].data["result_type"] == "battlecard"
    assert "created_at" not in run.frames[-1].data
    await check_data(client, path, run)


async def test_a_reconnect_with_last_event_id_misses_nothing_and_repeats_nothing(
    client: httpx.AsyncClient, beacon: Beacon
) -> None:
    job = await create(client, "collect", input={"beacon": beacon.address, "hold_at": "build-matrix"})
    path = f"/api/jobs/{job['id']}/events"
    first = await read(client, path, until=lambda f: f.data["currentStep"] == "Building Competitor Matrix")
    assert not first.ended

    beacon.release(job["id"])  # the job goes on while nobody listens
    await client.get(f"/api/jobs/{job['id']}", params={"wait": "done", "timeout_ms": 20000})
    second = await read(client, path, headers={"Last-Event-ID": first.frames[-1].id or ""})
    whole = await read(client, path)

    assert second.ended
    assert [f.id for f in first.frames + second.frames] == [f.id for f in whole.frames]
    assert [f.data for f in first.frames + second.frames] == [f.data for f in whole.frames]
    assert second.frames[-1].data["status"] == "completed"

    # Past the end of a finished job there is nothing more: 204 tells an EventSource to stop.
    after_end = await read(client, path, headers={"Last-Event-ID": whole.frames[-1].id or ""})
    assert (after_end.status, after_end.body) == (204, b"")


async def test_a_stream_opened_while_the_job_runs_follows_it_live(client: httpx.AsyncClient, beacon: Beacon) -> None:
    job = await create(client, "hold", input={"beacon": beacon.address})
    await beacon.seen(f"started {job['id']}")
    path = f"/api/jobs/{job['id']}/events"

    async def release_when_caught_up(frame: Frame) -> None:
        if frame.data["currentStep"] == "Holding":
            beacon.release(job["id"])

    stream = await read(client, path, on_frame=release_when_caught_up)
    statuses = [f.data["status"] for f in stream.frames]
    assert statuses[0] == "queued"
    assert statuses[-1] == "completed"
    assert "running" in statuses


async def test_a_cancelled_job_ends_its_streams(client: httpx.AsyncClient, beacon: Beacon) -> None:
    job = await create(client, "hold", input={"beacon": beacon.address})
    await beacon.seen(f"started {job['id']}")

    async def cancel_once_running(frame: Frame) -> None:
        if frame.data["status"] == "running" and frame.data["currentStep"] == "Holding":
            await client.post(f"/api/jobs/{job['id']}/cancel")

    stream = await read(client, f"/api/jobs/{job['id']}/events", on_frame=cancel_once_running)
    last = stream.frames[-1].data
    assert (last["status"], last["currentStep"], last["error"]["type"]) == ("failed", "Cancelled", "cancelled")
    run = await read(client, f"/api/v1/run/jobs/{job['id']}/events")
    assert (run.frames[-1].data["status"], run.frames[-1].data["error"]["type"]) == ("cancelled", "cancelled")
    beacon.release(job["id"])


async def test_the_workspace_stream_filters_resumes_and_keeps_to_its_workspace(
    server: ServerProcess, client: httpx.AsyncClient
) -> None:
    path = "/api/jobs/events"
    seen: list[Frame] = []
    done = asyncio.Event()

    async def note(frame: Frame) -> None:
        seen.append(frame)
        if frame.data["status"] == "completed" and frame.data["competitorId"] == "last":
            done.set()

    reader = asyncio.create_task(
        read(client, path, params={"type": "echo"}, until=lambda f: done.is_set(), on_frame=note)
    )
    async with httpx.AsyncClient(base_url=server.url, headers={"X-API-Key": await server.new_key()}) as other:
        await create(other, "echo", competitorId="last")  # another workspace: never seen here
    # The reader subscribes as soon as its request is answered; a long-poll shows that it has been.
    while (await client.get("/healthz")).json()["streams"] < 1:  # noqa: ASYNC110 - another process
        await asyncio.sleep(0.01)
    collect = await create(client, "collect")
    echoes = [await create(client, "echo", competitorId=name) for name in ("first", "last")]
    stream = await asyncio.wait_for(reader, 20)

    ids = {e["id"] for e in echoes}
    assert {f.data["id"] for f in stream.frames} == ids
    assert collect["id"] not in {f.data["id"] for f in stream.frames}
    assert [f.seq for f in stream.frames] == sorted({f.seq for f in stream.frames})
    await check_data(client, path, stream)

    # Resume from the first event: everything after it, filtered, then live (stopped by the reader).
    resumed = await read(
        client,
        path,
        params={"status": "completed", "type": "echo"},
        headers={"Last-Event-ID": stream.frames[0].id or ""},
        until=lambda f: f.data["competitorId"] == "last",
    )
    assert [f.data["competitorId"] for f in resumed.frames] == ["first", "last"]
    assert all(f.data["status"] == "completed" and f.data["result"] is not None for f in resumed.frames)


@pytest.mark.parametrize(
    ("path", "headers", "status", "code"),
    [
        ("/api/jobs/550e8400-e29b-41d4-a716-446655440000/events", {}, 404, "JOB_NOT_FOUND"),
        ("/api/v1/run/jobs/not-a-uuid/events", {}, 404, "JOB_NOT_FOUND"),
        ("/api/jobs/events?status=done", {}, 400, "INVALID_REQUEST"),
        ("/api/jobs/events", {"Last-Event-ID": "-1"}, 400, "INVALID_REQUEST"),
        ("/api/jobs/events", {"Last-Event-ID": "12abc"}, 400, "INVALID_REQUEST"),
        ("/api/jobs/events", {"Last-Event-ID": "9" * 30}, 400, "INVALID_REQUEST"),
    ],
)
async def test_bad_streams_are_refused_before_any_event(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], status: int, code: str
) -> None:
    response = await client.get(path, headers=headers)
    assert_error(response, status, code)


async def test_another_workspaces_job_has_no_stream(server: ServerProcess, client: httpx.AsyncClient) -> None:
    job = await create(client, "echo")
    async with httpx.AsyncClient(base_url=server.url, headers={"X-API-Key": await server.new_key()}) as other:
        for path in (f"/api/jobs/{job['id']}/events", f"/api/v1/run/jobs/{job['id']}/events"):
            assert_error(await other.get(path), 404, "JOB_NOT_FOUND")


async def test_an_idle_stream_gets_pings_and_a_hang_up_is_noticed(tmp_path: Path, machine: Machine) -> None:
    with running_server(tmp_path / "ping.db", machine, args=["--no-workers"], env={"JOBHOUSE_SSE_PING": "0.2"}) as idle:
        async with httpx.AsyncClient(base_url=idle.url, headers={"X-API-Key": await idle.new_key()}) as http:
            job = await create(http, "echo")  # no workers: it stays queued
            stream = await read(http, f"/api/jobs/{job['id']}/events", until=lambda f: True)
            async with http.stream("GET", f"/api/jobs/{job['id']}/events") as response:
                lines = response.aiter_lines()
                seen = [await anext(lines) for _ in range(8)]
            # Both streams are closed by now; the server stops following the job within a ping or so.
            async with asyncio.timeout(10):
                while (await http.get("/healthz")).json()["streams"]:  # noqa: ASYNC110 - another process
                    await asyncio.sleep(0.05)
    assert stream.frames[0].event == "created"
    assert ": ping" in seen
