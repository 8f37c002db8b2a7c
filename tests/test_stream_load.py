"""Thousands of event streams on one server process: what they cost, and how fast an end reaches them.

The subscribers are plain sockets speaking HTTP/1.1 (an HTTP client library would cost this test more
than the server), each reading its stream line by line until the job's terminal event.
"""

from __future__ import annotations

import asyncio
import os
import resource
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.helpers import create
from tests.servers import Machine, ServerProcess, running_server

pytestmark = pytest.mark.slow

SUBSCRIBERS = 5000
CONNECTING = 500  # streams being opened at once: below the server's listen backlog, so no SYN is dropped and retried


@pytest.fixture(scope="module")
def lone_server(tmp_path_factory: pytest.TempPathFactory, machine: Machine) -> Iterator[ServerProcess]:
    db = tmp_path_factory.mktemp("load") / "jobhouse.db"
    env = {"JOBHOUSE_LOG_LEVEL": "warning"}
    with running_server(db, machine, args=["--no-workers"], env=env) as process:
        yield process


def enough_sockets(count: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = count + 500
    if soft < wanted and (hard == resource.RLIM_INFINITY or hard >= wanted):
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < wanted:
        if os.environ.get("CI") == "true":
            pytest.fail(f"this machine allows {hard} open files; the test needs {wanted}")
        pytest.skip(f"this machine allows {hard} open files; the test needs {wanted}")


class Subscriber:
    """One stream on its own socket: when it saw its first event, and when the terminal one.

    `settled` is set at the first event, or when the stream failed before it (`failure` says how)."""

    def __init__(self) -> None:
        self.settled = asyncio.Event()
        self.failure: str | None = None
        self.ended_at: float | None = None

    async def follow(self, url: str, path: str, key: str, connecting: asyncio.Semaphore) -> None:
        host, port = url.removeprefix("http://").split(":")
        writer: asyncio.StreamWriter | None = None
        try:
            async with connecting:  # held until the stream's first event
                reader, writer = await asyncio.open_connection(host, int(port))
                writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nX-API-Key: {key}\r\n\r\n".encode())
                head = await reader.readline()
                while not (line := await reader.readline()).startswith(b"event: created"):
                    if not line:
                        self.failure = f"closed before its first event; it answered {head!r}"
                        return
                self.settled.set()
            while line := await reader.readline():
                if line.startswith(b"data: ") and b'"status":"failed"' in line:
                    self.ended_at = time.monotonic()
                    return
        except OSError as error:
            self.failure = repr(error)
        finally:
            if writer is not None:
                writer.close()
            self.settled.set()


@pytest.mark.timeout(240)  # 5,000 connections opened one by one: minutes on a loaded CI machine
async def test_five_thousand_streams_cost_under_100mb_and_all_hear_the_end_at_once(lone_server: ServerProcess) -> None:
    enough_sockets(SUBSCRIBERS)
    key = await lone_server.new_key()
    server = psutil.Process(lone_server.process.pid)
    async with httpx.AsyncClient(base_url=lone_server.url, headers={"X-API-Key": key}, timeout=60) as http:
        job = await create(http, "echo")  # no workers: it waits until cancelled
        path = f"/api/jobs/{job['id']}/events"
        before = server.memory_info().rss

        subscribers = [Subscriber() for _ in range(SUBSCRIBERS)]
        connecting = asyncio.Semaphore(CONNECTING)
        following = [asyncio.create_task(s.follow(lone_server.url, path, key, connecting)) for s in subscribers]
        async with asyncio.timeout(120):
            for subscriber in subscribers:
                await subscriber.settled.wait()
        failures = [s.failure for s in subscribers if s.failure]
        assert not failures, f"{len(failures)} of {SUBSCRIBERS} streams failed to open, e.g. {failures[0]}"
        assert (await http.get("/healthz")).json()["streams"] == SUBSCRIBERS
        grown = server.memory_info().rss - before

        cancelled_at = time.monotonic()
        assert (await http.post(f"/api/jobs/{job['id']}/cancel")).status_code == 200
        async with asyncio.timeout(60):
            await asyncio.gather(*following)

    latest = max(s.ended_at or float("inf") for s in subscribers) - cancelled_at
    assert grown < 100 * 2**20, f"{SUBSCRIBERS} streams grew the server by {grown / 2**20:.0f} MB"
    assert latest < 5, f"the last of {SUBSCRIBERS} streams heard the end after {latest:.2f}s"  # generous: see bench
    assert (await _streams_left(lone_server)) == 0


async def _streams_left(server: ServerProcess) -> int:
    async with httpx.AsyncClient(base_url=server.url) as http:
        for _ in range(100):
            streams: int = (await http.get("/healthz")).json()["streams"]
            if streams == 0:
                break
            await asyncio.sleep(0.05)  # the server notices each hang-up on its own time
        return streams


def test_the_server_lifts_its_open_files_limit(tmp_path: Path) -> None:
    from jobhouse.server import raise_open_files_limit

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
        lifted = raise_open_files_limit()
        assert lifted == (hard if hard != resource.RLIM_INFINITY else 1 << 20)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
