"""Bad input on every route: a clear 4xx in the error envelope, nothing stored, never a 500."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import API_ROUTES, assert_error, create

BODY_ROUTES = ["/api/v1/run/search/jobs", "/api/v1/run/search", "/api/jobs"]
MALFORMED = [
    b"",
    b"{",
    b"not json",
    b"{'app': 'firefox'}",
    b'{"app": "firefox",}',
    b"[]",
    b'"firefox"',
    b"42",
    b"null",
    b"true",
    b'{"app": "\\ud800"}',
    b'{"type": "echo", "metadata": {"k": "\\udfff"}}',
    b"\xff\xfe{}",
    b"[" * 5000 + b"]" * 5000,
    b'{"app": "fire\\u0000fox"}',
    b'{"type": "echo", "metadata": {"a\\u0000b": 1}}',
    b'{"type": "echo", "input": {"deep": ' + b"[" * 100 + b"]" * 100 + b"}}",
]
WRONG_WORKSPACE_BODIES = [
    {},
    {"type": 7},
    {"type": ""},
    {"type": None},
    {"type": "echo", "competitorId": 12},
    {"type": "echo", "competitorId": ""},
    {"type": "echo", "displayTitle": ["x"]},
    {"type": "echo", "displayTitle": "x" * 201},
    {"type": "echo", "metadata": "not an object"},
    {"type": "echo", "metadata": [1, 2]},
    {"type": "echo", "input": 5},
    {"type": "echo", "status": "completed"},
    {"type": "echo", "id": "550e8400-e29b-41d4-a716-446655440000"},
    {"type": "no-such-kind"},
    {"type": "'; DROP TABLE jobs; --"},
    {"type": "search-resolve", "input": {"app": "firefox", "limit": "5"}},
    {"type": "source-sync", "input": {"source": "nowhere"}},
]


async def _nothing_stored(client: httpx.AsyncClient) -> None:
    listing = await client.get("/api/jobs")
    assert listing.status_code == 200
    assert listing.json()["jobs"] == []


@pytest.mark.parametrize("path", BODY_ROUTES)
async def test_malformed_bodies_are_400(client: httpx.AsyncClient, path: str) -> None:
    for body in MALFORMED:
        response = await client.post(path, content=body, headers={"content-type": "application/json"})
        assert 400 <= response.status_code < 500, (body[:40], response.text)
        assert_error(response, 400, response.json().get("error_code", "?"))
    await _nothing_stored(client)


async def test_wrong_fields_on_create_are_400(client: httpx.AsyncClient) -> None:
    for body in WRONG_WORKSPACE_BODIES:
        response = await client.post("/api/jobs", json=body)
        assert response.status_code == 400, (body, response.text)
        assert_error(response, 400, response.json()["error_code"])
    await _nothing_stored(client)


async def test_the_create_error_names_the_field(client: httpx.AsyncClient) -> None:
    assert "type is required" in assert_error(await client.post("/api/jobs", json={}), 400, "INVALID_REQUEST")
    message = assert_error(await client.post("/api/jobs", json={"type": "echo", "extra": 1}), 400, "INVALID_REQUEST")
    assert "extra" in message
    message = assert_error(
        await client.post("/api/jobs", json={"type": "echo", "competitorId": 5}), 400, "INVALID_REQUEST"
    )
    assert "competitorId" in message


@pytest.mark.parametrize(("method", "path"), API_ROUTES)
async def test_a_2mib_body_is_413_on_every_route(client: httpx.AsyncClient, method: str, path: str) -> None:
    body = b'{"app": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    response = await client.request(method, path, content=body, headers={"content-type": "application/json"})
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    await _nothing_stored(client)


async def test_a_body_just_under_the_limit_is_judged_on_its_content(client: httpx.AsyncClient) -> None:
    body = b'{"type": "echo", "metadata": {"blob": "' + b"x" * (1024 * 1024 - 100) + b'"}}'
    response = await client.post("/api/jobs", content=body)
    assert response.status_code == 202
    assert len(response.json()["job"]["metadata"]["blob"]) == 1024 * 1024 - 100


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "-5"}, "limit"),
        ({"limit": "1e2"}, "limit"),
        ({"status": "done"}, "status"),
        ({"status": "COMPLETED"}, "status"),
        ({"status": "'; DROP TABLE jobs; --"}, "status"),
        ({"cursor": "garbage"}, "cursor"),
        ({"cursor": "MTIzOm5vdC1hLXV1aWQ"}, "cursor"),
        ({"competitorId": "a\x00b"}, "competitorId"),
        ({"competitorId": "x" * 201}, "competitorId"),
        ({"type": "t\x00"}, "type"),
    ],
)
async def test_bad_list_filters_are_400_naming_the_parameter(
    client: httpx.AsyncClient, params: dict[str, str], name: str
) -> None:
    message = assert_error(await client.get("/api/jobs", params=params), 400, "INVALID_REQUEST")
    assert name in message


async def test_sql_looking_strings_are_just_strings(client: httpx.AsyncClient) -> None:
    sneaky = "x'); DELETE FROM jobs; --"
    job = await create(client, "echo", competitorId=sneaky, displayTitle=sneaky, metadata={sneaky: sneaky})

    listed = (await client.get("/api/jobs", params={"competitorId": sneaky})).json()["jobs"]
    assert [j["id"] for j in listed] == [job["id"]]
    assert listed[0]["metadata"] == {sneaky: sneaky}
    assert (await client.get("/api/jobs", params={"competitorId": "' OR '1'='1"})).json()["jobs"] == []
    search = await client.post("/api/v1/run/search", json={"app": "' OR 1=1 --"})
    assert search.status_code == 200
    assert_error(await client.get("/api/jobs/' OR '1'='1"), 404, "JOB_NOT_FOUND")


async def test_odd_unicode_round_trips(client: httpx.AsyncClient) -> None:
    odd = "🦊 ﬁre\u202efox \u0301e\u200d z̴̛̗͓algo 日本語 \U0010ffff"
    job = await create(client, "echo", competitorId=odd, displayTitle=odd, metadata={odd: [odd]}, input={"s": odd})

    fetched = (await client.get(f"/api/jobs/{job['id']}")).json()["job"]
    assert fetched["competitorId"] == odd
    assert fetched["displayTitle"] == odd
    assert fetched["metadata"] == {odd: [odd]}
    assert (await client.post("/api/v1/run/search", json={"app": odd})).status_code == 200
    listed = (await client.get("/api/jobs", params={"competitorId": odd})).json()["jobs"]
    assert [j["id"] for j in listed] == [job["id"]]


async def test_integers_come_back_exactly_or_are_refused(client: httpx.AsyncClient) -> None:
    exact = b'{"type": "echo", "metadata": {"max": 18446744073709551615, "min": -9223372036854775808, "f": 1.5}}'
    response = await client.post("/api/jobs", content=exact, headers={"Content-Type": "application/json"})
    assert response.status_code == 202, response.text
    assert b'"max":18446744073709551615' in response.content  # not 1.8446744073709552e+19
    assert b'"min":-9223372036854775808' in response.content
    assert response.json()["job"]["metadata"] == {"max": 2**64 - 1, "min": -(2**63), "f": 1.5}

    before = len((await client.get("/api/jobs")).json()["jobs"])
    for body in (
        b'{"type": "echo", "metadata": {"n": 18446744073709551616}}',
        b'{"type": "echo", "input": {"n": -9223372036854775809}}',
        b'{"type": "echo", "metadata": {"s": "\\ud800"}}',  # a lone surrogate, escaped
    ):
        refused = await client.post("/api/jobs", content=body, headers={"Content-Type": "application/json"})
        message = assert_error(refused, 400, "INVALID_REQUEST")
        assert "64 bits" in message or "surrogate" in message, message
    assert len((await client.get("/api/jobs")).json()["jobs"]) == before  # nothing was stored


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/", 404),
        ("GET", "/api", 404),
        ("GET", "/api/nothing-here", 404),
        ("GET", "/api/v1/run/jobs", 404),
        ("PUT", "/api/jobs", 405),
        ("PATCH", "/api/jobs/550e8400-e29b-41d4-a716-446655440000", 405),
        ("GET", "/api/v1/run/search/jobs", 405),
        ("GET", "/api/v1/run/search", 405),
        ("PATCH", "/api/v1/run/sources", 405),
        ("GET", "/api/jobs/550e8400-e29b-41d4-a716-446655440000/cancel", 405),
    ],
)
async def test_unknown_routes_and_methods_use_the_envelope(
    client: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    response = await client.request(method, path)
    assert_error(response, status, "NOT_FOUND" if status == 404 else "METHOD_NOT_ALLOWED")
    if status == 405:
        assert response.headers["allow"]
