"""The ``jobhouse`` client commands (``jobs``, ``search``, ``sources``): the HTTP API from a shell.

They speak to a server only through the SDK (`jobhouse.client`), exactly as any other program
would, so they work against a jobhouse anywhere: ``--url`` and ``--key`` (or ``JOBHOUSE_URL`` and
``JOBHOUSE_KEY``) say which. One exception: ``jobs get ID --traceback`` is an operator's command
that reads the job from the store itself (the API never sends a traceback a kind did not opt
into). Tables and live progress are for people; ``--json`` prints one JSON document on stdout and
nothing else, for scripts.

Exit codes: 0 success (a waited-for job completed); 1 the job failed; 2 it was cancelled (also
click's code for a bad command line); 3 the wait timed out with the job still queued or running;
4 the server refused the request (the message names its status and code); 5 the server could not
be reached.

The SDK and rich load when a client command runs, not when the ``jobhouse`` command starts: the
server and worker commands need neither.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from itertools import islice
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from jobhouse.client import Client, Job, JobChange

__all__ = ["register"]

T = TypeVar("T")
EXIT = {"completed": 0, "failed": 1, "cancelled": 2}
TIMED_OUT, REFUSED, UNREACHABLE = 3, 4, 5

Url = Annotated[
    str | None, typer.Option("--url", envvar="JOBHOUSE_URL", help="The server (default http://127.0.0.1:8000)")
]
Key = Annotated[str | None, typer.Option("--key", envvar="JOBHOUSE_KEY", help="An API key", show_envvar=True)]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON on stdout instead of a table")]
JobId = Annotated[str, typer.Argument(help="The job's id")]
Timeout = Annotated[float | None, typer.Option("--timeout", help="Give up waiting after this many seconds (exit 3)")]

jobs = typer.Typer(
    help="Create, list, watch, cancel, retry and delete jobs (the workspace surface).", no_args_is_help=True
)
sources = typer.Typer(help="List and sync the candidate sources.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the client commands to the ``jobhouse`` command."""
    app.add_typer(jobs, name="jobs")
    app.add_typer(sources, name="sources")
    app.command("search")(search)


# -- jobs --------------------------------------------------------------------------------------


@jobs.command("list")
def jobs_list(
    url: Url = None,
    key: Key = None,
    status: Annotated[str | None, typer.Option(help="queued, running, completed, failed or cancelled")] = None,
    type: Annotated[str | None, typer.Option("--type", help="Only jobs of this kind")] = None,
    competitor_id: Annotated[str | None, typer.Option("--competitor-id", help="Only jobs with this subject")] = None,
    limit: Annotated[int, typer.Option(help="Show at most this many, newest first (0: all)", min=0)] = 50,
    as_json: AsJson = False,
) -> None:
    """List the workspace's jobs, newest first."""
    from rich.console import Console
    from rich.table import Column, Table

    with _client(url, key) as client:
        listed = client.jobs.list(
            status=status, type=type, competitor_id=competitor_id, page_size=min(limit or 500, 500)
        )
        found = _call(lambda: list(islice(listed, limit or None)))
    if as_json:
        _print_json([_wire(job) for job in found])
        return
    # A priority column only when a listed job has one of its own; a job queued for a later time says when.
    prioritized = any(job.priority for job in found)
    headers = ["type", "status", "priority", "progress", "step", "created"]
    if not prioritized:
        headers.remove("priority")
    table = Table(Column("id", no_wrap=True, min_width=36), *headers)  # an id is never cut
    now = datetime.now(UTC)
    for job in found:
        status = _status(job)
        if job.scheduled_at is not None and job.status == "queued":
            status += f" ({_until(job.scheduled_at, now)})"
        created = job.created_at.strftime("%Y-%m-%d %H:%M:%S")
        row = [job.id, job.type, status, str(job.priority), f"{job.progress}%", job.current_step or "", created]
        if not prioritized:
            del row[3]
        table.add_row(*row)
    Console().print(table)


@jobs.command("get")
def jobs_get(
    id: JobId,
    url: Url = None,
    key: Key = None,
    as_json: AsJson = False,
    traceback: Annotated[
        bool,
        typer.Option(
            "--traceback",
            help="Read the job from the store, on the machine that holds it (not from a server), and show"
            " each failed attempt's traceback",
        ),
    ] = False,
    database: Annotated[
        str | None,
        typer.Option("--database", "-d", help="With --traceback: the store to read [env JOBHOUSE_DATABASE_URL]"),
    ] = None,
    data_dir: Annotated[
        str | None,
        typer.Option("--data-dir", help="With --traceback: the data directory [env JOBHOUSE_DATA_DIR]"),
    ] = None,
) -> None:
    """Show one job; with --traceback, from the store, with every failed attempt's traceback."""
    if traceback:
        _show_stored(id, database, data_dir, as_json)
        return
    with _client(url, key) as client:
        job = _call(lambda: client.jobs.get(id))
    _show(job, as_json)


