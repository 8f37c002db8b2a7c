"""Webhooks end to end: real `jobhouse serve` processes posting to a real receiver on loopback.

The receiver (`Receiver`) is a threaded ``http.server`` in the test process that records every
request and answers as the test says: 200, 500 for the first attempts of each delivery, 500 for
everything (down), or not at all until released (a send held in flight). Signatures are checked
with the verification function of ``docs/webhooks.md``, cut from the page and run as written.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobhouse.egress import HostPolicy
from jobhouse.errors import WebhookRefused
from jobhouse.ids import new_id
from jobhouse.job import NewJob
from jobhouse.runtime import Runtime
from jobhouse.settings import Settings
from jobhouse.store import open_store
from jobhouse.store.base import DeliveryQuery
from jobhouse.webhooks import DeliveryStatus
from tests import kinds
from tests.beacon import Beacon
from tests.conftest import BACKENDS, backend_url
from tests.helpers import api_client, assert_error, create, wait_done
from tests.servers import WEBHOOK_SETTINGS, Machine, ServerProcess, running_server, start_server

REPO = Path(__file__).resolve().parent.parent


def verification() -> Callable[..., bool]:
    """The `verify` function of docs/webhooks.md, run as the page shows it."""
    page = (REPO / "docs" / "webhooks.md").read_text("utf-8")
    (block,) = [body for body in re.findall(r"^```python\n(.*?)^```$", page, re.M | re.S) if "def verify" in body]
    scope: dict[str, Any] = {}
    exec(compile(block, "docs/webhooks.md", "exec"), scope)
    verify: Callable[..., bool] = scope["verify"]
    return verify


verify = verification()


# -- the receiver ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    delivery: str
    event: str
    signature: str
    body: bytes
    status: int | None  # None: never answered (held, then its sender died)

    @property
    def data(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


class Receiver:
    """A webhook receiver on 127.0.0.1 that records every POST and answers as told."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[Received] = []
        self.fail_first = 0  # answer 500 to each delivery's first N attempts
        self.down = False  # answer 500 to everything
        self.holding = False  # answer nothing until released
        self.released = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                delivery = self.headers.get("Jobhouse-Delivery", "")
                with receiver.lock:
                    tries = sum(1 for r in receiver.requests if r.delivery == delivery) + 1
                    held = receiver.holding
                    status = 500 if receiver.down or held or tries <= receiver.fail_first else 200
                    record = Received(
                        delivery,
                        self.headers.get("Jobhouse-Event", ""),
                        self.headers.get("Jobhouse-Signature", ""),
                        body,
                        None if held else status,
                    )
                    receiver.requests.append(record)
                if held:
                    receiver.released.wait(30)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a sender killed mid-request: nothing to report

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()

    def seen(self) -> list[Received]:
        with self.lock:
            return list(self.requests)

    def delivered(self) -> dict[str, list[Received]]:
        """The 2xx-answered requests, by delivery id."""
        found: dict[str, list[Received]] = {}
        for r in self.seen():
            if r.status == 200:
                found.setdefault(r.delivery, []).append(r)
        return found


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


async def eventually(check: Callable[[], Any], what: str, timeout: float = 30.0) -> None:
    """Poll `check` until it is true, for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


# -- servers ----------------------------------------------------------------------------------------


@pytest.fixture
async def http(hooked: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a workspace of this test's own on `hooked`, every response checked against /openapi.json."""
    async with api_client(hooked.url, {"Authorization": f"Bearer {await hooked.new_key()}"}) as client:
        yield client


