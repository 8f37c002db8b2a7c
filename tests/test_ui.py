"""The web dashboard (`/ui`) in headless Chromium, driven by Playwright, against a real server.

Debian's `chromium` is used through its executable path (no browser download). Without it the
tests skip with a reason, except with CI=true, where they fail. Every page a test opens is
watched for console errors, uncaught exceptions and Content-Security-Policy violations.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from jobhouse.api.ui import CSP
from tests.beacon import Beacon
from tests.faultproxy import FaultProxy
from tests.kinds import SEED_STEPS
from tests.servers import Machine, ServerProcess, running_server, start_server

playwright_api = pytest.importorskip("playwright.async_api")

# About 20 s on two workers (a server, Chromium, and a second server for the restart): slow.
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]

#: Runs before the page's own scripts (and outside its CSP): records every CSP violation.
WATCH_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(e.violatedDirective + " " + e.blockedURI);
});
"""
PHONE = {"width": 390, "height": 844}
SHIPPED = Path(__file__).resolve().parent.parent / "src" / "jobhouse" / "ui"


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        reason = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory, machine: Machine) -> Iterator[ServerProcess]:
    db = tmp_path_factory.mktemp("ui") / "jobhouse.db"
    with running_server(db, machine, args=["--app", "tests.ui_kinds:jobs"]) as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Any]:
    executable = chromium()
    async with playwright_api.async_playwright() as p:
        launched = await p.chromium.launch(executable_path=executable)
        yield launched
        await launched.close()


@dataclass
class UI:
    page: Any
    server: ServerProcess
    key: str
    problems: list[str] = field(default_factory=list)
    #: Console errors a test provokes on purpose (e.g. the 401 of a wrong key), by a part of their text.
    expected: list[str] = field(default_factory=list)

    def api(self, key: str | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.server.url, headers={"Authorization": f"Bearer {key or self.key}"})

    async def create(self, key: str | None = None, **job: Any) -> dict[str, Any]:
        async with self.api(key) as client:
            response = await client.post("/api/jobs", json=job)
            assert response.status_code == 202, response.text
            created: dict[str, Any] = response.json()["job"]
            return created

    async def sign_in(self, route: str = "#/jobs") -> None:
        await self.page.goto(f"{self.server.url}/ui{route}")
        await self.page.get_by_label("API key").fill(self.key)
        await self.page.get_by_role("button", name="Sign in").click()
        await self.page.locator("#nav").wait_for(state="visible")
        # Set once: a reload would lose it.
        await self.page.evaluate("window.__same_page = true")

    def row(self, job_id: str) -> Any:
        return self.page.locator(f'tr[data-id="{job_id}"]')

    async def same_page(self) -> bool:
        return bool(await self.page.evaluate("window.__same_page === true"))


@pytest_asyncio.fixture(loop_scope="module")
async def ui(browser: Any, ui_server: ServerProcess) -> AsyncIterator[UI]:
    context = await browser.new_context(viewport=PHONE)
    await context.add_init_script(WATCH_CSP)
    page = await context.new_page()
    page.set_default_timeout(10_000)
    session = UI(page, ui_server, await ui_server.new_key())
    page.on("console", lambda m: session.problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: session.problems.append(f"uncaught: {e}"))
    yield session
    violations = await page.evaluate("window.__csp")
    await context.close()
    assert violations == []
    unexpected = [p for p in session.problems if not any(e in p for e in session.expected)]
    assert unexpected == []


async def test_ui_is_served_with_a_strict_policy_and_needs_no_key(ui_server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=ui_server.url) as client:
        page = await client.get("/ui")
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert page.headers["content-security-policy"] == CSP
        assert page.headers["x-content-type-options"] == "nosniff"
        assert '<script type="module" src="/ui/app.js">' in page.text
        script = await client.get("/ui/app.js")
        assert script.status_code == 200
        assert script.headers["content-type"].startswith("text/javascript")
        assert script.headers["content-security-policy"] == CSP
        missing = await client.get("/ui/secrets.txt")
        assert missing.status_code == 404
        assert missing.json()["error_code"] == "NOT_FOUND"
    # No inline script or style anywhere in what is shipped, and no markup made from strings.
    html = (SHIPPED / "index.html").read_text()
    for inline in ("style=", "<style", "<script>", " on"):
        assert inline not in html
    for module in SHIPPED.glob("*.js"):
        assert "innerHTML" not in module.read_text(), module.name


