"""The client commands (``jobhouse jobs|search|sources``) as real processes against a real server:
``--json`` output, exit codes, and the live display in a real pseudo-terminal."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pexpect
import pytest
from typer.testing import CliRunner

from jobhouse import cli
from tests.beacon import Beacon
from tests.servers import REPO, ServerProcess, free_port


@pytest.fixture
async def http(server: ServerProcess, key: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, headers={"X-API-Key": key}, timeout=30) as client:
        yield client


def environ(server: ServerProcess, key: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "JOBHOUSE_URL": server.url, "JOBHOUSE_KEY": key, "COLUMNS": "120", **extra}


async def jobhouse(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """Run ``jobhouse ARGS``; its exit code, stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "jobhouse",
        *args,
        env=env,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def invoke(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """``jobhouse ARGS`` in this process (on a thread, so the test's event loop keeps serving the
    beacon); its exit code, stdout and stderr. Quicker than a new process; `jobhouse` is one."""
    result = await asyncio.to_thread(CliRunner().invoke, cli.app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


async def json_of(env: dict[str, str], *args: str, code: int = 0) -> Any:
    returncode, out, err = await invoke(env, *args, "--json")
    assert returncode == code, err
    return json.loads(out)  # stdout holds the JSON document and nothing else


async def test_json_output_of_every_command_parses(server: ServerProcess, key: str) -> None:
    env = environ(server, key)
    created = await json_of(env, "jobs", "create", "echo", "--input", '{"n": 1}', "--competitor-id", "acme")
    assert (created["type"], created["status"], created["competitorId"], created["input"]) == (
        "echo",
        "queued",
        "acme",
        {"n": 1},
    )
    done = await json_of(env, "jobs", "wait", created["id"], "--timeout", "30")
    assert (done["status"], done["result"]) == ("completed", {"input": {"n": 1}})
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", done["completedAt"])  # as the server wrote it
    assert (await json_of(env, "jobs", "get", created["id"]))["id"] == created["id"]
    listed = await json_of(env, "jobs", "list", "--type", "echo")
    assert [job["id"] for job in listed] == [created["id"]]

    found = await json_of(env, "search", "firefox", "--os", "linux", "--kind", "gui", "--limit", "2")
    assert 1 <= len(found) <= 2
    assert found[0]["app"] == "firefox"
    assert {"path", "apt"} <= {source["id"] for source in await json_of(env, "sources", "list")}
    synced = await json_of(env, "sources", "sync", "path", "--wait", "--timeout", "30")
    assert (synced["type"], synced["status"]) == ("source-sync", "completed")


async def test_wait_exits_with_the_job_s_outcome(server: ServerProcess, key: str, beacon: Beacon) -> None:
    env = environ(server, key)
    assert (await json_of(env, "jobs", "create", "echo", "--wait"))["status"] == "completed"
    failed = await json_of(env, "jobs", "create", "boom", "--wait", code=1)
    assert failed["error"]["message"] == "boom: the handler failed"

    held = await json_of(env, "jobs", "create", "hold", "--input", json.dumps({"beacon": beacon.address}))
    await beacon.seen(f"started {held['id']}")
    timed_out = await json_of(env, "jobs", "wait", held["id"], "--timeout", "0.5", code=3)
    assert timed_out["status"] == "running"

    waiting = asyncio.create_task(jobhouse(env, "jobs", "wait", held["id"], "--json"))
    cancelled = await json_of(env, "jobs", "cancel", held["id"])
    assert cancelled["currentStep"] == "Cancelled"
    code, out, _ = await waiting
    assert code == 2
    assert json.loads(out)["error"]["type"] == "cancelled"


async def test_the_live_display_exits_with_the_outcome_too(server: ServerProcess, key: str) -> None:
    env = environ(server, key)
    code, out, _ = await invoke(env, "jobs", "create", "boom", "--wait")
    assert code == 1
    assert "failed: boom: the handler failed" in out
    code, out, _ = await invoke(env, "jobs", "create", "collect", "--wait", "--competitor-id", "acme")
    assert code == 0
    assert out.count("✓") == 4
    assert "completed: collect" in out


async def test_errors_are_one_line_on_stderr_with_their_exit_code(server: ServerProcess, key: str) -> None:
    code, out, err = await invoke(environ(server, key), "jobs", "get", "0193aaaa-0000-7000-8000-000000000000")
    assert (code, out) == (4, "")
    assert err == "jobhouse: No job exists with the requested identifier (404 JOB_NOT_FOUND)\n"

    code, out, err = await invoke(environ(server, "jh_000000000000_" + "x" * 43), "jobs", "list", "--json")
    assert (code, out) == (4, "")
    assert err.startswith("jobhouse: ")
    assert "(401 UNAUTHORIZED)" in err

    unreachable = {**os.environ, "JOBHOUSE_KEY": key}
    code, out, err = await invoke(unreachable, "jobs", "list", "--url", f"http://127.0.0.1:{free_port()}")
    assert (code, out) == (5, "")
    assert err.startswith("jobhouse: Could not reach the jobhouse server at http://127.0.0.1:")
    assert len(err.splitlines()) == 1

    code, _, err = await invoke(environ(server, key), "jobs", "create", "echo", "--input", "[1]")
    assert code == 2  # a bad command line, as click reports it
    assert "must be a JSON object" in err


async def test_create_takes_a_time_a_delay_and_a_priority_and_get_and_list_show_them(
    server: ServerProcess, key: str
) -> None:
    env = environ(server, key)
    at = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=250_000)
    later = await json_of(env, "jobs", "create", "echo", "--at", at.isoformat(), "--priority", "-4")
    assert (later["status"], later["priority"]) == ("queued", -4)
    assert later["scheduledAt"] == at.strftime("%Y-%m-%dT%H:%M:%S.250Z")

    code, out, _ = await invoke(env, "jobs", "get", later["id"])
    assert code == 0
    rows = {words[0]: words[1:] for line in out.splitlines() if (words := line.split())}
    assert rows["scheduled"] == [at.isoformat()]
    assert rows["priority"] == ["-4"]
    code, out, _ = await invoke(env, "jobs", "list")
    assert code == 0
    assert "priority" in out.splitlines()[1]  # a column, since a listed job has a priority of its own
    line = next(line for line in out.splitlines() if later["id"] in line)  # the id whole, on one line
    assert re.search(r"│ queued \(in (59|60)m\)\s+│ -4\s+│", line), out  # an hour ahead, less what has passed

    soon = await json_of(env, "jobs", "create", "echo", "--delay", "0.3", "--priority", "6", "--wait")
    assert (soon["status"], soon["priority"], soon["scheduledAt"]) == ("completed", 6, None)
    assert await json_of(env, "jobs", "cancel", later["id"])

    for args, message in [
        (["--at", "2030-01-01T09:00:00"], "needs a UTC offset"),
        (["--at", "tomorrow"], "not an ISO 8601 time"),
        (["--at", "2030-01-01T09:00:00Z", "--delay", "5"], "give --at or --delay, not both"),
        (["--priority", "11"], "Invalid value for '--priority'"),
        (["--delay", "-1"], "Invalid value for '--delay'"),
    ]:
        code, out, err = await invoke(env, "jobs", "create", "echo", *args)
        assert (code, out) == (2, ""), args  # a bad command line: nothing is sent
        assert message in err, err
    assert [job["id"] for job in await json_of(env, "jobs", "list")] == [soon["id"], later["id"]]


# -- the live display, in a pseudo-terminal ----------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
#: What rich writes to redraw a live display: back to the start of each line of the last frame.
_REDRAW = re.compile(r"\r(?:\x1b\[2K\x1b\[1A)+\x1b\[2K")
_STEP = re.compile(r"^ (\S) (.+?)\s+(pending|running|completed|failed)\s*$")
RANK = {"pending": 0, "running": 1, "completed": 2}


def frames(output: str) -> list[list[str]]:
    """Each frame the live display drew, as its lines of plain text."""
    return [_ANSI.sub("", frame).replace("\r", "").split("\n") for frame in _REDRAW.split(output)]


def steps_of(frame: list[str]) -> tuple[str, ...]:
    return tuple(match.group(3) for line in frame if (match := _STEP.match(line)))


async def test_the_live_display_ticks_through_the_four_steps(server: ServerProcess, key: str, beacon: Beacon) -> None:
    env = environ(server, key, TERM="xterm-256color")
    hold = {"beacon": beacon.address, "hold_at": "build-matrix"}
    code, out, err = await jobhouse(env, "jobs", "create", "collect", "--input", json.dumps(hold))
    assert code == 0, err
    job = out.strip()
    child = pexpect.spawn(
        sys.executable,
        ["-m", "jobhouse", "jobs", "wait", job],
        env=env,
        cwd=str(REPO),
        dimensions=(40, 120),
        encoding="utf-8",
        timeout=30,
    )
    try:
        await beacon.seen(f"at build-matrix {job}")
        styled = r"(?:\s|\x1b\[[0-9;]*m)*"  # spaces, and rich's colours
        await asyncio.to_thread(
            child.expect, rf"Building Competitor Matrix{styled}running{styled}· Generating Battle Card{styled}pending"
        )
        held = frames(child.before + child.after)[-1]  # the screen while the job is held
        assert held[0].startswith(f"Analyzing Competitor  collect  {job}")
        assert held[1] == "running · attempt 1 of 1"
        assert held[2].rstrip().endswith(" 50%")
        assert [line.rstrip() for line in held[3:7]] == [
            " ✓ Collecting Intel           completed",
            " ✓ Processing Intel           completed",
            " ▶ Building Competitor Matrix running",
            " · Generating Battle Card     pending",
        ]
        before = child.before + child.after

        beacon.release(job)
        await asyncio.to_thread(child.expect, pexpect.EOF)
        output = before + child.before
    finally:
        child.close()
    assert child.exitstatus == 0

    states = [state for frame in frames(output) if (state := steps_of(frame))]
    distinct = [state for i, state in enumerate(states) if i == 0 or state != states[i - 1]]
    for earlier, later in itertools.pairwise(distinct):  # never backwards
        assert all(RANK[a] <= RANK[b] for a, b in zip(earlier, later, strict=True)), (earlier, later)
    running = [state.index("running") for state in distinct if "running" in state]
    assert running == sorted(running), distinct
    assert set(running) == {0, 1, 2, 3}, distinct  # each step was seen running, one after the other
    assert distinct[0] == ("pending",) * 4
    assert distinct[-1] == ("completed",) * 4
    assert "completed: collect" in _ANSI.sub("", output)
