"""The candidate index (sources and their entries) in the SQLite store."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from jobhouse.catalog import OS, AppKind, Entry, SourceState
from jobhouse.clock import from_micros, to_micros
from jobhouse.store.base import ENTRY_COLUMNS

if TYPE_CHECKING:
    from jobhouse.store.sqlite import SqliteStore

_COLUMNS = ", ".join(ENTRY_COLUMNS)
_SELECT = f"SELECT {_COLUMNS} FROM source_entries WHERE source = ? ORDER BY id"


class SqliteCatalog:
    """`Catalog` on the store's SQLite file."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    async def replace(self, source: str, entries: Sequence[Entry], fingerprint: str | None = None) -> int:
        n = to_micros(self._store.clock.now())
        rows = [
            (
                source, e.id, e.app, e.name, e.os.value, e.kind.value, e.version, e.launch, e.install,
                e.description, dumps(list(e.keywords)), int(e.installed), e.popularity, dumps(list(e.files)),
                int(e.program),
            )
            for e in entries
        ]  # fmt: skip

        def run(conn: sqlite3.Connection) -> int:
            conn.execute("DELETE FROM source_entries WHERE source = ?", (source,))
            conn.executemany(
                f"INSERT OR REPLACE INTO source_entries (source, {_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('catalog_version', '1') ON CONFLICT (key) "
                "DO UPDATE SET value = CAST(value AS INTEGER) + 1"
            )
            conn.execute(
                "INSERT INTO sources (id, synced_at, candidate_count, last_error, last_error_at, generation, "
                "fingerprint) VALUES (?, ?, ?, NULL, NULL, 1, ?) ON CONFLICT (id) DO UPDATE SET "
                "synced_at = excluded.synced_at, candidate_count = excluded.candidate_count, last_error = NULL, "
                "last_error_at = NULL, generation = sources.generation + 1, fingerprint = excluded.fingerprint",
                (source, n, len(rows), fingerprint),
            )
            generation: int = conn.execute("SELECT generation FROM sources WHERE id = ?", (source,)).fetchone()[0]
            return generation

        return await self._store.engine.write(run)

    async def record_error(self, source: str, error: str) -> None:
        n = to_micros(self._store.clock.now())

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO sources (id, last_error, last_error_at) VALUES (?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET last_error = excluded.last_error, "
                "last_error_at = excluded.last_error_at",
                (source, error, n),
            )

        await self._store.engine.write(run)

    async def version(self) -> int:
        def run(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT value FROM meta WHERE key = 'catalog_version'").fetchone()
            return 0 if row is None else int(row[0])

        return await self._store.engine.read(run)

    async def states(self) -> dict[str, SourceState]:
        def run(conn: sqlite3.Connection) -> dict[str, SourceState]:
            return {
                row[0]: SourceState(row[0], _ts(row[1]), row[2], row[3], _ts(row[4]), row[5], row[6])
                for row in conn.execute(
                    "SELECT id, synced_at, candidate_count, last_error, last_error_at, generation, fingerprint "
                    "FROM sources"
                )
            }

        return await self._store.engine.read(run)

    async def entries(self, source: str) -> list[Entry]:
        def run(conn: sqlite3.Connection) -> list[Entry]:
            return [
                Entry(
                    source=source, id=row[0], app=row[1], name=row[2], os=OS(row[3]), kind=AppKind(row[4]),
                    version=row[5], launch=row[6], install=row[7], description=row[8],
                    keywords=tuple(orjson.loads(row[9])), installed=bool(row[10]), popularity=row[11],
                    files=tuple(orjson.loads(row[12])), program=bool(row[13]),
                )
                for row in conn.execute(_SELECT, (source,))
            ]  # fmt: skip

        return await self._store.engine.read(run)


def _ts(value: int | None) -> Any:
    return None if value is None else from_micros(value)


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()