async def test_ui_off_is_a_404(tmp_path: Path) -> None:
    with running_server(tmp_path / "db.sqlite", args=["--no-workers"], env={"JOBHOUSE_UI": "false"}) as server:
        async with httpx.AsyncClient() as client:
            answer = await client.get(server.url + "/ui")
        assert answer.status_code == 404
        assert answer.json()["error_code"] == "NOT_FOUND"


async def test_sign_in_keeps_the_key_in_session_storage_and_signs_out(ui: UI) -> None:
    page = ui.page
    ui.expected.append("401")
    await page.goto(f"{ui.server.url}/ui")
    await page.get_by_label("API key").fill("jh_wrong_key")
    await page.get_by_role("button", name="Sign in").click()
    await playwright_api.expect(page.get_by_role("alert")).to_contain_text("not accepted")
    await ui.sign_in()
    await playwright_api.expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    assert await page.evaluate("sessionStorage.getItem('jobhouse.key')") == ui.key
    assert await page.evaluate("localStorage.length") == 0
    assert ui.key not in page.url
    await page.get_by_role("button", name="Sign out").click()
    await playwright_api.expect(page.get_by_label("API key")).to_be_visible()
    assert await page.evaluate("sessionStorage.getItem('jobhouse.key')") is None


async def test_a_four_step_job_moves_live_to_completed_without_a_reload(ui: UI) -> None:
    await ui.sign_in()
    async with Beacon() as beacon:
        job = await ui.create(type="stepwise", displayTitle="Four steps", input={"beacon": beacon.address})
        row = ui.row(job["id"])
        await playwright_api.expect(row).to_be_visible()  # a new job reaches the first page by itself
        seen = []
        for step_id, name in SEED_STEPS:
            await beacon.seen(f"at {step_id} {job['id']}")
            await playwright_api.expect(row.locator("td.step")).to_have_text(name)
            seen.append(int(await row.get_attribute("data-progress") or "0"))
            beacon.release(f"{job['id']} {step_id}")
        await playwright_api.expect(row).to_have_attribute("data-status", "completed")
        await playwright_api.expect(row.locator("progress")).to_have_attribute("value", "100")
    assert seen == sorted(seen)
    assert seen[-1] < 100
    assert await ui.same_page()


async def test_cancel_a_running_job_from_its_page(ui: UI) -> None:
    await ui.sign_in()
    async with Beacon() as beacon:
        job = await ui.create(type="hold", displayTitle="Hold me", input={"beacon": beacon.address})
        await beacon.seen(f"started {job['id']}")
        await ui.page.goto(f"{ui.server.url}/ui#/jobs/{job['id']}")
        await playwright_api.expect(ui.page.locator(".facts .status")).to_have_text("running")
        await ui.page.get_by_role("button", name="Cancel").click()
        await playwright_api.expect(ui.page.locator(".facts .status")).to_have_text("cancelled")
        await beacon.seen(f"interrupted {job['id']}")
        await playwright_api.expect(ui.page.get_by_role("button", name="Retry")).to_be_visible()
        await playwright_api.expect(ui.page.get_by_role("button", name="Cancel")).to_have_count(0)


async def test_filter_and_page(ui: UI) -> None:
    for n in range(3):
        await ui.create(type="echo", displayTitle=f"echo {n}", competitorId="acme")
    await ui.create(type="boom", displayTitle="boom 0", competitorId="acme")
    await ui.create(type="echo", displayTitle="other subject", competitorId="zeta")
    async with ui.api() as client:  # let them all end, so their status no longer moves
        for _ in range(100):
            jobs = (await client.get("/api/jobs?limit=10")).json()["jobs"]
            if all(j["status"] in ("completed", "failed") for j in jobs):
                break
            await client.get(f"/api/jobs/{jobs[0]['id']}?wait=done&timeout_ms=2000")
    page = ui.page
    await ui.sign_in("#/jobs?limit=2")
    await page.get_by_label("Type", exact=True).fill("echo")
    await page.get_by_label("Subject", exact=True).fill("acme")
    await page.get_by_role("button", name="Apply").click()
    titles = page.locator("tbody td.title")
    await playwright_api.expect(titles).to_have_text(["echo 2", "echo 1"])
    await page.get_by_role("button", name="Next").click()
    await playwright_api.expect(titles).to_have_text(["echo 0"])
    await playwright_api.expect(page.get_by_role("button", name="Next")).to_be_disabled()
    await page.get_by_role("button", name="Previous").click()
    await playwright_api.expect(titles).to_have_text(["echo 2", "echo 1"])
    await page.get_by_role("button", name="Clear").click()
    await page.get_by_label("Status", exact=True).select_option("failed")
    await page.get_by_role("button", name="Apply").click()
    await playwright_api.expect(titles).to_have_text(["boom 0"])
    assert "status=failed" in page.url


