"""Running one attempt of a job: the handler, its timeout, and the one way it is stopped.

Every stop (a cancel, a lost lease, a timeout, shutdown) takes the same path:

1. **Requested.** ``ctx.cancelled`` turns true; an async handler also gets ``CancelledError`` at
   the point where it waits, which it may catch to clean up.
2. **Grace.** The handler has `cancel_grace` seconds to return. A plain function running in a
   thread that has not noticed ``ctx.cancelled`` by then gets `JobCancelled` raised inside it,
   at its next Python instruction, and another grace period.
3. **Abandoned.** A handler still running after that is left behind: its slot is freed at once
   (the worker claims a replacement), it runs on unobserved, and whatever it writes later is
   refused by the attempt's fence.

An attempt ends in exactly one `Outcome` (or none, when the job was stopped from outside and so
already changed): completed, failed, or queued again after a backoff.
"""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
import logging
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import timedelta
from types import TracebackType
from typing import Any

import orjson

from jobhouse import codec
from jobhouse import threads as handler_threads
from jobhouse.clock import Clock
from jobhouse.context import JobContext
from jobhouse.errors import JobCancelled
from jobhouse.job import Failure, Job, Outcome, StepStatus, Verdict, settle_steps
from jobhouse.registry import Kind
from jobhouse.retry import Backoff

log = logging.getLogger(__name__)
_MESSAGE_MAX = 4000
#: The most of a handler's traceback kept on its attempt's error, in characters (the end is kept:
#: the raising line is last).
TRACEBACK_MAX = 16 * 1024


class StopReason:
    """Why an attempt was stopped from outside (the job itself was already changed)."""

    CANCELLED = "cancelled"  # cancelled, or the attempt is no longer ours (lease lost)
    SHUTDOWN = "shutdown"  # the worker is stopping; the job goes back to the queue


@dataclass(slots=True)
class Attempt:
    """One attempt in flight, as the worker tracks it."""

    job: Job
    ctx: JobContext
    stop_requested: asyncio.Event = field(default_factory=asyncio.Event)
    reason: str | None = None
    thread_id: int | None = None
    thread_lock: threading.Lock = field(default_factory=threading.Lock)
    abandoned: bool = False

    #: Called (once more) on every stop request: how the runner waiting on the handler hears of it.
    on_stop: Callable[[], None] | None = None

    def request_stop(self, reason: str = StopReason.CANCELLED) -> None:
        if self.reason is None:
            self.reason = reason
        self.ctx.mark_cancelled()
        self.stop_requested.set()
        if self.on_stop is not None:
            self.on_stop()


