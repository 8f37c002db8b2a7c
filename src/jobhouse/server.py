"""Running a process: `serve` (HTTP API, plus embedded workers unless told otherwise) and `work`.

Shutdown, on SIGTERM or SIGINT: long-polls are answered at once with the job as it is, event
streams end (their clients resume elsewhere with `Last-Event-ID`), the HTTP server stops
accepting and finishes its requests, and workers stop claiming, give running jobs
`shutdown_grace` seconds to finish, then hand the rest back to the queue. A second signal skips
the grace period.

uvicorn and the HTTP API load in `serve` (and for a worker's own ``/metrics``), so that a worker
process starts without them.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Coroutine, Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobhouse.errors import ConfigurationError

if TYPE_CHECKING:
    import uvicorn

    from jobhouse.runtime import Runtime

log = logging.getLogger(__name__)


def _uvicorn_server(config: uvicorn.Config) -> uvicorn.Server:
    """uvicorn without its own signal handling: the process's shutdown is ours to run."""
    import uvicorn

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Generator[None, None, None]:
            yield

    return _Server(config)


def raise_open_files_limit() -> int:
    """Let this process open as many sockets as the system allows: every open event stream and
    long-poll holds one, and the usual soft limit (1024) is far below what a server can hold."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 1 << 20 if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def http_stack(parser: str = "auto") -> tuple[str, str]:
    """The event loop and HTTP parser to serve with: uvloop and httptools where they are installed
    (the `fast` extra), else asyncio's own loop and h11 (or the `parser` named, setting
    `http_parser`). `run` picks the loop the same way."""
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    if parser == "httptools" and http != parser:
        raise ConfigurationError("http_parser is httptools, which is not installed: pip install 'jobhouse[fast]'")
    return loop, http if parser == "auto" else parser


def _on_signals(handler: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, handler)


async def serve(
    runtime: Runtime, *, workers: bool = True, sock: socket.socket | None = None, announce: bool = True
) -> None:
    """Serve the API (and run workers, if `workers`) until SIGINT/SIGTERM."""
    import uvicorn

    from jobhouse.api import create_app
    from jobhouse.api.protocol import SECURITY_HEADERS, Limits, protocol_class

    settings = runtime.settings
    raise_open_files_limit()
    await runtime.open()
    try:
        key = await runtime.first_key()
        if key is not None and announce:
            _announce_first_key(key, keep_first_key(key, settings.ensure_data_dir()), settings.host, settings.port)
        loop, http = http_stack(settings.http_parser)
        config = uvicorn.Config(
            create_app(runtime),
            host=settings.host,
            port=settings.port,
            loop=loop,
            http=protocol_class(http, Limits.of(settings)),  # uvicorn's, with limits (docs/security.md)
            ws="none",
            headers=SECURITY_HEADERS,
            log_level=settings.log_level,
            log_config=None,  # uvicorn's loggers go through jobhouse's handler (`jobhouse.logs.configure`)
            access_log=settings.access_log,
            proxy_headers=settings.access_log,  # a proxy's client address serves the access log only
            lifespan="off",
            timeout_graceful_shutdown=max(round(settings.shutdown_grace), 1),
            server_header=False,
        )
        log.info("serving HTTP with %s and %s%s", loop, http, ", with an access log" if settings.access_log else "")
        server = _uvicorn_server(config)
        stop = asyncio.Event()
        signals = 0

        def on_signal() -> None:
            nonlocal signals
            signals += 1
            runtime.feed.close()
            server.should_exit = True
            stop.set()
            if signals > 1:
                server.force_exit = True
                for task in background_tasks:
                    task.cancel()

        background_tasks = [asyncio.create_task(runtime.run(stop, workers=workers and settings.concurrency > 0))]
        await runtime.searcher.start()  # the scan workers, so that the first search's sync does not wait
        _on_signals(on_signal)
        try:
            await server.serve(sockets=[sock] if sock else None)
        finally:
            runtime.feed.close()
            stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*background_tasks)
    finally:
        await runtime.close()


async def work(runtime: Runtime) -> None:
    """Run workers (and the rescuer) without an HTTP server, until SIGINT/SIGTERM."""
    await runtime.open()
    try:
        stop = asyncio.Event()
        task = asyncio.create_task(runtime.run(stop, workers=True))
        signals = 0

        def on_signal() -> None:
            nonlocal signals
            signals += 1
            stop.set()
            if signals > 1:
                task.cancel()

        _on_signals(on_signal)
        log.info("worker running %d kind(s): %s", len(runtime.registry), ", ".join(runtime.registry.names()))
        metrics = runtime.settings.metrics and runtime.settings.metrics_port > 0
        listener = asyncio.create_task(_serve_metrics(runtime, stop)) if metrics else None
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if listener is not None:
            await listener
    finally:
        await runtime.close()


async def _serve_metrics(runtime: Runtime, stop: asyncio.Event) -> None:
    """A worker's own ``/metrics`` listener, on `host`:`metrics_port`, until `stop` is set."""
    import uvicorn

    from jobhouse.api.metrics import metrics_app
    from jobhouse.api.protocol import SECURITY_HEADERS, Limits, protocol_class

    settings = runtime.settings
    _, http = http_stack(settings.http_parser)
    config = uvicorn.Config(
        metrics_app(runtime),
        host=settings.host,
        port=settings.metrics_port,
        http=protocol_class(http, Limits.of(settings)),  # the API's limits and headers here too
        ws="none",
        headers=SECURITY_HEADERS,
        log_level=settings.log_level,
        log_config=None,
        access_log=False,
        lifespan="off",
        server_header=False,
    )
    server = _uvicorn_server(config)
    serving = asyncio.create_task(server.serve())  # a port it cannot listen on ends the process (status 1)
    log.info("serving /metrics on %s:%d", settings.host, settings.metrics_port)
    await stop.wait()
    server.should_exit = True
    await serving


FIRST_KEY_FILE = "first-key"


def keep_first_key(key: str, data_dir: Path) -> Path:
    """Write a new store's first key to ``<data_dir>/first-key``, readable by this user only (0600);
    its path."""
    path = data_dir / FIRST_KEY_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        os.fchmod(fd, 0o600)  # also when the file was already there
        file.write(key + "\n")
    return path


def _announce_first_key(key: str, path: Path, host: str, port: int) -> None:
    """Say where the first key is; show the key itself only on a terminal (never into a log that
    journald, a container runtime or a CI system would keep)."""
    log.warning("a new store: its first API key (workspace 'default') is in %s, readable by this user only", path)
    if not sys.stdout.isatty():
        return
    url = f"http://{host}:{port}"
    print(
        "\n"
        "  jobhouse: a new store, so here is its first API key (workspace 'default').\n"
        f"  It is also in {path} (readable by you only); keep it somewhere safe:\n\n"
        f"    {key}\n\n"
        f"  Try: curl -H 'Authorization: Bearer {key}' {url}/api/jobs\n"
        "  More keys: jobhouse keys create --workspace NAME\n",
        flush=True,
    )


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run `main` on uvloop when it is installed, else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is pinned for the server
        asyncio.run(main)
        return
    uvloop.run(main)
