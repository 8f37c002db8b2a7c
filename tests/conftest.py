from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from jobhouse.clock import ManualClock
from jobhouse.store.base import Store
from jobhouse.store.sqlite import SqliteStore
from tests.beacon import Beacon
from tests.servers import Machine, ServerProcess, running_server, standard_machine


@pytest.fixture(scope="session")
def machine(tmp_path_factory: pytest.TempPathFactory) -> Machine:
    return standard_machine(tmp_path_factory.mktemp("machine"))


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, machine: Machine) -> Iterator[ServerProcess]:
    """One real `jobhouse serve` process (SQLite, embedded workers, the test kinds)."""
    with running_server(tmp_path_factory.mktemp("server") / "jobhouse.db", machine) as process:
        yield process


@pytest.fixture(scope="session")
def idle_server(tmp_path_factory: pytest.TempPathFactory, machine: Machine) -> Iterator[ServerProcess]:
    """A server with no workers: its jobs stay queued."""
    db = tmp_path_factory.mktemp("idle") / "jobhouse.db"
    with running_server(db, machine, args=["--no-workers"]) as process:
        yield process


@pytest.fixture
async def idle_client(idle_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {await idle_server.new_key()}"}
    async with httpx.AsyncClient(base_url=idle_server.url, headers=headers, timeout=30) as http:
        yield http


@pytest.fixture
async def key(server: ServerProcess) -> str:
    """A key of a workspace of this test's own."""
    return await server.new_key()


@pytest.fixture
async def client(server: ServerProcess, key: str) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as http:
        yield http


@pytest.fixture
async def beacon() -> AsyncIterator[Beacon]:
    async with Beacon() as signals:
        yield signals


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def store(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Store]:
    """A real store on a fresh SQLite file, on a clock the test moves."""
    backend = SqliteStore(str(tmp_path / "store.db"), clock=clock)
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()
