"""The server's limits (docs/security.md), each hit over real HTTP on a real `jobhouse serve`.

Every test runs on two servers with small limits, one per HTTP parser (httptools, and h11, the
fallback): the refusals the HTTP layer makes itself (malformed requests, over-long URLs, too many
or too large headers, headers that never end, silent connections, too many connections), a client
hanging up, the security headers, and the app's limits (long-polls and event streams per key and
per process, list pages cut by bytes, source syncs per workspace). While abusers push, ``/healthz``
is timed from a thread of its own, one new connection per probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import sys
import threading
import time
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import psutil
import pytest

from tests.helpers import api_client, assert_error, create
from tests.servers import Machine, ServerProcess, running_server

#: Small limits, so that each is quick to reach.
LIMITED = {
    "JOBHOUSE_HEADER_TIMEOUT": "2",
    "JOBHOUSE_IDLE_TIMEOUT": "2",
    "JOBHOUSE_MAX_WAITS": "5",
    "JOBHOUSE_MAX_WAITS_PER_KEY": "3",
    "JOBHOUSE_MAX_LIST_BYTES": str(64 * 1024),
    "JOBHOUSE_SYNC_RATE": "1",
    "JOBHOUSE_SYNC_BURST": "2",
    "JOBHOUSE_LOG_LEVEL": "debug",  # so that a client hanging up leaves its one line
    "JOBHOUSE_SSE_PING": "0.5",  # so that a stream's client hanging up is noticed soon
}
#: The bound the issue set for ``/healthz`` while abusers push, in seconds.
HEALTHZ_BOUND = 0.050
ENVELOPE = {"error", "code", "error_code"}
SECURITY = {
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


@pytest.fixture(scope="module", params=["httptools", "h11"])
def limited(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, machine: Machine
) -> Iterator[ServerProcess]:
    db = tmp_path_factory.mktemp(f"limits-{request.param}") / "jobhouse.db"
    env = {**LIMITED, "JOBHOUSE_HTTP_PARSER": request.param}
    with running_server(db, machine, args=["--no-workers"], env=env) as process:
        yield process


@pytest.fixture
async def client(limited: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(limited.url, {"Authorization": f"Bearer {await limited.new_key()}"}) as http:
        yield http


def parser_of(server: ServerProcess) -> str:
    return "h11" if "limits-h11" in server.database else "httptools"


# -- raw connections ------------------------------------------------------------------------------


class Raw(asyncio.Protocol):
    """One connection that sends what it is told and keeps every byte it reads, until the server
    ends its side (or resets the connection: what was read before stays)."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.transport: asyncio.Transport | None = None
        self.ended = asyncio.get_running_loop().create_future()
        self.started = time.monotonic()
        self.ended_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.data += data

    def eof_received(self) -> bool:
        self._end()
        return True  # our side may still be sending

    def connection_lost(self, exc: Exception | None) -> None:
        self._end()

    def _end(self) -> None:
        if not self.ended.done():
            self.ended_at = time.monotonic()
            self.ended.set_result(None)

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        if not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()  # now, whatever is still buffered to send

    def answer(self) -> Answer:
        return Answer.parse(bytes(self.data))


async def connect(server: ServerProcess) -> Raw:
    host, port = server.url.removeprefix("http://").split(":")
    _, protocol = await asyncio.get_running_loop().create_connection(Raw, host, int(port))
    return protocol