@dataclass(frozen=True, slots=True)
class AttemptRunner:
    """Runs attempts: handlers on the loop or in `threads`, supervised as described above."""

    threads: Executor
    clock: Clock
    backoff: Backoff
    cancel_grace: float
    on_abandoned: Callable[[Attempt], None] = lambda attempt: None

    async def run(self, attempt: Attempt, kind: Kind) -> Outcome | None:
        work = self._start(attempt, kind)
        # Wait for whichever comes first (the handler's end, a stop request, the timeout) on one
        # future and callbacks: no task per attempt beyond the handler's own.
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[None] = loop.create_future()

        def wake(_: object = None) -> None:
            if not woken.done():
                woken.set_result(None)

        work.add_done_callback(wake)
        attempt.on_stop = wake
        timer = loop.call_later(kind.timeout, wake) if kind.timeout is not None else None
        if attempt.stop_requested.is_set():
            wake()
        try:
            await woken
        except asyncio.CancelledError:  # the worker itself is being torn down: stop the handler too
            attempt.ctx.mark_cancelled()
            work.cancel()
            _interrupt_thread(attempt)
            work.add_done_callback(_consume)
            raise
        finally:
            attempt.on_stop = None
            work.remove_done_callback(wake)
            if timer is not None:
                timer.cancel()
        if not work.done():
            attempt.ctx.mark_cancelled()
            await self._interrupt(attempt, kind, work)
            if attempt.reason is not None:
                return None
            return self._failed(attempt, Failure(f"Attempt timed out after {kind.timeout:g}s", "timeout"))
        return self._settle(attempt, kind, work)

    def _start(self, attempt: Attempt, kind: Kind) -> asyncio.Future[Any]:
        if kind.is_async:
            return asyncio.ensure_future(kind.handler(attempt.ctx))
        call = contextvars.copy_context().run
        return asyncio.get_running_loop().run_in_executor(self.threads, call, _in_thread, kind, attempt)

    async def _interrupt(self, attempt: Attempt, kind: Kind, work: asyncio.Future[Any]) -> None:
        """Stop the handler: interrupt it, give it grace, and abandon it if it will not stop."""
        if kind.is_async:
            work.cancel()
        done, _ = await asyncio.wait({work}, timeout=self.cancel_grace)
        if not done and _interrupt_thread(attempt):
            done, _ = await asyncio.wait({work}, timeout=self.cancel_grace)
        if done:
            _consume(work)
            return
        attempt.abandoned = True
        work.add_done_callback(_consume)
        log.warning("job %s: the handler ignored its stop for %.1fs; abandoned", attempt.job.id, 2 * self.cancel_grace)
        self.on_abandoned(attempt)

    def _settle(self, attempt: Attempt, kind: Kind, work: asyncio.Future[Any]) -> Outcome | None:
        try:
            result = work.result()
        except (asyncio.CancelledError, JobCancelled):
            if attempt.reason is not None or attempt.ctx.cancelled:
                return None
            return self._failed(attempt, Failure("The handler stopped itself with a cancellation", "JobCancelled"))
        except Exception as exc:
            failure = Failure(str(exc) or type(exc).__name__, type(exc).__name__, traceback=traceback_of(exc))
            return self._failed(attempt, failure, exc)
        try:
            encoded = codec.encode(result)
        except (TypeError, orjson.JSONEncodeError) as exc:
            return self._failed(attempt, Failure(f"Result is not JSON-serializable: {exc}", "InvalidResult"))
        return Outcome(
            ref=attempt.job.ref,
            verdict=Verdict.COMPLETED,
            progress=100,
            steps=settle_steps(attempt.ctx.steps, StepStatus.COMPLETED),
            result=encoded,
            result_type=kind.result_type,
        )

    def _failed(self, attempt: Attempt, failure: Failure, exc: BaseException | None = None) -> Outcome:
        """The outcome of a failed attempt, logged here, once: a WARNING when the job will run again,
        an ERROR when it failed; with the handler's traceback when it raised."""
        job = attempt.job
        now = self.clock.now()
        retry = job.attempt < job.max_attempts
        log.log(
            logging.WARNING if retry else logging.ERROR,
            "attempt %d of %d failed (%s: %s); %s",
            job.attempt,
            job.max_attempts,
            failure.type,
            failure.message,
            "the job will run again" if retry else "the job failed",
            exc_info=None if exc is None else (type(exc), exc, _from_handler(exc)),
        )
        return Outcome(
            ref=job.ref,
            verdict=Verdict.RETRY if retry else Verdict.FAILED,
            progress=attempt.ctx.current_progress,
            steps=settle_steps(attempt.ctx.steps, StepStatus.FAILED),
            failure=Failure(failure.message[:_MESSAGE_MAX], failure.type, job.attempt, now, failure.traceback),
            retry_at=now + timedelta(seconds=self.backoff.delay(job.attempt)) if retry else None,
        )


#: The runner's own files: the frames a handler's traceback starts with, before the handler's.
_RUNNER_FILES = frozenset({__file__, handler_threads.__file__})


def _from_handler(exc: BaseException) -> TracebackType | None:
    """`exc`'s traceback from the handler's first frame on (without the runner's frames above it)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename in _RUNNER_FILES and tb.tb_next is not None:
        tb = tb.tb_next
    return tb


def traceback_of(exc: BaseException) -> str:
    """`exc`'s traceback as Python prints it (its causes and context too) from the handler's first
    frame on, cut to its last `TRACEBACK_MAX` characters."""
    text = "".join(traceback.format_exception(type(exc), exc, _from_handler(exc))).rstrip("\n")
    if len(text) <= TRACEBACK_MAX:
        return text
    marker = "[... the start of this traceback was cut ...]\n"
    return marker + text[len(text) - TRACEBACK_MAX + len(marker) :]


def _in_thread(kind: Kind, attempt: Attempt) -> Any:
    attempt.thread_id = threading.get_ident()
    try:
        return kind.handler(attempt.ctx)
    finally:
        with attempt.thread_lock:
            attempt.thread_id = None


def _interrupt_thread(attempt: Attempt) -> bool:
    """Raise `JobCancelled` in the attempt's thread at its next Python instruction.

    Under the attempt's lock, so the exception can only land while that thread still runs this
    attempt (a blocking call in C delays it until the call returns).
    """
    with attempt.thread_lock:
        if attempt.thread_id is None:
            return False
        thread = ctypes.c_ulong(attempt.thread_id)
        done = ctypes.pythonapi.PyThreadState_SetAsyncExc(thread, ctypes.py_object(JobCancelled))
        if done > 1:  # more than one thread touched: undo, as the C API asks
            ctypes.pythonapi.PyThreadState_SetAsyncExc(thread, None)
            return False
        return bool(done == 1)


def _consume(future: asyncio.Future[Any]) -> None:
    """Retrieve a finished handler's outcome, so an ignored one raises no warning."""
    if not future.cancelled():
        future.exception()
