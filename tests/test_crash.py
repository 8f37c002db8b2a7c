"""A worker process killed with SIGKILL mid-job: its lease runs out and the job runs again elsewhere."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from tests.beacon import Beacon
from tests.helpers import create
from tests.servers import running_server, start_worker

pytestmark = pytest.mark.slow


FAST_RESCUE = {"JOBHOUSE_LEASE": "2", "JOBHOUSE_RESCUE_INTERVAL": "0.2"}


async def test_a_killed_workers_job_runs_again_in_another_worker(tmp_path: Path, beacon: Beacon) -> None:
    db = tmp_path / "crash.db"
    with running_server(db, args=["--no-workers"]) as server:
        key = await server.new_key()
        async with httpx.AsyncClient(base_url=server.url, headers={"X-API-Key": key}, timeout=30) as client:
            first = start_worker(db, FAST_RESCUE)
            second = None
            try:
                job = await create(client, "hold", input={"beacon": beacon.address})
                await beacon.seen(f"started {job['id']}")
                running = (await client.get(f"/api/jobs/{job['id']}")).json()["job"]
                assert (running["status"], running["attempt"]) == ("running", 1)

                first.send_signal(signal.SIGKILL)
                first.wait()
                beacon.messages.clear()
                second = start_worker(db, FAST_RESCUE)
                await beacon.seen(f"started {job['id']}", timeout=20)
                beacon.release(job["id"])

                done = await client.get(f"/api/jobs/{job['id']}", params={"wait": "done", "timeout_ms": 20000})
                final = done.json()["job"]
                assert final["status"] == "completed"
                assert final["attempt"] == 2
                assert final["error"] is None
                assert [(e["attempt"], e["type"]) for e in final["errors"]] == [(1, "lost")]
                run_view = (await client.get(f"/api/v1/run/jobs/{job['id']}")).json()
                assert run_view["status"] == "done"
            finally:
                for process in (first, second):
                    if process is not None and process.poll() is None:
                        process.terminate()
                        process.wait(10)
