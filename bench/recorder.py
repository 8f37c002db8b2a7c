"""The job body every system runs, and the benchmark's side of it.

Every system's handler does the same thing, in one Redis pipeline (one write of two commands, one
read of both replies): it appends ``"<enqueued_at> <started_at>"`` to the list `STARTS` (the enqueue
time the job carries in its arguments, and the handler's own `time.time()` at its start) and
increments the counter `DONE`. `record` is that body for handlers that run in threads, `arecord`
for async ones. So every system pays the same for its job, and the benchmark learns when each job
started and how many have run from one place, not by polling each system's own store.

The body speaks Redis's protocol on a plain socket rather than through redis-py: that costs some
20-40 µs of CPU time a job, against some 130-180 µs through redis-py's clients, which would
otherwise be a large part of what a fast queue spends per job. The records go to a Redis server
of the benchmark's own (`RecordServer`, on a Unix socket in the run's work directory), not to the
Redis the peers store their queues in, so the Redis CPU time measured for a Redis-backed peer is
its own.
"""

from __future__ import annotations

import asyncio
import functools
import os
import queue
import shutil
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from bench.procs import Process

if TYPE_CHECKING:
    import redis.asyncio

#: The environment variable that tells worker processes where to record (a ``unix://`` Redis URL).
ENV = "BENCH_RECORD_URL"
STARTS = "bench:starts"
DONE = "bench:done"


def _pipeline(enqueued_at: float, started_at: float) -> bytes:
    """``RPUSH STARTS "<enqueued_at> <started_at>"`` and ``INCR DONE``, in Redis's protocol."""
    sample = f"{float(enqueued_at)!r} {started_at!r}".encode()
    return b"*3\r\n$5\r\nRPUSH\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n*2\r\n$4\r\nINCR\r\n$%d\r\n%s\r\n" % (
        len(STARTS), STARTS.encode(), len(sample), sample, len(DONE), DONE.encode(),
    )  # fmt: skip


def _check(first: bytes, second: bytes) -> None:
    if not (first.startswith(b":") and second.startswith(b":")):
        raise RuntimeError(f"the recorder's Redis answered {first!r} {second!r}")


def _socket_path() -> str:
    url = os.environ[ENV]
    if not url.startswith("unix://"):
        raise RuntimeError(f"{ENV} must be a unix:// URL, not {url!r}")
    return url.removeprefix("unix://")


class _Connections:
    """Idle connections to the recorder, taken by one job at a time and given back (a pool per process)."""

    def __init__(self) -> None:
        self.path = _socket_path()
        self.threads: queue.SimpleQueue[tuple[socket.socket, BinaryIO]] = queue.SimpleQueue()
        self.tasks: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []


@functools.cache
def _connections() -> _Connections:
    """This process's pool (made on first use; the async side lives in the worker's one event loop)."""
    return _Connections()


def record(enqueued_at: float) -> None:
    """The job body for handlers that run in threads: record the start and count the job, in one round trip."""
    started_at = time.time()
    pool = _connections()
    try:
        sock, replies = pool.threads.get_nowait()
    except queue.Empty:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(pool.path)
        replies = sock.makefile("rb")
    sock.sendall(_pipeline(enqueued_at, started_at))
    first, second = replies.readline(), replies.readline()
    pool.threads.put((sock, replies))
    _check(first, second)


async def arecord(enqueued_at: float) -> None:
    """The job body for async handlers: as `record`."""
    started_at = time.time()
    pool = _connections()
    reader, writer = pool.tasks.pop() if pool.tasks else await asyncio.open_unix_connection(pool.path)
    writer.write(_pipeline(enqueued_at, started_at))
    first = await reader.readline()
    second = await reader.readline()
    pool.tasks.append((reader, writer))
    _check(first, second)


class RecordServer:
    """A private ``redis-server`` (no persistence, Unix socket only) for one run, and reads of what jobs recorded."""

    def __init__(self, workdir: Path) -> None:
        self.socket = workdir / "record.sock"
        self.url = f"unix://{self.socket}"
        argv = [shutil.which("redis-server") or "redis-server", "--port", "0", "--unixsocket", str(self.socket),
                "--unixsocketperm", "700", "--save", "", "--appendonly", "no", "--dir", str(workdir)]  # fmt: skip
        self._process = Process("record redis-server", argv, {}, workdir / "record-redis.log")
        self._redis: redis.asyncio.Redis | None = None

    async def start(self) -> RecordServer:
        import redis.asyncio  # here, so that worker processes load the job body with the standard library alone

        self._process.start()
        client = redis.asyncio.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                await client.ping()
                break
            except (redis.ConnectionError, FileNotFoundError):
                self._process.check()
                if time.monotonic() > deadline:
                    raise
                await client.aclose()
                client = redis.asyncio.Redis.from_url(self.url)
                await asyncio.sleep(0.02)
        self._redis = client
        return self

    async def stop(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
        self._process.stop(grace=2.0)

    @property
    def redis(self) -> redis.asyncio.Redis:
        assert self._redis is not None, "the record server is not started"
        return self._redis

    async def reset(self) -> None:
        """Forget every record (before each measurement)."""
        await self.redis.flushdb()

    async def done(self) -> int:
        """How many jobs have run their body so far."""
        return int(await self.redis.get(DONE) or 0)

    async def samples(self) -> list[tuple[float, float]]:
        """Every ``(enqueued_at, started_at)`` recorded so far, in the order the jobs recorded them."""
        raws: list[bytes] = await self.redis.lrange(STARTS, 0, -1)  # type: ignore[misc]
        return [_parse(raw) for raw in raws]

    async def next_sample(self, timeout: int) -> tuple[float, float]:
        """Wait (up to `timeout` seconds) for the next job to record itself and take its record off the list."""
        popped: tuple[bytes, bytes] | None = await self.redis.blpop([STARTS], timeout=timeout)  # type: ignore[misc]
        if popped is None:
            raise TimeoutError(f"no job started within {timeout:.0f}s")
        return _parse(popped[1])


def _parse(raw: bytes) -> tuple[float, float]:
    enqueued, started = raw.split()
    return float(enqueued), float(started)
