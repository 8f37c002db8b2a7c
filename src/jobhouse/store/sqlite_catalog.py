"""The candidate index (sources and their candidates) in the SQLite store."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from jobhouse.catalog import OS, AppKind, Candidate, CandidateFilter, SourceState
from jobhouse.clock import from_micros, to_micros

if TYPE_CHECKING:
    from jobhouse.store.sqlite import SqliteStore


class SqliteCatalog:
    """`Catalog` on the store's SQLite file."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    async def replace(self, source: str, candidates: Sequence[Candidate]) -> None:
        n = to_micros(self._store.clock.now())
        rows = [
            (
                source, c.id, c.app, c.name, c.os.value, c.kind.value, c.version, c.launch, c.install,
                c.description, dumps(list(c.keywords)),
            )
            for c in candidates
        ]  # fmt: skip

        def run(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM candidates WHERE source = ?", (source,))
            conn.executemany(
                "INSERT OR REPLACE INTO candidates (source, id, app, name, os, kind, version, launch, install, "
                "description, keywords) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('catalog_version', '1') ON CONFLICT (key) "
                "DO UPDATE SET value = CAST(value AS INTEGER) + 1"
            )
            conn.execute(
                "INSERT INTO sources (id, synced_at, candidate_count, last_error, last_error_at) "
                "VALUES (?, ?, ?, NULL, NULL) ON CONFLICT (id) DO UPDATE SET synced_at = excluded.synced_at, "
                "candidate_count = excluded.candidate_count, last_error = NULL, last_error_at = NULL",
                (source, n, len(rows)),
            )

        await self._store.engine.write(run)

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
                row[0]: SourceState(row[0], _ts(row[1]), row[2], row[3], _ts(row[4]))
                for row in conn.execute("SELECT id, synced_at, candidate_count, last_error, last_error_at FROM sources")
            }

        return await self._store.engine.read(run)

    async def candidates(self, where: CandidateFilter) -> list[Candidate]:
        clauses: list[str] = ["1 = 1"]
        params: list[Any] = []
        if where.os is not None:
            clauses.append("os = ?")
            params.append(where.os.value)
        if where.kind is not None:
            clauses.append("kind = ?")
            params.append(where.kind.value)
        if where.source is not None:
            clauses.append("source = ?")
            params.append(where.source)
        if where.version_prefix is not None:
            clauses.append("substr(version, 1, ?) = ?")
            params.extend([len(where.version_prefix), where.version_prefix])
        sql = (
            "SELECT id, app, name, os, kind, source, version, launch, install, description, keywords "
            f"FROM candidates WHERE {' AND '.join(clauses)}"
        )

        def run(conn: sqlite3.Connection) -> list[Candidate]:
            return [
                Candidate(
                    id=row[0], app=row[1], name=row[2], os=OS(row[3]), kind=AppKind(row[4]), source=row[5],
                    version=row[6], launch=row[7], install=row[8], description=row[9],
                    keywords=tuple(orjson.loads(row[10])),
                )
                for row in conn.execute(sql, params)
            ]  # fmt: skip

        return await self._store.engine.read(run)


def _ts(value: int | None) -> Any:
    return None if value is None else from_micros(value)


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()
