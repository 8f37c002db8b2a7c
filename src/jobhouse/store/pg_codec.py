"""How values cross into PostgreSQL: JSON through orjson, rows back into `Job`s.

PostgreSQL's jsonb cannot hold the NUL character; the API refuses it in input, and results or
error messages that carry one have it replaced by U+FFFD rather than failing the write.
"""

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

from jobhouse.errors import StoreUnavailable
from jobhouse.job import Failure, Job, JobStatus, Step


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode().replace("\\u0000", "\\ufffd")


def Jsonb(value: Any) -> _Jsonb:
    return _Jsonb(value, dumps=dumps)


async def configure(conn: psycopg.AsyncConnection[Any]) -> None:
    """Run on every new pooled connection."""
    set_json_dumps(dumps, context=conn)
    set_json_loads(orjson.loads, context=conn)
    await conn.set_autocommit(False)


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
    """A `Job` from the columns of ``COLUMNS`` (jsonb already decoded, timestamps aware)."""
    error = row[13]
    return Job(
        id=str(row[0]),
        workspace=row[1],
        kind=row[2],
        subject=row[3],
        title=row[4],
        status=JobStatus(row[5]),
        progress=row[6],
        steps=tuple(Step.from_dict(s) for s in row[7]),
        current_step=row[8],
        input=row[9],
        metadata=row[10],
        result=row[11],
        result_type=row[12],
        error=None if error is None else Failure.from_dict(error),
        errors=tuple(Failure.from_dict(e) for e in row[14]),
        attempt=row[15],
        max_attempts=row[16],
        run_at=row[17],
        worker=row[18],
        lease_expires_at=row[19],
        created_at=row[20],
        updated_at=row[21],
        started_at=row[22],
        completed_at=row[23],
    )


@asynccontextmanager
async def unavailable_on_errors() -> AsyncIterator[None]:
    """Driver trouble (a lost connection, no connection in time) becomes `StoreUnavailable`."""
    try:
        yield
    except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout) as exc:
        raise StoreUnavailable(f"PostgreSQL: {exc}") from exc
