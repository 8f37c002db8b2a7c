"""Real jobhouse processes on loopback, for tests that speak HTTP or kill things."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from jobhouse.keys import create_key
from jobhouse.store import open_store

REPO = Path(__file__).resolve().parent.parent
FAST_SETTINGS = {
    "JOBHOUSE_HEARTBEAT": "0.5",
    "JOBHOUSE_LEASE": "5",
    "JOBHOUSE_POLL_INTERVAL": "0.5",
    "JOBHOUSE_SHUTDOWN_GRACE": "2",
    "JOBHOUSE_LOG_LEVEL": "warning",
}
#: What `start_server` and `start_worker` add: sources read on a thread of the process, so that no
#: forkserver and scan processes start (and stop) with every server. The search's own servers
#: (tests/test_search.py, tests/test_relevance.py) read them in 2 worker processes, as by default.
LEAN_SETTINGS = {"JOBHOUSE_SCAN_WORKERS": "0"}
#: Fast retries, a short lease, and webhooks allowed to this machine's loopback (any port).
WEBHOOK_SETTINGS = {
    "JOBHOUSE_WEBHOOK_HOSTS": "127.0.0.1, hooks.example.com, *.example.org",
    "JOBHOUSE_WEBHOOK_BACKOFF": "0.2",
    "JOBHOUSE_WEBHOOK_LEASE": "3",
    "JOBHOUSE_WEBHOOK_TIMEOUT": "2",
    "JOBHOUSE_WEBHOOK_MAX_ATTEMPTS": "50",
    "JOBHOUSE_POLL_INTERVAL": "0.2",
    "JOBHOUSE_SCAN_WORKERS": "0",  # no child processes: a server killed with SIGKILL leaves nothing behind
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Machine:
    """A fake machine's applications: a PATH dir with executables, an XDG data dir, apt's lists and
    dpkg's records."""

    root: Path
    bin: Path = field(init=False)
    data: Path = field(init=False)
    dpkg: Path = field(init=False)

    def __post_init__(self) -> None:
        self.bin = self.root / "bin"
        self.data = self.root / "share"
        self.dpkg = self.root / "dpkg"
        (self.data / "applications").mkdir(parents=True, exist_ok=True)
        self.bin.mkdir(parents=True, exist_ok=True)

    def executable(self, name: str) -> Path:
        path = self.bin / name
        path.write_text("#!/bin/sh\necho hello\n")
        path.chmod(0o755)
        return path

    def desktop(self, file_id: str, **keys: str) -> Path:
        path = self.data / "applications" / file_id
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = ["[Desktop Entry]", "Type=Application", *(f"{k}={v}" for k, v in keys.items())]
        path.write_text("\n".join(lines) + "\n")
        return path

    def packages(self, name: str, text: str) -> Path:
        """An apt package list (``*_Packages``) in this machine's apt lists directory."""
        lists = self.root / "apt-lists"
        lists.mkdir(exist_ok=True)
        path = lists / f"{name}_Packages"
        path.write_text(text)
        return path

    def installed(
        self,
        package: str,
        version: str,
        *,
        files: Sequence[Path | str] = (),
        section: str = "utils",
        description: str | None = None,
        arch: str = "amd64",
        multi_arch: bool = False,
    ) -> None:
        """A package dpkg installed: a stanza in ``dpkg/status`` and its file list in ``dpkg/info``
        (installing it again adds `files` to its list)."""
        info = self.dpkg / "info"
        info.mkdir(parents=True, exist_ok=True)
        listing = info / (f"{package}:{arch}.list" if multi_arch else f"{package}.list")
        if not listing.exists():
            with (self.dpkg / "status").open("a") as status:
                status.write(
                    f"Package: {package}\nStatus: install ok installed\nPriority: optional\nSection: {section}\n"
                    f"Architecture: {arch}\nVersion: {version}\nDescription: {description or package}\n\n"
                )
            listing.write_text("/.\n/usr\n")
        with listing.open("a") as listed:
            listed.write("".join(f"{path}\n" for path in files))

    def link(self, name: str, target: Path) -> Path:
        """A program on PATH that is a link to another file (as Debian's alternatives are)."""
        path = self.bin / name
        path.symlink_to(target)
        return path

    def environ(self) -> dict[str, str]:
        return {
            "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}",
            "XDG_DATA_DIRS": str(self.data),
            "XDG_DATA_HOME": str(self.root / "no-home-data"),
            "JOBHOUSE_APT_LISTS": str(self.root / "apt-lists"),
            "JOBHOUSE_DPKG_DIR": str(self.dpkg),
        }


def standard_machine(root: Path) -> Machine:
    machine = Machine(root)
    machine.executable("firefox")
    machine.executable("jobhouse-test-tool")
    machine.desktop("firefox.desktop", Name="Firefox Web Browser", Exec="firefox %u", Keywords="web;browser;")
    machine.desktop("org.mozilla.firefox-esr.desktop", Name="Firefox ESR", Exec="firefox-esr %u")
    machine.desktop("htop.desktop", Name="Htop", Exec="htop", Terminal="true")
    machine.desktop("gimp.desktop", Name="GNU Image Manipulation Program", Exec="gimp-2.10 %U")
    machine.packages("deb.example.org_debian_dists_stable_main_binary-amd64", PACKAGES)
    return machine