async def exchange(server: ServerProcess, data: bytes, timeout: float = 10) -> Answer:
    """Send `data` on a new connection and read until the server ends it."""
    raw = await connect(server)
    try:
        raw.send(data)
        await asyncio.wait_for(raw.ended, timeout)
        return raw.answer()
    finally:
        raw.close()


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    @classmethod
    def parse(cls, data: bytes) -> Answer:
        head, _, body = data.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = [(name.strip().lower(), value.strip()) for name, _, value in (line.partition(":") for line in lines)]
        return cls(int(status_line.split()[1]), headers, body)

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key == name), None)

    def envelope(self, status: int, error_code: str) -> dict[str, Any]:
        """The answer is the error envelope with this status and code, and closes the connection."""
        assert self.status == status, (self.status, self.body)
        assert self.header("content-type") == "application/json"
        assert self.header("connection") == "close"
        body: dict[str, Any] = json.loads(self.body)
        assert set(body) == ENVELOPE, body
        assert (body["code"], body["error_code"]) == (status, error_code), body
        assert body["error"]
        for name, value in SECURITY.items():
            assert self.header(name) == value, name
        return body


# -- /healthz, timed while the server is abused ----------------------------------------------------

#: The prober: its own process (so that the abuser in the test's process does not slow it), asking
#: ``GET /healthz`` on a new connection every 10 ms until its stdin closes, then printing the times.
PROBER = """
import json, socket, sys, threading, time
host, port = sys.argv[1], int(sys.argv[2])
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
times, failures = [], []
while not stop.is_set():
    started = time.perf_counter()
    try:
        with socket.create_connection((host, port), timeout=5) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        times.append(time.perf_counter() - started)
        if not answer.startswith(b"HTTP/1.1 200 "):
            failures.append(answer[:200].decode("latin-1"))
    except OSError as exc:
        failures.append(repr(exc))
    stop.wait(0.01)
print(json.dumps({"times": times, "failures": failures}))
"""


@dataclass
class Probe:
    """What the prober saw: each answer's time, and what was not a 200."""

    times: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def summary(self) -> str:
        ordered = sorted(self.times) or [0.0]
        p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
        median, top = statistics.median(ordered) * 1000, ordered[-1] * 1000
        return f"{len(self.times)} probes: median {median:.1f} ms, p95 {p95 * 1000:.1f} ms, max {top:.1f} ms"

    def check(self) -> None:
        """Every probe answered 200, 95% of them within the bound, and none took ten times it."""
        assert not self.failures, self.failures[:5]
        assert len(self.times) >= 10, self.summary()
        ordered = sorted(self.times)
        assert ordered[int(len(ordered) * 0.95) - 1] < HEALTHZ_BOUND, self.summary()
        assert ordered[-1] < 10 * HEALTHZ_BOUND, self.summary()


@contextlib.asynccontextmanager
async def probing(server: ServerProcess) -> AsyncIterator[Probe]:
    """Time ``/healthz`` from another process while the block runs; the times are there after it."""
    host, port = server.url.removeprefix("http://").split(":")
    prober = await asyncio.create_subprocess_exec(sys.executable, "-c", PROBER, host, port, stdin=PIPE, stdout=PIPE)
    probe = Probe()
    try:
        yield probe
    finally:
        out, _ = await asyncio.wait_for(prober.communicate(b""), 30)
        seen = json.loads(out)
        probe.times, probe.failures = seen["times"], seen["failures"]
        print(f"/healthz on {parser_of(server)}: {probe.summary()}")


# -- the HTTP layer's own refusals, on both parsers ---------------------------------------------------


