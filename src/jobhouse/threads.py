"""Threads for plain-function handlers: made on demand up to a cap, reused when idle, never waited
for at exit.

`concurrent.futures.ThreadPoolExecutor` joins its threads when the interpreter exits, so one
handler stuck in a blocking call would keep a stopped worker process alive. These threads are
daemons: a handler abandoned mid-call keeps its thread until the call returns, the next job gets
another thread, and the process still exits when it is done.

At most `max_threads` (`MAX_THREADS`, 4096) threads live at once. Work submitted while every one
of them is busy (in practice: while abandoned handlers still hold them) waits, first in first
out, for the next thread that comes free; no thread beyond the cap is ever made.
"""

from __future__ import annotations

import collections
import itertools
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")
_Work = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]

MAX_THREADS = 4096
"""The most handler threads one `HandlerThreads` keeps alive at once."""


class HandlerThreads(Executor):
    def __init__(self, name: str = "jobhouse-handler", *, max_threads: int = MAX_THREADS) -> None:
        if max_threads < 1:
            raise ValueError(f"max_threads must be at least 1, not {max_threads}")
        self.max_threads = max_threads
        self._name = name
        self._numbers = itertools.count(1)
        self._lock = threading.Condition(threading.Lock())
        self._work: collections.deque[_Work] = collections.deque()
        self._threads = 0  # live threads
        self._idle = 0  # live threads not running work (waiting for it, or just started)
        self._closed = False
        self.started = 0  # threads made so far

    @property
    def threads(self) -> int:
        """Threads alive now (busy, idle, or held by an abandoned handler)."""
        with self._lock:
            return self._threads

    @property
    def waiting(self) -> int:
        """Work submitted that no thread has taken yet."""
        with self._lock:
            return len(self._work)

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("handler threads are shut down")
            self._work.append((future, fn, args, kwargs))
            # Each idle thread takes one piece of work; make a thread only for work none of them
            # will take, and never beyond the cap (the work then waits for a busy thread).
            grow = len(self._work) > self._idle and self._threads < self.max_threads
            if grow:
                self._threads += 1
                self._idle += 1
                self.started += 1
            else:
                self._lock.notify()
        if grow:
            name = f"{self._name}-{next(self._numbers)}"
            try:
                threading.Thread(target=self._serve, name=name, daemon=True).start()
            except BaseException:
                with self._lock:
                    self._threads -= 1
                    self._idle -= 1
                raise
        return future

    def _serve(self) -> None:
        while True:
            with self._lock:
                while not self._work and not self._closed:
                    self._lock.wait()
                if not self._work:  # shut down, and nothing left to run
                    self._idle -= 1
                    self._threads -= 1
                    return
                future, fn, args, kwargs = self._work.popleft()
                self._idle -= 1
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as exc:
                    future.set_exception(exc)
            del future, fn, args, kwargs
            with self._lock:
                self._idle += 1

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking work; idle threads end now, busy ones once no work is left for them.

        Work already submitted still runs, unless `cancel_futures`. `wait` is ignored: these
        threads are never waited for (a handler may never return).
        """
        with self._lock:
            self._closed = True
            if cancel_futures:
                while self._work:
                    self._work.popleft()[0].cancel()
            self._lock.notify_all()
