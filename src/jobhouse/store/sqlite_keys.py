"""API keys and first-run state in the SQLite store."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from jobhouse.clock import from_micros, to_micros
from jobhouse.keys import ApiKey

if TYPE_CHECKING:
    from jobhouse.store.sqlite import SqliteStore


class SqliteKeys:
    """`KeyStore` on the store's SQLite file."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    async def add(self, key: ApiKey) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO api_keys (id, workspace, secret_hash, label, created_at) VALUES (?, ?, ?, ?, ?)",
                (key.id, key.workspace, key.secret_hash, key.label, to_micros(key.created_at)),
            )

        await self._store.engine.write(run)

    async def get(self, key_id: str) -> ApiKey | None:
        def run(conn: sqlite3.Connection) -> ApiKey | None:
            row = conn.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE id = ?", (key_id,)).fetchone()
            return None if row is None else _key(row)

        # Every request checks its key: read where the request is, not on a reader thread. Still a
        # read each time, so a key revoked by any process is refused by the very next request.
        return await self._store.engine.read_here(run)

    async def all(self) -> list[ApiKey]:
        def run(conn: sqlite3.Connection) -> list[ApiKey]:
            return [_key(row) for row in conn.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY created_at")]

        return await self._store.engine.read(run)

    async def revoke(self, key_id: str) -> bool:
        n = to_micros(self._store.clock.now())

        def run(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (n, key_id))
            return cursor.rowcount == 1

        return await self._store.engine.write(run)

    async def first_run(self) -> bool:
        n = str(to_micros(self._store.clock.now()))

        def run(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('initialized_at', ?)", (n,))
            return cursor.rowcount == 1

        return await self._store.engine.write(run)


_KEY_COLUMNS = "id, workspace, secret_hash, label, created_at, revoked_at"


def _key(row: tuple[Any, ...]) -> ApiKey:
    return ApiKey(
        id=row[0],
        workspace=row[1],
        secret_hash=row[2],
        label=row[3],
        created_at=from_micros(row[4]),
        revoked_at=_ts(row[5]),
    )


def _ts(value: int | None) -> Any:
    return None if value is None else from_micros(value)
