"""The candidate index (sources and their entries) in the PostgreSQL store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from jobhouse.catalog import OS, AppKind, Entry, SourceState
from jobhouse.store.base import ENTRY_COLUMNS
from jobhouse.store.pg_codec import Jsonb

if TYPE_CHECKING:
    from jobhouse.store.postgres import PostgresStore

_COLUMNS = ", ".join(ENTRY_COLUMNS)


class PgCatalog:
    """`Catalog` in the store's PostgreSQL schema."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    async def replace(self, source: str, entries: Sequence[Entry], fingerprint: str | None = None) -> int:
        rows = [
            (
                source, _text(e.id), _text(e.app), _text(e.name), e.os.value, e.kind.value, _text(e.version),
                _text(e.launch), _text(e.install), _text(e.description), Jsonb(list(e.keywords)), e.installed,
                e.popularity, Jsonb(list(e.files)), e.program,
            )
            for e in entries
        ]  # fmt: skip
        t = self._store.t
        async with self._store.transaction() as conn:
            await conn.execute(f"DELETE FROM {t('source_entries')} WHERE source = %s", (source,))
            async with (
                conn.cursor() as cursor,
                cursor.copy(f"COPY {t('source_entries')} (source, {_COLUMNS}) FROM STDIN") as copy,
            ):
                for row in rows:
                    await copy.write_row(row)
            upserted = await conn.execute(
                f"INSERT INTO {t('sources')} AS s (id, synced_at, candidate_count, last_error, last_error_at, "
                "generation, fingerprint) VALUES (%s, %s, %s, NULL, NULL, 1, %s) ON CONFLICT (id) DO UPDATE SET "
                "synced_at = excluded.synced_at, candidate_count = excluded.candidate_count, last_error = NULL, "
                "last_error_at = NULL, generation = s.generation + 1, fingerprint = excluded.fingerprint "
                "RETURNING generation",
                (source, self._store.clock.now(), len(rows), fingerprint),
            )
            generation = await upserted.fetchone()
            await conn.execute(
                f"INSERT INTO {t('meta')} AS m (key, value) VALUES ('catalog_version', '1') "
                "ON CONFLICT (key) DO UPDATE SET value = (m.value::bigint + 1)::text"
            )
        assert generation is not None
        new: int = generation[0]
        return new

    async def record_error(self, source: str, error: str) -> None:
        async with self._store.transaction() as conn:
            await conn.execute(
                f"INSERT INTO {self._store.t('sources')} (id, last_error, last_error_at) VALUES (%s, %s, %s) "
                "ON CONFLICT (id) DO UPDATE SET last_error = excluded.last_error, "
                "last_error_at = excluded.last_error_at",
                (source, error.replace("\x00", ""), self._store.clock.now()),
            )

    async def version(self) -> int:
        async with self._store.read() as conn:
            row = await (
                await conn.execute(f"SELECT value FROM {self._store.t('meta')} WHERE key = 'catalog_version'")
            ).fetchone()
        return 0 if row is None else int(row[0])

    async def states(self) -> dict[str, SourceState]:
        async with self._store.read() as conn:
            rows = await (
                await conn.execute(
                    "SELECT id, synced_at, candidate_count, last_error, last_error_at, generation, fingerprint "
                    f"FROM {self._store.t('sources')}"
                )
            ).fetchall()
        return {row[0]: SourceState(*row) for row in rows}

    async def entries(self, source: str) -> list[Entry]:
        async with self._store.read() as conn:
            rows = await (
                await conn.execute(
                    f"SELECT {_COLUMNS} FROM {self._store.t('source_entries')} WHERE source = %s ORDER BY id",
                    (source,),
                )
            ).fetchall()
        return [
            Entry(
                source=source, id=row[0], app=row[1], name=row[2], os=OS(row[3]), kind=AppKind(row[4]),
                version=row[5], launch=row[6], install=row[7], description=row[8], keywords=tuple(row[9]),
                installed=row[10], popularity=row[11], files=tuple(row[12]), program=row[13],
            )
            for row in rows
        ]  # fmt: skip


def _text(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL; a source's odd file should not fail the whole sync."""
    return None if value is None else value.replace("\x00", "")