async def test_a_malformed_request_is_a_400_envelope(limited: ServerProcess) -> None:
    tls_hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"  # TLS spoken to a plain HTTP port
    for garbage in (b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", tls_hello):
        answer = await exchange(limited, garbage)
        assert answer.envelope(400, "BAD_REQUEST")["error"] == "Invalid HTTP request"


async def test_a_long_url_is_a_414_envelope(limited: ServerProcess) -> None:
    answer = await exchange(limited, b"GET /healthz?" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    body = answer.envelope(414, "URL_TOO_LONG")
    assert body["error"] == "Request URL too long: the limit is 8192 bytes"
    async with httpx.AsyncClient(base_url=limited.url) as http:  # just under the limit: served
        assert (await http.get("/healthz", params={"a": "b" * 8000})).status_code == 200


async def test_too_many_headers_are_a_431_envelope(limited: ServerProcess) -> None:
    many = b"".join(b"X-Header-%d: value\r\n" % n for n in range(101))
    answer = await exchange(limited, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert answer.envelope(431, "HEADERS_TOO_LARGE")["error"] == "Too many request headers: the limit is 100"
    async with httpx.AsyncClient(base_url=limited.url) as http:  # a hundred (with Host and httpx's own) is fine
        headers = {f"X-Header-{n}": "value" for n in range(90)}
        assert (await http.get("/healthz", headers=headers)).status_code == 200


async def test_headers_over_the_size_limit_are_a_431_envelope(limited: ServerProcess) -> None:
    answer = await exchange(limited, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
    body = answer.envelope(431, "HEADERS_TOO_LARGE")
    assert body["error"] == "Request headers too large: the limit is 16384 bytes"
    async with httpx.AsyncClient(base_url=limited.url) as http:
        assert (await http.get("/healthz", headers={"X-Big": "a" * 15_000})).status_code == 200


async def test_a_10_mb_header_is_refused_at_once_while_healthz_stays_fast(limited: ServerProcess) -> None:
    """The issue's huge header: refused after the first 16 KiB, in milliseconds, again and again."""
    huge = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 10_000_000 + b"\r\n\r\n"
    took = []
    async with probing(limited) as probe:
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            pushes = [await connect(limited) for _ in range(4)]
            for raw in pushes:
                raw.send(huge)
            await asyncio.wait_for(asyncio.gather(*(raw.ended for raw in pushes)), 10)
            for raw in pushes:
                raw.answer().envelope(431, "HEADERS_TOO_LARGE")
                took.append(raw.ended_at - raw.started)
                raw.close()
    probe.check()
    assert max(took) < 1.0, max(took)


async def test_headers_that_never_end_get_a_408_after_the_header_timeout(limited: ServerProcess) -> None:
    raw = await connect(limited)
    raw.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    await asyncio.wait_for(raw.ended, 10)
    raw.close()
    assert 1.9 < raw.ended_at - raw.started < 5
    body = raw.answer().envelope(408, "REQUEST_TIMEOUT")
    assert body["error"] == "Request headers not complete within 2 seconds"


async def test_a_silent_connection_is_closed_after_the_idle_timeout(limited: ServerProcess) -> None:
    silent = await connect(limited)
    kept = await connect(limited)  # one request, then silence: closed the same way
    kept.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    await asyncio.wait_for(asyncio.gather(silent.ended, kept.ended), 10)
    assert silent.data == b""
    assert kept.answer().status == 200
    for raw in (silent, kept):
        assert 1.9 < raw.ended_at - raw.started < 5
        raw.close()


@pytest.mark.slow
async def test_300_slowloris_connections_are_closed_within_the_header_timeout(limited: ServerProcess) -> None:
    """The issue's slowloris: 300 connections that send a header line every half second. Each gets its
    408 within the header timeout (2 s) and a margin, and /healthz stays fast meanwhile."""
    async with probing(limited) as probe:
        loris = [await connect(limited) for _ in range(300)]
        for raw in loris:
            raw.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        closed = asyncio.gather(*(raw.ended for raw in loris))
        for line in range(20):  # a header line every half second, for 10 s at most
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(closed), 0.5)
                break
            for raw in loris:
                if not raw.ended.done():
                    raw.send(b"X-Trickle-%d: y\r\n" % line)
    probe.check()
    for raw in loris:
        assert raw.ended.done(), "a slowloris connection was still open after 10 s"
        raw.answer().envelope(408, "REQUEST_TIMEOUT")
        assert raw.ended_at - raw.started < 2 + 2
        raw.close()


@pytest.mark.parametrize("parser", ["httptools", "h11"])
async def test_past_limit_concurrency_a_request_is_a_503_envelope(
    tmp_path_factory: pytest.TempPathFactory, machine: Machine, parser: str
) -> None:
    db = tmp_path_factory.mktemp("crowded") / "jobhouse.db"
    env = {"JOBHOUSE_LIMIT_CONCURRENCY": "5", "JOBHOUSE_IDLE_TIMEOUT": "30", "JOBHOUSE_HTTP_PARSER": parser}
    with running_server(db, machine, args=["--no-workers"], env=env) as crowded:
        idle = [await connect(crowded) for _ in range(5)]
        deadline = time.monotonic() + 10
        probe = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        while True:  # the server holds the five once it refuses a sixth
            answer = await exchange(crowded, probe)
            if answer.status == 503 or time.monotonic() > deadline:
                break
        body = answer.envelope(503, "SERVER_BUSY")
        assert "too many connections" in body["error"]
        assert answer.header("retry-after") == "1"
        for raw in idle:
            raw.close()
        while (await exchange(crowded, probe)).status != 200:
            assert time.monotonic() < deadline + 10, "still refused after the idle connections closed"


async def test_an_upgrade_request_is_served_as_plain_http_without_a_warning(limited: ServerProcess) -> None:
    before = len(limited.stderr)
    upgrade = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\n\r\n"
    answer = await exchange(limited, upgrade)
    assert answer.status == 200
    assert json.loads(answer.body)["status"] == "ok"
    assert not [line for line in limited.stderr[before:] if " WARNING " in line]


# -- a client hanging up --------------------------------------------------------------------------


async def test_a_client_that_hangs_up_mid_body_leaves_one_debug_line(limited: ServerProcess) -> None:
    key = await limited.new_key()
    for path in ("/api/jobs", "/api/v1/run/search/jobs"):
        before = len(limited.stderr)
        raw = await connect(limited)
        raw.send(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Length: 1000\r\n\r\n".encode()
            + b'{"type": "ec'
        )
        raw.close()  # mid-body
        deadline = time.monotonic() + 10
        while not any("client went away" in line for line in limited.stderr[before:]):
            assert time.monotonic() < deadline, limited.output()[-2000:]
            await asyncio.sleep(0.05)  # polling the server's log, with a deadline
        logged = "".join(limited.stderr[before:])
        assert f"client went away during POST {path}" in logged
        assert "Traceback" not in logged
        assert " ERROR " not in logged
        assert "unexpected error" not in logged


# -- the app's limits ------------------------------------------------------------------------------


async def test_security_headers_are_on_every_kind_of_answer(limited: ServerProcess) -> None:
    key = await limited.new_key()
    auth = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=limited.url, headers=auth) as http:
        job = (await http.post("/api/jobs", json={"type": "echo"})).json()["job"]
        answers = {
            "healthz": await http.get("/healthz"),
            "openapi": await http.get("/openapi.json"),
            "list": await http.get("/api/jobs"),
            "created": await http.post("/api/jobs", json={"type": "echo"}),
            "401": await http.get("/api/jobs", headers={"Authorization": "Bearer nope"}),
            "404": await http.get("/nowhere"),
            "405": await http.delete("/api/jobs"),
            "413": await http.post("/api/jobs", content=b"x" * (2 * 1024 * 1024)),
        }
        async with http.stream("GET", f"/api/jobs/{job['id']}/events") as stream:
            answers["stream"] = stream
    for what, response in answers.items():
        for name, value in SECURITY.items():
            assert response.headers.get_list(name) == [value], (what, name, response.headers)
    assert answers["stream"].headers["content-type"].startswith("text/event-stream")


async def test_long_polls_and_streams_are_capped_per_key_and_per_process(limited: ServerProcess) -> None:
    a, b, c = await limited.new_key("capped"), await limited.new_key("capped"), await limited.new_key()
    async with (
        api_client(limited.url, {"X-API-Key": a}) as as_a,
        api_client(limited.url, {"X-API-Key": b}) as as_b,
        api_client(limited.url, {"X-API-Key": c}) as as_c,
    ):
        job = await create(as_a, "echo")
        other = await create(as_c, "echo")
        wait = {"wait": "done", "timeout_ms": 60000}

        async def counts() -> tuple[int, int]:
            health = (await as_a.get("/healthz")).json()
            return health["long_polls"], health["streams"]

        async def held(long_polls: int, streams: int) -> None:
            deadline = time.monotonic() + 10
            while (now := await counts()) != (long_polls, streams):
                assert time.monotonic() < deadline, now
                await asyncio.sleep(0.02)  # polling the server's count, with a deadline

        await held(0, 0)  # the streams of earlier tests are gone (their clients hung up)
        polls = [asyncio.create_task(as_a.get(f"/api/jobs/{job['id']}", params=wait, timeout=70)) for _ in range(3)]
        await held(3, 0)
        refused = await as_a.get(f"/api/v1/run/jobs/{job['id']}", params=wait)
        message = assert_error(refused, 429, "TOO_MANY_WAITERS")
        assert message == "Too many long-polls and event streams open for this API key (the limit is 3)"
        assert refused.headers["retry-after"] == "2"
        assert_error(await as_a.get(f"/api/jobs/{job['id']}/events"), 429, "TOO_MANY_WAITERS")

        # Another key of the same workspace has caps of its own, up to the process's five.
        async with as_b.stream("GET", f"/api/jobs/{job['id']}/events") as stream:
            assert stream.status_code == 200
            polls.append(asyncio.create_task(as_b.get(f"/api/jobs/{job['id']}", params=wait, timeout=70)))
            await held(4, 1)
            refused = await as_c.get(f"/api/jobs/{other['id']}", params=wait)
            message = assert_error(refused, 429, "TOO_MANY_WAITERS")
            assert message == "Too many long-polls and event streams open on this server (the limit is 5)"
            assert_error(await as_c.get("/api/jobs/events"), 429, "TOO_MANY_WAITERS")

            assert (await as_a.post(f"/api/jobs/{job['id']}/cancel")).status_code == 200
            for poll in polls:
                answered = await asyncio.wait_for(poll, 10)
                assert answered.json()["job"]["currentStep"] == "Cancelled"
        await held(0, 0)
        answered = await as_c.get(f"/api/jobs/{other['id']}", params={"wait": "done", "timeout_ms": 10})
        assert answered.status_code == 200


async def test_a_list_is_cut_by_bytes_and_goes_on_from_its_cursor(client: httpx.AsyncClient) -> None:
    """Pages are at most `max_list_bytes` (64 KiB here): cut before the job that would cross it, with a
    cursor that goes on from there; a job larger than that comes alone. Every job comes once."""
    blob = "m" * 10_000
    made = [(await create(client, "echo", metadata={"blob": blob, "n": n}))["id"] for n in range(20)]
    made.append((await create(client, "echo", metadata={"blob": "b" * 100_000}))["id"])
    made += [(await create(client, "echo", metadata={"blob": blob, "n": n}))["id"] for n in range(20, 30)]
    newest_first = made[::-1]

    for limit in (500, 4):
        seen: list[str] = []
        sizes: list[tuple[int, int]] = []
        params: dict[str, Any] = {"limit": limit}
        while True:
            response = await client.get("/api/jobs", params=params)
            assert response.status_code == 200
            page = response.json()
            seen += [job["id"] for job in page["jobs"]]
            sizes.append((len(page["jobs"]), len(response.content)))
            if page["nextCursor"] is None:
                break
            params["cursor"] = page["nextCursor"]
        assert seen == newest_first, f"limit {limit}"
        for count, size in sizes:
            assert 1 <= count <= limit
            assert size <= 64 * 1024 or count == 1, sizes
        # Newest first: 10 jobs of 10 KB, the one of 100 KB (alone), 20 more of 10 KB; 6 of those fit
        # in 64 KiB, 7 do not. A page ends where the next job would not fit, or at `limit`.
        counts = [count for count, _ in sizes]
        assert counts == ([6, 4, 1, 6, 6, 6, 2] if limit == 500 else [4, 4, 2, 1, 4, 4, 4, 4, 4])
        assert any(count == 1 and size > 100_000 for count, size in sizes)


@pytest.mark.slow
async def test_a_list_of_1_mib_jobs_costs_a_page_not_the_whole_list(
    tmp_path_factory: pytest.TempPathFactory, machine: Machine
) -> None:
    """The issue's huge list, smaller: 60 jobs with 1 MiB of metadata each (60 MiB). Pages of 8 MiB
    (the default) hold 7 of them; while a client reads them all, the server's memory peaks at a few
    pages' worth above where it was, not at the 60 MiB listed (times the copies a response made),
    and /healthz stays fast."""
    db = tmp_path_factory.mktemp("huge-list") / "jobhouse.db"
    env = {"JOBHOUSE_MAX_BODY": str(2 * 1024 * 1024)}
    with running_server(db, machine, args=["--no-workers"], env=env) as big:
        async with api_client(big.url, {"Authorization": f"Bearer {await big.new_key()}"}, timeout=60) as http:
            blob = "x" * (1024 * 1024 - 100)
            for n in range(60):
                await create(http, "echo", metadata={"blob": blob, "n": n})

            async def walk() -> list[int]:
                counts, cursor = [], None
                while True:
                    params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
                    response = await http.get("/api/jobs", params=params)
                    assert len(response.content) <= 8 * 1024 * 1024
                    page = response.json()
                    counts.append(len(page["jobs"]))
                    if (cursor := page["nextCursor"]) is None:
                        return counts

            counts = await walk()
            for _ in range(2):  # SQLite's page caches (32 MB for each connection of the server) fill up
                assert await walk() == counts
            async with probing(big) as probe:
                with sampling(big.process.pid) as rss:
                    assert await walk() == counts
                    assert await walk() == counts
    assert sum(counts) == 60
    assert counts[:8] == [7] * 8
    grown = rss.peak - rss.before
    print(f"server RSS {rss.before / 2**20:.0f} MiB, peak {rss.peak / 2**20:.0f} MiB while reading 60 MiB of jobs")
    assert grown < 40 * 1024 * 1024, f"the server's memory peaked {grown / 2**20:.0f} MiB above where it was"
    probe.check()


@dataclass
class Rss:
    before: int
    peak: int = 0


@contextlib.contextmanager
def sampling(pid: int) -> Iterator[Rss]:
    """The resident memory of process `pid` before the block, and its peak during it (sampled every 2 ms)."""
    process = psutil.Process(pid)
    rss = Rss(process.memory_info().rss)
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.002):
            rss.peak = max(rss.peak, process.memory_info().rss)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield rss
    finally:
        done.set()
        thread.join(5)


async def test_source_syncs_are_rate_limited_per_workspace(limited: ServerProcess) -> None:
    async with (
        api_client(limited.url, {"X-API-Key": await limited.new_key()}) as one,
        api_client(limited.url, {"X-API-Key": await limited.new_key()}) as another,
    ):
        assert (await one.post("/api/v1/run/sources/sync")).status_code == 202
        assert (await one.post("/api/v1/run/sources/path/sync")).status_code == 202  # the burst: 2
        refused = await one.post("/api/v1/run/sources/sync")
        message = assert_error(refused, 429, "RATE_LIMITED")
        assert message.startswith("Too many source-sync jobs in this workspace: at most 1 a minute (bursts of 2)")
        assert 50 <= int(refused.headers["retry-after"]) <= 60
        assert_error(await one.post("/api/v1/run/sources/desktop/sync"), 429, "RATE_LIMITED")
        assert (await one.post("/api/jobs", json={"type": "echo"})).status_code == 202  # other kinds: not limited
        assert (await another.post("/api/v1/run/sources/sync")).status_code == 202  # other workspaces: their own
