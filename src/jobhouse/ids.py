"""Time-ordered job ids (UUIDv7, RFC 9562) and their parsing."""

from __future__ import annotations

import os
import threading
import time
import uuid


class Uuid7:
    """A UUIDv7 generator, monotonic within one process.

    The 48-bit millisecond timestamp leads, so ids sort by creation time and index well;
    within one millisecond a 12-bit counter keeps ids from the same process in order.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = 0
        self._counter = 0

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
                self._counter = int.from_bytes(os.urandom(2)) & 0x3FF
            self._last_ms = ms
            counter = self._counter
        rand = int.from_bytes(os.urandom(8)) & 0x3FFF_FFFF_FFFF_FFFF
        value = (ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | rand
        return str(uuid.UUID(int=value))


new_id = Uuid7()


def parse_id(text: str) -> str | None:
    """The canonical form of a job id, or None when `text` is not a UUID."""
    if not 32 <= len(text) <= 45:
        return None
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None
