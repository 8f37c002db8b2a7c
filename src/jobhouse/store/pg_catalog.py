"""The candidate index (sources and their candidates) in the PostgreSQL store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from jobhouse.catalog import OS, AppKind, Candidate, CandidateFilter, SourceState
from jobhouse.store.pg_codec import Jsonb

if TYPE_CHECKING:
    from jobhouse.store.postgres import PostgresStore


class PgCatalog:
    """`Catalog` in the store's PostgreSQL schema."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    async def replace(self, source: str, candidates: Sequence[Candidate]) -> None:
        rows = [
            (
                source, _text(c.id), _text(c.app), _text(c.name), c.os.value, c.kind.value, _text(c.version),
                _text(c.launch), _text(c.install), _text(c.description), Jsonb(list(c.keywords)),
            )
            for c in candidates
        ]  # fmt: skip
        async with self._store.transaction() as conn:
            await conn.execute(f"DELETE FROM {self._store.t('candidates')} WHERE source = %s", (source,))
            async with (
                conn.cursor() as cursor,
                cursor.copy(
                    f"COPY {self._store.t('candidates')} "
                    "(source, id, app, name, os, kind, version, launch, install, description, keywords) FROM STDIN"
                ) as copy,
            ):
                for row in rows:
                    await copy.write_row(row)
            await conn.execute(
                f"INSERT INTO {self._store.t('sources')} (id, synced_at, candidate_count, last_error, last_error_at) "
                "VALUES (%s, %s, %s, NULL, NULL) ON CONFLICT (id) DO UPDATE SET synced_at = excluded.synced_at, "
                "candidate_count = excluded.candidate_count, last_error = NULL, last_error_at = NULL",
                (source, self._store.clock.now(), len(rows)),
            )
            await conn.execute(
                f"INSERT INTO {self._store.t('meta')} AS m (key, value) VALUES ('catalog_version', '1') "
                "ON CONFLICT (key) DO UPDATE SET value = (m.value::bigint + 1)::text"
            )

    async def record_error(self, source: str, error: str) -> None:
        async with self._store.transaction() as conn:
            await conn.execute(
                f"INSERT INTO {self._store.t('sources')} (id, last_error, last_error_at) VALUES (%s, %s, %s) "
                "ON CONFLICT (id) DO UPDATE SET last_error = excluded.last_error, "
                "last_error_at = excluded.last_error_at",
                (source, error.replace("\x00", ""), self._store.clock.now()),
            )

    async def version(self) -> int:
        async with self._store.transaction() as conn:
            row = await (
                await conn.execute(f"SELECT value FROM {self._store.t('meta')} WHERE key = 'catalog_version'")
            ).fetchone()
        return 0 if row is None else int(row[0])

    async def states(self) -> dict[str, SourceState]:
        async with self._store.transaction() as conn:
            rows = await (
                await conn.execute(
                    f"SELECT id, synced_at, candidate_count, last_error, last_error_at FROM {self._store.t('sources')}"
                )
            ).fetchall()
        return {row[0]: SourceState(*row) for row in rows}

    async def candidates(self, where: CandidateFilter) -> list[Candidate]:
        clauses: list[str] = ["TRUE"]
        params: list[Any] = []
        if where.os is not None:
            clauses.append("os = %s")
            params.append(where.os.value)
        if where.kind is not None:
            clauses.append("kind = %s")
            params.append(where.kind.value)
        if where.source is not None:
            clauses.append("source = %s")
            params.append(where.source)
        if where.version_prefix is not None:
            clauses.append("starts_with(version, %s)")
            params.append(where.version_prefix)
        sql = (
            "SELECT id, app, name, os, kind, source, version, launch, install, description, keywords "
            f"FROM {self._store.t('candidates')} WHERE {' AND '.join(clauses)}"
        )
        async with self._store.transaction() as conn:
            rows = await (await conn.execute(sql, params)).fetchall()
        return [
            Candidate(
                id=row[0], app=row[1], name=row[2], os=OS(row[3]), kind=AppKind(row[4]), source=row[5],
                version=row[6], launch=row[7], install=row[8], description=row[9], keywords=tuple(row[10]),
            )
            for row in rows
        ]  # fmt: skip


def _text(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL; a source's odd file should not fail the whole sync."""
    return None if value is None else value.replace("\x00", "")
