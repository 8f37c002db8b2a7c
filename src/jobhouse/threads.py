"""Threads for plain-function handlers: made on demand, reused when idle, never waited for at exit.

`concurrent.futures.ThreadPoolExecutor` joins its threads when the interpreter exits, so one
handler stuck in a blocking call would keep a stopped worker process alive. These threads are
daemons: a handler abandoned mid-call keeps its thread until the call returns, the next job gets
another thread, and the process still exits when it is done.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")
_Work = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class HandlerThreads(Executor):
    def __init__(self, name: str = "jobhouse-handler") -> None:
        self._name = name
        self._queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._numbers = itertools.count(1)
        self._closed = False
        self.started = 0

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        if self._closed:
            raise RuntimeError("handler threads are shut down")
        future: Future[T] = Future()
        self._queue.put((future, fn, args, kwargs))
        if not self._idle.acquire(blocking=False):  # nobody is waiting for work: one more thread
            self.started += 1
            threading.Thread(target=self._serve, name=f"{self._name}-{next(self._numbers)}", daemon=True).start()
        return future

    def _serve(self) -> None:
        while (work := self._queue.get()) is not None:
            future, fn, args, kwargs = work
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as exc:
                    future.set_exception(exc)
            del work, future, fn, args, kwargs
            self._idle.release()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking work; idle threads end now, busy ones when their handler returns."""
        self._closed = True
        while self._idle.acquire(blocking=False):
            self._queue.put(None)
