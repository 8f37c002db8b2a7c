"""The fault proxy the SDK tests (both languages) put between a client and a real server."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.beacon import Beacon
from tests.faultproxy import FaultProxy
from tests.servers import REPO, ServerProcess


@pytest.fixture
def proxy_process(idle_server: ServerProcess) -> Iterator[str]:
    """``python -m tests.faultproxy`` in front of the idle server; its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.faultproxy", "--target", idle_server.url],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("listening http://127.0.0.1:"), line
        yield line.split()[1]
    finally:
        process.terminate()
        assert process.wait(10) == 0
        assert process.stdout is not None
        process.stdout.close()


async def test_faults_are_set_read_and_cleared_over_http(proxy_process: str, idle_server: ServerProcess) -> None:
    key = await idle_server.new_key()
    async with httpx.AsyncClient(base_url=proxy_process, headers={"X-API-Key": key}) as http:
        fault = {"method": "POST", "path": "/api/jobs", "action": "status", "status": 429, "retry_after": 5}
        assert (await http.post("/_faults", json=fault)).status_code == 201
        assert (await http.post("/_faults", json={"path": "/x", "action": "explode"})).status_code == 400

        refused = await http.post("/api/jobs", json={"type": "echo"})
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "5"
        assert refused.json() == {"error": "Too many queued jobs", "code": 429, "error_code": "QUOTA_EXCEEDED"}

        made = await http.post("/api/jobs", json={"type": "echo"})  # the fault fired its one time
        assert made.status_code == 202
        assert (await http.get("/api/jobs")).json()["jobs"][0]["id"] == made.json()["job"]["id"]

        state = (await http.get("/_faults")).json()
        assert state == {"faults": [], "hits": {"POST /api/jobs": 2, "GET /api/jobs": 1}}
        assert (await http.delete("/_faults")).json() == {"faults": [], "hits": {}}


async def test_a_503_fault_reads_like_the_server_s_own(proxy_process: str) -> None:
    async with httpx.AsyncClient(base_url=proxy_process) as http:
        await http.post("/_faults", json={"path": "/readyz", "action": "status", "status": 503, "retry_after": 1})
        response = await http.get("/readyz")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json() == {"error": "Job queue unavailable", "code": 503, "error_code": "STORE_UNAVAILABLE"}


async def test_drops_close_the_connection(proxy_process: str, idle_server: ServerProcess) -> None:
    key = await idle_server.new_key()
    async with httpx.AsyncClient(base_url=proxy_process, headers={"X-API-Key": key}) as http:
        for action in ("drop-request", "drop-response"):
            await http.post("/_faults", json={"method": "POST", "path": "/api/jobs", "action": action})
            with pytest.raises(httpx.RemoteProtocolError):
                await http.post("/api/jobs", json={"type": "echo"})
        assert len((await http.get("/api/jobs")).json()["jobs"]) == 1  # only drop-response reached the server


async def test_event_streams_pass_through_as_they_happen(server: ServerProcess, key: str, beacon: Beacon) -> None:
    async with FaultProxy(server.url) as proxy, httpx.AsyncClient(headers={"X-API-Key": key}, timeout=30) as http:
        created = await http.post(
            server.url + "/api/jobs",
            json={"type": "collect", "input": {"beacon": beacon.address, "hold_at": "ingest"}},
        )
        job = created.json()["job"]["id"]
        async with http.stream("GET", f"{proxy.url}/api/jobs/{job}/events") as stream:
            lines = stream.aiter_lines()
            async for line in lines:  # the job is held at "ingest": this arrives only if unbuffered
                if line.startswith("data:") and json.loads(line[5:])["currentStep"] == "Processing Intel":
                    break
            beacon.release(job)
            rest = [json.loads(line[5:]) for line in [line async for line in lines] if line.startswith("data:")]
        assert rest[-1]["status"] == "completed"
