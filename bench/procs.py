"""Worker processes: each system's worker runs as a real, separate process, and none outlives the run."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from bench.config import ROOT

_live: set[Process] = set()


def tool(name: str) -> str:
    """A console script installed in the interpreter's own environment (the bench venv)."""
    return str(Path(sys.executable).with_name(name))


class Process:
    """One child process in a session of its own, so that stopping it stops its children too."""

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str], log: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **env}
        self.log = log
        self._popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self._popen = subprocess.Popen(
                self.argv, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        _live.add(self)
        return self

    @property
    def pid(self) -> int:
        assert self._popen is not None
        return self._popen.pid

    def alive(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def check(self) -> None:
        """Raise, with the end of its log, if the process has died."""
        if self._popen is not None and self._popen.poll() is not None:
            tail = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RuntimeError(f"{self.name} exited with {self._popen.returncode}; log {self.log}:\n{tail}")

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM to its process group, then SIGKILL to whatever is left after `grace` seconds."""
        popen = self._popen
        if popen is None:
            return
        _live.discard(self)
        self._signal(signal.SIGTERM)
        try:
            popen.wait(grace)
        except subprocess.TimeoutExpired:
            pass
        # The group may hold children (prefork pools) even when the leader is gone.
        self._signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(5)
        self._popen = None

    def _signal(self, sig: signal.Signals) -> None:
        assert self._popen is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, sig)

    def __enter__(self) -> Process:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def run(argv: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = 120.0) -> str:
    """Run a command to completion (in the repository root) and return its stdout."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    done = subprocess.run(argv, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


@atexit.register
def _stop_all() -> None:
    for process in list(_live):
        process.stop(grace=2.0)


def wait_for_port(host: str, port: int, timeout: float = 30.0, process: Process | None = None) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None:
            process.check()
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")
