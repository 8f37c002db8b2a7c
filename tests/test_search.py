"""The candidate search on real data the tests write: apt lists, catalogs, syncs that fail."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobhouse.sources import CatalogFileError, CatalogSource
from jobhouse.sources.catalog_file import WELL_KNOWN
from tests.helpers import wait_done
from tests.servers import Machine, ServerProcess, running_server, standard_machine


def test_the_shipped_catalog_knows_macos_and_windows() -> None:
    candidates = CatalogSource(WELL_KNOWN).scan()
    assert {c.os.value for c in candidates} == {"macos", "windows"}
    assert len(candidates) >= 40
    assert all(c.source == "well-known" for c in candidates)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("apps:\n  - app: x\n    name: X\n    os: beos\n    kind: gui\n", "apps.0.os"),
        ("apps:\n  - name: X\n    os: linux\n    kind: gui\n", "apps.0.app is required"),
        ("apps: [}", "cannot read it"),
        ("apps:\n  - app: x\n    name: X\n    os: linux\n    kind: gui\n    colour: red\n", "colour"),
    ],
)
def test_a_bad_catalog_says_what_and_where(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    with pytest.raises(CatalogFileError, match=problem.replace(".", r"\.")):
        CatalogSource(str(path)).scan()


def test_a_json_catalog_works_too(tmp_path: Path) -> None:
    path = tmp_path / "tools.json"
    path.write_text('{"apps": [{"app": "calc", "name": "Calculator", "os": "windows", "kind": "gui"}]}')
    (candidate,) = CatalogSource(str(path)).scan()
    assert (candidate.id, candidate.source) == ("tools:windows:calc", "tools")


@pytest.fixture(scope="module")
def catalog_machine(tmp_path_factory: pytest.TempPathFactory) -> Machine:
    return standard_machine(tmp_path_factory.mktemp("search-machine"))


@pytest.fixture(scope="module")
def search_server(tmp_path_factory: pytest.TempPathFactory, catalog_machine: Machine) -> Iterator[ServerProcess]:
    catalog = catalog_machine.root / "office.yaml"
    catalog.write_text("apps:\n  - app: word\n    name: Word\n    os: windows\n    kind: gui\n")
    # Sources read in scan worker processes, as a server reads them by default (tests.servers reads them on a thread).
    env = {"JOBHOUSE_CATALOGS": f"{WELL_KNOWN},{catalog}", "JOBHOUSE_SCAN_WORKERS": "2"}
    db = tmp_path_factory.mktemp("search") / "jobhouse.db"
    with running_server(db, catalog_machine, env=env) as server:
        yield server


@pytest.fixture
async def searching(search_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"X-API-Key": await search_server.new_key()}
    async with httpx.AsyncClient(base_url=search_server.url, headers=headers, timeout=60) as http:
        yield http


async def search(client: httpx.AsyncClient, **selector: object) -> list[dict[str, object]]:
    response = await client.post("/api/v1/run/search", json=selector)
    assert response.status_code == 200, response.text
    candidates: list[dict[str, object]] = response.json()["candidates"]
    return candidates


async def test_firefox_for_linux_gui_finds_each_firefox_once(searching: httpx.AsyncClient) -> None:
    found = await search(searching, app="firefox", os="linux", kind="gui")

    assert [(c["id"], c["name"], c["match"]) for c in found[:2]] == [
        ("linux:firefox", "Firefox Web Browser", "exact"),
        ("linux:firefox-esr", "Firefox ESR", "prefix"),
    ]
    firefox, esr = found[:2]
    assert firefox["sources"] == ["path", "desktop"]
    assert firefox["launch"].endswith("/bin/firefox")  # the executable on PATH
    assert esr["sources"] == ["desktop", "apt"]  # its desktop entry and the package apt has
    assert esr["install"] == "apt-get install firefox-esr"
    assert firefox["installed"]
    assert esr["installed"]
    assert len({c["id"] for c in found}) == len(found)
    assert all(c["os"] == "linux" and c["kind"] == "gui" for c in found)


async def test_macos_finds_something_out_of_the_box(searching: httpx.AsyncClient) -> None:
    found = await search(searching, app="safari", os="macos")
    assert found[0]["name"] == "Safari"
    assert found[0]["source"] == "well-known"
    assert found[0]["launch"] == 'open -a "Safari"'


async def test_filters_and_reasons(searching: httpx.AsyncClient) -> None:
    assert [c["name"] for c in await search(searching, app="firefx", os="windows")][:1] == ["Firefox"]
    assert (await search(searching, app="firefx", os="windows"))[0]["match"] == "fuzzy"
    versioned = await search(searching, app="tree", source="apt", version="2.1")
    assert [(c["app"], c["version"]) for c in versioned] == [("tree", "2.1.0-1")]
    assert await search(searching, app="tree", source="apt", version="2.10") == []
    assert await search(searching, app="tree", source="apt", version="2") != []
    assert await search(searching, app="tree", version="21") == []  # components, not text: 2.1 is not 21
    browsers = await search(searching, app="browser", os="macos")
    assert {c["match"] for c in browsers} == {"keyword"}


async def test_a_sync_reads_a_source_again_only_when_its_files_changed(
    searching: httpx.AsyncClient, catalog_machine: Machine
) -> None:
    async def sync_desktop() -> dict[str, object]:
        done = await wait_done(searching, (await searching.post("/api/v1/run/sources/desktop/sync")).json()["job_id"])
        assert done["status"] == "done", done
        result: dict[str, object] = done["result"]["sources"]["desktop"]
        return result

    await sync_desktop()
    assert await sync_desktop() == {"candidates": 4, "unchanged": True}
    entry = catalog_machine.desktop("org.example.Sketchpad.desktop", Name="Sketchpad", Exec="sketchpad %f")
    try:
        assert await sync_desktop() == {"candidates": 5}
        # The job ends once this server's index has the new entry: the very next search finds it.
        assert [c["name"] for c in await search(searching, app="sketchpad")] == ["Sketchpad"]
    finally:
        entry.unlink()
    assert await sync_desktop() == {"candidates": 4}
    assert await search(searching, app="sketchpad") == []


async def test_a_sync_that_fails_half_way_keeps_the_previous_index(
    searching: httpx.AsyncClient, catalog_machine: Machine
) -> None:
    catalog = catalog_machine.root / "office.yaml"
    good = catalog.read_text()
    assert [c["app"] for c in await search(searching, app="word", source="office")] == ["word"]
    catalog.write_text(good + "  - app: excel\n    name: Excel\n    os: mars\n    kind: gui\n")
    try:
        job = (await searching.post("/api/v1/run/sources/office/sync")).json()
        failed = await wait_done(searching, job["job_id"])
    finally:
        catalog.write_text(good)

    assert failed["status"] == "failed"
    assert "apps.1.os" in failed["error"]["message"]
    assert [c["app"] for c in await search(searching, app="word", source="office")] == ["word"]
    sources = {s["id"]: s for s in (await searching.get("/api/v1/run/sources")).json()["sources"]}
    assert "apps.1.os" in sources["office"]["last_error"]
    assert sources["office"]["candidate_count"] == 1

    healed = await wait_done(searching, (await searching.post("/api/v1/run/sources/office/sync")).json()["job_id"])
    assert healed["status"] == "done"
    sources = {s["id"]: s for s in (await searching.get("/api/v1/run/sources")).json()["sources"]}
    assert sources["office"]["last_error"] is None


async def test_an_apt_list_that_breaks_half_way_keeps_the_previous_index(
    searching: httpx.AsyncClient, catalog_machine: Machine
) -> None:
    synced = await wait_done(searching, (await searching.post("/api/v1/run/sources/apt/sync")).json()["job_id"])
    assert synced["status"] == "done"
    broken = catalog_machine.root / "apt-lists" / "zz.example_dists_stable-updates_main_binary-amd64_Packages.lz4"
    broken.write_bytes(b"this is not lz4 at all")
    try:
        failed = await wait_done(searching, (await searching.post("/api/v1/run/sources/apt/sync")).json()["job_id"])
    finally:
        broken.unlink()

    assert failed["status"] == "failed"
    assert [s["status"] for s in failed["steps"]] == ["failed", "pending"]
    assert [c["app"] for c in await search(searching, app="htop", source="apt")] == ["htop"]


def test_the_catalog_example_in_the_docs_is_a_valid_catalog(tmp_path: Path) -> None:
    docs = (Path(__file__).resolve().parent.parent / "docs" / "search.md").read_text()
    example = docs.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "example.yaml"
    path.write_text(example)
    (candidate,) = CatalogSource(str(path)).scan()
    assert (candidate.app, candidate.os.value, candidate.version) == ("photoshop", "windows", "25.4")


async def test_unreadable_dpkg_records_fail_the_sync_and_keep_the_previous_entries(
    searching: httpx.AsyncClient, catalog_machine: Machine
) -> None:
    tool = catalog_machine.executable("jobhouse-dpkg-tool")
    catalog_machine.installed("jobhouse-dpkg-tool", "4.2-1", files=[tool], description="a tool dpkg installed")

    async def sync_dpkg() -> dict[str, Any]:
        job = (await searching.post("/api/v1/run/sources/dpkg/sync", json={"force": True})).json()
        return await wait_done(searching, job["job_id"])

    try:
        assert (await sync_dpkg())["status"] == "done"
        await wait_done(searching, (await searching.post("/api/v1/run/sources/path/sync")).json()["job_id"])
        (found,) = await search(searching, app="jobhouse-dpkg-tool", limit=1)
        assert (found["version"], found["package"], found["sources"]) == (
            "4.2-1",
            "jobhouse-dpkg-tool",
            ["path", "dpkg"],
        )

        listing = catalog_machine.dpkg / "info" / "jobhouse-dpkg-tool.list"
        listing.write_bytes(b"/usr/bin/\xff\xfe\n")  # a file list that is not text
        failed = await sync_dpkg()
        assert failed["status"] == "failed"
        assert "jobhouse-dpkg-tool.list" in failed["error"]["message"]
        assert [s["status"] for s in failed["steps"]] == ["failed", "pending"]
        (kept,) = await search(searching, app="jobhouse-dpkg-tool", limit=1)
        assert kept["version"] == "4.2-1"  # the previous entries still answer
    finally:
        shutil.rmtree(catalog_machine.dpkg)
        tool.unlink()
    assert (await sync_dpkg())["status"] == "done"  # no dpkg at all is no error


async def test_hide_launch_paths_keeps_the_hosts_directories_from_clients(
    tmp_path: Path, catalog_machine: Machine
) -> None:
    env = {"JOBHOUSE_HIDE_LAUNCH_PATHS": "true", "JOBHOUSE_SOURCES": "path,desktop"}
    with running_server(tmp_path / "jobhouse.db", catalog_machine, env=env, args=["--no-workers"]) as server:
        headers = {"X-API-Key": await server.new_key()}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as client:
            found = await search(client, app="jobhouse-test-tool")
            assert found[0]["app"] == "jobhouse-test-tool"
            assert found[0]["launch"] == "jobhouse-test-tool"  # what a shell runs by bare name
            firefox = (await search(client, app="firefox", os="linux", kind="gui"))[0]
            assert firefox["sources"] == ["path", "desktop"]
            assert firefox["launch"] == "firefox"
            body = (await client.post("/api/v1/run/search", json={"app": "firefox"})).text
            assert str(catalog_machine.bin) not in body
