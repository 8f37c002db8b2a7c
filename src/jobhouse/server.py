"""Running a process: `serve` (HTTP API, plus embedded workers unless told otherwise) and `work`.

Shutdown, on SIGTERM or SIGINT: long-polls are answered at once with the job as it is, event
streams end (their clients resume elsewhere with `Last-Event-ID`), the HTTP server stops
accepting and finishes its requests, and workers stop claiming, give running jobs
`shutdown_grace` seconds to finish, then hand the rest back to the queue. A second signal skips
the grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import signal
import socket
from collections.abc import Callable, Coroutine, Generator
from typing import Any

import uvicorn

from jobhouse.api import create_app
from jobhouse.runtime import Runtime

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the process's shutdown is ours to run."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


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


def http_stack() -> tuple[str, str]:
    """The event loop and HTTP parser to serve with: uvloop and httptools where they are installed
    (the `fast` extra), else asyncio's own loop and h11. `run` picks the loop the same way."""
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return loop, http


def _on_signals(handler: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, handler)


async def serve(
    runtime: Runtime, *, workers: bool = True, sock: socket.socket | None = None, announce: bool = True
) -> None:
    """Serve the API (and run workers, if `workers`) until SIGINT/SIGTERM."""
    settings = runtime.settings
    raise_open_files_limit()
    await runtime.open()
    try:
        key = await runtime.first_key()
        if key is not None and announce:
            _announce_first_key(key, settings.host, settings.port)
        loop, http = http_stack()
        config = uvicorn.Config(
            create_app(runtime),
            host=settings.host,
            port=settings.port,
            loop=loop,
            http=http,
            log_level=settings.log_level,
            access_log=settings.access_log,
            proxy_headers=settings.access_log,  # a proxy's client address serves the access log only
            lifespan="off",
            timeout_graceful_shutdown=max(round(settings.shutdown_grace), 1),
            server_header=False,
        )
        log.info("serving HTTP with %s and %s%s", loop, http, ", with an access log" if settings.access_log else "")
        server = _Server(config)
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
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        await runtime.close()


def _announce_first_key(key: str, host: str, port: int) -> None:
    url = f"http://{host}:{port}"
    print(
        "\n"
        "  jobhouse: a new store, so here is its first API key (workspace 'default').\n"
        "  It is shown only this once; keep it somewhere safe:\n\n"
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
