"""What both backends do alike with webhook rows: the columns, rows back into values, the
newest-first listing of deliveries, and the statements of a sender's writes. Only the dialect
differs (SQLite: JSON text and microseconds; PostgreSQL: arrays, uuids and aware datetimes)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from jobhouse.store.base import Cursor, DeliveryPage, DeliveryQuery
from jobhouse.store.rows import newest_first
from jobhouse.webhooks import Delivery, DeliveryStatus, Subscription

#: The columns every delivery read selects, in the order `delivery_from_row` reads them.
DELIVERY_COLUMNS = (
    "id, job_id, workspace, subscription_id, url, event, status, attempts, next_at, created_at, "
    "last_status_code, last_error, last_attempt_at, delivered_at"
)
#: The same, for an UPDATE ... RETURNING on a table aliased ``d``.
D_COLUMNS = ", ".join(f"d.{column.strip()}" for column in DELIVERY_COLUMNS.split(","))
SUBSCRIPTION_COLUMNS = "id, workspace, url, events, types, created_at"
#: What a pending delivery of a deleted subscription ends with.
UNSUBSCRIBED = "the webhook was deleted"


def delivery_from_row(row: Sequence[Any], time: Callable[[Any], datetime]) -> Delivery:
    return Delivery(
        id=str(row[0]),
        job_id=str(row[1]),
        workspace=row[2],
        subscription_id=None if row[3] is None else str(row[3]),
        url=row[4],
        event=row[5],
        status=DeliveryStatus(row[6]),
        attempts=row[7],
        next_at=time(row[8]),
        created_at=time(row[9]),
        last_status_code=row[10],
        last_error=row[11],
        last_attempt_at=None if row[12] is None else time(row[12]),
        delivered_at=None if row[13] is None else time(row[13]),
    )


def subscription_from_row(
    row: Sequence[Any], names: Callable[[Any], Any], time: Callable[[Any], datetime]
) -> Subscription:
    """A `Subscription` from `SUBSCRIPTION_COLUMNS`; `names` decodes a list column."""
    return Subscription(
        id=str(row[0]),
        workspace=row[1],
        url=row[2],
        events=None if row[3] is None else tuple(names(row[3])),
        types=None if row[4] is None else tuple(names(row[4])),
        created_at=time(row[5]),
    )


def delivery_listing(
    query: DeliveryQuery, mark: str, time: Callable[[datetime], Any], id_type: str = ""
) -> tuple[str, list[Any]]:
    """The ``WHERE ... ORDER BY ... LIMIT`` of a newest-first listing of deliveries and its parameters
    (one row more than the page, to know whether another follows)."""
    where = [f"workspace = {mark}"]
    params: list[Any] = [query.workspace]
    if query.job_id is not None:
        where.append(f"job_id = {mark}{id_type}")
        params.append(query.job_id)
    if query.subscription_id is not None:
        where.append(f"subscription_id = {mark}{id_type}")
        params.append(query.subscription_id)
    if query.status is not None:
        where.append(f"status = {mark}")
        params.append(query.status.value)
    return newest_first(where, params, query.after, query.limit, mark, time, id_type)


def delivery_page(deliveries: list[Delivery], limit: int) -> DeliveryPage:
    if len(deliveries) > limit:
        deliveries = deliveries[:limit]
        return DeliveryPage(deliveries, Cursor(deliveries[-1].created_at, deliveries[-1].id))
    return DeliveryPage(deliveries, None)


def clean(text: str | None, limit: int = 500) -> str | None:
    """An error message as stored: no NUL (PostgreSQL text cannot hold one), at most `limit` characters."""
    return None if text is None else text.replace("\x00", "")[:limit]
