"""The docs stay true: their example runs, and what they list matches the code.

- ``docs/examples/thumbnails.py`` runs end to end on a real SQLite store, and every Python block
  in ``docs/kinds.md`` is that file or a verbatim excerpt of it;
- every setting, environment variable and CLI option is in ``docs/configuration.md``, with the
  default and the range the ``Settings`` model declares (and enforces);
- every route, error code and status is in ``docs/api.md`` / ``docs/states.md``;
- relative links between the pages lead to files and headings that exist.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any, get_args, get_origin

import annotated_types
import pytest
import typer
from pydantic import ValidationError
from pydantic.fields import FieldInfo
from starlette.routing import Route

import jobhouse
from jobhouse import Registry, errors
from jobhouse.api import create_app
from jobhouse.api import errors as api_errors
from jobhouse.cli import app as cli_app
from jobhouse.errors import InvalidRequest, JobhouseError
from jobhouse.job import JobStatus, StepStatus
from jobhouse.runtime import Runtime
from jobhouse.settings import MAX_DURATION, Below, OneOf, Settings, SettingsError, WebOrigins
from jobhouse.sources import WELL_KNOWN
from jobhouse.store.base import JobQuery
from tests.helpers import imported

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
EXAMPLE = DOCS / "examples" / "thumbnails.py"


def read(name: str) -> str:
    return (DOCS / name).read_text("utf-8")


# -- the example, end to end ------------------------------------------------------------------


@pytest.fixture(scope="module")
def example() -> Iterator[ModuleType]:
    """``docs/examples/thumbnails.py``, imported by path as its own module."""
    with imported(EXAMPLE, "jobhouse_docs_example_thumbnails") as module:
        yield module


@dataclasses.dataclass
class Running:
    runtime: Runtime
    stop: asyncio.Event
    task: asyncio.Task[None]


@pytest.fixture
async def running(example: ModuleType, tmp_path: Path) -> AsyncIterator[Running]:
    """The example's kinds on a real SQLite store, with workers running."""
    # The refresher checks its stop event only between rounds: a short round makes teardown quick.
    settings = Settings(
        database=f"sqlite:///{tmp_path}/db.sqlite", heartbeat=0.2, poll_interval=0.1, refresh_interval=0.1
    )
    runtime = Runtime(settings, registry=example.jobs, sources=[])
    await runtime.open()
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop, workers=True))
    try:
        yield Running(runtime, stop, task)
    finally:
        stop.set()
        await task
        await runtime.close()


def gradient(width: int, height: int) -> bytes:
    """An 8-bit binary PGM whose pixels hold bytes that look like whitespace, too."""
    pixels = bytes((x * 7 + y * 3) % 256 for y in range(height) for x in range(width))
    return b"P5\n%d %d\n255\n" % (width, height) + pixels


async def test_thumbnails_runs_end_to_end(example: ModuleType, running: Running, tmp_path: Path) -> None:
    (tmp_path / "wide.pgm").write_bytes(gradient(200, 100))
    (tmp_path / "tiny.pgm").write_bytes(gradient(10, 20))
    out = tmp_path / "out"
    service = running.runtime.service

    job = await running.runtime.queue.enqueue(
        "thumbnails",
        workspace="ws",
        input={"images": [str(tmp_path / "wide.pgm"), str(tmp_path / "tiny.pgm")], "out_dir": str(out)},
    )
    assert job.input["size"] == 64  # the handler sees the model's normalized input
    assert [step.id for step in job.steps] == ["read", "shrink", "write"]
    done = await service.wait(job.id, "ws", 10)

    assert done.status is JobStatus.COMPLETED, done.error
    assert done.progress == 100
    assert done.result_type == "thumbnail-set"
    assert [step.status for step in done.steps] == [StepStatus.COMPLETED] * 3
    assert done.result == {
        "thumbnails": [
            {"path": str(out / "wide.thumb.pgm"), "width": 64, "height": 32},
            {"path": str(out / "tiny.thumb.pgm"), "width": 10, "height": 20},
        ]
    }
    small = example.read_pgm(out / "wide.thumb.pgm")
    assert (small.width, small.height, len(small.pixels)) == (64, 32, 64 * 32)
    tiny = example.read_pgm(out / "tiny.thumb.pgm")
    assert tiny == example.read_pgm(tmp_path / "tiny.pgm")  # never enlarged


