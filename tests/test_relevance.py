"""The search finds the right program: a judgement set made from a written Debian machine's own facts.

`bench.relevance` turns the machine's facts into queries, each with its one right answer:
installed commands by name and with two letters swapped, desktop entries by name, graphical
packages apt offers, and the seed document's firefox example. The same judgement runs against
the real machine in ``scripts/bench --only search``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from bench.relevance import judge, queries

from jobhouse.catalog import Entry
from jobhouse.sources import configured_sources
from jobhouse.sources.catalog_file import WELL_KNOWN
from tests.relevance_machine import debian_machine
from tests.servers import Machine, ServerProcess, running_server


@pytest.fixture(scope="module")
def machine(tmp_path_factory: pytest.TempPathFactory) -> Machine:
    return debian_machine(tmp_path_factory.mktemp("debian"))


def environ(machine: Machine) -> dict[str, str]:
    # JOBHOUSE_SCAN_WORKERS: read in worker processes, as by default (tests.servers reads on a thread)
    return {
        **machine.environ(),
        "PATH": str(machine.bin),
        "JOBHOUSE_CATALOGS": WELL_KNOWN,
        "JOBHOUSE_SCAN_WORKERS": "2",
    }


@pytest.fixture(scope="module")
def debian_server(tmp_path_factory: pytest.TempPathFactory, machine: Machine) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("relevance") / "jobhouse.db", env=environ(machine)) as server:
        yield server


def facts(machine: Machine) -> list[Entry]:
    env = environ(machine)
    sources = configured_sources(
        ["path", "desktop", "dpkg", "apt", "catalogs"],
        {**os.environ, **env},
        catalogs=[WELL_KNOWN],
        apt_lists=env["JOBHOUSE_APT_LISTS"],
        dpkg_dir=env["JOBHOUSE_DPKG_DIR"],
    )
    return [entry for source in sources for entry in source.scan()]


async def test_the_right_program_comes_first(machine: Machine, debian_server: ServerProcess) -> None:
    made = queries(facts(machine))
    categories = {q.category for q in made}
    assert categories == {"command", "typo", "desktop", "gui", "seed"}
    assert len(made) > 300
    key = await debian_server.new_key()
    with httpx.Client(base_url=debian_server.url, headers={"X-API-Key": key}, timeout=60) as http:

        def search(selector: dict[str, Any]) -> list[dict[str, Any]]:
            response = http.post("/api/v1/run/search", json=selector)
            assert response.status_code == 200, response.text
            found: list[dict[str, Any]] = response.json()["candidates"]
            return found

        judgement = judge(made, search)

    misses = [(q.selector, q.want, rank) for q, rank in judgement.misses()]
    assert judgement.recall_at_3 == 1.0, misses
    assert judgement.precision_at_1 >= 0.95, misses
    for category, (count, precision, _) in judgement.by_category().items():
        assert precision >= 0.9, (category, count, precision, misses)


@pytest.fixture
async def searching(debian_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {await debian_server.new_key()}"}
    async with httpx.AsyncClient(base_url=debian_server.url, headers=headers, timeout=60) as http:
        yield http


async def test_the_seed_example_finds_firefox_esr_as_a_graphical_program(searching: httpx.AsyncClient) -> None:
    response = await searching.post("/api/v1/run/search", json={"app": "firefox", "os": "linux", "kind": "gui"})
    first = response.json()["candidates"][0]
    assert (first["app"], first["kind"], first["match"]) == ("firefox-esr", "gui", "prefix")
    assert first["version"] == "2.0-1+deb12u1"  # the security update apt would install, tagged by the release list
    assert (first["installed"], first["install"]) == (False, "apt-get install firefox-esr")


async def test_one_program_is_one_candidate(searching: httpx.AsyncClient) -> None:
    response = await searching.post("/api/v1/run/search", json={"app": "vim", "limit": 5})
    vim, *others = response.json()["candidates"]
    assert vim["id"] == "linux:vim"
    assert vim["name"] == "Vim"  # from its desktop entry
    assert vim["launch"].endswith("/bin/vim")
    assert vim["version"] == "2:9.0.1378-2"  # from dpkg, through the link to vim.basic
    assert vim["sources"] == ["path", "desktop", "dpkg"]
    assert vim["installed"] is True
    assert "linux:vim" not in [c["id"] for c in others]