@jobs.command("create")
def jobs_create(
    type: Annotated[str, typer.Argument(help="The kind of job")],
    url: Url = None,
    key: Key = None,
    input: Annotated[str | None, typer.Option("--input", help="The input, a JSON object")] = None,
    metadata: Annotated[str | None, typer.Option("--metadata", help="Metadata, a JSON object")] = None,
    competitor_id: Annotated[str | None, typer.Option("--competitor-id", help="The job's subject")] = None,
    title: Annotated[str | None, typer.Option("--title", help="Display title (default: the kind's)")] = None,
    idempotency_key: Annotated[str | None, typer.Option("--idempotency-key", help="Default: a new UUID")] = None,
    delay: Annotated[
        float | None, typer.Option("--delay", help="Start no sooner than this many seconds from now", min=0)
    ] = None,
    at: Annotated[
        str | None,
        typer.Option("--at", help="Start no earlier than this time, ISO 8601 with a UTC offset: 2030-01-01T09:00:00Z"),
    ] = None,
    priority: Annotated[
        int | None, typer.Option("--priority", help="-10 to 10, higher first (default: the kind's)", min=-10, max=10)
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the job until it ends; exit with its outcome")] = False,
    timeout: Timeout = None,
    as_json: AsJson = False,
) -> None:
    """Create a job; with --wait, follow it live to its end."""
    body, extra = _object("--input", input), _object("--metadata", metadata)
    run_at = _time("--at", at)
    if run_at is not None and delay is not None:
        raise typer.BadParameter("give --at or --delay, not both", param_hint="--at")
    with _client(url, key) as client:
        job = _call(
            lambda: client.jobs.create(
                type,
                input=body,
                metadata=extra,
                competitor_id=competitor_id,
                display_title=title,
                idempotency_key=idempotency_key,
                run_at=run_at,
                delay=delay,
                priority=priority,
            )
        )
    if not wait:
        if as_json:
            _print_json(_wire(job))
        else:
            print(job.id)
        return
    _wait(url, key, job.id, timeout, as_json)


@jobs.command("wait")
def jobs_wait(
    id: JobId,
    url: Url = None,
    key: Key = None,
    timeout: Timeout = None,
    as_json: AsJson = False,
) -> None:
    """Follow a job live until it ends: exit 0 completed, 1 failed, 2 cancelled, 3 timed out."""
    _wait(url, key, id, timeout, as_json)


@jobs.command("cancel")
def jobs_cancel(id: JobId, url: Url = None, key: Key = None, as_json: AsJson = False) -> None:
    """Cancel a queued or running job."""
    with _client(url, key) as client:
        job = _call(lambda: client.jobs.cancel(id))
    _show(job, as_json)


@jobs.command("retry")
def jobs_retry(id: JobId, url: Url = None, key: Key = None, as_json: AsJson = False) -> None:
    """Run a failed or cancelled job again, as its next attempt (its error history kept)."""
    with _client(url, key) as client:
        job = _call(lambda: client.jobs.retry(id))
    _show(job, as_json)


@jobs.command("delete")
def jobs_delete(id: JobId, url: Url = None, key: Key = None, as_json: AsJson = False) -> None:
    """Delete a finished job, with its events and webhook deliveries."""
    with _client(url, key) as client:
        _call(lambda: client.jobs.delete(id))
    if as_json:
        _print_json({"id": id, "deleted": True})
    else:
        print(f"deleted {id}")


# -- search and sources ------------------------------------------------------------------------


def search(
    app: Annotated[str, typer.Argument(help="The application to look for, e.g. firefox")],
    url: Url = None,
    key: Key = None,
    os: Annotated[str | None, typer.Option("--os", help="linux, macos or windows")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="gui or cli")] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="At most this many (1-100, default 25)")] = None,
    version: Annotated[str | None, typer.Option("--version", help="Leading version components, e.g. 2.10")] = None,
    source: Annotated[str | None, typer.Option("--source", help="Only what this source knows")] = None,
    as_json: AsJson = False,
) -> None:
    """Search the candidates for an application, best first."""
    from rich.console import Console
    from rich.table import Table

    with _client(url, key) as client:
        found = _call(lambda: client.run.search(app, os=os, kind=kind, limit=limit, version=version, source=source))
    if as_json:
        _print_json([candidate.model_dump(mode="json") for candidate in found])
        return
    table = Table("#", "app", "name", "os", "kind", "version", "score", "match", "installed", "launch or install")
    for rank, c in enumerate(found, 1):
        how = c.launch or c.install or ""
        table.add_row(
            str(rank),
            c.app,
            c.name,
            c.os,
            c.kind,
            c.version or "",
            f"{c.score:.2f}",
            c.match,
            "yes" if c.installed else "",
            how,
        )
    Console().print(table)


