"""Backups of a store, taken while servers and workers keep running.

- **SQLite**: SQLite's online backup (`sqlite3.Connection.backup`) copies the whole file in one
  step, under one read transaction, so the copy is the store as it was at one instant, whatever
  other processes commit meanwhile (WAL lets them write while it reads). The copy is written to a
  temporary file created with mode 0600, switched from WAL to a self-contained rollback-journal
  file, checked with ``PRAGMA integrity_check``, flushed to disk, and only then given its name.
- **PostgreSQL**: ``pg_dump`` of the store's schema, in its custom format (``pg_restore`` reads
  it), written the same way (0600, named only once ``pg_restore --list`` reads it back). Without
  ``pg_dump`` on ``PATH`` the backup is refused with the command to run instead. The password, if
  the URL has one, reaches ``pg_dump`` through its environment, never its command line.

An existing file is never overwritten unless asked (`replace`). Everything that goes wrong raises
`BackupFailed` and leaves no partial file behind.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from jobhouse.errors import BackupFailed
from jobhouse.store import sqlite_path

#: The files SQLite keeps beside a database in WAL mode.
_BESIDE = ("-wal", "-shm")
#: Writes the backup into the file it is given; returns (method, jobs, schema version).
_Writer = Callable[[Path], tuple[str, int | None, int | None]]


@dataclass(frozen=True, slots=True)
class Backup:
    """What a backup wrote: where, how (``sqlite`` or ``pg_dump``), how big, and how long it took.
    `jobs` and `schema_version` are read from the copy (SQLite only; None for a dump)."""

    path: Path
    method: str
    size: int
    seconds: float
    jobs: int | None = None
    schema_version: int | None = None

    def describe(self) -> str:
        """One line for people: ``<path>: 1,204 jobs, schema 7, 1.4 MB, integrity ok (sqlite, 0.08 s)``."""
        parts = [] if self.jobs is None else [f"{self.jobs:,} jobs"]
        if self.schema_version is not None:
            parts.append(f"schema {self.schema_version}")
        parts.append(f"{self.size / 1e6:.1f} MB")
        parts.append("integrity ok" if self.method == "sqlite" else "archive reads back")
        return f"{self.path}: {', '.join(parts)} ({self.method}, {self.seconds:.2f} s)"


def backup(url: str, target: Path, *, replace: bool = False, timeout: float = 5.0) -> Backup:
    """Back up the store at `url` to the file `target` (see the module's docstring).

    `timeout` is how long the SQLite backup waits for a lock (as `store_timeout` does elsewhere).
    """
    if url.startswith(("postgres://", "postgresql://")):
        return _with_target(target, replace, lambda tmp: _pg_dump(url, tmp))
    path = sqlite_path(url)
    if path is None:
        raise BackupFailed(f"Cannot back up {url!r}: use a sqlite:/// or postgresql:// URL")
    source = Path(path).expanduser()
    if not source.is_file():
        raise BackupFailed(f"No SQLite store at {source}")
    if target.expanduser().resolve() in {source.resolve(), *(Path(f"{source.resolve()}{end}") for end in _BESIDE)}:
        raise BackupFailed(f"{target} is the store itself: write the backup elsewhere")
    return _with_target(target, replace, lambda tmp: _sqlite_backup(source, tmp, timeout))


def _with_target(target: Path, replace: bool, write: _Writer) -> Backup:
    """Run `write` into a new 0600 file beside `target`, then give it `target`'s name."""
    target = target.expanduser().absolute()
    if target.is_dir():
        raise BackupFailed(f"{target} is a directory: give the backup file's path")
    if not target.parent.is_dir():
        raise BackupFailed(f"No directory {target.parent}")
    if target.exists() and not replace:
        raise BackupFailed(f"{target} already exists: choose another path, or replace it")
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.partial")
    started = time.monotonic()
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise BackupFailed(f"Cannot write in {target.parent}: {exc.strerror}") from None
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.close(fd)
        method, jobs, version = write(tmp)
        _fsync(tmp)
        if replace:
            os.replace(tmp, target)
        else:
            _name_once(tmp, target)
        _fsync(target.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return Backup(target, method, target.stat().st_size, time.monotonic() - started, jobs, version)


def _name_once(tmp: Path, target: Path) -> None:
    """Give `tmp` the name `target` unless that name was taken meanwhile: never overwrite."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise BackupFailed(f"{target} already exists: choose another path, or replace it") from None
    except OSError:  # a file system without hard links: check, then rename
        if target.exists():
            raise BackupFailed(f"{target} already exists: choose another path, or replace it") from None
        os.rename(tmp, target)


def _sqlite_backup(source: Path, tmp: Path, timeout: float) -> tuple[str, int | None, int | None]:
    try:
        # mode=rw: never create the store if it vanished; query_only: this connection writes nothing.
        src = sqlite3.connect(f"{source.absolute().as_uri()}?mode=rw", uri=True, timeout=timeout)
    except sqlite3.Error as exc:
        raise BackupFailed(f"Cannot open {source}: {exc}") from None
    try:
        src.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        src.execute("PRAGMA query_only = 1")
        dst = sqlite3.connect(tmp, isolation_level=None)
        try:
            src.backup(dst)  # one step (pages=-1): one read transaction, one instant
            dst.execute("PRAGMA journal_mode = DELETE")  # one self-contained file, no -wal beside it
            problems = [row[0] for row in dst.execute("PRAGMA integrity_check")]
            if problems != ["ok"]:
                raise BackupFailed(f"The copy failed its integrity check: {'; '.join(problems[:5])}")
            jobs = _scalar(dst, "SELECT count(*) FROM jobs")
            version = _scalar(dst, "SELECT max(version) FROM jobhouse_migrations")
        finally:
            dst.close()
    except sqlite3.Error as exc:
        raise BackupFailed(f"SQLite backup of {source} failed: {exc}") from None
    finally:
        src.close()
    return "sqlite", jobs, version


def _scalar(conn: sqlite3.Connection, sql: str) -> int | None:
    try:
        row = conn.execute(sql).fetchone()
    except sqlite3.OperationalError:  # an empty or foreign file: no such table
        return None
    return int(row[0]) if row and row[0] is not None else None


def dump_command(url: str) -> tuple[list[str], dict[str, str]]:
    """The ``pg_dump`` arguments (after the program) and extra environment that dump the store at `url`:
    its schema only, in the custom format; a password in the URL goes in ``PGPASSWORD``."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from jobhouse.store.postgres import parse_url

    conninfo, schema = parse_url(url)
    params = conninfo_to_dict(conninfo)
    password = params.pop("password", None)
    env = {"PGPASSWORD": str(password)} if password is not None else {}
    return ["--format=custom", f"--schema={schema}", f"--dbname={make_conninfo('', **params)}"], env


def _pg_dump(url: str, tmp: Path) -> tuple[str, int | None, int | None]:
    pg_dump, pg_restore = shutil.which("pg_dump"), shutil.which("pg_restore")
    try:
        args, env = dump_command(url)
    except ImportError:
        raise BackupFailed("A PostgreSQL store needs psycopg: install jobhouse[postgres]") from None
    if pg_dump is None or pg_restore is None:
        schema = next(arg for arg in args if arg.startswith("--schema="))
        raise BackupFailed(
            "pg_dump and pg_restore are not on PATH (install PostgreSQL's client programs); or dump the store "
            f"yourself: pg_dump --format=custom {schema} --file=FILE DATABASE_URL"
        )
    environ = {**os.environ, **env}
    _run([pg_dump, *args, f"--file={tmp}"], environ, "pg_dump")
    _run([pg_restore, "--list", str(tmp)], environ, "pg_restore --list")
    return "pg_dump", None, None


def _run(argv: list[str], environ: dict[str, str], name: str) -> None:
    done = subprocess.run(argv, env=environ, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        detail = done.stderr.strip() or f"exit status {done.returncode}"
        raise BackupFailed(f"{name} failed: {detail}")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
