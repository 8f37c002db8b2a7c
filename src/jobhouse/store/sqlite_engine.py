"""The SQLite engine under `SqliteStore`: one writer thread with group commit, pooled readers.

Every write runs on one thread and one connection. Writes submitted while a transaction is in
flight queue up and then commit together: one ``BEGIN IMMEDIATE`` and one fsync for all of them,
each inside its own savepoint so that one failing write does not undo the others. Reads run on
a small pool of threads with their own connections; WAL lets them run beside the writer.

Between batches the writer thread reads ``PRAGMA data_version``, which changes only when
*another* connection (another process) committed; when it has, it reads the `signals` counters
that writes move and the number of the newest job event, and tells the hub which kinds of change
happened (work queued, jobs ended or stopped, jobs changed). That is how changes made by other
processes on the same file reach the hub without any per-waiter polling, and why another
process's heartbeats wake nobody. The writer looks when another process's datagram says it
committed (`jobhouse.store.sqlite_wake`), and when nothing is said: every `probe_interval` where
no datagram can come (no socket beside the file), every `wake_probe_interval` where one can (only
a writer that sends none, such as the ``sqlite3`` shell, goes unannounced), so an idle process
sleeps instead of waking 200 times a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from jobhouse.errors import StoreUnavailable
from jobhouse.hub import EVENTS, SIGNALS
from jobhouse.store.sqlite_wake import Beside

T = TypeVar("T")
Op = Callable[[sqlite3.Connection], Any]
log = logging.getLogger(__name__)

_BATCH_LIMIT = 256


@dataclass(frozen=True, slots=True)
class SqliteOptions:
    """How the SQLite file is opened.

    `synchronous` FULL (the default) fsyncs every commit, so an accepted job survives a power
    cut; NORMAL survives process crashes only and is faster. `busy_timeout` is how long a write
    waits for another process's lock before the store reports itself unavailable.
    `probe_interval` is how often the writer looks for other processes' commits when this process
    has no wake-up socket beside the file; with one, other jobhouse processes announce their
    commits and it looks every `wake_probe_interval` (or `probe_interval`, if longer) besides.
    """

    synchronous: str = "FULL"
    busy_timeout: float = 5.0
    readers: int = 2
    probe_interval: float = 0.005
    wake_probe_interval: float = 0.1


def connect(path: str, options: SqliteOptions) -> sqlite3.Connection:
    if path != ":memory:" and not os.path.exists(path):
        # A new store file is readable by this user only (0600); SQLite gives its -wal and -shm
        # files the same permissions. An existing file keeps the ones its owner chose, and is never
        # opened here: closing any descriptor of a file drops this process's SQLite locks on it.
        with contextlib.suppress(OSError):  # already there, or cannot be: sqlite3 says which
            os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=options.busy_timeout)
    conn.execute(f"PRAGMA busy_timeout = {int(options.busy_timeout * 1000)}")
    if path != ":memory:":
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {options.synchronous}")
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute("PRAGMA cache_size = -32000")
    return conn


def unavailable(exc: sqlite3.Error) -> StoreUnavailable:
    return StoreUnavailable(f"SQLite: {exc}")


class _Stop:
    pass


class _Probe:
    """Look at the file now: another process committed (it said so through `Beside`)."""


_STOP = _Stop()
_PROBE = _Probe()
#: A batch's transaction: whether it committed, and each write's future with its value or error.
_Outcome = tuple[bool, list[tuple[asyncio.Future[Any], Any, BaseException | None]]]


class Engine:
    """Runs writes on the writer thread (batched) and reads on the reader pool."""

    def __init__(
        self, path: str, options: SqliteOptions, on_external_change: Callable[[Collection[str]], None]
    ) -> None:
        self.path = path
        self.options = options
        self._on_external_change = on_external_change
        self._queue: queue.SimpleQueue[tuple[Op, asyncio.Future[Any]] | _Stop | _Probe] = queue.SimpleQueue()
        self._beside = Beside(path) if path != ":memory:" else None
        self._local = threading.local()
        self._readers: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reader_conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._here: sqlite3.Connection | None = None
        self._loop_thread: int | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        if self._beside is not None:
            self._beside.open()
            if self._beside.socket is not None:
                self._loop.add_reader(self._beside.socket.fileno(), self._woken)
        ready: asyncio.Future[None] = self._loop.create_future()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="jobhouse-sqlite-writer", daemon=True)
        self._thread.start()
        await ready
        self._readers = ThreadPoolExecutor(self.options.readers, thread_name_prefix="jobhouse-sqlite-reader")

    async def stop(self) -> None:
        if self._beside is not None and self._beside.socket is not None and self._loop is not None:
            self._loop.remove_reader(self._beside.socket.fileno())
        if self._thread is not None:
            self._queue.put(_STOP)
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        if self._beside is not None:
            self._beside.close()
        if self._readers is not None:
            self._readers.shutdown(wait=True)
            self._readers = None
        with self._lock:
            for conn in self._reader_conns:
                conn.close()
            self._reader_conns.clear()
        if self._here is not None:
            self._here.close()
            self._here = None

    def _woken(self) -> None:
        assert self._beside is not None
        self._beside.drain()
        self._queue.put(_PROBE)

    # -- writes ------------------------------------------------------------------------------

    def write(self, op: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Run `op` in a write transaction (shared with whatever else is queued)."""
        if self._thread is None or self._loop is None:
            raise StoreUnavailable("SQLite store is closed")
        future: asyncio.Future[T] = self._loop.create_future()
        self._queue.put((op, future))
        return future

    def _run(self, ready: asyncio.Future[None]) -> None:
        loop = self._loop
        assert loop is not None
        try:
            conn = connect(self.path, self.options)
            version = conn.execute("PRAGMA data_version").fetchone()[0]
            counters = _signals(conn)
        except sqlite3.Error as exc:
            error = unavailable(exc)
            loop.call_soon_threadsafe(_set_exception, ready, error)
            self._thread = None
            return
        loop.call_soon_threadsafe(_set_result, ready, None)
        probe = self.options.probe_interval
        if self._beside is not None and self._beside.socket is not None:  # commits are announced
            probe = max(probe, self.options.wake_probe_interval)
        try:
            while True:
                try:
                    item = self._queue.get(timeout=probe)
                except queue.Empty:
                    item = None
                if isinstance(item, _Stop):
                    self._fail_pending()
                    return
                if item is not None and not isinstance(item, _Probe):
                    batch = [item]
                    while len(batch) < _BATCH_LIMIT:
                        try:
                            more = self._queue.get_nowait()
                        except queue.Empty:
                            break
                        if isinstance(more, _Stop):
                            self._queue.put(more)
                            break
                        if not isinstance(more, _Probe):
                            batch.append(more)
                    self._commit(conn, batch)
                with contextlib.suppress(sqlite3.Error):
                    seen = conn.execute("PRAGMA data_version").fetchone()[0]
                    if seen != version:
                        version = seen
                        now = _signals(conn)
                        moved = {name for name, value in now.items() if counters.get(name) != value}
                        counters = now
                        if moved or not now:  # no counters yet (not migrated): assume anything
                            loop.call_soon_threadsafe(self._on_external_change, moved or SIGNALS)
        finally:
            conn.close()

    def _commit(self, conn: sqlite3.Connection, batch: list[tuple[Op, asyncio.Future[Any]]]) -> None:
        if self._beside is None:
            self._deliver(self._transaction(conn, batch)[1])
            return
        with self._beside.writing(self.options.busy_timeout):
            committed, results = self._transaction(conn, batch)
        if committed:
            self._beside.tell_others()  # before the writers hear back: once a write returns, others know
        self._deliver(results)

    def _transaction(self, conn: sqlite3.Connection, batch: list[tuple[Op, asyncio.Future[Any]]]) -> _Outcome:
        """Run the batch in one transaction: whether it committed, and each write's result."""
        results: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            error = unavailable(exc)
            return False, [(future, None, error) for _, future in batch]
        single = len(batch) == 1
        for op, future in batch:
            if not single:
                conn.execute("SAVEPOINT op")
            try:
                value = op(conn)
            except BaseException as exc:
                if single:
                    conn.execute("ROLLBACK")
                    return False, [(future, None, _translate(exc))]
                conn.execute("ROLLBACK TO op")
                conn.execute("RELEASE op")
                results.append((future, None, _translate(exc)))
            else:
                if not single:
                    conn.execute("RELEASE op")
                results.append((future, value, None))
        committed = True
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            committed = False
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            error = unavailable(exc)
            results = [(future, None, error) for future, _, _ in results]
        return committed, results

    def _fail_pending(self) -> None:
        leftovers = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, tuple):
                leftovers.append((item[1], None, StoreUnavailable("SQLite store is closed")))
        self._deliver(leftovers)

    def _deliver(self, results: Sequence[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
            self._loop.call_soon_threadsafe(_resolve_all, results)

    # -- reads -------------------------------------------------------------------------------

    async def read(self, op: Callable[[sqlite3.Connection], T]) -> T:
        if self._readers is None or self._loop is None:
            raise StoreUnavailable("SQLite store is closed")
        return await self._loop.run_in_executor(self._readers, self._read, op)

    async def read_here(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """A short read (a row by its key) on the event loop's own thread, on a connection that
        never waits for a lock; through the reader pool if that connection cannot answer.

        A trip to a reader thread and back costs far more than such a read under load (the thread
        waits for the interpreter lock behind the loop, and the loop for the answer); WAL lets the
        read go on beside any writer, so it does not hold the loop up.
        """
        if self._loop is None:
            raise StoreUnavailable("SQLite store is closed")
        if threading.get_ident() == self._loop_thread:
            try:
                if self._here is None:
                    self._here = connect(self.path, self.options)
                    self._here.execute("PRAGMA query_only = 1")
                    self._here.execute("PRAGMA busy_timeout = 0")
                return op(self._here)
            except sqlite3.Error:
                pass  # locked for a moment (a checkpoint), or the file is gone: the pool says which
        return await self.read(op)

    def _read(self, op: Callable[[sqlite3.Connection], T]) -> T:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        try:
            if conn is None:
                conn = connect(self.path, self.options)
                conn.execute("PRAGMA query_only = 1")
                self._local.conn = conn
                with self._lock:
                    self._reader_conns.append(conn)
            return op(conn)
        except sqlite3.Error as exc:
            raise _translate(exc) from exc


def _signals(conn: sqlite3.Connection) -> dict[str, int]:
    """The signal counters (none before the migration that makes them), and the number of the
    newest event (`EVENTS`): it moves whenever a job changed in a way its watchers see."""
    try:
        counters = dict(conn.execute("SELECT name, value FROM signals").fetchall())
        counters[EVENTS] = conn.execute("SELECT coalesce(max(seq), 0) FROM job_events").fetchone()[0]
        return counters
    except sqlite3.OperationalError:
        return {}


def signal(conn: sqlite3.Connection, *names: str) -> None:
    """Move these signal counters, in the write transaction of `conn`."""
    conn.execute(f"UPDATE signals SET value = value + 1 WHERE name IN ({', '.join('?' * len(names))})", names)


def _translate(exc: BaseException) -> BaseException:
    if isinstance(exc, sqlite3.OperationalError | sqlite3.DatabaseError) and not isinstance(
        exc, sqlite3.IntegrityError | sqlite3.ProgrammingError
    ):
        return unavailable(exc)
    return exc


def _resolve_all(results: Sequence[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, value, error in results:
        if future.done():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)


def _set_result(future: asyncio.Future[None], value: None) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception(future: asyncio.Future[None], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
