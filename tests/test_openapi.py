"""/openapi.json is a valid document that describes every route, and real responses match it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from jobhouse.api import create_app
from jobhouse.registry import Registry
from jobhouse.runtime import Runtime
from jobhouse.settings import Settings
from tests.beacon import Beacon
from tests.helpers import create, wait_done
from tests.servers import ServerProcess


@pytest.fixture(scope="module")
def spec(server: ServerProcess) -> dict[str, Any]:
    response = httpx.get(server.url + "/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def test_the_document_is_valid_openapi(spec: dict[str, Any]) -> None:
    validate(spec)
    assert spec["openapi"].startswith("3.1")


def test_every_route_is_described_and_nothing_else(spec: dict[str, Any], tmp_path: object) -> None:
    app = create_app(Runtime(Settings(database=":memory:"), registry=Registry(), sources=[]))
    served = {
        (route.path, method.lower())  # type: ignore[attr-defined]
        for route in app.routes
        if route.path.startswith("/api")  # type: ignore[attr-defined]
        for method in route.methods - {"HEAD"}  # type: ignore[attr-defined]
    }
    described = {(path, method) for path, operations in spec["paths"].items() for method in operations}
    assert served == described


class Checker:
    """Validates a response against what the document says for its operation and status."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.checked: set[tuple[str, str, str]] = set()

    def __call__(self, response: httpx.Response, path: str, method: str) -> None:
        status = str(response.status_code)
        responses = self.spec["paths"][path][method]["responses"]
        assert status in responses, f"{method.upper()} {path} answered {status}, which is not documented"
        schema = responses[status]["content"]["application/json"]["schema"]
        root = {**schema, "components": self.spec["components"]}
        errors = list(Draft202012Validator(root).iter_errors(response.json()))
        assert not errors, [e.message for e in errors]
        self.checked.add((path, method, status))


async def test_real_responses_match_the_document(
    spec: dict[str, Any], client: httpx.AsyncClient, beacon: Beacon
) -> None:
    check = Checker(spec)
    run_job = "/api/v1/run/jobs/{job_id}"

    response = await client.post("/api/v1/run/search/jobs", json={"app": "firefox"})
    check(response, "/api/v1/run/search/jobs", "post")
    job_id = response.json()["job_id"]
    check(await client.get(f"/api/v1/run/jobs/{job_id}?wait=done&timeout_ms=20000"), run_job, "get")
    check(await client.post("/api/v1/run/search/jobs", json={}), "/api/v1/run/search/jobs", "post")
    check(await client.post("/api/v1/run/search", json={"app": "fire"}), "/api/v1/run/search", "post")
    check(await client.post("/api/v1/run/search", content=b"{"), "/api/v1/run/search", "post")
    check(await client.get("/api/v1/run/jobs/nope"), run_job, "get")
    check(await client.get(f"/api/v1/run/jobs/{job_id}?wait=never"), run_job, "get")
    check(await client.post(f"/api/v1/run/jobs/{job_id}/cancel"), "/api/v1/run/jobs/{job_id}/cancel", "post")
    check(await client.get("/api/v1/run/sources"), "/api/v1/run/sources", "get")
    sync = await client.post("/api/v1/run/sources/sync")
    check(sync, "/api/v1/run/sources/sync", "post")
    await wait_done(client, sync.json()["job_id"])
    one = "/api/v1/run/sources/{source_id}/sync"
    check(await client.post("/api/v1/run/sources/path/sync"), one, "post")
    check(await client.post("/api/v1/run/sources/nope/sync"), one, "post")

    held = await create(client, "hold", input={"beacon": beacon.address})
    await beacon.seen(f"started {held['id']}")
    check(await client.get(f"/api/jobs/{held['id']}"), "/api/jobs/{id}", "get")
    check(await client.get(f"/api/v1/run/jobs/{held['id']}"), run_job, "get")
    check(await client.post(f"/api/jobs/{held['id']}/cancel"), "/api/jobs/{id}/cancel", "post")
    boom = await create(client, "boom", competitorId="c")
    check(await client.get(f"/api/jobs/{boom['id']}?wait=done&timeout_ms=20000"), "/api/jobs/{id}", "get")
    check(await client.get(f"/api/v1/run/jobs/{boom['id']}"), run_job, "get")
    check(await client.post(f"/api/jobs/{boom['id']}/cancel"), "/api/jobs/{id}/cancel", "post")
    check(await client.post("/api/jobs", json={"type": "echo"}), "/api/jobs", "post")
    check(await client.post("/api/jobs", json={"type": 1}), "/api/jobs", "post")
    check(await client.post("/api/jobs", content=b"x" * (2 * 1024 * 1024)), "/api/jobs", "post")
    check(await client.get("/api/jobs?limit=2"), "/api/jobs", "get")
    check(await client.get("/api/jobs?limit=0"), "/api/jobs", "get")
    check(await client.get("/api/jobs/nope"), "/api/jobs/{id}", "get")
    async with httpx.AsyncClient(base_url=str(client.base_url)) as anonymous:
        check(await anonymous.get("/api/jobs"), "/api/jobs", "get")

    statuses = {status for _, _, status in check.checked}
    assert {"200", "202", "400", "401", "404", "409", "413"} <= statuses
