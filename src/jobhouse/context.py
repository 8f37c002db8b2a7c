"""The handler's view of its job: input, steps, progress and cancellation.

The same context serves async handlers (on the event loop) and plain functions (in a thread):
``ctx.step(...)`` works with ``async with`` and ``with``, and ``ctx.progress(n)`` may be awaited
or simply called. Updates go to the worker's reporter, which writes the latest state of each job,
many jobs per write. Awaited, they return once the state is written, so what a handler has
reported is what the API shows; called from a thread, they return at once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import replace
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

from jobhouse.errors import ConfigurationError, JobCancelled
from jobhouse.job import Job, Report, Step, StepStatus, derived_progress, reset_steps

if TYPE_CHECKING:
    from jobhouse.queue import Queue


class _Done:
    """An already-finished awaitable: lets ``await ctx.progress(n)`` and ``ctx.progress(n)`` both work."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield


_DONE = _Done()


class JobContext:
    """Passed to every handler. Read `input`, `metadata`, `subject`; report with `step` and `progress`."""

    def __init__(
        self,
        job: Job,
        push: Callable[[Report], Awaitable[None]],
        loop: asyncio.AbstractEventLoop,
        queue: Queue | None = None,
    ) -> None:
        self.job = job
        self._push = push
        self._loop = loop
        self._queue = queue
        self._loop_thread = threading.get_ident()
        self._steps: list[Step] = list(reset_steps(job.steps))
        self._current: str | None = None
        self._progress = 0
        self._cancelled = False  # set once, read from any thread: a plain attribute is enough

    # -- what the handler reads ------------------------------------------------------------

    @property
    def id(self) -> str:
        return self.job.id

    @property
    def kind(self) -> str:
        return self.job.kind

    @property
    def workspace(self) -> str:
        return self.job.workspace

    @property
    def input(self) -> Mapping[str, Any]:
        return self.job.input

    @property
    def metadata(self) -> Mapping[str, Any]:
        return self.job.metadata

    @property
    def subject(self) -> str | None:
        return self.job.subject

    @property
    def attempt(self) -> int:
        return self.job.attempt

    @property
    def cancelled(self) -> bool:
        """True once the job was cancelled (or this attempt lost); stop as soon as you can."""
        return self._cancelled

    def check_cancelled(self) -> None:
        """Raise `JobCancelled` if the job was cancelled: a cheap checkpoint for long loops."""
        if self._cancelled:
            raise JobCancelled()

    # -- what the handler reports ------------------------------------------------------------

    def step(self, step_id: str) -> StepScope:
        """A block that runs one declared step: running on entry, completed or failed on exit."""
        for index, step in enumerate(self._steps):
            if step.id == step_id:
                return StepScope(self, index)
        known = ", ".join(s.id for s in self._steps) or "none"
        raise KeyError(f"kind {self.job.kind!r} declares no step {step_id!r} (steps: {known})")

    def progress(self, percent: int) -> Awaitable[None]:
        """Set progress (0-100); never goes down within an attempt.

        Await it (``await ctx.progress(50)``) to return once the API shows it; in a plain
        function just call it.
        """
        if isinstance(percent, bool) or not isinstance(percent, int | float):
            raise TypeError("progress is a number from 0 to 100")
        value = max(0, min(100, int(percent)))
        if value <= self._progress:
            return _DONE
        self._progress = value
        return self._send()

    @property
    def steps(self) -> tuple[Step, ...]:
        return tuple(self._steps)

    @property
    def current_progress(self) -> int:
        return self._progress

    # -- making more jobs --------------------------------------------------------------------

    async def enqueue(
        self,
        kind: str,
        *,
        input: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        subject: str | None = None,
        title: str | None = None,
        workspace: str | None = None,
        priority: int | None = None,
        run_at: datetime | None = None,
    ) -> Job:
        """Enqueue another job (in this job's workspace unless `workspace` says otherwise), with its
        kind's priority unless `priority` is given, to start at once or at `run_at`."""
        if self._queue is None:
            raise ConfigurationError("this context has no queue to enqueue on")
        return await self._queue.enqueue(
            kind,
            workspace=workspace or self.workspace,
            input=input,
            metadata=metadata,
            subject=subject,
            title=title,
            priority=priority,
            run_at=run_at,
        )

    def enqueue_sync(
        self,
        kind: str,
        *,
        input: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        subject: str | None = None,
        title: str | None = None,
        workspace: str | None = None,
        priority: int | None = None,
        run_at: datetime | None = None,
    ) -> Job:
        """`enqueue`, for a plain-function handler (running in a thread): returns once enqueued."""
        if threading.get_ident() == self._loop_thread:
            raise ConfigurationError("enqueue_sync is for plain-function handlers; await ctx.enqueue(...) instead")
        coroutine = self.enqueue(
            kind,
            input=input,
            metadata=metadata,
            subject=subject,
            title=title,
            workspace=workspace,
            priority=priority,
            run_at=run_at,
        )
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    # -- used by the worker ------------------------------------------------------------------

    def mark_cancelled(self) -> None:
        self._cancelled = True

    def _set_step(self, index: int, status: StepStatus) -> Awaitable[None]:
        step = self._steps[index]
        self._steps[index] = replace(step, status=status)
        if status is StepStatus.RUNNING:
            self._current = step.name
        elif self._current == step.name:
            self._current = None
        self._progress = max(self._progress, derived_progress(self._steps))
        return self._send()

    def _send(self) -> Awaitable[None]:
        report = Report(self.job.ref, self._progress, tuple(self._steps), self._current)
        if threading.get_ident() == self._loop_thread:
            return self._push(report)
        self._loop.call_soon_threadsafe(self._push, report)
        return _DONE


class StepScope:
    """``async with ctx.step("id"):`` or ``with ctx.step("id"):``."""

    __slots__ = ("_ctx", "_index")

    def __init__(self, ctx: JobContext, index: int) -> None:
        self._ctx = ctx
        self._index = index

    def __enter__(self) -> None:
        self._ctx._set_step(self._index, StepStatus.RUNNING)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._ctx._set_step(self._index, StepStatus.COMPLETED if exc_type is None else StepStatus.FAILED)

    async def __aenter__(self) -> None:
        await self._ctx._set_step(self._index, StepStatus.RUNNING)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        status = StepStatus.COMPLETED if exc_type is None else StepStatus.FAILED
        written = self._ctx._set_step(self._index, status)
        if exc_type is None:
            await written
