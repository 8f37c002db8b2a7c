"""The README's commands work as written: the run command, the tour (on a server started with
``scripts/serve --port N``), the kinds example."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import re
import subprocess
import threading
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from jobhouse.job import JobStatus
from jobhouse.registry import Registry
from jobhouse.runtime import Runtime
from jobhouse.settings import Settings
from tests.servers import FAST_SETTINGS, REPO, ServerProcess, database_url, free_port, running_server, wait_ready

README = (REPO / "README.md").read_text()
SERVE = REPO / "scripts" / "serve"


def code_block(after_heading: str, language: str) -> str:
    section = README.split(after_heading, 1)[1]
    match = re.search(rf"```{language}\n(.*?)```", section, re.S)
    assert match, f"no {language} block after {after_heading!r}"
    return match.group(1)


def test_the_first_lines_give_the_two_commands() -> None:
    first_block = code_block("# jobhouse", "sh")
    assert first_block.splitlines()[0].startswith("./scripts/serve")
    assert first_block.splitlines()[1].startswith("./scripts/test")
    ci = (REPO / ".ci" / "run").read_text()
    assert "scripts/test" in ci


@pytest.fixture(scope="session")
def bootstrapped(tmp_path_factory: pytest.TempPathFactory) -> None:
    """`scripts/bootstrap runtime`, which `scripts/serve` runs first, run once for every test process:
    on a fresh clone (CI has only bootstrapped `dev`) it installs the runtime set once, instead of in
    each test that starts `scripts/serve` at the same moment. The serves that follow find it done."""
    lock = tmp_path_factory.getbasetemp().parent / "jobhouse-bootstrap-runtime.lock"
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # the other test processes wait here, then find it done
        done = subprocess.run(
            [str(REPO / "scripts" / "bootstrap"), "runtime"], capture_output=True, text=True, timeout=600, check=False
        )
    assert done.returncode == 0, done.stderr


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
        tour = code_block("## A five-minute tour", "sh").replace("http://127.0.0.1:8000", server.url)
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", tour],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        )
        assert result.returncode == 0, result.stderr
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


def other_port() -> int:
    """A free port on loopback that is not the default one."""
    while (port := free_port()) == Settings().port:
        pass
    return port


def serve_script(home: Path, *args: str) -> ServerProcess:
    """`scripts/serve ARGS` as a newcomer runs it, with `home` as HOME: no JOBHOUSE_* variables but
    the test timings; the port must come from ARGS."""
    environ = {name: value for name, value in os.environ.items() if not name.startswith(("JOBHOUSE_", "XDG_"))}
    environ |= {**FAST_SETTINGS, "HOME": str(home)}
    port = args[args.index("--port") + 1]
    process = subprocess.Popen(
        [str(SERVE), *args], cwd=REPO, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    db = home / ".local" / "share" / "jobhouse" / "jobhouse.db"
    server = ServerProcess(f"http://127.0.0.1:{port}", database_url(db), process)
    for stream, sink in ((process.stdout, server.stdout), (process.stderr, server.stderr)):
        pump = threading.Thread(target=_pump, args=(stream, sink), daemon=True)
        pump.start()
        server.pumps.append(pump)
    wait_ready(server)
    return server


def _pump(stream: IO[str] | None, sink: list[str]) -> None:
    assert stream is not None
    with stream:
        sink.extend(stream)


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