@sources.command("list")
def sources_list(url: Url = None, key: Key = None, as_json: AsJson = False) -> None:
    """List the candidate sources and their last sync."""
    from rich.console import Console
    from rich.table import Table

    with _client(url, key) as client:
        found = _call(client.sources.list)
    if as_json:
        _print_json([source.model_dump(mode="json") for source in found])
        return
    table = Table("id", "title", "synced", "candidates", "last error")
    for s in found:
        synced = s.synced_at.strftime("%Y-%m-%d %H:%M:%S") if s.synced_at else "never"
        table.add_row(s.id, s.title, synced, str(s.candidate_count), s.last_error or "")
    Console().print(table)


@sources.command("sync")
def sources_sync(
    source_id: Annotated[str | None, typer.Argument(help="One source (default: all)")] = None,
    url: Url = None,
    key: Key = None,
    force: Annotated[bool, typer.Option("--force", help="Read sources again even if unchanged")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the sync until it ends; exit with its outcome")] = False,
    timeout: Timeout = None,
    as_json: AsJson = False,
) -> None:
    """Queue a sync of every source, or of one."""
    with _client(url, key) as client:
        job = _call(lambda: client.sources.sync(source_id, force=force))
    if wait:
        _wait(url, key, job.job_id, timeout, as_json)
    elif as_json:
        _print_json(job.model_dump(mode="json", exclude_none=True))
    else:
        print(job.job_id)


# -- waiting, with a live display --------------------------------------------------------------


def _wait(url: str | None, key: str | None, id: str, timeout: float | None, as_json: bool) -> NoReturn:
    """Follow job `id` until it ends or `timeout` passes, then exit with its outcome."""
    if as_json:
        with _client(url, key) as client:
            job = _call(lambda: client.jobs.wait(id, timeout))
        _print_json(_wire(job))
        raise typer.Exit(EXIT[job.outcome] if job.outcome else TIMED_OUT)
    from rich.console import Console

    console = Console()
    job = _call(lambda: asyncio.run(_follow(url, key, id, timeout, console)))
    if job.outcome is None:
        console.print(f"timed out after {timeout:g} s: the job is still {job.status}")
        raise typer.Exit(TIMED_OUT)
    console.print(_ending(job))
    raise typer.Exit(EXIT[job.outcome])


async def _follow(url: str | None, key: str | None, id: str, timeout: float | None, console: Console) -> Job:
    """Redraw the job on every event of its stream (on a terminal; elsewhere, draw it once at the
    end); the job as it is at the end. A server without event streams is long-polled instead,
    a second at a time."""
    from rich.live import Live

    from jobhouse.client import AsyncClient, JobNotFound, NotFound

    async with AsyncClient(url, key) as client:
        job = await client.jobs.get(id)
        view = View(job)
        live = Live(view.render(), console=console, auto_refresh=False) if console.is_terminal else None
        with live or contextlib.nullcontext():

            def show(state: Job | JobChange) -> None:
                view.state = state
                if live is not None:
                    live.update(view.render(), refresh=True)

            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    try:
                        async for event in client.jobs.events(id):
                            show(event.job)
                    except NotFound as exc:  # a server without event streams: long-poll instead
                        if isinstance(exc, JobNotFound):
                            raise
                        while not (job := await client.jobs.wait(id, timeout=1)).terminal:
                            show(job)
            job = await client.jobs.get(id)
            show(job)
        if live is None:
            console.print(view.render())
        return job


class View:
    """What the live display shows of a job: title, status and attempt, a bar, and each step."""

    MARKS = {"pending": "·", "running": "▶", "completed": "✓", "failed": "✗"}

    def __init__(self, job: Job) -> None:
        self.job = job
        #: The job as the last event showed it; None until the first arrives. The stream replays
        #: the job's history first, so the display never jumps ahead and back.
        self.state: Job | JobChange | None = None

    def render(self) -> RenderableType:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        state, job = self.state, self.job
        head = Text.assemble((job.display_title, "bold"), f"  {job.type}  {job.id}")
        if state is None:
            return Group(head, Text("connecting…", style="dim"))
        line = Text(f"{_status(state)} · attempt {state.attempt} of {job.max_attempts}")
        if state.status == "queued" and state.attempt == 0 and job.scheduled_at is not None:
            line.append(f" · starts at {job.scheduled_at.isoformat()}")  # created for later (--at, --delay)
        bar = Table.grid(padding=(0, 1))
        bar.add_row(ProgressBar(total=100, completed=state.progress, width=40), f"{state.progress:3d}%")
        steps = Table.grid(padding=(0, 1))
        for step in state.steps:
            steps.add_row(f" {self.MARKS.get(step.status, '?')}", step.name, Text(step.status, style="dim"))
        return Group(head, line, bar, steps)


def _ending(job: Job) -> str:
    if job.outcome == "completed":
        return f"completed: {job.type} {job.id}"
    return f"{job.outcome}: {job.error.message if job.error else ''}".rstrip(": ")


# -- helpers -------------------------------------------------------------------------------------


@contextlib.contextmanager
def _client(url: str | None, key: str | None) -> Iterator[Client]:
    from jobhouse.client import Client

    with Client(url, key) as client:
        yield client


def _call(action: Callable[[], T]) -> T:
    """Run `action`; an SDK error becomes one line on stderr and the exit code for its kind."""
    from jobhouse.client import ApiError, ConnectionFailed

    try:
        return action()
    except ConnectionFailed as exc:
        _fail(str(exc), UNREACHABLE)
    except ApiError as exc:
        _fail(str(exc), REFUSED)


def _fail(message: str, code: int) -> NoReturn:
    print(f"jobhouse: {message}", file=sys.stderr)
    raise typer.Exit(code)


def _object(option: str, text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint=option) from None
    if not isinstance(value, dict):
        raise typer.BadParameter("must be a JSON object", param_hint=option)
    return value


def _until(at: datetime, now: datetime) -> str:
    """How long until `at`, in its largest unit: ``in 45s``, ``in 59m``, ``in 3h``, ``in 2d``; ``due`` once past."""
    seconds = int((at - now).total_seconds())
    if seconds <= 0:
        return "due"
    if seconds < 120:
        return f"in {seconds}s"
    if seconds < 2 * 3600:
        return f"in {seconds // 60}m"
    if seconds < 2 * 86400:
        return f"in {seconds // 3600}h"
    return f"in {seconds // 86400}d"


def _time(option: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter("not an ISO 8601 time, e.g. 2030-01-01T09:00:00Z", param_hint=option) from None
    if value.utcoffset() is None:
        raise typer.BadParameter("needs a UTC offset, e.g. 2030-01-01T09:00:00Z or +02:00", param_hint=option)
    return value


def _status(job: Job | JobChange) -> str:
    return "cancelled" if job.cancelled else job.status


def _wire(job: Job) -> dict[str, Any]:
    """A job as the server sent it (camelCase)."""
    return job.model_dump(mode="json", by_alias=True)


def _show(job: Job, as_json: bool) -> None:
    if as_json:
        _print_json(_wire(job))
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table.grid(padding=(0, 2))
    rows = {
        "id": job.id,
        "type": job.type,
        "title": job.display_title,
        "status": _status(job),
        "scheduled": job.scheduled_at.isoformat() if job.scheduled_at else "",
        "priority": str(job.priority),
        "progress": f"{job.progress}%",
        "step": job.current_step or "",
        "attempt": f"{job.attempt} of {job.max_attempts}",
        "subject": job.competitor_id or "",
        "created": job.created_at.isoformat(),
        "error": job.error.message if job.error else "",
        "result": json.dumps(job.result) if job.result is not None else "",
    }
    for name, value in rows.items():
        table.add_row(Text(name, style="bold"), value)
    for step in job.steps:
        table.add_row("", f"{View.MARKS.get(step.status, '?')} {step.name} ({step.status})")
    Console().print(table)


def _show_stored(id: str, database: str | None, data_dir: str | None, as_json: bool) -> None:
    """``jobs get ID --traceback``: the job as the store keeps it (any workspace's), each failed
    attempt's type, message and traceback included."""
    import orjson

    from jobhouse.api.models import json_fields
    from jobhouse.api.views import workspace_job
    from jobhouse.cli import _with_store
    from jobhouse.client import Job
    from jobhouse.disclosure import OPERATOR
    from jobhouse.ids import parse_id
    from jobhouse.store.base import Store

    job_id = parse_id(id.strip())
    if job_id is None:
        _fail(f"Not a job id: {id!r}", REFUSED)

    async def read(store: Store) -> None:
        job = await store.get(job_id)
        if job is None:
            _fail(f"No job {job_id} in the store", REFUSED)
        body = orjson.loads(orjson.dumps(workspace_job(job, OPERATOR), default=json_fields))
        if as_json:
            _print_json(body)
            return
        _show(Job.model_validate(body), as_json=False)
        if not body["errors"]:
            print("no failed attempts")
        for error in body["errors"]:
            print(f"\nattempt {error['attempt']} ({error['at']}): {error['type']}: {error['message']}")
            print(error.get("traceback", "(no traceback: jobhouse ended this attempt, not the handler)"))

    _with_store(database, data_dir, read, migrate=False)


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2) + "\n")
