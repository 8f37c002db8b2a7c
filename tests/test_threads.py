"""HandlerThreads: daemon threads made on demand, never more than the cap; work beyond it waits."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import CancelledError

import pytest

from jobhouse.threads import MAX_THREADS, HandlerThreads

WAIT = 10  # seconds: how long a test waits for an event before it fails (never a barrier by itself)


class Gate:
    """A handler that says when it started, then blocks until released."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.thread: threading.Thread | None = None

    def __call__(self, value: str) -> str:
        self.thread = threading.current_thread()
        self.started.set()
        assert self.release.wait(WAIT), "never released"
        return value


@pytest.fixture
def gates() -> Iterator[list[Gate]]:
    made: list[Gate] = []
    yield made
    for gate in made:  # a failed test must not leave threads blocked
        gate.release.set()


def gate(gates: list[Gate]) -> Gate:
    made = Gate()
    gates.append(made)
    return made


def test_the_cap_is_documented_as_4096() -> None:
    assert MAX_THREADS == 4096
    assert HandlerThreads().max_threads == MAX_THREADS


def test_work_beyond_the_cap_waits_for_a_free_thread(gates: list[Gate]) -> None:
    pool = HandlerThreads(max_threads=2)
    first, second, third = gate(gates), gate(gates), gate(gates)
    futures = [pool.submit(first, "a"), pool.submit(second, "b")]
    assert first.started.wait(WAIT)
    assert second.started.wait(WAIT)

    late = pool.submit(third, "c")  # both threads are busy and the pool is at its cap

    assert (pool.threads, pool.started, pool.waiting) == (2, 2, 1)
    assert not third.started.is_set()
    first.release.set()
    assert futures[0].result(WAIT) == "a"
    assert third.started.wait(WAIT)  # on the thread the first handler gave back
    assert third.thread is first.thread
    third.release.set()
    second.release.set()
    assert late.result(WAIT) == "c"
    assert futures[1].result(WAIT) == "b"
    assert (pool.threads, pool.started, pool.waiting) == (2, 2, 0)


def test_a_handler_that_never_returns_keeps_its_thread_and_the_rest_share_the_others(gates: list[Gate]) -> None:
    pool = HandlerThreads(max_threads=2)
    stuck = gate(gates)
    pool.submit(stuck, "abandoned")
    assert stuck.started.wait(WAIT)

    names = [pool.submit(lambda: threading.current_thread().name).result(WAIT) for _ in range(5)]

    assert len(set(names)) == 1  # one thread left under the cap, reused for each
    assert stuck.thread is not None
    assert stuck.thread.name not in names
    assert (pool.threads, pool.started) == (2, 2)


def test_threads_are_daemons_and_made_only_as_work_needs_them() -> None:
    pool = HandlerThreads()
    assert pool.threads == 0
    assert pool.submit(lambda: threading.current_thread().daemon).result(WAIT) is True
    assert (pool.started, pool.threads) == (1, 1)
    pool.shutdown(wait=False)


def test_no_more_than_the_cap_run_at_once_under_load() -> None:
    cap = 4
    pool = HandlerThreads(max_threads=cap)
    barrier = threading.Barrier(cap, timeout=WAIT)  # passes only when `cap` handlers run at once
    lock = threading.Lock()
    running = peak = 0

    def handler() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            barrier.wait()
        finally:
            with lock:
                running -= 1

    futures = [pool.submit(handler) for _ in range(cap * 12)]
    for future in futures:
        future.result(WAIT)

    assert peak == cap
    assert pool.started == cap
    assert pool.threads == cap
    pool.shutdown(wait=False)


def test_an_exception_reaches_the_future_and_the_thread_lives_on() -> None:
    pool = HandlerThreads(max_threads=1)

    def boom() -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        pool.submit(boom).result(WAIT)
    assert pool.submit(lambda: 7).result(WAIT) == 7
    assert (pool.threads, pool.started) == (1, 1)


def test_shutdown_runs_the_waiting_work_then_the_threads_end(gates: list[Gate]) -> None:
    pool = HandlerThreads(max_threads=1)
    busy, queued = gate(gates), gate(gates)
    pool.submit(busy, "busy")
    assert busy.started.wait(WAIT)
    waiting = pool.submit(queued, "queued")

    pool.shutdown(wait=False)

    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(lambda: None)
    busy.release.set()
    queued.release.set()
    assert waiting.result(WAIT) == "queued"
    assert busy.thread is not None
    busy.thread.join(WAIT)
    assert not busy.thread.is_alive()
    assert pool.threads == 0


def test_shutdown_can_cancel_the_waiting_work(gates: list[Gate]) -> None:
    pool = HandlerThreads(max_threads=1)
    busy = gate(gates)
    running = pool.submit(busy, "busy")
    assert busy.started.wait(WAIT)
    waiting = pool.submit(lambda: "never")

    pool.shutdown(wait=False, cancel_futures=True)

    with pytest.raises(CancelledError):
        waiting.result(WAIT)
    busy.release.set()
    assert running.result(WAIT) == "busy"
    assert busy.thread is not None
    busy.thread.join(WAIT)
    assert not busy.thread.is_alive()


def test_an_idle_thread_ends_at_shutdown() -> None:
    pool = HandlerThreads()
    thread = pool.submit(threading.current_thread).result(WAIT)
    pool.shutdown(wait=False)
    thread.join(WAIT)
    assert not thread.is_alive()
    assert pool.threads == 0
