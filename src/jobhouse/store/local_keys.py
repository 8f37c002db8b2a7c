"""A SQLite store's API keys as the HTTP API reads them: on the event loop's own thread.

Every request looks up its key. Through the store (`SqliteKeys`) that is a trip to a reader thread
and back, which under load costs far more than the read itself: the thread waits for the GIL behind
the event loop, and the loop for the answer (on a status poll, a third of the server's time). A
key's row is one indexed read of a small table, so `LocalKeys` makes it right here, on a connection
of its own (``query_only``, with a ``busy_timeout`` of 0: it never waits for a lock).

It still reads the row on every request, so a key revoked by any process (another server, the
``jobhouse keys revoke`` command) is refused by the very next request, as it always was on SQLite;
only what never changes (the key's workspace and hash, once seen active) is kept, and each later
request reads just whether the key was revoked since. Should that connection fail (a file it cannot
read, a call from another thread), the request reads through the store instead, which reports
`StoreUnavailable` as usual.
"""

from __future__ import annotations

import dataclasses
import sqlite3

from jobhouse.clock import from_micros
from jobhouse.keys import ApiKey
from jobhouse.store.base import KeyStore

_KEY = "SELECT id, workspace, secret_hash, label, created_at, revoked_at FROM api_keys WHERE id = ?"
_REVOKED = "SELECT revoked_at FROM api_keys WHERE id = ?"


class LocalKeys:
    """`KeyStore` over `keys` (a SQLite store's, on the file `path`) whose `get` reads on the calling
    thread; everything else goes to `keys`. Open it after the store (which creates and migrates the
    file); `close` it on the thread that used it."""

    def __init__(self, keys: KeyStore, path: str) -> None:
        self._keys = keys
        self._path = path
        self._conn: sqlite3.Connection | None = None
        #: Active keys seen so far: what of them cannot change.
        self._active: dict[str, ApiKey] = {}

    async def get(self, key_id: str) -> ApiKey | None:
        try:
            return self._read(key_id)
        except sqlite3.Error:
            self._active.pop(key_id, None)
            return await self._keys.get(key_id)

    def _read(self, key_id: str) -> ApiKey | None:
        conn = self._conn if self._conn is not None else self._connect()
        known = self._active.get(key_id)
        if known is not None:
            row = conn.execute(_REVOKED, (key_id,)).fetchone()
            if row is not None and row[0] is None:
                return known
            del self._active[key_id]
            return None if row is None else dataclasses.replace(known, revoked_at=from_micros(row[0]))
        row = conn.execute(_KEY, (key_id,)).fetchone()
        if row is None:
            return None
        key = ApiKey(
            id=row[0],
            workspace=row[1],
            secret_hash=row[2],
            label=row[3],
            created_at=from_micros(row[4]),
            revoked_at=None if row[5] is None else from_micros(row[5]),
        )
        if key.revoked_at is None:
            self._active[key_id] = key
        return key

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, timeout=0)
        try:
            conn.execute("PRAGMA query_only = 1")
            conn.execute("PRAGMA busy_timeout = 0")
        except sqlite3.Error:
            conn.close()
            raise
        self._conn = conn
        return conn

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()

    async def add(self, key: ApiKey) -> None:
        await self._keys.add(key)

    async def all(self) -> list[ApiKey]:
        return await self._keys.all()

    async def revoke(self, key_id: str) -> bool:
        self._active.pop(key_id, None)
        return await self._keys.revoke(key_id)

    async def first_run(self) -> bool:
        return await self._keys.first_run()