async def test_markup_in_a_title_is_shown_as_text(ui: UI) -> None:
    title = '<script>window.__pwned = 1</script><img src="x" onerror="window.__pwned = 2">'
    job = await ui.create(type="echo", displayTitle=title, metadata={"note": "<b>bold</b>"})
    await ui.sign_in()
    await playwright_api.expect(ui.row(job["id"]).locator("td.title")).to_have_text(title)
    await ui.row(job["id"]).get_by_role("link").click()
    await playwright_api.expect(ui.page.get_by_role("heading", level=1)).to_have_text(title)
    await playwright_api.expect(ui.page.locator("pre.json").last).to_contain_text("<b>bold</b>")
    assert await ui.page.evaluate("window.__pwned") is None
    assert await ui.page.locator("main img, main script, main b").count() == 0


async def test_another_workspaces_jobs_never_appear(ui: UI) -> None:
    other = await ui.server.new_key()
    await ui.create(other, type="echo", displayTitle="theirs before")
    await ui.create(type="echo", displayTitle="ours before")
    await ui.sign_in()
    titles = ui.page.locator("tbody td.title")
    await playwright_api.expect(titles).to_have_text(["ours before"])
    await ui.create(other, type="echo", displayTitle="theirs live")
    await ui.create(type="echo", displayTitle="ours live")
    await playwright_api.expect(titles).to_have_text(["ours live", "ours before"])
    await ui.page.get_by_role("link", name="Overview").click()
    await playwright_api.expect(ui.page.locator("table.overview tbody")).not_to_contain_text("theirs")


async def retarget(proxy: FaultProxy, url: str) -> None:
    """Point `proxy` at another server (as a load balancer would after a node is replaced)."""
    old = proxy._upstream
    proxy.target = url
    proxy._upstream = httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(None, connect=10))
    if old is not None:
        await old.aclose()


async def test_the_page_keeps_working_across_a_server_restart(browser: Any, tmp_path: Path, machine: Machine) -> None:
    """The page talks to a proxy in front of an API node; the node stops (its job is handed back)
    and another starts on the same store: the page's stream reconnects, resumes with
    Last-Event-ID, and the row follows the job to its end without a reload."""
    db = tmp_path / "db.sqlite"
    args = ["--app", "tests.ui_kinds:jobs"]
    first = start_server(db, machine, args=args)
    context = await browser.new_context()
    await context.add_init_script(WATCH_CSP)
    page = await context.new_page()
    page.set_default_timeout(15_000)
    try:
        async with FaultProxy(first.url) as proxy, Beacon() as beacon:
            ui = UI(page, ServerProcess(proxy.url, first.database, first.process), await first.new_key())
            await ui.sign_in()
            await playwright_api.expect(page.locator("#connection")).to_contain_text("Live")
            job = await ui.create(type="stepwise", displayTitle="Across a restart", input={"beacon": beacon.address})
            row = ui.row(job["id"])
            await beacon.seen(f"at collect {job['id']}")
            await playwright_api.expect(row.locator("td.step")).to_have_text(SEED_STEPS[0][1])
            streams = proxy.hits["GET /api/jobs/events"]
            first.stop()
            second = start_server(db, machine, args=args)
            try:
                await retarget(proxy, second.url)
                for step_id, _ in SEED_STEPS:
                    await beacon.seen(f"at {step_id} {job['id']}", timeout=20)
                    beacon.release(f"{job['id']} {step_id}")
                await playwright_api.expect(row).to_have_attribute("data-status", "completed", timeout=15_000)
                assert proxy.hits["GET /api/jobs/events"] > streams  # it reconnected
                assert await ui.same_page()
            finally:
                second.stop()
        assert await page.evaluate("window.__csp") == []
    finally:
        first.stop()
        await context.close()