async def deliveries(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await client.get("/api/webhooks/deliveries", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["deliveries"]
    return found


async def subscribe(client: httpx.AsyncClient, url: str, **fields: Any) -> dict[str, Any]:
    response = await client.post("/api/webhooks", json={"url": url, **fields})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def settled(client: httpx.AsyncClient, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    """The workspace's deliveries, once there are `count` and none is pending."""
    found: list[dict[str, Any]] = []

    async def done() -> bool:
        nonlocal found
        found = await deliveries(client)
        return len(found) == count and all(d["status"] != "pending" for d in found)

    deadline = time.monotonic() + timeout
    while not await done():
        if time.monotonic() > deadline:
            raise AssertionError(f"deliveries did not settle: {found}")
        await asyncio.sleep(0.05)
    return found


# -- delivering -------------------------------------------------------------------------------------


async def test_a_callback_is_posted_once_signed_with_the_workspace_secret(
    http: httpx.AsyncClient, receiver: Receiver
) -> None:
    job = await create(http, "echo", input={"x": 1}, callbackUrl=receiver.url + "?job=1")
    await wait_done(http, job["id"])

    (delivery,) = await settled(http, 1)
    secret = (await http.get("/api/webhooks/secret")).json()["secret"]
    (got,) = receiver.seen()
    shown = (await http.get(f"/api/jobs/{job['id']}")).json()["job"]

    assert secret.startswith("whsec_")
    assert (got.delivery, got.event, got.status) == (delivery["id"], "job.completed", 200)
    assert verify(secret, got.signature, got.body)
    assert got.data == {
        "id": delivery["id"],
        "event": "job.completed",
        "createdAt": delivery["createdAt"],
        "job": shown,
    }
    assert delivery | {"id": "", "createdAt": "", "lastAttemptAt": "", "deliveredAt": ""} == {
        "id": "",
        "jobId": job["id"],
        "webhookId": None,
        "url": receiver.url + "?job=1",
        "event": "job.completed",
        "status": "delivered",
        "attempts": 1,
        "nextAttemptAt": None,
        "lastAttemptAt": "",
        "lastStatusCode": 200,
        "lastError": None,
        "createdAt": "",
        "deliveredAt": "",
    }
    assert (await http.get(f"/api/jobs/{job['id']}/deliveries")).json()["deliveries"] == [delivery]


async def test_a_receiver_that_fails_then_recovers_gets_every_delivery_once(
    http: httpx.AsyncClient, receiver: Receiver
) -> None:
    receiver.fail_first = 2  # each delivery: 500, 500, then 200
    created = await subscribe(http, receiver.url)
    jobs = [await create(http, "echo", callbackUrl=receiver.url) for _ in range(3)]
    jobs.append(await create(http, "boom", callbackUrl=receiver.url))
    for job in jobs:
        await wait_done(http, job["id"])

    log = await settled(http, 2 * len(jobs))

    callback_secret = (await http.get("/api/webhooks/secret")).json()["secret"]
    secrets = {None: callback_secret, created["webhook"]["id"]: created["secret"]}
    landed = receiver.delivered()
    assert {d["status"] for d in log} == {"delivered"}
    assert {d["attempts"] for d in log} == {3}
    assert sorted(landed) == sorted(d["id"] for d in log)
    for d in log:
        (once,) = landed[d["id"]]  # landed exactly once
        attempts = [r for r in receiver.seen() if r.delivery == d["id"]]
        assert [r.status for r in attempts] == [500, 500, 200]
        assert {r.body for r in attempts} == {once.body}  # the same body every time
        assert all(verify(secrets[d["webhookId"]], r.signature, r.body) for r in attempts)
        assert once.data["job"]["id"] == d["jobId"]
    events = sorted((d["jobId"], d["event"]) for d in log)
    assert events == sorted(
        (job["id"], "job.failed" if job["type"] == "boom" else "job.completed") for job in jobs for _ in range(2)
    )


async def test_subscriptions_filter_by_event_and_type(http: httpx.AsyncClient, receiver: Receiver) -> None:
    failures = await subscribe(http, receiver.url + "/failures", events=["job.failed", "job.cancelled"])
    echoes = await subscribe(http, receiver.url + "/echoes", types=["echo"])
    echo = await create(http, "echo")
    boom = await create(http, "boom")
    for job in (echo, boom):
        await wait_done(http, job["id"])

    log = await settled(http, 2)

    assert sorted((d["webhookId"], d["jobId"], d["event"]) for d in log) == sorted(
        [(failures["webhook"]["id"], boom["id"], "job.failed"), (echoes["webhook"]["id"], echo["id"], "job.completed")]
    )


async def test_a_cancelled_job_is_posted_as_cancelled(
    http: httpx.AsyncClient, receiver: Receiver, beacon: Beacon
) -> None:
    job = await create(http, "hold", input={"beacon": beacon.address}, callbackUrl=receiver.url)
    await beacon.seen(f"started {job['id']}")
    assert (await http.post(f"/api/jobs/{job['id']}/cancel")).status_code == 200

    (delivery,) = await settled(http, 1)

    (got,) = receiver.seen()
    assert (delivery["event"], got.event) == ("job.cancelled", "job.cancelled")
    assert got.data["job"]["status"] == "failed"  # as the workspace surface reads a cancelled job
    assert got.data["job"]["currentStep"] == "Cancelled"


async def test_the_run_surface_takes_callback_url(http: httpx.AsyncClient, receiver: Receiver) -> None:
    response = await http.post("/api/v1/run/search/jobs", json={"app": "firefox", "callback_url": receiver.url})
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    replay = await http.post(
        "/api/v1/run/sources/path/sync", json={"callback_url": receiver.url}, headers={"Idempotency-Key": new_id()}
    )
    assert replay.status_code == 202, replay.text
    for job in (job_id, replay.json()["job_id"]):
        await wait_done(http, job)

    log = await settled(http, 2)

    assert {d["status"] for d in log} == {"delivered"}
    kinds = sorted(r.data["job"]["type"] for r in receiver.seen())
    assert kinds == ["search-resolve", "source-sync"]
    run_job = (await http.get(f"/api/v1/run/jobs/{job_id}")).json()
    assert "callback_url" not in run_job  # the job's views do not show it; the delivery log does


async def test_a_new_callback_secret_signs_what_is_sent_from_then_on(
    http: httpx.AsyncClient, receiver: Receiver
) -> None:
    old = (await http.get("/api/webhooks/secret")).json()["secret"]
    assert (await http.get("/api/webhooks/secret")).json()["secret"] == old  # made once

    new = (await http.post("/api/webhooks/secret")).json()["secret"]
    job = await create(http, "echo", callbackUrl=receiver.url)
    await wait_done(http, job["id"])
    await settled(http, 1)

    (got,) = receiver.seen()
    assert new != old
    assert verify(new, got.signature, got.body)
    assert not verify(old, got.signature, got.body)


# -- verifying ---------------------------------------------------------------------------------------


def sign(secret: str, body: bytes, at: int) -> str:
    mac = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


def test_the_documented_verification_refuses_what_it_must() -> None:
    body = b'{"id": "x", "event": "job.completed"}'
    now = int(time.time())
    good = sign("whsec_abc", body, now)

    assert verify("whsec_abc", good, body)
    assert verify("whsec_abc", f"t={now},v1={'0' * 64},{good.split(',')[1]}", body)  # any v1 may match
    assert not verify("whsec_abd", good, body)  # another secret
    assert not verify("whsec_abc", good, body + b" ")  # another body
    assert not verify("whsec_abc", sign("whsec_abc", body, now - 301), body)  # too old: a replay
    assert not verify("whsec_abc", sign("whsec_abc", body, now + 301), body)
    assert verify("whsec_abc", sign("whsec_abc", body, now - 3600), body, tolerance=7200)
    for header in ("", "t=,v1=", f"v1={good.split('v1=')[1]}", f"t={now}", f"t=x{now},v1=00", f"{good},t={now}"):
        assert not verify("whsec_abc", header, body), header


# -- which hosts -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "names"),
    [
        ("http://evil.example.net/hook", "evil.example.net:80"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254:80"),
        ("http://example.org/hook", "example.org:80"),  # *.example.org does not match the name itself
        ("https://hooks.example.com.evil.net/", "hooks.example.com.evil.net:443"),
        ("http://[::1]:8080/", "[::1]:8080"),
        ("ftp://hooks.example.com/x", "only http:// and https://"),
        ("http://user:pw@hooks.example.com/", "user name or password"),
        ("https://hooks.example.com/#x", "#fragment"),
        ("not a url", "only http:// and https://"),
        ("http://hooks.example.com/" + "x" * 2048, "2048"),
    ],
)
async def test_a_url_outside_webhook_hosts_is_refused_and_nothing_stored(
    http: httpx.AsyncClient, url: str, names: str
) -> None:
    refusals = [
        await http.post("/api/jobs", json={"type": "echo", "callbackUrl": url}),
        await http.post("/api/webhooks", json={"url": url}),
        await http.post("/api/v1/run/search/jobs", json={"app": "firefox", "callback_url": url}),
        await http.post("/api/v1/run/sources/sync", json={"callback_url": url}),
    ]

    for response in refusals:
        if len(url) > 2048:  # over the documented length: refused by the body's own rules
            assert_error(response, 400, "INVALID_REQUEST")
        else:
            assert names in assert_error(response, 400, "WEBHOOK_REFUSED")
    assert (await http.get("/api/jobs")).json()["jobs"] == []
    assert (await http.get("/api/webhooks")).json()["webhooks"] == []


async def test_without_webhook_hosts_webhooks_are_off(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/jobs", json={"type": "echo", "callbackUrl": "https://hooks.example.com/"})

    assert "Webhooks are off" in assert_error(response, 400, "WEBHOOK_REFUSED")
    assert (await client.get("/api/jobs")).json()["jobs"] == []


async def test_a_url_is_checked_again_when_it_is_sent(hooked: ServerProcess, http: httpx.AsyncClient) -> None:
    """A job made from Python (whose callback nobody checked) to a metadata address: its delivery
    fails at once, and no request leaves."""
    job = await create(http, "echo")  # to learn the name of this test's workspace
    store = open_store(hooked.database)
    await store.open(migrate=False)
    try:
        (made,) = await store.enqueue(
            [
                NewJob(
                    id=new_id(),
                    workspace=job["workspaceId"],
                    kind="echo",
                    title="Echo",
                    max_attempts=1,
                    callback_url="http://169.254.169.254/latest/meta-data/",
                )
            ]
        )
    finally:
        await store.close()
    await wait_done(http, made.id)

    (delivery,) = await settled(http, 1)

    assert (delivery["status"], delivery["attempts"], delivery["lastStatusCode"]) == ("failed", 1, None)
    assert "169.254.169.254" in delivery["lastError"]
    assert "is not allowed" in delivery["lastError"]


async def test_addresses_are_held_to_the_rules_after_resolution() -> None:
    anywhere = HostPolicy.of(["*"])
    named = HostPolicy.of(["localhost", "169.254.169.254:80"])

    with pytest.raises(WebhookRefused, match=r"127\.0\.0\.1, which is not public"):
        await anywhere.resolve(anywhere.check("http://localhost:9/"))  # `*` reaches public hosts only
    assert str(await named.resolve(named.check("http://localhost:9/"))) in {"127.0.0.1", "::1"}
    with pytest.raises(WebhookRefused, match="link-local"):
        anywhere.check("http://169.254.169.254/")
    with pytest.raises(WebhookRefused, match="link-local"):
        anywhere.check("http://[::ffff:169.254.169.254]/")  # the same address, written as IPv6
    assert str(await named.resolve(named.check("http://169.254.169.254/"))) == "169.254.169.254"
    with pytest.raises(WebhookRefused, match="not allowed"):
        named.check("http://169.254.169.254:8080/")  # listed for port 80 only
    with pytest.raises(WebhookRefused, match="off on this server"):
        HostPolicy.of([]).check("https://hooks.example.com/")


# -- the API ------------------------------------------------------------------------------------------


async def test_subscriptions_are_made_listed_and_deleted(http: httpx.AsyncClient, receiver: Receiver) -> None:
    response = await http.post("/api/webhooks", json={"url": "https://hooks.example.com/a", "events": ["job.failed"]})
    assert response.status_code == 201
    created = response.json()
    webhook = created["webhook"]
    assert response.headers["location"] == f"/api/webhooks/{webhook['id']}"
    assert (webhook["url"], webhook["events"], webhook["types"]) == (
        "https://hooks.example.com/a",
        ["job.failed"],
        None,
    )
    assert created["secret"].startswith("whsec_")
    second = (await subscribe(http, "https://x.example.org/b", types=["echo", "boom"]))["webhook"]

    listed = (await http.get("/api/webhooks")).json()["webhooks"]
    assert listed == [webhook, second]
    assert "secret" not in json.dumps(listed)
    assert (await http.get(f"/api/webhooks/{webhook['id']}")).json() == {"webhook": webhook}

    deleted = await http.delete(f"/api/webhooks/{webhook['id']}")
    assert deleted.json() == {"success": True, "webhook": webhook}
    assert_error(await http.delete(f"/api/webhooks/{webhook['id']}"), 404, "WEBHOOK_NOT_FOUND")
    assert_error(await http.get(f"/api/webhooks/{webhook['id']}"), 404, "WEBHOOK_NOT_FOUND")
    assert_error(await http.delete("/api/webhooks/not-an-id"), 404, "WEBHOOK_NOT_FOUND")
    assert (await http.get("/api/webhooks")).json()["webhooks"] == [second]


async def test_deleting_a_subscription_ends_its_pending_deliveries(http: httpx.AsyncClient, receiver: Receiver) -> None:
    receiver.down = True
    webhook = (await subscribe(http, receiver.url))["webhook"]
    job = await create(http, "echo")
    await wait_done(http, job["id"])
    await eventually(lambda: receiver.seen(), "a first attempt")

    await http.delete(f"/api/webhooks/{webhook['id']}")

    (delivery,) = await settled(http, 1)
    assert (delivery["status"], delivery["lastError"], delivery["webhookId"]) == (
        "failed",
        "the webhook was deleted",
        webhook["id"],
    )


@pytest.mark.parametrize(
    ("body", "code", "names"),
    [
        ({"url": "https://hooks.example.com/", "events": ["job.done"]}, "INVALID_REQUEST", "events"),
        ({"url": "https://hooks.example.com/", "events": []}, "INVALID_REQUEST", "events"),
        ({"url": "https://hooks.example.com/", "types": []}, "INVALID_REQUEST", "types"),
        ({"url": "https://hooks.example.com/", "types": ["nope"]}, "UNKNOWN_JOB_TYPE", "nope"),
        ({"url": "https://hooks.example.com/", "secret": "mine"}, "INVALID_REQUEST", "secret"),
        ({"url": 5}, "INVALID_REQUEST", "url"),
        ({}, "INVALID_REQUEST", "url"),
    ],
)
async def test_bad_subscriptions_are_400_naming_the_field(
    http: httpx.AsyncClient, body: dict[str, Any], code: str, names: str
) -> None:
    assert names in assert_error(await http.post("/api/webhooks", json=body), 400, code)
    assert (await http.get("/api/webhooks")).json()["webhooks"] == []


async def test_a_workspace_has_at_most_25_subscriptions(http: httpx.AsyncClient) -> None:
    for n in range(25):
        await subscribe(http, f"https://hooks.example.com/{n}")

    response = await http.post("/api/webhooks", json={"url": "https://hooks.example.com/26"})

    assert "already has 25 webhooks" in assert_error(response, 400, "INVALID_REQUEST")


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"status": "done"}, "status"),
        ({"jobId": "nope"}, "jobId"),
        ({"webhookId": "nope"}, "webhookId"),
        ({"limit": "0"}, "limit"),
        ({"cursor": "garbage"}, "cursor"),
    ],
)
async def test_bad_delivery_log_parameters_are_400(http: httpx.AsyncClient, params: dict[str, str], names: str) -> None:
    assert names in assert_error(await http.get("/api/webhooks/deliveries", params=params), 400, "INVALID_REQUEST")