async def test_icon_set_plans_one_step_per_size(running: Running, tmp_path: Path) -> None:
    (tmp_path / "logo.pgm").write_bytes(gradient(100, 100))
    service = running.runtime.service

    job = await running.runtime.queue.enqueue(
        "icon-set",
        workspace="ws",
        input={"image": str(tmp_path / "logo.pgm"), "out_dir": str(tmp_path), "sizes": [8, 48]},
    )
    assert [(step.id, step.name) for step in job.steps] == [
        ("size-8", "Making the 8px icon"),
        ("size-48", "Making the 48px icon"),
    ]
    done = await service.wait(job.id, "ws", 10)

    assert done.status is JobStatus.COMPLETED, done.error
    assert done.progress == 100
    assert done.result_type == "icon-set"
    assert done.result == {"icons": {"8": str(tmp_path / "logo-8.pgm"), "48": str(tmp_path / "logo-48.pgm")}}
    assert (tmp_path / "logo-48.pgm").read_bytes().startswith(b"P5\n48 48\n255\n")


async def test_a_failing_sync_handler_fails_the_job(running: Running, tmp_path: Path) -> None:
    (tmp_path / "note.pgm").write_text("not an image")
    service = running.runtime.service

    job = await running.runtime.queue.enqueue(
        "icon-set", workspace="ws", input={"image": str(tmp_path / "note.pgm"), "out_dir": "x"}
    )
    done = await service.wait(job.id, "ws", 10)

    assert done.status is JobStatus.FAILED
    assert done.attempt == 1  # max_attempts=1: no retry
    assert done.error is not None
    assert (done.error.type, done.error.message) == (
        "ValueError",
        "note.pgm is not an 8-bit binary PGM image",
    )


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        ("thumbnails", {"images": [], "out_dir": "x"}),
        ("thumbnails", {"images": ["a.pgm"], "out_dir": "x", "size": "64"}),
        ("thumbnails", {"images": ["a.pgm"], "out_dir": "x", "colour": True}),
        ("icon-set", {"image": "a.pgm", "out_dir": "x", "sizes": [16, 16]}),
        ("icon-set", {"image": "a.pgm", "out_dir": "x", "sizes": [2000]}),
    ],
)
async def test_bad_input_makes_no_job(running: Running, kind: str, data: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest, match=f"^Invalid input for {kind}: "):
        await running.runtime.queue.enqueue(kind, workspace="ws", input=data)
    page = await running.runtime.store.list_jobs(JobQuery(workspace="ws"))
    assert page.jobs == []


async def test_enqueue_from_python(example: ModuleType, running: Running, tmp_path: Path) -> None:
    (tmp_path / "a.pgm").write_bytes(gradient(4, 4))
    queue = jobhouse.Queue(jobhouse.open_store(running.runtime.settings.database), example.jobs)
    await queue.store.open(migrate=False)  # your own process's store, beside the running jobhouse's
    try:
        job_id = await example.queue_thumbnails(queue, "ws", [str(tmp_path / "a.pgm")], str(tmp_path))
    finally:
        await queue.store.close()
    done = await running.runtime.service.wait(job_id, "ws", 10)

    assert done.status is JobStatus.COMPLETED


async def test_a_handler_enqueues_another_job(running: Running, tmp_path: Path) -> None:
    (tmp_path / "a.pgm").write_bytes(gradient(4, 4))
    gallery = await running.runtime.queue.enqueue(
        "gallery", workspace="ws", input={"images": [str(tmp_path / "a.pgm")], "out_dir": str(tmp_path)}
    )
    done = await running.runtime.service.wait(gallery.id, "ws", 10)
    assert done.status is JobStatus.COMPLETED, done.error

    thumbnails = await running.runtime.service.wait(done.result["thumbnails_job"], "ws", 10)

    assert (thumbnails.kind, thumbnails.workspace, thumbnails.status) == ("thumbnails", "ws", JobStatus.COMPLETED)


# -- docs/kinds.md shows the example as it is ---------------------------------------------------

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def code_blocks(markdown: str, language: str) -> list[str]:
    return [body for lang, body in _FENCE.findall(markdown) if lang == language]


def test_kinds_md_shows_the_example_whole() -> None:
    assert EXAMPLE.read_text("utf-8") in code_blocks(read("kinds.md"), "python")


def test_every_python_block_in_kinds_md_is_an_excerpt_of_the_example() -> None:
    source = EXAMPLE.read_text("utf-8")
    for block in code_blocks(read("kinds.md"), "python"):
        assert block in source, f"docs/kinds.md shows code that docs/examples/thumbnails.py lacks:\n{block}"


