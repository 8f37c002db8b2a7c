"""Backends for jobs, keys and the candidate index, chosen by database URL."""

from __future__ import annotations

from jobhouse.clock import Clock
from jobhouse.errors import ConfigurationError
from jobhouse.store.base import Cursor, JobPage, JobQuery, Store

__all__ = ["Cursor", "JobPage", "JobQuery", "Store", "open_store", "sqlite_path"]


def sqlite_path(url: str) -> str | None:
    """The file of a ``sqlite:///path`` URL (or a bare path); None for other schemes."""
    if url.startswith("sqlite:///"):
        return url.removeprefix("sqlite:///") or None
    if url.startswith("sqlite://"):
        return url.removeprefix("sqlite://") or None
    if "://" not in url:
        return url
    return None


def open_store(url: str, *, clock: Clock | None = None, pool_size: int = 10, timeout: float = 5.0) -> Store:
    """A store for `url` (not yet opened).

    ``sqlite:///jobhouse.db`` (or a bare path) for the embedded store;
    ``postgresql://user@host/db`` (optionally ``?schema=name``, default ``jobhouse``) for the shared one.
    `timeout` is how long an operation waits for the store (a lock, a connection) before it gives
    up with `StoreUnavailable`.
    """
    if url.startswith(("postgres://", "postgresql://")):
        try:
            from jobhouse.store.postgres import PostgresStore
        except ImportError as exc:
            raise ConfigurationError(f"A PostgreSQL store needs psycopg: install jobhouse[postgres] ({exc})") from None

        return PostgresStore(url, clock=clock, pool_size=pool_size, connect_timeout=timeout)
    path = sqlite_path(url)
    if path is not None:
        from jobhouse.store.sqlite import SqliteStore
        from jobhouse.store.sqlite_engine import SqliteOptions

        return SqliteStore(path, clock=clock, options=SqliteOptions(busy_timeout=timeout))
    raise ConfigurationError(f"Unsupported database URL {url!r}: use sqlite:///path.db or postgresql://host/db")