async def test_the_delivery_log_pages_and_filters(http: httpx.AsyncClient, receiver: Receiver) -> None:
    webhook = (await subscribe(http, receiver.url))["webhook"]
    jobs = [await create(http, "echo", callbackUrl=receiver.url) for _ in range(3)]
    for job in jobs:
        await wait_done(http, job["id"])
    everything = await settled(http, 6)

    pages: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = (
            await http.get("/api/webhooks/deliveries", params={"limit": 4, **({"cursor": cursor} if cursor else {})})
        ).json()
        pages += page["deliveries"]
        if (cursor := page["nextCursor"]) is None:
            break
    assert pages == everything
    assert [d["createdAt"] for d in everything] == sorted((d["createdAt"] for d in everything), reverse=True)
    mine = await deliveries(http, jobId=jobs[1]["id"])
    assert {d["jobId"] for d in mine} == {jobs[1]["id"]}
    assert len(mine) == 2
    assert {d["jobId"] for d in await deliveries(http, webhookId=webhook["id"])} == {j["id"] for j in jobs}
    assert await deliveries(http, status="failed") == []


async def test_another_workspaces_webhooks_and_deliveries_are_404(
    hooked: ServerProcess, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    webhook = (await subscribe(http, receiver.url))["webhook"]
    job = await create(http, "echo")
    await wait_done(http, job["id"])
    await settled(http, 1)

    async with api_client(hooked.url, {"Authorization": f"Bearer {await hooked.new_key()}"}) as other:
        assert_error(await other.get(f"/api/webhooks/{webhook['id']}"), 404, "WEBHOOK_NOT_FOUND")
        assert_error(await other.delete(f"/api/webhooks/{webhook['id']}"), 404, "WEBHOOK_NOT_FOUND")
        assert_error(await other.get(f"/api/jobs/{job['id']}/deliveries"), 404, "JOB_NOT_FOUND")
        assert await deliveries(other, jobId=job["id"]) == []
        assert await deliveries(other) == []
        assert (await other.get("/api/webhooks")).json()["webhooks"] == []
        assert (await other.get("/api/webhooks/secret")).json()["secret"] != (
            await http.get("/api/webhooks/secret")
        ).json()["secret"]
    assert len((await http.get("/api/webhooks")).json()["webhooks"]) == 1


# -- a crash loses nothing ----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
async def test_deliveries_owed_by_a_server_killed_with_sigkill_are_all_sent_by_the_next(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path, machine: Machine, receiver: Receiver
) -> None:
    database = backend_url(request, backend, tmp_path / "jobhouse.db")
    receiver.down = True
    first = start_server(database, machine, env=WEBHOOK_SETTINGS)
    try:
        key = await first.new_key()
        async with api_client(first.url, {"Authorization": f"Bearer {key}"}) as client:
            created = await subscribe(client, receiver.url)
            jobs = [await create(client, "echo", callbackUrl=receiver.url) for _ in range(10)]
            for job in jobs:
                await wait_done(client, job["id"])
            owed = await deliveries(client)
            assert len(owed) == 2 * len(jobs)
            ids = {d["id"] for d in owed}
            await eventually(lambda: ids <= {r.delivery for r in receiver.seen()}, "a failed attempt at each")
            secret = (await client.get("/api/webhooks/secret")).json()["secret"]
        receiver.holding = True  # the next sends hang, in flight, until the server is gone
        await eventually(lambda: any(r.status is None for r in receiver.seen()), "a send in flight")
        first.signal(signal.SIGKILL)
        first.process.wait(10)
    finally:
        first.stop()
    assert not {r.delivery for r in receiver.delivered()}  # nothing was delivered before the kill
    with receiver.lock:
        receiver.down = receiver.holding = False
    receiver.released.set()

    with running_server(database, machine, env=WEBHOOK_SETTINGS) as second:
        async with api_client(second.url, {"Authorization": f"Bearer {key}"}) as client:
            log = await settled(client, len(ids), timeout=45)

    landed = receiver.delivered()
    assert {d["status"] for d in log} == {"delivered"}
    assert set(landed) == ids  # every delivery landed, and nothing else did
    secrets = {None: secret, created["webhook"]["id"]: created["secret"]}
    by_id = {d["id"]: d for d in log}
    for delivery, receipts in landed.items():
        assert {r.body for r in receipts} == {receipts[0].body}  # a duplicate is the same delivery
        assert all(verify(secrets[by_id[delivery]["webhookId"]], r.signature, r.body) for r in receipts)
    held = {r.delivery for r in receiver.seen() if r.status is None}
    assert held <= ids


async def test_a_stopping_process_hands_back_the_deliveries_it_is_sending(tmp_path: Path, receiver: Receiver) -> None:
    """On shutdown, sends in flight are abandoned and their deliveries made due again at once (the
    attempt not counted), rather than left to wait out their lease."""
    settings = Settings(
        database=f"sqlite:///{tmp_path}/db.sqlite",
        webhook_hosts=("127.0.0.1",),
        webhook_lease=600,
        heartbeat=0.2,
        poll_interval=0.1,
        refresh_interval=0.1,
        scan_workers=0,
    )
    runtime = Runtime(settings, registry=kinds.jobs, sources=[])
    await runtime.open()
    try:
        stop = asyncio.Event()
        running = asyncio.create_task(runtime.run(stop, workers=True))
        receiver.holding = True
        job = await runtime.queue.enqueue("echo", workspace="ws", callback_url=receiver.url)
        await eventually(lambda: receiver.seen(), "a send in flight")

        stop.set()
        await running

        (delivery,) = (await runtime.store.webhooks.deliveries(DeliveryQuery("ws", job_id=job.id))).deliveries
        assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 0)
        assert delivery.next_at <= runtime.store.clock.now()  # due again now, not in ten minutes
    finally:
        await runtime.close()