# -- reference pages list what the code has -----------------------------------------------------


_SAMPLES: dict[Any, str] = {int: "7", float: "7.5", str: "sqlite:///elsewhere.db", bool: "true"}
_FIELDS = Settings.model_fields


def _annotation(name: str) -> Any:
    """The type of setting `name`, without the ``| None`` of a setting whose default is computed."""
    kinds = [arg for arg in get_args(_FIELDS[name].annotation) if arg is not type(None)]
    if _FIELDS[name].default is None and len(kinds) == 1:
        return get_args(kinds[0])[0] if get_origin(kinds[0]) is Annotated else kinds[0]
    return _FIELDS[name].annotation


def _metadata(name: str) -> list[Any]:
    """The rules of setting `name`, also those inside its ``| None``."""
    rules = list(_FIELDS[name].metadata)
    for arg in get_args(_FIELDS[name].annotation):
        if get_origin(arg) is Annotated:
            for rule in get_args(arg)[1:]:
                rules.extend(rule.metadata if isinstance(rule, FieldInfo) else [rule])
    return rules


def _sample(name: str) -> str:
    """A valid value for setting `name`, other than its default, as an environment variable holds it."""
    if name == "apps":
        return "one:jobs, two:jobs"
    if name == "sources":
        return "path, apt"
    one_of = [rule for rule in _metadata(name) if isinstance(rule, OneOf)]
    if one_of and _annotation(name) is str:  # log_level, log_format: a choice other than the default
        return next(choice for choice in one_of[0].choices if choice != _FIELDS[name].default)
    if name == "cors_origins":
        return "https://ops.example.com, http://localhost:5173"
    if _FIELDS[name].annotation == tuple[str, ...]:
        return "one.yaml, two.yaml"
    lowest = [rule.ge for rule in _metadata(name) if isinstance(rule, annotated_types.Ge)]
    if lowest and lowest[0] > 7:  # a size with a floor (max_header_bytes, ...): the floor itself
        return _number(lowest[0])
    if _annotation(name) is bool and _FIELDS[name].default is True:  # metrics: on unless turned off
        return "false"
    return _SAMPLES[_annotation(name)]


def test_configuration_md_lists_every_setting_and_its_variable() -> None:
    text = read("configuration.md")
    documented = {var for var in re.findall(r"\bJOBHOUSE_[A-Z_]+\b", text) if not var.startswith("JOBHOUSE_TEST_")}
    for name in _FIELDS:
        assert f"`{name}`" in text, f"setting {name} is not in docs/configuration.md"
        read_from = [var for var in documented if _changes(name, var)]
        assert read_from == [Settings.variable(name)], f"docs/configuration.md: {name} is set by {read_from}"
    for var in documented:
        assert any(_changes(name, var) for name in _FIELDS), f"{var} is documented but sets nothing"


#: The settings from an empty environment, read once (the check below compares every pair).
_DEFAULTS = Settings.from_env({})


def _changes(name: str, var: str) -> bool:
    """Whether setting `var` to a sample value of setting `name` changes `name`."""
    settings = _read(var, _sample(name))
    return settings is not None and bool(getattr(settings, name) != getattr(_DEFAULTS, name))


@functools.cache
def _read(var: str, value: str) -> Settings | None:
    """The settings with only `var` set to `value` (None if refused), read once per pair: settings
    share few samples, and every setting is checked against every variable."""
    try:
        return Settings.from_env({var: value})
    except ValueError:  # `var` is a number's variable; the sample is not a number
        return None


def _settings_table() -> dict[str, dict[str, str]]:
    """The rows of the settings table in docs/configuration.md, by setting, as {column: cell}."""
    section = read("configuration.md").split("\n## Settings\n", 1)[1]
    rows = section[section.index("\n| setting |") :].strip().split("\n\n", 1)[0].splitlines()
    header = [cell.strip() for cell in rows[0].strip("|").split("|")]
    table = {}
    for row in rows[2:]:
        cells = dict(zip(header, (cell.strip() for cell in row.strip("|").split("|")), strict=True))
        table[cells["setting"].strip("`")] = cells
    return table


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


#: Settings whose default is worked out when they are read, as the table words it.
COMPUTED_DEFAULTS = {
    "database": "`jobhouse.db` in `data_dir`",
    "data_dir": "`$XDG_DATA_HOME/jobhouse`, else `~/.local/share/jobhouse`",
}


