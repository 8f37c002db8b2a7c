"""One LISTEN connection per process: other processes' commits become hub events at once.

Payloads stay small: ``e`` (work was queued), ``d:<ids>`` (jobs ended), ``s:<ids>`` (attempts
that must stop: cancelled or rescued). The listener checks its connection with a heartbeat
query, so a half-open socket is noticed within seconds; after any reconnect it asks the hub for
a full refresh, because notifications sent while it was away are lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection, Iterator
from typing import Any

import psycopg

from jobhouse.aio import wait
from jobhouse.hub import Hub

log = logging.getLogger(__name__)
_PAYLOAD_MAX = 7900  # PostgreSQL refuses payloads of 8000 bytes or more


def notify_payloads(kind: str, ids: Collection[str] = ()) -> Iterator[str]:
    """The NOTIFY payloads that carry `ids` (split to fit), or the bare `kind`."""
    if not ids:
        if kind == "e":
            yield "e"
        return
    chunk: list[str] = []
    size = 2
    for job_id in ids:
        if size + len(job_id) + 1 > _PAYLOAD_MAX:
            yield f"{kind}:{','.join(chunk)}"
            chunk, size = [], 2
        chunk.append(job_id)
        size += len(job_id) + 1
    yield f"{kind}:{','.join(chunk)}"


def dispatch(hub: Hub, payload: str) -> None:
    kind, _, rest = payload.partition(":")
    ids = [job_id for job_id in rest.split(",") if job_id]
    if kind == "e":
        hub.enqueued()
    elif kind == "d":
        hub.ended(ids)
    elif kind == "s":
        hub.stopped(ids)


class PgListener:
    """Background service: LISTEN on the store's channel and feed the hub."""

    def __init__(self, conninfo: str, channel: str, hub: Hub, heartbeat: float = 5.0) -> None:
        self.conninfo = conninfo
        self.channel = channel
        self.hub = hub
        self.heartbeat = heartbeat
        self.connected = asyncio.Event()
        self.connects = 0
        self._connect_changed = asyncio.Condition()

    async def wait_connects(self, count: int) -> None:
        """Until the listener has connected `count` times (a test signal)."""
        async with self._connect_changed:
            await self._connect_changed.wait_for(lambda: self.connects >= count)

    async def run(self, stop: asyncio.Event) -> None:
        pause = 0.1
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                listening = asyncio.create_task(self._listen())
                await asyncio.wait({listening, stopping}, return_when=asyncio.FIRST_COMPLETED)
                self.connected.clear()
                if stop.is_set():
                    listening.cancel()
                    with contextlib.suppress(asyncio.CancelledError, psycopg.Error, OSError):
                        await listening
                    return
                exc = listening.exception()
                if exc is not None and not isinstance(exc, psycopg.Error | OSError | TimeoutError):
                    raise exc
                log.warning("LISTEN connection lost (%s); reconnecting in %.1fs", exc, pause)
                await wait(stop, pause)
                pause = min(pause * 2, 5.0)
        finally:
            stopping.cancel()

    async def _listen(self) -> None:
        conn: psycopg.AsyncConnection[Any] = await psycopg.AsyncConnection.connect(
            self.conninfo,
            autocommit=True,
            connect_timeout=max(int(self.heartbeat), 1),
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=3,
        )
        async with conn:
            await conn.execute(f'LISTEN "{self.channel}"')
            self.connected.set()
            async with self._connect_changed:
                self.connects += 1
                self._connect_changed.notify_all()
            # Anything sent while we were not listening is lost: look at everything once.
            self.hub.external_change()
            self.hub.enqueued()
            while True:
                async for notice in conn.notifies(timeout=self.heartbeat):
                    dispatch(self.hub, notice.payload)
                async with asyncio.timeout(self.heartbeat):
                    await conn.execute("SELECT 1")
