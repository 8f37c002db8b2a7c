"""The README's commands work as written: the run command, the tour (on a server started with
``scripts/serve --port N``), the kinds example."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobhouse.job import JobStatus
from jobhouse.registry import Registry
from jobhouse.runtime import Runtime
from jobhouse.settings import Settings
from tests.readme import SERVE, code_block, other_port, run_tour, serve_script
from tests.servers import REPO, running_server


def test_the_first_lines_give_the_two_commands() -> None:
    first_block = code_block("# jobhouse", "sh")
    assert first_block.splitlines()[0].startswith("./scripts/serve")
    assert first_block.splitlines()[1].startswith("./scripts/test")
    ci = (REPO / ".ci" / "run").read_text()
    assert "scripts/test" in ci


@pytest.mark.usefixtures("bootstrapped")
def test_the_run_command_serves_the_example_kinds_and_keeps_a_usable_key(tmp_path: Path) -> None:
    db = tmp_path / "jobhouse.db"
    with running_server(db, command=[str(SERVE)]) as server:  # no arguments; the port comes from JOBHOUSE_PORT
        key = (tmp_path / "data" / "first-key").read_text().strip()  # tests.servers' data dir
        response = httpx.get(server.url + "/api/jobs", headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200
        created = httpx.post(
            server.url + "/api/jobs",
            headers={"X-API-Key": key},
            json={"type": "collect", "input": {"seconds_per_step": 0}},
        )
        assert created.status_code == 202, created.text


@pytest.mark.usefixtures("bootstrapped")
def test_the_tour_runs_as_written_with_the_server_on_another_port(tmp_path: Path) -> None:
    """`./scripts/serve --port N`: arguments must not cost the example kinds the tour uses. Neither
    the server nor the tour's commands are told where the store is: both find the one in the data
    directory under HOME."""
    server = serve_script(tmp_path, "--port", str(other_port()))
    try:
        assert not server.url.endswith(":8000")
        result, key = run_tour(server, tmp_path)
        assert result.returncode == 0, result.stderr
        assert key.startswith("jh_")
        out = result.stdout
        search, _ = json.JSONDecoder().raw_decode(out)
        assert search == {"status": "done", "best": "python3"}
        # `jobs wait` followed the job to its end and said so (the last display, then how it ended).
        assert re.search(r"^completed: collect [0-9a-f-]{36}$", out, re.M)
        assert "✓ Generating Battle Card" in out
        # The job's event stream: created, running, each of the four steps starting and ending, completed.
        counts = re.findall(r"^\s*(\d+) event: (\w+)$", out, re.M)
        assert [name for _, name in counts] == ["created", "status", "step", "status"]
        assert int(counts[2][0]) >= 8
        outputs = _json_values(out[out.index("[") :])
        assert ["collect", "completed"] in outputs
        assert ["search-resolve", "completed"] in outputs
        assert outputs[-1] == {"success": True, "status": "failed", "currentStep": "Cancelled"}
    finally:
        server.stop()


async def test_the_kinds_example_runs(tmp_path: Path) -> None:
    namespace: dict[str, Any] = {}
    source = code_block("## Your own kinds", "python").replace("...", "pass")
    exec(compile(source, "README.md", "exec"), namespace)
    registry: Registry = namespace["jobs"]
    runtime = Runtime(
        Settings(database=f"sqlite:///{tmp_path / 'db.sqlite'}", heartbeat=0.2, poll_interval=0.1),
        registry=registry,
        sources=[],
    )
    await runtime.open()
    stop = asyncio.Event()
    workers = asyncio.create_task(runtime.run(stop, workers=True))
    try:
        job = await runtime.queue.enqueue("resize", workspace="ws")
        done = await runtime.service.wait(job.id, "ws", 10)
        assert done.status is JobStatus.COMPLETED
        assert done.result == {"resized": 12}
        assert [(s.id, s.status.value) for s in done.steps] == [
            ("fetch", "completed"),
            ("resize", "completed"),
        ]
    finally:
        stop.set()
        await workers
        await runtime.close()


def _json_values(text: str) -> list[Any]:
    decoder = json.JSONDecoder()
    values, index = [], 0
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        value, index = decoder.raw_decode(text, index)
        values.append(value)
    return values
