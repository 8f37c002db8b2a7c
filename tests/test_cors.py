"""CORS: off unless the deployment lists origins; then browser pages of those origins, and only
those, may call the API and read its answers (errors included)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import assert_error
from tests.servers import Machine, ServerProcess, running_server

ALLOWED = "https://ops.example.com"


@pytest.fixture(scope="module")
def cors_server(tmp_path_factory: pytest.TempPathFactory, machine: Machine) -> Iterator[ServerProcess]:
    db = tmp_path_factory.mktemp("cors") / "jobhouse.db"
    env = {"JOBHOUSE_CORS_ORIGINS": f"{ALLOWED}, http://localhost:5173"}
    with running_server(db, machine, args=["--no-workers"], env=env) as process:
        yield process


def preflight(
    origin: str, method: str = "POST", headers: str = "x-api-key, content-type, idempotency-key"
) -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers}


async def test_a_listed_origins_preflight_is_allowed(cors_server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=cors_server.url) as http:
        response = await http.options("/api/jobs", headers=preflight(ALLOWED))
        stream = await http.options(
            "/api/jobs/events", headers=preflight(ALLOWED, "GET", "authorization, last-event-id")
        )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = {h.strip() for h in stream.headers["access-control-allow-headers"].lower().split(",")}
    assert {"x-api-key", "content-type", "idempotency-key", "authorization", "last-event-id"} <= allowed
    assert response.headers["access-control-max-age"] == "600"
    assert "access-control-allow-credentials" not in response.headers
    assert stream.status_code == 200


async def test_answers_to_a_listed_origin_expose_what_clients_need(cors_server: ServerProcess) -> None:
    key = await cors_server.new_key()
    headers = {"Origin": ALLOWED, "X-API-Key": key, "Idempotency-Key": "cors-1"}
    async with httpx.AsyncClient(base_url=cors_server.url, headers=headers) as http:
        created = await http.post("/api/jobs", json={"type": "echo"})
        refused = await http.get("/api/jobs", headers={"X-API-Key": "wrong"})
    assert created.status_code == 202
    assert created.headers["access-control-allow-origin"] == ALLOWED
    exposed = {h.strip().lower() for h in created.headers["access-control-expose-headers"].split(",")}
    assert {"location", "retry-after", "idempotent-replayed", "www-authenticate"} <= exposed
    assert_error(refused, 401, "UNAUTHORIZED")
    assert refused.headers["access-control-allow-origin"] == ALLOWED  # a page can read why


async def test_other_origins_get_nothing(cors_server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=cors_server.url) as http:
        response = await http.options("/api/jobs", headers=preflight("https://evil.example"))
        simple = await http.get("/api/jobs", headers={"Origin": "https://evil.example"})
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-origin" not in simple.headers


async def test_cors_is_off_by_default(idle_server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=idle_server.url) as http:
        response = await http.options("/api/jobs", headers=preflight(ALLOWED))
        simple = await http.get("/api/jobs", headers={"Origin": ALLOWED})
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-origin" not in simple.headers


@pytest.mark.parametrize("origin", ["https://ops.example.com/", "ops.example.com", "https://ops.example.com/ui"])
def test_an_origin_with_a_path_is_refused_at_start(tmp_path: Path, origin: str) -> None:
    with (
        pytest.raises(RuntimeError, match="JOBHOUSE_CORS_ORIGINS"),
        running_server(tmp_path / "bad.db", env={"JOBHOUSE_CORS_ORIGINS": origin}),
    ):
        pass
