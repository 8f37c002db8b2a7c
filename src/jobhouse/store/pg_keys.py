"""API keys and first-run state in the PostgreSQL store."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobhouse.keys import ApiKey

if TYPE_CHECKING:
    from jobhouse.store.postgres import PostgresStore


class PgKeys:
    """`KeyStore` in the store's PostgreSQL schema."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    async def add(self, key: ApiKey) -> None:
        async with self._store.transaction() as conn:
            await conn.execute(
                f"INSERT INTO {self._store.t('api_keys')} (id, workspace, secret_hash, label, created_at) "
                "VALUES (%s, %s, %s, %s, %s)",
                (key.id, key.workspace, key.secret_hash, key.label, key.created_at),
            )

    async def get(self, key_id: str) -> ApiKey | None:
        async with self._store.read() as conn:
            row = await (
                await conn.execute(f"SELECT {_KEY_COLUMNS} FROM {self._store.t('api_keys')} WHERE id = %s", (key_id,))
            ).fetchone()
        return None if row is None else ApiKey(*row)

    async def all(self) -> list[ApiKey]:
        async with self._store.read() as conn:
            rows = await (
                await conn.execute(f"SELECT {_KEY_COLUMNS} FROM {self._store.t('api_keys')} ORDER BY created_at")
            ).fetchall()
        return [ApiKey(*row) for row in rows]

    async def revoke(self, key_id: str) -> bool:
        async with self._store.transaction() as conn:
            cursor = await conn.execute(
                f"WITH revoked AS (UPDATE {self._store.t('api_keys')} SET revoked_at = %s WHERE id = %s "
                "AND revoked_at IS NULL RETURNING id) SELECT pg_notify(%s, 'k:' || id) FROM revoked",
                (self._store.clock.now(), key_id, self._store.channel),
            )
            return cursor.rowcount == 1

    async def first_run(self) -> bool:
        async with self._store.transaction() as conn:
            cursor = await conn.execute(
                f"INSERT INTO {self._store.t('meta')} (key, value) VALUES ('initialized_at', %s) "
                "ON CONFLICT DO NOTHING",
                (self._store.clock.now().isoformat(),),
            )
            return cursor.rowcount == 1


_KEY_COLUMNS = "id, workspace, secret_hash, created_at, label, revoked_at"
