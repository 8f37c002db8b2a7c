"""Webhook subscriptions, callback secrets and the delivery outbox in the SQLite store.

The outbox rows come from the trigger of migration 0008 (``webhook_deliveries_owed``), inside the
write that ends a job. Claims, results and hand-backs go through the writer thread like every
write, so two senders (in this or another process) never claim the same row: a claim moves the
row's `next_at` a lease ahead in the same statement that picks it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING

import orjson

from jobhouse.clock import from_micros, to_micros
from jobhouse.errors import InvalidRequest
from jobhouse.store.base import DeliveryPage, DeliveryQuery
from jobhouse.store.webhook_rows import (
    DELIVERY_COLUMNS,
    SUBSCRIPTION_COLUMNS,
    UNSUBSCRIBED,
    clean,
    delivery_from_row,
    delivery_listing,
    delivery_page,
    subscription_from_row,
)
from jobhouse.webhooks import Claimed, Delivery, DeliveryRef, Result, Subscription

if TYPE_CHECKING:
    from jobhouse.store.sqlite import SqliteStore

_RECORD = (
    "UPDATE webhook_deliveries SET status = ?, next_at = coalesce(?, next_at), last_status_code = ?, "
    "last_error = ?, last_attempt_at = ?, delivered_at = CASE WHEN ? = 'delivered' THEN ? ELSE delivered_at END "
    "WHERE id = ? AND attempts = ? AND status = 'pending'"
)


class SqliteWebhooks:
    """`WebhookStore` on the store's SQLite file."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    async def subscribe(self, subscription: Subscription, secret: str, limit: int) -> None:
        s = subscription
        row = (
            s.id, s.workspace, s.url, _names(s.events), _names(s.types), to_micros(s.created_at), secret,
        )  # fmt: skip

        def run(conn: sqlite3.Connection) -> None:
            (count,) = conn.execute(
                "SELECT count(*) FROM webhook_subscriptions WHERE workspace = ?", (s.workspace,)
            ).fetchone()
            if count >= limit:
                raise InvalidRequest(f"This workspace already has {limit} webhooks: delete one first")
            conn.execute(f"INSERT INTO webhook_subscriptions ({SUBSCRIPTION_COLUMNS}, secret) VALUES ({_MARKS})", row)

        await self._store.engine.write(run)

    async def subscriptions(self, workspace: str) -> list[Subscription]:
        def run(conn: sqlite3.Connection) -> list[Subscription]:
            rows = conn.execute(
                f"SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE workspace = ? ORDER BY created_at, id",
                (workspace,),
            )
            return [subscription_from_row(row, orjson.loads, from_micros) for row in rows]

        return await self._store.engine.read(run)

    async def unsubscribe(self, workspace: str, subscription_id: str) -> Subscription | None:
        n = to_micros(self._store.clock.now())

        def run(conn: sqlite3.Connection) -> Subscription | None:
            row = conn.execute(
                f"DELETE FROM webhook_subscriptions WHERE id = ? AND workspace = ? RETURNING {SUBSCRIPTION_COLUMNS}",
                (subscription_id, workspace),
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE webhook_deliveries SET status = 'failed', last_error = ?, next_at = ? "
                "WHERE subscription_id = ? AND status = 'pending'",
                (UNSUBSCRIBED, n, subscription_id),
            )
            return subscription_from_row(row, orjson.loads, from_micros)

        return await self._store.engine.write(run)

    async def secret(self, workspace: str, new: str, *, replace: bool = False) -> str:
        def read(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT secret FROM webhook_secrets WHERE workspace = ?", (workspace,)).fetchone()
            return None if row is None else str(row[0])

        if not replace:
            found = await self._store.engine.read(read)
            if found is not None:
                return found
        n = to_micros(self._store.clock.now())
        on_conflict = "UPDATE SET secret = excluded.secret, created_at = excluded.created_at" if replace else "NOTHING"

        def run(conn: sqlite3.Connection) -> str:
            conn.execute(
                f"INSERT INTO webhook_secrets VALUES (?, ?, ?) ON CONFLICT (workspace) DO {on_conflict}",
                (workspace, new, n),
            )
            return read(conn) or new

        return await self._store.engine.write(run)

    async def claim(self, limit: int, lease: float) -> list[Claimed]:
        n = to_micros(self._store.clock.now())

        def due(conn: sqlite3.Connection) -> bool:
            found = conn.execute(
                "SELECT 1 FROM webhook_deliveries WHERE status = 'pending' AND next_at <= ? LIMIT 1", (n,)
            ).fetchone()
            return found is not None

        if limit <= 0 or not await self._store.engine.read(due):  # a read, so that an idle poll writes nothing
            return []

        def run(conn: sqlite3.Connection) -> list[Claimed]:
            rows = conn.execute(
                f"UPDATE webhook_deliveries SET attempts = attempts + 1, next_at = ? WHERE id IN (SELECT id FROM "
                "webhook_deliveries WHERE status = 'pending' AND next_at <= ? ORDER BY next_at, id LIMIT ?) "
                f"RETURNING {DELIVERY_COLUMNS}",
                (n + int(lease * 1_000_000), n, limit),
            ).fetchall()
            deliveries = sorted((delivery_from_row(row, from_micros) for row in rows), key=_oldest)
            return [Claimed(d, _secret_of(conn, d)) for d in deliveries]

        return await self._store.engine.write(run)

    async def record(self, results: Sequence[Result]) -> list[bool]:
        if not results:
            return []
        rows = [
            (
                r.status.value, None if r.next_at is None else to_micros(r.next_at), r.status_code, clean(r.error),
                to_micros(r.at), r.status.value, to_micros(r.at), r.ref.id, r.ref.attempt,
            )
            for r in results
        ]  # fmt: skip

        def run(conn: sqlite3.Connection) -> list[bool]:
            return [conn.execute(_RECORD, row).rowcount == 1 for row in rows]

        return await self._store.engine.write(run)

    async def release(self, refs: Sequence[DeliveryRef]) -> int:
        if not refs:
            return 0
        n = to_micros(self._store.clock.now())

        def run(conn: sqlite3.Connection) -> int:
            return sum(
                conn.execute(
                    "UPDATE webhook_deliveries SET attempts = attempts - 1, next_at = ? "
                    "WHERE id = ? AND attempts = ? AND status = 'pending'",
                    (n, ref.id, ref.attempt),
                ).rowcount
                for ref in refs
            )

        return await self._store.engine.write(run)

    async def deliveries(self, query: DeliveryQuery) -> DeliveryPage:
        where, params = delivery_listing(query, "?", to_micros)
        sql = f"SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries {where}"

        def run(conn: sqlite3.Connection) -> list[Delivery]:
            return [delivery_from_row(row, from_micros) for row in conn.execute(sql, params)]

        return delivery_page(await self._store.engine.read(run), query.limit)


_MARKS = ", ".join("?" * 7)


def _names(values: tuple[str, ...] | None) -> str | None:
    return None if values is None else orjson.dumps(list(values)).decode()


def _oldest(delivery: Delivery) -> tuple[object, str]:
    return delivery.created_at, delivery.id


def _secret_of(conn: sqlite3.Connection, delivery: Delivery) -> str | None:
    if delivery.subscription_id is None:
        row = conn.execute("SELECT secret FROM webhook_secrets WHERE workspace = ?", (delivery.workspace,)).fetchone()
    else:
        row = conn.execute(
            "SELECT secret FROM webhook_subscriptions WHERE id = ?", (delivery.subscription_id,)
        ).fetchone()
    return None if row is None else str(row[0])
