"""Webhook subscriptions, callback secrets and the delivery outbox in the PostgreSQL store.

The outbox rows come from the statement trigger of migration 0008 (``webhook_deliveries_owed``),
inside the statement that ends the jobs. A claim takes due rows with ``FOR UPDATE SKIP LOCKED`` and
moves their `next_at` a lease ahead in one statement, so senders on any number of machines never
claim the same row at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from jobhouse.errors import InvalidRequest
from jobhouse.store.base import DeliveryPage, DeliveryQuery
from jobhouse.store.rows import as_is
from jobhouse.store.webhook_rows import (
    D_COLUMNS,
    DELIVERY_COLUMNS,
    SUBSCRIPTION_COLUMNS,
    UNSUBSCRIBED,
    clean,
    delivery_from_row,
    delivery_listing,
    delivery_page,
    subscription_from_row,
)
from jobhouse.webhooks import Claimed, DeliveryRef, Result, Subscription

if TYPE_CHECKING:
    from jobhouse.store.postgres import PostgresStore


class PgWebhooks:
    """`WebhookStore` in the store's PostgreSQL schema."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    async def subscribe(self, subscription: Subscription, secret: str, limit: int) -> None:
        s = subscription
        t = self._store.t
        async with self._store.transaction() as conn:
            # One subscriber per workspace at a time while the limit is counted.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{t('webhooks')}:{s.workspace}",))
            row = await (
                await conn.execute(
                    f"SELECT count(*) FROM {t('webhook_subscriptions')} WHERE workspace = %s", (s.workspace,)
                )
            ).fetchone()
            if row is not None and row[0] >= limit:
                raise InvalidRequest(f"This workspace already has {limit} webhooks: delete one first")
            await conn.execute(
                f"INSERT INTO {t('webhook_subscriptions')} ({SUBSCRIPTION_COLUMNS}, secret) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (s.id, s.workspace, s.url, _names(s.events), _names(s.types), s.created_at, secret),
            )

    async def subscriptions(self, workspace: str) -> list[Subscription]:
        async with self._store.read() as conn:
            rows = await (
                await conn.execute(
                    f"SELECT {SUBSCRIPTION_COLUMNS} FROM {self._store.t('webhook_subscriptions')} "
                    "WHERE workspace = %s ORDER BY created_at, id",
                    (workspace,),
                )
            ).fetchall()
        return [subscription_from_row(row, as_is, as_is) for row in rows]

    async def unsubscribe(self, workspace: str, subscription_id: str) -> Subscription | None:
        t = self._store.t
        async with self._store.transaction() as conn:
            row = await (
                await conn.execute(
                    f"DELETE FROM {t('webhook_subscriptions')} WHERE id = %s AND workspace = %s "
                    f"RETURNING {SUBSCRIPTION_COLUMNS}",
                    (subscription_id, workspace),
                )
            ).fetchone()
            if row is None:
                return None
            await conn.execute(
                f"UPDATE {t('webhook_deliveries')} SET status = 'failed', last_error = %s, next_at = %s "
                "WHERE subscription_id = %s AND status = 'pending'",
                (UNSUBSCRIBED, self._store.clock.now(), subscription_id),
            )
        return subscription_from_row(row, as_is, as_is)

    async def secret(self, workspace: str, new: str, *, replace: bool = False) -> str:
        table = self._store.t("webhook_secrets")
        if not replace:
            async with self._store.read() as conn:
                found = await (
                    await conn.execute(f"SELECT secret FROM {table} WHERE workspace = %s", (workspace,))
                ).fetchone()
            if found is not None:
                return str(found[0])
        on_conflict = "UPDATE SET secret = excluded.secret, created_at = excluded.created_at" if replace else "NOTHING"
        async with self._store.transaction() as conn:
            await conn.execute(
                f"INSERT INTO {table} VALUES (%s, %s, %s) ON CONFLICT (workspace) DO {on_conflict}",
                (workspace, new, self._store.clock.now()),
            )
            row = await (
                await conn.execute(f"SELECT secret FROM {table} WHERE workspace = %s", (workspace,))
            ).fetchone()
        return new if row is None else str(row[0])

    async def claim(self, limit: int, lease: float) -> list[Claimed]:
        if limit <= 0:
            return []
        t = self._store.t
        now = self._store.clock.now()
        async with self._store.read() as conn:  # one round trip when nothing is due (the usual poll)
            due = await (
                await conn.execute(
                    f"SELECT 1 FROM {t('webhook_deliveries')} WHERE status = 'pending' AND next_at <= %s LIMIT 1",
                    (now,),
                )
            ).fetchone()
        if due is None:
            return []
        async with self._store.transaction() as conn:
            rows = await (
                await conn.execute(
                    f"WITH due AS (SELECT id FROM {t('webhook_deliveries')} WHERE status = 'pending' AND next_at <= %s "
                    "ORDER BY next_at, id LIMIT %s FOR UPDATE SKIP LOCKED) "
                    f"UPDATE {t('webhook_deliveries')} AS d SET attempts = d.attempts + 1, next_at = %s FROM due "
                    f"WHERE d.id = due.id RETURNING {D_COLUMNS}, CASE WHEN d.subscription_id IS NULL "
                    f"THEN (SELECT w.secret FROM {t('webhook_secrets')} w WHERE w.workspace = d.workspace) "
                    f"ELSE (SELECT s.secret FROM {t('webhook_subscriptions')} s WHERE s.id = d.subscription_id) END",
                    (now, limit, now + timedelta(seconds=lease)),
                )
            ).fetchall()
        claimed = [Claimed(delivery_from_row(row, as_is), row[-1]) for row in rows]
        claimed.sort(key=lambda c: (c.delivery.created_at, c.delivery.id))
        return claimed

    async def record(self, results: Sequence[Result]) -> list[bool]:
        if not results:
            return []
        async with self._store.transaction() as conn:
            rows = await (
                await conn.execute(
                    f"UPDATE {self._store.t('webhook_deliveries')} AS d SET status = r.status, "
                    "next_at = coalesce(r.next_at, d.next_at), last_status_code = r.code, last_error = r.error, "
                    "last_attempt_at = r.at, delivered_at = CASE WHEN r.status = 'delivered' THEN r.at "
                    "ELSE d.delivered_at END FROM unnest(%s::uuid[], %s::int[], %s::text[], %s::timestamptz[], "
                    "%s::timestamptz[], %s::int[], %s::text[]) AS r(id, attempt, status, at, next_at, code, error) "
                    "WHERE d.id = r.id AND d.attempts = r.attempt AND d.status = 'pending' RETURNING d.id, d.attempts",
                    (
                        [r.ref.id for r in results], [r.ref.attempt for r in results],
                        [r.status.value for r in results], [r.at for r in results], [r.next_at for r in results],
                        [r.status_code for r in results], [clean(r.error) for r in results],
                    ),
                )
            ).fetchall()  # fmt: skip
        written = {(str(row[0]), row[1]) for row in rows}
        return [(r.ref.id, r.ref.attempt) in written for r in results]

    async def release(self, refs: Sequence[DeliveryRef]) -> int:
        if not refs:
            return 0
        async with self._store.transaction() as conn:
            cursor = await conn.execute(
                f"UPDATE {self._store.t('webhook_deliveries')} AS d SET attempts = d.attempts - 1, next_at = %s "
                "FROM unnest(%s::uuid[], %s::int[]) AS r(id, attempt) "
                "WHERE d.id = r.id AND d.attempts = r.attempt AND d.status = 'pending'",
                (self._store.clock.now(), [ref.id for ref in refs], [ref.attempt for ref in refs]),
            )
            return cursor.rowcount

    async def deliveries(self, query: DeliveryQuery) -> DeliveryPage:
        where, params = delivery_listing(query, "%s", as_is, "::uuid")
        async with self._store.read() as conn:
            rows = await (
                await conn.execute(
                    f"SELECT {DELIVERY_COLUMNS} FROM {self._store.t('webhook_deliveries')} {where}", params
                )
            ).fetchall()
        return delivery_page([delivery_from_row(row, as_is) for row in rows], query.limit)


def _names(values: tuple[str, ...] | None) -> list[str] | None:
    return None if values is None else list(values)
