"""The ``jobhouse`` command: run servers and workers, migrate, and manage API keys; the client
commands (``jobs``, ``search``, ``sources``) live in `jobhouse.cli_client`."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from jobhouse.cli_client import register as register_client_commands
from jobhouse.errors import JobhouseError
from jobhouse.settings import Settings, SettingsError

if TYPE_CHECKING:
    # The server, the store and the search index load only for the commands that use them, so that
    # the client commands (`jobhouse jobs ...`) start quickly.
    from jobhouse.runtime import Runtime
    from jobhouse.store.base import Store

app = typer.Typer(help="jobhouse: a self-hosted Jobs API for long-running operations.", no_args_is_help=True)
keys = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(keys, name="keys")
register_client_commands(app)

Database = Annotated[
    str | None,
    typer.Option(
        "--database",
        "-d",
        help="sqlite:///path.db (default sqlite:///jobhouse.db) [env JOBHOUSE_DATABASE_URL]",
    ),
]
Apps = Annotated[
    list[str] | None,
    typer.Option("--app", "-a", help="Your kinds, as module:registry (repeatable) [env JOBHOUSE_APP]"),
]
Concurrency = Annotated[
    int | None,
    typer.Option("--concurrency", "-c", help="Jobs run at once by this process [env JOBHOUSE_CONCURRENCY]"),
]


def _settings(**overrides: object) -> Settings:
    """The settings from the environment and these flags; a bad one stops the command (exit 2)."""
    try:
        settings = Settings.from_env(os.environ, **overrides)
    except SettingsError as exc:
        _fail(str(exc))
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return settings


@app.command("serve")
def serve_command(
    app_: Apps = None,
    database: Database = None,
    host: Annotated[str | None, typer.Option(help="Interface to listen on [env JOBHOUSE_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [env JOBHOUSE_PORT]")] = None,
    concurrency: Concurrency = None,
    workers: Annotated[bool, typer.Option("--workers/--no-workers", help="Run embedded workers")] = True,
) -> None:
    """Serve the HTTP API, with embedded workers unless --no-workers."""
    from jobhouse.server import run, serve

    settings = _settings(apps=tuple(app_ or ()), database=database, host=host, port=port, concurrency=concurrency)
    run(serve(_runtime(settings), workers=workers))


@app.command("worker")
def worker_command(app_: Apps = None, database: Database = None, concurrency: Concurrency = None) -> None:
    """Run workers only (no HTTP), sharing the store with the servers."""
    from jobhouse.server import run, work

    settings = _settings(apps=tuple(app_ or ()), database=database, concurrency=concurrency)
    run(work(_runtime(settings)))


@app.command("migrate")
def migrate_command(database: Database = None) -> None:
    """Bring the store's schema up to date (servers and workers also do this when they start)."""

    async def main(store: Store) -> None:
        applied = await store.migrate()
        print("\n".join(applied) if applied else "Schema is up to date")

    _with_store(database, main, migrate=False)


@keys.command("create")
def keys_create(
    workspace: Annotated[str, typer.Option("--workspace", "-w", help="The workspace the key belongs to")],
    label: Annotated[str | None, typer.Option(help="A note to tell keys apart")] = None,
    database: Database = None,
) -> None:
    """Create a key and print it (only the key, on stdout). It is not shown again."""

    from jobhouse.keys import create_key

    async def main(store: Store) -> None:
        key, _ = await create_key(store, workspace, label)
        print(key)

    _with_store(database, main)


@keys.command("list")
def keys_list(database: Database = None) -> None:
    """List keys (never their secrets)."""

    async def main(store: Store) -> None:
        table = Table("key id", "workspace", "label", "created", "revoked")
        for key in await store.keys.all():
            revoked = key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else ""
            table.add_row(key.id, key.workspace, key.label or "", key.created_at.isoformat(timespec="seconds"), revoked)
        Console().print(table)

    _with_store(database, main)


@keys.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key id shown by 'keys list'")], database: Database = None
) -> None:
    """Revoke a key: requests with it get 401 from now on."""

    async def main(store: Store) -> None:
        if not await store.keys.revoke(key_id):
            print(f"No active key {key_id!r}", file=sys.stderr)
            raise typer.Exit(1)
        print(f"Revoked {key_id}")

    _with_store(database, main)


def _fail(message: str) -> NoReturn:
    print(f"jobhouse: {message}", file=sys.stderr)
    raise typer.Exit(2)


def _runtime(settings: Settings) -> Runtime:
    from jobhouse.runtime import Runtime

    try:
        return Runtime(settings)
    except (ImportError, ValueError, JobhouseError) as exc:
        _fail(f"cannot start: {exc}")


def _with_store(database: str | None, action: Callable[[Store], Awaitable[None]], *, migrate: bool = True) -> None:
    try:
        settings = Settings.from_env(os.environ, database=database)
    except SettingsError as exc:
        _fail(str(exc))

    from jobhouse.store import open_store

    async def main() -> None:
        store = open_store(settings.database, timeout=settings.store_timeout)
        await store.open(migrate=migrate)
        try:
            await action(store)
        finally:
            await store.close()

    try:
        asyncio.run(main())
    except JobhouseError as exc:
        _fail(exc.message)


def main() -> None:
    app()
