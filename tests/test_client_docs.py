"""docs/python-client.md and docs/cli.md run as written, against a server of the example kinds
(what ``./scripts/serve`` starts): every Python block in order (a ``text`` block after one is the
output it must print), and the shell blocks of the CLI page as one script."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import REPO, Machine, ServerProcess, running_server

DOCS = REPO / "docs"
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


@pytest.fixture(scope="module")
def examples_server(tmp_path_factory: pytest.TempPathFactory, machine: Machine) -> Iterator[ServerProcess]:
    db = tmp_path_factory.mktemp("docs") / "jobhouse.db"
    with running_server(db, machine, app="examples.battlecard:jobs") as process:
        yield process


def blocks(page: str) -> list[tuple[str, str]]:
    return _FENCE.findall((DOCS / page).read_text("utf-8"))


def test_python_client_md_runs_as_written(examples_server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBHOUSE_URL", examples_server.url)
    monkeypatch.setenv("JOBHOUSE_KEY", asyncio.run(examples_server.new_key()))
    found = blocks("python-client.md")
    ran = 0
    for index, (language, code) in enumerate(found):
        if language != "python":
            continue
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            exec(compile(code, f"docs/python-client.md block {index}", "exec"), {"__name__": "__docs__"})
        ran += 1
        following = found[index + 1] if index + 1 < len(found) else ("", "")
        if following[0] == "text":
            assert output.getvalue() == following[1], f"block {index} printed:\n{output.getvalue()}"
    assert ran >= 10


@pytest.mark.slow  # a dozen `jobhouse` processes, and jobs that take a second or two
@pytest.mark.timeout(180)  # about 16 s alone; a loaded CI machine runs it beside two other test processes
def test_cli_md_runs_as_written(examples_server: ServerProcess, tmp_path: Path) -> None:
    script = "\n".join(code for language, code in blocks("cli.md") if language == "sh")
    script = script.replace("http://127.0.0.1:8000", examples_server.url)
    venv = Path(sys.executable).parent
    env = {
        "PATH": f"{venv}{os.pathsep}/usr/bin:/bin",
        "HOME": str(tmp_path),
        "JOBHOUSE_DATABASE_URL": examples_server.database,
        "COLUMNS": "120",
    }
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, timeout=150, cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "completed: collect" in out
    assert "Analyzing Competitor" in out
    assert "still running (exit code 3)" in out
    assert "cancelled (exit code 2)" in out
    assert re.search(r"^status +queued *$", out, re.MULTILINE)  # the job created for an hour later
    assert re.search(r"^scheduled +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+\+00:00 *$", out, re.MULTILINE)
    assert re.search(r"^priority +5 *$", out, re.MULTILINE)
    assert out.splitlines()[-2:] == ["completed", "firefox"]


def test_the_docs_index_links_both_pages() -> None:
    index = (DOCS / "index.md").read_text("utf-8")
    assert "(python-client.md)" in index
    assert "(cli.md)" in index
