"""The ``jobhouse`` command: run servers and workers, migrate, and manage API keys; the client
commands (``jobs``, ``search``, ``sources``) live in `jobhouse.cli_client`."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from jobhouse.cli_client import register as register_client_commands
from jobhouse.errors import JobhouseError

if TYPE_CHECKING:
    # The settings, the server, the store and the search index load only for the commands that use
    # them (the SDK and rich only for the client commands and tables), so that each command starts
    # quickly.
    from jobhouse.runtime import Runtime
    from jobhouse.settings import Settings
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
        help="sqlite:///path.db or postgresql://... (default: jobhouse.db in the data directory)"
        " [env JOBHOUSE_DATABASE_URL]",
    ),
]
DataDir = Annotated[
    str | None,
    typer.Option(
        "--data-dir",
        help="Where jobhouse keeps its files (default $XDG_DATA_HOME/jobhouse, else ~/.local/share/jobhouse)"
        " [env JOBHOUSE_DATA_DIR]",
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
    from jobhouse.settings import Settings, SettingsError

    try:
        settings = Settings.from_env(os.environ, **overrides)
    except SettingsError as exc:
        _fail(str(exc))
    from jobhouse.logs import configure

    configure(settings)
    return settings


@app.command("serve")
def serve_command(
    app_: Apps = None,
    database: Database = None,
    data_dir: DataDir = None,
    host: Annotated[str | None, typer.Option(help="Interface to listen on [env JOBHOUSE_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [env JOBHOUSE_PORT]")] = None,
    concurrency: Concurrency = None,
    workers: Annotated[bool, typer.Option("--workers/--no-workers", help="Run embedded workers")] = True,
) -> None:
    """Serve the HTTP API, with embedded workers unless --no-workers."""
    from jobhouse.server import serve

    settings = _settings(
        apps=tuple(app_ or ()), database=database, data_dir=data_dir, host=host, port=port, concurrency=concurrency
    )
    _run_process(serve(_runtime(settings), workers=workers))


@app.command("worker")
def worker_command(
    app_: Apps = None,
    database: Database = None,
    data_dir: DataDir = None,
    concurrency: Concurrency = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve /metrics on this port of JOBHOUSE_HOST [env JOBHOUSE_METRICS_PORT]")
    ] = None,
) -> None:
    """Run workers only (no HTTP), sharing the store with the servers."""
    from jobhouse.server import work

    settings = _settings(
        apps=tuple(app_ or ()),
        database=database,
        data_dir=data_dir,
        concurrency=concurrency,
        metrics_port=metrics_port,
    )
    _run_process(work(_runtime(settings)))


@app.command("migrate")
def migrate_command(database: Database = None, data_dir: DataDir = None) -> None:
    """Bring the store's schema up to date (servers and workers also do this when they start)."""

    async def main(store: Store) -> None:
        applied = await store.migrate()
        print("\n".join(applied) if applied else "Schema is up to date")

    _with_store(database, data_dir, main, migrate=False)


@keys.command("create")
def keys_create(
    workspace: Annotated[str, typer.Option("--workspace", "-w", help="The workspace the key belongs to")],
    label: Annotated[str | None, typer.Option(help="A note to tell keys apart")] = None,
    database: Database = None,
    data_dir: DataDir = None,
) -> None:
    """Create a key and print it (only the key, on stdout). It is not shown again."""

    from jobhouse.keys import create_key

    async def main(store: Store) -> None:
        key, _ = await create_key(store, workspace, label)
        print(key)

    _with_store(database, data_dir, main)


@keys.command("list")
def keys_list(database: Database = None, data_dir: DataDir = None) -> None:
    """List keys (never their secrets)."""

    from rich.console import Console
    from rich.table import Table

    async def main(store: Store) -> None:
        table = Table("key id", "workspace", "label", "created", "revoked")
        for key in await store.keys.all():
            revoked = key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else ""
            table.add_row(key.id, key.workspace, key.label or "", key.created_at.isoformat(timespec="seconds"), revoked)
        Console().print(table)

    _with_store(database, data_dir, main)


@keys.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="The key id shown by 'keys list', or the whole key")],
    database: Database = None,
    data_dir: DataDir = None,
) -> None:
    """Revoke a key: requests with it get 401 from now on."""

    from jobhouse.keys import key_id_of

    key_id = key_id_of(key)
    if key_id is None:  # never print what was given: it may be a mistyped secret
        _fail("give a key id (12 letters and digits, as 'keys list' shows) or a whole key (jh_...)")

    async def main(store: Store) -> None:
        if not await store.keys.revoke(key_id):
            print(f"No active key {key_id}", file=sys.stderr)
            raise typer.Exit(1)
        print(f"Revoked {key_id}")

    _with_store(database, data_dir, main)


def _fail(message: str) -> NoReturn:
    print(f"jobhouse: {message}", file=sys.stderr)
    raise typer.Exit(2)


def _run_process(main: Coroutine[Any, Any, None]) -> None:
    """Run a server or worker until it stops; a store it cannot open stops it with a clear message
    (exit 2), not a traceback."""
    from jobhouse.server import run

    try:
        run(main)
    except JobhouseError as exc:
        _fail(f"cannot start: {exc.message}")


def _runtime(settings: Settings) -> Runtime:
    from jobhouse.runtime import Runtime

    try:
        return Runtime(settings)
    except (ImportError, ValueError, JobhouseError) as exc:
        _fail(f"cannot start: {exc}")


def _with_store(
    database: str | None,
    data_dir: str | None,
    action: Callable[[Store], Awaitable[None]],
    *,
    migrate: bool = True,
) -> None:
    from jobhouse.settings import Settings, SettingsError

    try:
        settings = Settings.from_env(os.environ, database=database, data_dir=data_dir)
    except SettingsError as exc:
        _fail(str(exc))

    from jobhouse.store import open_store

    async def main() -> None:
        if settings.database is None:
            settings.ensure_data_dir()
        store = open_store(settings.store_url(), timeout=settings.store_timeout)
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


# -- backup --------------------------------------------------------------------------------------


@app.command("backup")
def backup_command(
    path: Annotated[
        str, typer.Argument(metavar="PATH", help="The file to write (mode 0600); it must not exist unless --replace")
    ],
    database: Database = None,
    data_dir: DataDir = None,
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite PATH if it exists")] = False,
) -> None:
    """Back up the store to PATH while servers and workers keep running: SQLite's online backup,
    checked with integrity_check; pg_dump (custom format) for PostgreSQL."""
    from pathlib import Path

    from jobhouse.backup import backup
    from jobhouse.settings import Settings, SettingsError

    try:
        settings = Settings.from_env(os.environ, database=database, data_dir=data_dir)
    except SettingsError as exc:
        _fail(str(exc))
    try:
        done = backup(settings.store_url(), Path(path), replace=replace, timeout=settings.store_timeout)
    except JobhouseError as exc:
        print(f"jobhouse: {exc.message}", file=sys.stderr)
        raise typer.Exit(1) from None
    print(done.describe())
