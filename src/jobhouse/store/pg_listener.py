"""One LISTEN connection per process: other processes' commits become hub events at once.

Payloads (sent by `jobhouse.store.pg_writes` and the store, from the statements that change the
rows, and by the change log's triggers): ``e`` work was queued, ``v`` jobs changed (new events),
``r:<ids>`` attempts requeued, ``c:<ids>`` jobs ended whose attempts must stop, ``s:<ids>``
attempts to stop, ``k:<ids>`` API keys revoked.
The listener checks its connection with a heartbeat query, so a half-open socket is noticed
within seconds; after any reconnect it asks the hub for a full refresh, because notifications
sent while it was away are lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import psycopg

from jobhouse.aio import wait
from jobhouse.hub import Hub
from jobhouse.retry import STORE_RETRY

log = logging.getLogger(__name__)


def dispatch(hub: Hub, payload: str) -> None:
    """Turn a NOTIFY payload (see `jobhouse.store.pg_writes`) into hub events."""
    kind, _, rest = payload.partition(":")
    ids = [item for item in rest.split(",") if item]
    if kind == "v":
        hub.changed()
    if kind in ("e", "r"):
        hub.enqueued()
    if kind in ("s", "c"):
        hub.stopped(ids)
    if kind == "r":  # rescued: the lost attempt may be one this process has just claimed again
        hub.refresh_now()
    if kind == "k":
        hub.revoked(ids)


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
        failures = 0
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                connects = self.connects
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
                failures = 1 if self.connects > connects else failures + 1  # in a row, since it last connected
                pause = STORE_RETRY.delay(failures)
                log.warning("LISTEN connection lost (%s); reconnecting in %.1fs", exc, pause)
                await wait(stop, pause)
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
            while True:
                async for notice in conn.notifies(timeout=self.heartbeat):
                    dispatch(self.hub, notice.payload)
                async with asyncio.timeout(self.heartbeat):
                    await conn.execute("SELECT 1")
