"""The run surface (/api/v1/run) over real HTTP, as seed 000 documents it."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import RUN_TIME, assert_error, is_uuid, wait_done


async def test_search_job_answers_202_with_a_handle_then_resolves(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/run/search/jobs", json={"app": "firefox", "os": "linux", "kind": "gui"})

    assert response.status_code == 202
    handle = response.json()
    assert is_uuid(handle["job_id"])
    assert handle["kind"] == "search-resolve"
    assert handle["status"] == "queued"
    assert RUN_TIME.match(handle["created_at"])
    assert RUN_TIME.match(handle["updated_at"])
    assert response.headers["location"] == f"/api/v1/run/jobs/{handle['job_id']}"

    done = await wait_done(client, handle["job_id"])
    assert done["status"] == "done"
    assert done["job_id"] == handle["job_id"]
    assert done["result_type"] == "search-response"
    names = [c["name"] for c in done["result"]["candidates"]]
    assert names[:2] == ["Firefox Web Browser", "Firefox ESR"]
    assert all(c["os"] == "linux" and c["kind"] == "gui" for c in done["result"]["candidates"])
    assert done["progress"] == 100
    assert done["steps"] == [{"id": "resolve", "name": "Resolving candidates", "status": "completed"}]


async def test_search_candidates_carry_what_a_client_needs(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/run/search", json={"app": "jobhouse-test-tool", "kind": "cli"})

    assert response.status_code == 200
    candidates = response.json()["candidates"]
    assert candidates[0]["id"] == "linux:jobhouse-test-tool"
    first = candidates[0]
    for field in ("id", "app", "name", "version", "os", "kind", "source", "score", "launch", "installed", "sources"):
        assert field in first
    assert (first["source"], first["sources"]) == ("path", ["path"])
    assert first["kind"] == "cli"
    assert first["installed"] is True
    assert first["launch"].endswith("/bin/jobhouse-test-tool")


async def test_sync_search_and_search_job_return_the_same_candidates(client: httpx.AsyncClient) -> None:
    selector = {"app": "fire", "limit": 5}
    sync = await client.post("/api/v1/run/search", json=selector)
    job = (await client.post("/api/v1/run/search/jobs", json=selector)).json()

    done = await wait_done(client, job["job_id"])

    assert sync.status_code == 200
    assert done["result"] == sync.json()
    assert len(sync.json()["candidates"]) <= 5


async def test_limit_cuts_the_candidates(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/run/search", json={"app": "f", "limit": 1})
    assert len(response.json()["candidates"]) == 1


async def test_a_typo_still_finds_firefox(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/run/search", json={"app": "firefx", "kind": "gui"})
    assert response.json()["candidates"][0]["name"].startswith("Firefox")


async def test_missing_app_is_the_documented_error(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/run/search/jobs", json={"os": "linux"})
    assert_error(response, 400, "INVALID_SELECTOR", "Invalid selector: app is required")


@pytest.mark.parametrize(
    ("selector", "field"),
    [
        ({"app": ""}, "app"),
        ({"app": "   "}, "app"),
        ({"app": 42}, "app"),
        ({"app": "firefox", "limit": "10"}, "limit"),
        ({"app": "firefox", "limit": True}, "limit"),
        ({"app": "firefox", "limit": 0}, "limit"),
        ({"app": "firefox", "limit": 101}, "limit"),
        ({"app": "firefox", "limit": 2.5}, "limit"),
        ({"app": "firefox", "os": "beos"}, "os"),
        ({"app": "firefox", "kind": "tui"}, "kind"),
        ({"app": "firefox", "version": 12}, "version"),
        ({"app": "firefox", "source": "nowhere"}, "source"),
        ({"app": "firefox", "colour": "blue"}, "colour"),
    ],
)
async def test_bad_selectors_name_the_field(client: httpx.AsyncClient, selector: dict[str, object], field: str) -> None:
    for path in ("/api/v1/run/search/jobs", "/api/v1/run/search"):
        message = assert_error(await client.post(path, json=selector), 400, "INVALID_SELECTOR")
        assert message.startswith("Invalid selector: ")
        assert field in message


async def test_unknown_and_malformed_ids_are_job_not_found(client: httpx.AsyncClient) -> None:
    expected = {
        "error": "No job exists with the requested identifier",
        "code": 404,
        "error_code": "JOB_NOT_FOUND",
    }
    for job_id in ("550e8400-e29b-41d4-a716-446655440000", "not-a-uuid", "1'; DROP TABLE jobs; --"):
        response = await client.get(f"/api/v1/run/jobs/{job_id}")
        assert response.status_code == 404
        assert response.json() == expected


async def test_sources_are_listed_with_their_last_sync(client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/run/search", json={"app": "firefox"})  # syncs never-synced sources

    sources = (await client.get("/api/v1/run/sources")).json()["sources"]

    by_id = {s["id"]: s for s in sources}
    assert list(by_id) == ["path", "desktop", "dpkg", "apt", "well-known"]
    assert by_id["desktop"]["candidate_count"] == 4
    assert RUN_TIME.match(by_id["desktop"]["synced_at"])
    assert by_id["desktop"]["last_error"] is None


async def test_syncing_one_source_is_a_source_sync_job_with_steps(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/run/sources/desktop/sync")

    assert response.status_code == 202
    handle = response.json()
    assert handle["kind"] == "source-sync"
    done = await wait_done(client, handle["job_id"])
    assert done["status"] == "done"
    assert [s["id"] for s in done["steps"]] == ["scan", "index"]
    assert all(s["status"] == "completed" for s in done["steps"])
    assert done["result"]["sources"]["desktop"]["candidates"] == 4


async def test_syncing_all_sources_is_one_job_with_a_step_per_source(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/run/sources/sync")

    assert response.status_code == 202
    done = await wait_done(client, response.json()["job_id"])
    assert done["kind"] == "source-sync"
    assert [s["id"] for s in done["steps"]] == ["path", "desktop", "dpkg", "apt", "well-known", "index"]
    assert set(done["result"]["sources"]) == {"path", "desktop", "dpkg", "apt", "well-known"}
    assert done["result"]["sources"]["apt"]["candidates"] == 3


async def test_syncing_an_unknown_source_is_404(client: httpx.AsyncClient) -> None:
    assert_error(await client.post("/api/v1/run/sources/nowhere/sync"), 404, "SOURCE_NOT_FOUND")


async def test_a_search_job_shows_on_the_workspace_surface(client: httpx.AsyncClient) -> None:
    job_id = (await client.post("/api/v1/run/search/jobs", json={"app": "htop"})).json()["job_id"]
    await wait_done(client, job_id)

    listed = (await client.get("/api/jobs", params={"type": "search-resolve"})).json()["jobs"]

    assert [j["id"] for j in listed] == [job_id]
    assert listed[0]["type"] == "search-resolve"
    assert listed[0]["competitorId"] is None
    assert listed[0]["status"] == "completed"
    assert listed[0]["resultType"] == "search-response"