PACKAGES = """Package: firefox-esr
Version: 115.9.1esr-1~deb12u1
Section: web
Description: Mozilla Firefox web browser - Extended Support Release (ESR)
Tag: interface::graphical, interface::x11, role::program, uitoolkit::gtk,
 use::browsing, web::browser, x11::application

Package: htop
Version: 3.2.2-2
Section: utils
Description: interactive processes viewer
Tag: interface::text-mode, role::program, uitoolkit::ncurses

Package: tree
Version: 2.1.0-1
Section: utils
Description: displays an indented directory tree, in color

Package: libfirefox-stub1
Version: 1.0-1
Section: libs
Description: a library, not a program

Package: firefox-esr-l10n-de
Version: 115.9.1esr-1~deb12u1
Section: localization
Description: German language package for Firefox ESR
"""


def database_url(db: Path | str) -> str:
    return f"sqlite:///{db}" if isinstance(db, Path) else db


def data_dir(db: Path | str) -> dict[str, str]:
    """A data directory of the test's own (the first-run key goes there), never the user's: beside
    a SQLite file, else a fresh temporary one."""
    path = db.parent / "data" if isinstance(db, Path) else Path(tempfile.mkdtemp(prefix="jobhouse-data-"))
    return {"JOBHOUSE_DATA_DIR": str(path)}


@dataclass
class ServerProcess:
    url: str
    database: str
    process: subprocess.Popen[str]
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    pumps: list[threading.Thread] = field(default_factory=list)

    async def new_key(self, workspace: str | None = None) -> str:
        """A key for `workspace` (by default a fresh one, so the test sees only its own jobs)."""
        store = open_store(self.database)
        await store.open(migrate=False)
        try:
            key, _ = await create_key(store, workspace or f"ws-{os.urandom(4).hex()}")
            return key
        finally:
            await store.close()

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.process.send_signal(sig)

    def stop(self, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pump in self.pumps:
            pump.join(5)
        return self.process.returncode

    def output(self) -> str:
        return "".join(self.stdout) + "".join(self.stderr)


def _pump(stream: IO[str], sink: list[str]) -> None:
    with stream:
        for line in stream:
            sink.append(line)


def start_server(
    db: Path | str,
    machine: Machine | None = None,
    *,
    args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    app: str | None = "tests.kinds:jobs",
    command: Sequence[str] | None = None,
    ready_path: str = "/healthz",
) -> ServerProcess:
    port = free_port()
    environ = {**os.environ, **FAST_SETTINGS, **LEAN_SETTINGS, **(machine.environ() if machine else {})}
    environ |= {"JOBHOUSE_PORT": str(port), "JOBHOUSE_DATABASE_URL": database_url(db), **data_dir(db), **(env or {})}
    if command is None:
        argv = [sys.executable, "-m", "jobhouse", "serve", *(["--app", app] if app else []), *args]
    else:
        argv = list(command)
    process = subprocess.Popen(argv, cwd=REPO, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    server = ServerProcess(f"http://127.0.0.1:{port}", database_url(db), process)
    for stream, sink in ((process.stdout, server.stdout), (process.stderr, server.stderr)):
        pump = threading.Thread(target=_pump, args=(stream, sink), daemon=True)
        pump.start()
        server.pumps.append(pump)
    wait_ready(server, ready_path)
    return server


def wait_ready(server: ServerProcess, path: str = "/healthz", timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited with {server.process.returncode}:\n{server.output()}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(server.url + path, timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"server did not become ready:\n{server.output()}")


@contextlib.contextmanager
def running_server(db: Path | str, machine: Machine | None = None, **kwargs: object) -> Iterator[ServerProcess]:
    server = start_server(db, machine, **kwargs)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()


def stop_all(servers: Sequence[ServerProcess], timeout: float = 15) -> None:
    """Stop `servers` together: each is sent SIGTERM at once, then waited for (as `stop` does)."""
    for server in servers:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGTERM)
    for server in servers:
        server.stop(timeout)


class ServerPool:
    """Servers started on first use and kept until the pool closes, whichever test asks next: a
    session fixture parametrized by backend is set up again each time the backend it is asked for
    changes, and a server of its own would be restarted with it."""

    def __init__(self) -> None:
        self._servers: dict[str, ServerProcess] = {}

    def get(self, name: str, start: Callable[[], ServerProcess]) -> ServerProcess:
        """The server called `name`, started with `start()` if it is not running yet."""
        server = self._servers.get(name)
        if server is None:
            server = self._servers[name] = start()
        return server

    def __enter__(self) -> ServerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        servers, self._servers = list(self._servers.values()), {}
        stop_all(servers)


def start_worker(db: Path | str, env: dict[str, str] | None = None, log: Path | None = None) -> subprocess.Popen[bytes]:
    """A `jobhouse worker` process running the test kinds on `db` (its stderr appended to `log`)."""
    environ = {**os.environ, **FAST_SETTINGS, **LEAN_SETTINGS, "JOBHOUSE_DATABASE_URL": database_url(db)}
    environ |= {**data_dir(db), **(env or {})}
    with open(log or os.devnull, "ab") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "jobhouse", "worker", "--app", "tests.kinds:jobs"],
            cwd=REPO,
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


@contextlib.contextmanager
def running_workers(
    db: Path | str, count: int, env: dict[str, str] | None = None
) -> Iterator[list[subprocess.Popen[bytes]]]:
    workers = [start_worker(db, env) for _ in range(count)]
    try:
        yield workers
    finally:
        for process in workers:
            if process.poll() is None:
                process.terminate()
        for process in workers:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
