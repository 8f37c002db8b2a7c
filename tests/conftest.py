from __future__ import annotations

import fcntl
import functools
import importlib.util
import os
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import pytest_asyncio

from jobhouse.clock import ManualClock
from jobhouse.store.base import Store
from jobhouse.store.postgres import PostgresStore
from jobhouse.store.sqlite import SqliteStore
from tests import pg
from tests.beacon import Beacon
from tests.browser import UI, launched, watched
from tests.helpers import api_client
from tests.servers import (
    REPO,
    WEBHOOK_SETTINGS,
    Machine,
    ServerPool,
    ServerProcess,
    running_server,
    standard_machine,
    start_server,
)


def _share_the_default_ssl_context() -> None:
    """Each httpx client builds its own SSL context, loading the whole CA bundle: 40-70 ms of CPU
    per client, and the tests make thousands (a server start polls /healthz a dozen times, each
    test opens its clients), though they speak plain HTTP on loopback. Clients that ask for the
    default verification share one context made exactly so instead; any other `verify` or `cert`
    gets its own, as before."""
    from httpx._transports import default

    build = default.create_ssl_context

    @functools.cache
    def shared(trust_env: bool) -> ssl.SSLContext:
        return build(verify=True, cert=None, trust_env=trust_env)

    def create_ssl_context(verify: Any = True, cert: Any = None, trust_env: bool = True) -> ssl.SSLContext:
        if verify is True and cert is None:
            return shared(trust_env)
        return build(verify=verify, cert=cert, trust_env=trust_env)

    default.create_ssl_context = create_ssl_context


_share_the_default_ssl_context()


def _remember_that_sniffio_is_missing() -> None:
    """httpcore runs ``import sniffio`` several times for each async request, to learn the event
    loop, and falls back to asyncio when the import fails. sniffio is not installed (anyio 4 does
    not need it), and a failed import is not remembered: each one searches every path again, about
    5 ms of CPU per request in a test process. Record the absence once: the import fails at once,
    with the ImportError httpcore expects, and it goes on as before."""
    if importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]


_remember_that_sniffio_is_missing()

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


@pytest.fixture(scope="session")
def session_servers() -> Iterator[ServerPool]:
    """Servers that live until the end of the session, however the tests using them are ordered."""
    with ServerPool() as pool:
        yield pool


@pytest.fixture(scope="session")
def session_pg_servers(pg_database: str) -> Iterator[ServerPool]:
    """The same, for servers on this session's PostgreSQL database (stopped before it is dropped)."""
    with ServerPool() as pool:
        yield pool


@pytest.fixture(scope="session", params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, machine: Machine) -> ServerProcess:
    """One real `jobhouse serve` process per backend (embedded workers, the test kinds). Started
    once per session and backend: a test of the other backend in between does not restart it."""

    def start() -> ServerProcess:
        database = backend_url(request, request.param, tmp_path_factory.mktemp("server") / "jobhouse.db")
        return start_server(database, machine)

    pool: ServerPool = request.getfixturevalue(
        "session_pg_servers" if request.param == "postgres" else "session_servers"
    )
    return pool.get(f"server-{request.param}", start)


@pytest.fixture(scope="session")
def idle_server(
    tmp_path_factory: pytest.TempPathFactory, machine: Machine, session_servers: ServerPool
) -> ServerProcess:
    """A server with no workers: its jobs stay queued. Its refresher looks only once a minute, so a
    long-poll it answers at once was woken by the hub, not found by a refresh."""

    def start() -> ServerProcess:
        db = tmp_path_factory.mktemp("idle") / "jobhouse.db"
        return start_server(db, machine, args=["--no-workers"], env={"JOBHOUSE_REFRESH_INTERVAL": "60"})

    return session_servers.get("idle", start)


@pytest.fixture
async def idle_client(idle_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {await idle_server.new_key()}"}
    async with api_client(idle_server.url, headers) as http:
        yield http


@pytest.fixture(scope="module", params=BACKENDS)
def hooked(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, machine: Machine
) -> Iterator[ServerProcess]:
    """A server (with workers) that may call webhooks on loopback, per backend."""
    database = backend_url(request, request.param, tmp_path_factory.mktemp("hooked") / "jobhouse.db")
    with running_server(database, machine, env=WEBHOOK_SETTINGS) as process:
        yield process


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


@pytest.fixture(scope="session")
def bootstrapped(tmp_path_factory: pytest.TempPathFactory) -> None:
    """`scripts/bootstrap runtime`, which `scripts/serve` runs first, run once for every test process:
    on a fresh clone (CI has only bootstrapped `dev`) it installs the runtime set once, instead of in
    each test that starts `scripts/serve` at the same moment. The serves that follow find it done."""
    lock = tmp_path_factory.getbasetemp().parent / "jobhouse-bootstrap-runtime.lock"
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # the other test processes wait here, then find it done
        done = subprocess.run(
            [str(REPO / "scripts" / "bootstrap"), "runtime"], capture_output=True, text=True, timeout=600, check=False
        )
    assert done.returncode == 0, done.stderr


# -- the dashboard in Chromium (tests/test_ui*.py) --------------------------------------------------


@pytest.fixture(scope="session")
def ui_server(tmp_path_factory: pytest.TempPathFactory, machine: Machine) -> Iterator[ServerProcess]:
    """A server with the dashboard's kinds (tests/ui_kinds.py) besides the usual ones."""
    db = tmp_path_factory.mktemp("ui") / "jobhouse.db"
    with running_server(db, machine, args=["--app", "tests.ui_kinds:jobs"]) as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Any]:
    async with launched() as chromium:
        yield chromium


@pytest_asyncio.fixture(loop_scope="module")
async def ui(browser: Any, ui_server: ServerProcess) -> AsyncIterator[UI]:
    """A fresh page on `ui_server` (phone-sized) with a key of a fresh workspace, watched for errors."""
    async with watched(browser, ui_server, await ui_server.new_key()) as session:
        yield session
