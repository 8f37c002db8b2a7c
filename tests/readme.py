"""The README as a newcomer follows it: its code blocks, and `scripts/serve` run as written."""

from __future__ import annotations

import os
import re
import subprocess
import threading
from pathlib import Path
from typing import IO

from jobhouse.settings import Settings
from tests.servers import FAST_SETTINGS, REPO, ServerProcess, database_url, free_port, wait_ready

README = (REPO / "README.md").read_text()
SERVE = REPO / "scripts" / "serve"


def code_block(after_heading: str, language: str) -> str:
    section = README.split(after_heading, 1)[1]
    match = re.search(rf"```{language}\n(.*?)```", section, re.S)
    assert match, f"no {language} block after {after_heading!r}"
    return match.group(1)


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


def run_tour(server: ServerProcess, home: Path) -> tuple[subprocess.CompletedProcess[str], str]:
    """The README's five-minute tour, as written, against `server` (its URL put for the default
    one), with `home` as HOME; with the tour's key, which the tour keeps in $KEY."""
    tour = code_block("## A five-minute tour", "sh").replace("http://127.0.0.1:8000", server.url)
    kept = home / "tour-key"
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", f'{tour}\nprintf %s "$KEY" > {kept}\n'],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "HOME": str(home)},
    )
    return result, kept.read_text() if kept.exists() else ""