def _default(name: str) -> str:
    """The default of setting `name`, as the table shows it."""
    value = _FIELDS[name].default
    if name in COMPUTED_DEFAULTS:
        return COMPUTED_DEFAULTS[name]
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value == (WELL_KNOWN,):
        return f"the shipped `{Path(WELL_KNOWN).name}`"
    if value is None or value == ():
        return "none"
    if isinstance(value, tuple):
        return f"`{','.join(value)}`"
    return f"`{_number(value) if isinstance(value, int | float) else value}`"


def _range(name: str) -> str:
    """The range of setting `name`, as the table shows it, from the field's declared constraints."""
    bounds: dict[str, float] = {}
    parts: list[str] = []
    if _FIELDS[name].annotation is bool:
        return "`true` or `false`"
    for rule in _metadata(name):
        if isinstance(rule, annotated_types.Gt | annotated_types.Ge | annotated_types.Lt | annotated_types.Le):
            op = type(rule).__name__.lower()
            bounds[op] = getattr(rule, op)
        elif isinstance(rule, annotated_types.MinLen):
            assert rule.min_length == 1, "only 'not empty' is rendered"
            parts.append("not empty")
        elif isinstance(rule, Below):
            parts.append(f"< `{rule.other}`")
        elif isinstance(rule, WebOrigins):
            parts.append("each `scheme://host[:port]`, or `*`")
        elif isinstance(rule, OneOf):
            each = "each one of" if _FIELDS[name].annotation == tuple[str, ...] else "one of"
            parts.append(f"{each} {', '.join(f'`{choice}`' for choice in rule.choices)}")
    if bounds.get("le") == MAX_DURATION:  # the cap every duration has, stated once above the table
        del bounds["le"]
    assert "lt" not in bounds
    if "ge" in bounds and "le" in bounds:
        parts.insert(0, f"{_number(bounds['ge'])}\N{EN DASH}{_number(bounds['le'])}")
    else:
        signs = {"gt": ">", "ge": "≥", "le": "≤"}
        parts[:0] = [f"{signs[op]} {_number(value)}" for op, value in bounds.items()]
    return ", ".join(parts) or "any"


def test_configuration_md_gives_every_default_and_range() -> None:
    text = read("configuration.md")
    assert f"at most {_number(MAX_DURATION)} (ten years)" in text
    table = _settings_table()
    assert sorted(table) == sorted(_FIELDS), "the settings table has one row per setting"
    for name, cells in table.items():
        assert cells["environment variable"].startswith(f"`{Settings.variable(name)}`"), name
        assert cells["default"] == _default(name), f"docs/configuration.md: default of {name}"
        assert cells["range"] == _range(name), f"docs/configuration.md: range of {name}"


@pytest.mark.parametrize("name", [name for name in _FIELDS if _range(name) != "any"])
def test_each_documented_limit_is_enforced(name: str) -> None:
    """Just past each documented bound, the setting is refused, naming its variable."""
    outside: list[str] = ["maybe"] if _FIELDS[name].annotation is bool else []
    for rule in _metadata(name):
        if isinstance(rule, annotated_types.MinLen):  # an empty variable counts as unset
            with pytest.raises(ValidationError, match=f"(?m)^{name}$"):
                Settings(**{name: ""})
        elif isinstance(rule, annotated_types.Gt):
            outside.append(_number(rule.gt))
        elif isinstance(rule, annotated_types.Ge):
            outside.append(_number(rule.ge - 1))
        elif isinstance(rule, annotated_types.Le):
            outside.append(_number(rule.le + 1))
        elif isinstance(rule, WebOrigins):
            outside.append("https://ops.example.com/path")
        elif isinstance(rule, OneOf):
            outside.append("nonsense")
        elif isinstance(rule, Below):
            outside.append(_number(Settings().lease))
    for value in outside:
        with pytest.raises(SettingsError, match=f"^bad setting {Settings.variable(name)}='{value}': "):
            Settings.from_env({Settings.variable(name): value})


