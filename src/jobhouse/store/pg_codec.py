"""How values cross into PostgreSQL: JSON encoded once (`jobhouse.codec`), rows back into `Job`s."""

from __future__ import annotations

import time
import weakref
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb as _Jsonb
from psycopg.types.json import set_json_dumps, set_json_loads
from psycopg_pool import PoolTimeout

from jobhouse import codec
from jobhouse.errors import StoreUnavailable
from jobhouse.job import Job, Step
from jobhouse.store import rows


def Jsonb(value: Any) -> _Jsonb:
    """A value for a jsonb parameter, encoded once (NUL characters cleaned, see `jobhouse.codec`)."""
    return _Jsonb(value, dumps=codec.encode)


def encoded(data: bytes | None) -> _Jsonb | None:
    """A jsonb parameter from JSON already encoded by `jobhouse.codec.encode`: sent as it is."""
    return None if data is None else _Jsonb(data, dumps=_as_is)


def _as_is(data: bytes) -> bytes:
    return data


async def configure(conn: psycopg.AsyncConnection[Any]) -> None:
    """Run on every new pooled connection: single statements commit by themselves (reads are one
    round trip); `PostgresStore.transaction` wraps writes in BEGIN ... COMMIT."""
    set_json_dumps(codec.encode, context=conn)
    set_json_loads(orjson.loads, context=conn)
    await conn.set_autocommit(True)


class IdleCheck:
    """Pool hooks that test a connection before use only if it sat idle for a while.

    A connection the server dropped while it idled (a restart, a failover, a killed backend)
    would otherwise fail the first request that draws it; a busy pool pays nothing.
    """

    def __init__(self, idle: float = 2.0) -> None:
        self.idle = idle
        self._returned: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], float] = weakref.WeakKeyDictionary()

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._returned[conn] = time.monotonic()

    async def check(self, conn: psycopg.AsyncConnection[Any]) -> None:
        if time.monotonic() - self._returned.get(conn, 0.0) > self.idle:
            await conn.execute("")


def steps_json(steps: Iterable[Step]) -> _Jsonb:
    return Jsonb([s.to_dict() for s in steps])


def job_from_row(row: tuple[Any, ...]) -> Job:
    """A `Job` from the columns of `jobhouse.store.rows.COLUMNS` (jsonb already decoded, timestamps aware)."""
    return rows.job_from_row(row, json=rows.as_is, time=rows.as_is)


@asynccontextmanager
async def unavailable_on_errors() -> AsyncIterator[None]:
    """Driver trouble (a lost connection, no connection in time) becomes `StoreUnavailable`."""
    try:
        yield
    except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout) as exc:
        raise StoreUnavailable(f"PostgreSQL: {exc}") from exc
