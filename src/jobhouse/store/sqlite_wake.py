"""What processes sharing one SQLite file tell each other directly, beside the file itself.

- **Wake-ups.** Each process binds a Unix datagram socket in a directory beside the database
  (``<file>-wake/``). After every commit its writer sends one empty datagram to each other socket
  there, and a process that receives one looks at the file at once (``PRAGMA data_version`` and
  the signal counters) instead of at its next poll: a job queued by one process wakes an idle
  worker in another within a fraction of a millisecond. The poll stays as the fallback: every
  5 ms for a process that cannot bind (another machine's mount of the file, a platform without
  Unix sockets), every 100 ms for one that can, which then hears of other jobhouse processes'
  commits at once and polls only for writers that send nothing (the ``sqlite3`` shell) and for a
  datagram dropped because its receiver was busy. The socket of a process that died is removed
  by the first sender that finds nobody listening.
- **The writer lock.** Each write transaction holds an exclusive ``flock`` on ``<file>-wake/lock``
  around SQLite's own lock. SQLite makes a writer that finds the file locked sleep and retry (1,
  2, 5, 10 ms...); a writer waiting for the flock looks again after 50 µs, doubling to 1 ms, so
  two busy processes hand the file to each other in about the time a transaction takes. Writers
  that do not take it (the ``sqlite3`` shell) still meet SQLite's own lock.

Paths are reached through ``/proc/self/fd`` of the directory where that exists, so a deep
directory does not run into the 108-byte limit on socket paths.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

_SOCKET_PATH_MAX = 100


class Beside:
    """The wake-up socket and writer lock of one process on one database file."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.directory = Path(f"{database}-wake")
        self.name = f"{os.getpid()}-{secrets.token_hex(4)}.sock"
        self._dir_fd: int | None = None
        self._lock_fd: int | None = None
        self.socket: socket.socket | None = None
        self._sender: socket.socket | None = None
        self._linux = False

    def _mode(self) -> int:
        """The directory's mode: whoever may write the database may use its wake-ups (0700 for a
        file of this user only)."""
        try:
            mode = os.stat(self.database).st_mode
        except OSError:
            return 0o700
        return 0o700 | (0o070 if mode & 0o020 else 0) | (0o007 if mode & 0o002 else 0)

    def open(self) -> None:
        """Bind this process's socket and open the lock; on any failure, go without (polls only)."""
        if not hasattr(socket, "AF_UNIX"):  # pragma: no cover - not on POSIX
            return
        try:
            self.directory.mkdir(mode=self._mode(), exist_ok=True)
            self._dir_fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
            self._linux = sys.platform.startswith("linux") and os.path.isdir(f"/proc/self/fd/{self._dir_fd}")
            self._lock_fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
            receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            receiver.setblocking(False)
            receiver.bind(self._path(self.name))
            sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sender.setblocking(False)
        except OSError:
            self.close()
            return
        self.socket, self._sender = receiver, sender

    def close(self) -> None:
        for sock in (self.socket, self._sender):
            if sock is not None:
                sock.close()
        if self.socket is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._path(self.name))
        self.socket = self._sender = None
        for fd in (self._lock_fd, self._dir_fd):
            if fd is not None:
                os.close(fd)
        self._lock_fd = self._dir_fd = None
        self._linux = False

    @contextlib.contextmanager
    def writing(self, patience: float) -> Iterator[None]:
        """Hold the writer lock (when there is one) for one write transaction.

        While another process holds it, look again after 50 µs, doubling up to 1 ms (its
        transaction takes about as long), for at most `patience` seconds; after that go on without
        it, and SQLite's own lock and busy timeout decide (a holder frozen mid-transaction is then
        reported as `StoreUnavailable`, as without the lock).
        """
        if self._lock_fd is None:
            yield
            return
        import fcntl

        held = False
        pause, deadline = 0.00005, time.monotonic() + patience
        while True:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = True
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    break
                time.sleep(pause)
                pause = min(pause * 2, 0.001)
        try:
            yield
        finally:
            if held:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def tell_others(self) -> None:
        """Wake every other process on the file (called by the writer thread after a commit)."""
        if self._sender is None:
            return
        for peer in self._peers():
            try:
                self._sender.sendto(b"", self._path(peer))
            except BlockingIOError:
                pass  # its queue is full: it has wake-ups waiting already
            except OSError as exc:
                if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):  # its process is gone
                    with contextlib.suppress(OSError):
                        os.unlink(self._path(peer))

    def drain(self) -> None:
        """Read the datagrams waiting on this process's socket (they carry nothing but the wake-up)."""
        if self.socket is None:
            return
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while True:
                self.socket.recv(1)

    def _peers(self) -> list[str]:
        """The other processes' sockets, listed afresh each time (a directory's time stamp is too
        coarse to tell two changes a few milliseconds apart; listing costs microseconds)."""
        try:
            names = os.listdir(f"/proc/self/fd/{self._dir_fd}" if self._linux else self.directory)
        except OSError:
            return []
        return [name for name in names if name.endswith(".sock") and name != self.name]

    def _path(self, name: str) -> str:
        if self._linux:
            return f"/proc/self/fd/{self._dir_fd}/{name}"
        path = str(self.directory / name)
        if len(path.encode()) > _SOCKET_PATH_MAX:
            raise OSError(errno.ENAMETOOLONG, "socket path too long", path)
        return path