def _commands(group: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every (sub)command of a click group, as ("keys create", command)."""
    for name, command in group.commands.items():
        yield f"{prefix}{name}", command
        if hasattr(command, "commands"):
            yield from _commands(command, f"{prefix}{name} ")


#: The client commands (they call a server) are on their own page; the rest are in configuration.md.
CLIENT_COMMANDS = ("jobs", "search", "sources")


def test_the_docs_list_every_command_and_option() -> None:
    root = typer.main.get_command(cli_app)
    for name, command in _commands(root):
        page = "cli.md" if name.split()[0] in CLIENT_COMMANDS else "configuration.md"
        text = read(page)
        assert f"jobhouse {name}" in text, f"command 'jobhouse {name}' is not in docs/{page}"
        for param in command.params:
            for option in [*param.opts, *param.secondary_opts]:
                if option.startswith("-") and option != "--help":
                    assert f"`{option}`" in text, f"option {option} of 'jobhouse {name}' is not in docs/{page}"


def test_api_md_lists_every_error_code() -> None:
    text = read("api.md")
    classes = [value for value in vars(errors).values() if isinstance(value, type) and issubclass(value, JobhouseError)]
    codes = {cls.error_code for cls in classes} | set(api_errors._HTTP_CODES.values())
    for code in sorted(codes):
        assert f"`{code}`" in text, f"error code {code} is not in docs/api.md"
    for status in set(api_errors.STATUS.values()) | set(api_errors._HTTP_CODES):
        assert f"| {status} " in text, f"status {status} is not in the error table of docs/api.md"


def test_api_md_lists_every_route(tmp_path: Path) -> None:
    text = read("api.md")
    app = create_app(Runtime(Settings(database=f"sqlite:///{tmp_path}/db.sqlite"), registry=Registry(), sources=[]))
    routes = [route for route in app.routes if isinstance(route, Route)]
    assert routes
    for route in routes:
        assert route.path in text, f"route {route.path} is not in docs/api.md"
        for method in sorted((route.methods or set()) - {"HEAD"}):
            assert f"{method} {route.path}" in text, f"{method} {route.path} is not in docs/api.md"


def test_states_md_names_every_status() -> None:
    text = read("states.md")
    for status in [*JobStatus, *StepStatus]:
        assert f"`{status.value}`" in text, f"status {status.value} is not in docs/states.md"
    for name in ("TERMINAL_STATUSES", "ACTIVE_STATUSES", "AttemptRef"):
        assert name in text


# -- links between the docs lead somewhere ----------------------------------------------------

_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text("utf-8"), flags=re.MULTILINE | re.DOTALL)
    return {_slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


@pytest.mark.parametrize(
    "page",
    [*sorted(p.relative_to(REPO).as_posix() for p in DOCS.glob("*.md")), "DEVELOPERS.md", "README.md"],
)
def test_relative_links_lead_to_files_and_headings(page: str) -> None:
    source = REPO / page
    for target in _LINK.findall(source.read_text("utf-8")):
        if re.match(r"^[a-z]+:", target):
            continue
        name, _, anchor = target.partition("#")
        path = (source.parent / name).resolve() if name else source
        assert path.exists(), f"{page} links to {target}, which does not exist"
        if anchor:
            assert anchor in _anchors(path), f"{page} links to {target}, which has no such heading"


@pytest.mark.postgres
async def test_enqueue_in_your_own_transaction(example: ModuleType, pg_database: str, tmp_path: Path) -> None:
    import psycopg

    from jobhouse.store.postgres import PostgresStore
    from tests import pg

    store = PostgresStore(pg.with_schema(pg_database, "jobhouse"))
    await store.open()
    try:
        async with await psycopg.AsyncConnection.connect(store.conninfo) as conn:
            await conn.execute("CREATE TABLE orders (id integer PRIMARY KEY)")
            await conn.commit()
            queue = jobhouse.Queue(store, example.jobs)
            job_id = await example.queue_with_order(queue, conn, "ws", 1, ["a.pgm"], str(tmp_path))
            with pytest.raises(psycopg.errors.UniqueViolation):
                await example.queue_with_order(queue, conn, "ws", 1, ["b.pgm"], str(tmp_path))
            orders = await (await conn.execute("SELECT id FROM orders")).fetchall()
            await conn.execute("DROP TABLE orders")
            await conn.commit()
        assert orders == [(1,)]
        jobs = (await store.list_jobs(JobQuery(workspace="ws"))).jobs
        assert [job.id for job in jobs] == [job_id]
        assert jobs[0].input == {"images": ["a.pgm"], "out_dir": str(tmp_path), "size": 64}
    finally:
        await store.close()
        pg.drop_schema(pg_database, "jobhouse")
