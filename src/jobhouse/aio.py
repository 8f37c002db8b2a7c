"""Small asyncio helpers shared by the background loops.

`wait` bounds a wait with ``asyncio.timeout`` rather than ``asyncio.wait_for``: on Python 3.11,
``wait_for`` can swallow a cancellation that arrives just as the awaited event fires, which would
leave a loop running after its task was cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib


async def wait(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait for `event` at most `timeout` seconds; whether it is set."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()
    return event.is_set()


async def relay(source: asyncio.Event, target: asyncio.Event) -> None:
    """Set `target` once `source` is set (run as a task)."""
    await source.wait()
    target.set()
