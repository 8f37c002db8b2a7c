from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import hypothesis
import pytest

from jobhouse.clock import ManualClock
from jobhouse.store.base import Store
from jobhouse.store.postgres import PostgresStore
from jobhouse.store.sqlite import SqliteStore
from tests import pg
from tests.beacon import Beacon
from tests.helpers import api_client
from tests.servers import Machine, ServerProcess, running_server, standard_machine

# Property tests: a quick look in the default run, the thorough one with the slow tests (-m slow).
hypothesis.settings.register_profile("fast", max_examples=40, deadline=None)
hypothesis.settings.register_profile("full", max_examples=500, deadline=None)


def pytest_configure(config: pytest.Config) -> None:
    selected = str(config.getoption("markexpr") or "")
    thorough = "slow" in selected and "not slow" not in selected
    hypothesis.settings.load_profile("full" if thorough else "fast")


#: Every backend; tests that take `store` or `server` run once on each.
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """This session's PostgreSQL database (see tests/pg.py); never skipped when CI=true."""
    try:
        with pg.session_database() as url:
            yield url
    except Exception as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"no PostgreSQL for the tests: {exc}")


@pytest.fixture
def pg_schema_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A URL to a fresh, empty schema of this session's database."""
    database = request.getfixturevalue("pg_database")
    schema = pg.new_schema()
    yield pg.with_schema(database, schema)
    pg.drop_schema(database, schema)


def backend_url(request: pytest.FixtureRequest, backend: str, path: Path) -> str:
    if backend == "postgres":
        database: str = request.getfixturevalue("pg_database")
        return pg.with_schema(database, pg.new_schema())
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def machine(tmp_path_factory: pytest.TempPathFactory) -> Machine:
    return standard_machine(tmp_path_factory.mktemp("machine"))


@pytest.fixture(scope="session", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, machine: Machine
) -> Iterator[ServerProcess]:
    """One real `jobhouse serve` process per backend (embedded workers, the test kinds)."""
    database = backend_url(request, request.param, tmp_path_factory.mktemp("server") / "jobhouse.db")
    with running_server(database, machine) as process:
        yield process


@pytest.fixture(scope="session")
def idle_server(tmp_path_factory: pytest.TempPathFactory, machine: Machine) -> Iterator[ServerProcess]:
    """A server with no workers: its jobs stay queued. Its refresher looks only once a minute, so a
    long-poll it answers at once was woken by the hub, not found by a refresh."""
    db = tmp_path_factory.mktemp("idle") / "jobhouse.db"
    with running_server(db, machine, args=["--no-workers"], env={"JOBHOUSE_REFRESH_INTERVAL": "60"}) as process:
        yield process


@pytest.fixture
async def idle_client(idle_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {await idle_server.new_key()}"}
    async with api_client(idle_server.url, headers) as http:
        yield http


@pytest.fixture
async def key(server: ServerProcess) -> str:
    """A key of a workspace of this test's own."""
    return await server.new_key()


@pytest.fixture
async def client(server: ServerProcess, key: str) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {key}"}
    async with api_client(server.url, headers) as http:
        yield http


@pytest.fixture
async def beacon() -> AsyncIterator[Beacon]:
    async with Beacon() as signals:
        yield signals


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock) -> AsyncIterator[Store]:
    """A real, empty store on each backend, on a clock the test moves."""
    backend: Store
    if request.param == "postgres":
        backend = PostgresStore(request.getfixturevalue("pg_schema_url"), clock=clock)
    else:
        backend = SqliteStore(str(tmp_path / "store.db"), clock=clock)
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()
