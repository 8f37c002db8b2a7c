"""Time-ordered job ids (UUIDv7, RFC 9562) and their parsing."""

from __future__ import annotations

import os
import re
import threading
import time
import uuid

_CANONICAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
#: Random bytes read from the OS at a time: `os.urandom` lets go of the GIL, and on a busy server
#: each call then waits for it to come back, so ids take their randomness from a pool.
_POOL = 4096


class Uuid7:
    """A UUIDv7 generator, monotonic within one process.

    The 48-bit millisecond timestamp leads, so ids sort by creation time and index well;
    within one millisecond a 12-bit counter keeps ids from the same process in order. The
    random bits come from the OS (`os.urandom`), a pool at a time; a forked child starts a
    pool of its own.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = 0
        self._counter = 0
        self._pool = b""
        self._at = 0
        self._pid = 0

    def _random(self, n: int) -> int:
        """`n` random bytes as an integer (under the lock)."""
        if self._at + n > len(self._pool) or self._pid != os.getpid():
            self._pool, self._at, self._pid = os.urandom(_POOL), 0, os.getpid()
        at = self._at
        self._at = at + n
        return int.from_bytes(self._pool[at : at + n])

    def __call__(self) -> str:
        with self._lock:
            ms = time.time_ns() // 1_000_000
            if ms <= self._last_ms:
                ms = self._last_ms
                self._counter += 1
                if self._counter > 0xFFF:
                    ms += 1
                    self._counter = 0
            else:
                self._counter = self._random(2) & 0x3FF
            self._last_ms = ms
            counter = self._counter
            rand = self._random(8) & 0x3FFF_FFFF_FFFF_FFFF
        h = f"{(ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | rand:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


new_id = Uuid7()


def parse_id(text: str) -> str | None:
    """The canonical form of a job id, or None when `text` is not a UUID."""
    if _CANONICAL.match(text):  # what clients send back: already canonical
        return text
    if not 32 <= len(text) <= 45:
        return None
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None
