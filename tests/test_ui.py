"""The web dashboard (`/ui`) in headless Chromium, driven by Playwright, against a real server: the
page and its policy, sign-in, live rows, cancel, filters and paging, escaping, workspaces, and a
server restart. The other pages, accessibility and load are in tests/test_ui_pages.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobhouse.api.ui import CSP
from tests.beacon import Beacon
from tests.browser import STEPS_SEEN, UI, watched
from tests.faultproxy import FaultProxy
from tests.kinds import SEED_STEPS
from tests.servers import Machine, ServerProcess, running_server, start_server

playwright_api = pytest.importorskip("playwright.async_api")
expect = playwright_api.expect

# About 20 s on two workers (a server, Chromium, and a second server for the restart): slow.
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]

SHIPPED = Path(__file__).resolve().parent.parent / "src" / "jobhouse" / "ui"


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


async def test_a_failed_jobs_page_shows_each_attempts_error_and_retries_it(ui: UI) -> None:
    job = await ui.create(type="boom", displayTitle="Fails twice")
    async with ui.api() as client:
        await client.get(f"/api/jobs/{job['id']}?wait=done&timeout_ms=10000")
    await ui.sign_in(f"#/jobs/{job['id']}")
    page = ui.page
    await expect(page.locator(".facts .status")).to_have_text("failed")
    attempts = page.locator("ol.attempts > li")
    await expect(attempts).to_have_count(1)
    await expect(attempts.first).to_contain_text("Attempt 1: failed (ValueError)")
    await expect(attempts.first.locator(".attempt-error")).to_contain_text("boom: the handler failed")
    await expect(page.locator("ol.timeline li")).to_have_text(["Exploding failed"])
    await page.get_by_role("button", name="Retry").click()
    await expect(attempts).to_have_count(2)  # the same job runs again, live on this page, and fails again
    await expect(attempts.nth(1)).to_contain_text("Attempt 2: failed (ValueError)")
    await expect(attempts.first).to_contain_text("Attempt 1: failed (ValueError)")
    await expect(page.get_by_role("button", name="Retry")).to_be_visible()
    assert await ui.same_page()


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
    filters = page.locator("details.filters-box")
    await expect(filters).not_to_have_attribute("open", "")  # folded on a phone-sized screen
    await page.get_by_text("Filters", exact=True).click()
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
    await expect(page.get_by_text("Filters (2 set)")).to_be_visible()  # set filters stay in view
    await page.get_by_role("button", name="Clear").click()
    await page.get_by_text("Filters", exact=True).click()
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


async def test_a_page_read_before_the_latest_events_never_sets_a_row_back(
    browser: Any, ui_server: ServerProcess
) -> None:
    """A job's row moves on from its events while a reading of the page, taken before, is on its
    way (held by a proxy): when that reading lands, the row keeps what the events said."""
    async with FaultProxy(ui_server.url) as proxy, Beacon() as beacon:
        fronted = ServerProcess(proxy.url, ui_server.database, ui_server.process)
        async with watched(browser, fronted, await ui_server.new_key()) as ui:
            await ui.sign_in()
            await ui.page.evaluate(STEPS_SEEN)
            job = await ui.create(type="stepwise", displayTitle="Moving on", input={"beacon": beacon.address})
            row = ui.row(job["id"])
            await beacon.seen(f"at collect {job['id']}")
            await expect(row.locator("td.step")).to_have_text(SEED_STEPS[0][1])
            proxy.add(method="GET", path="/api/jobs", action="hold-response")
            await ui.create(type="hold", displayTitle="New", input={"beacon": beacon.address})  # the page reads again
            await proxy.held()  # that reading has the first job at its first step
            beacon.release(f"{job['id']} collect")
            await beacon.seen(f"at ingest {job['id']}")
            await expect(row.locator("td.step")).to_have_text(SEED_STEPS[1][1])
            proxy.release()
            await expect(ui.page.locator("tbody td.title")).to_have_text(["New", "Moving on"])  # it landed
            await expect(row.locator("td.step")).to_have_text(SEED_STEPS[1][1])
            assert await ui.same_page()
            for step_id, _ in SEED_STEPS[1:]:
                beacon.release(f"{job['id']} {step_id}")
            await expect(row).to_have_attribute("data-status", "completed")
            seen = await ui.page.evaluate(f"window.__steps[{json.dumps(job['id'])}]")
    order = [name for _, name in SEED_STEPS]
    shown = [order.index(step) for step in seen if step not in ("", "—")]  # the last two may pass within a frame
    assert shown[:2] == [0, 1]
    assert shown == sorted(set(shown)), seen  # never back to an earlier step


async def test_the_page_keeps_working_across_a_server_restart(browser: Any, tmp_path: Path, machine: Machine) -> None:
    """The page talks to a proxy in front of an API node; the node stops (its job is handed back)
    and another starts on the same store: the page's stream reconnects, resumes with
    Last-Event-ID, and the row follows the job to its end without a reload."""
    db = tmp_path / "db.sqlite"
    args = ["--app", "tests.ui_kinds:jobs"]
    first = start_server(db, machine, args=args)
    second: ServerProcess | None = None
    try:
        async with FaultProxy(first.url) as proxy, Beacon() as beacon:
            fronted = ServerProcess(proxy.url, first.database, first.process)
            async with watched(browser, fronted, await first.new_key(), timeout=15_000) as ui:
                # The browser's own report of the stream the stopping node cut, and of reconnections refused.
                ui.expected += ["net::ERR_INCOMPLETE_CHUNKED_ENCODING", "net::ERR_EMPTY_RESPONSE"]
                await ui.sign_in()
                await playwright_api.expect(ui.page.locator("#connection")).to_contain_text("Live")
                title = "Across a restart"
                job = await ui.create(type="stepwise", displayTitle=title, input={"beacon": beacon.address})
                row = ui.row(job["id"])
                await beacon.seen(f"at collect {job['id']}")
                await playwright_api.expect(row.locator("td.step")).to_have_text(SEED_STEPS[0][1])
                streams = proxy.hits["GET /api/jobs/events"]
                first.stop()
                second = start_server(db, machine, args=args)
                await proxy.retarget(second.url)
                for step_id, _ in SEED_STEPS:
                    await beacon.seen(f"at {step_id} {job['id']}", timeout=20)
                    beacon.release(f"{job['id']} {step_id}")
                await playwright_api.expect(row).to_have_attribute("data-status", "completed", timeout=15_000)
                assert proxy.hits["GET /api/jobs/events"] > streams  # it reconnected
                assert await ui.same_page()
    finally:
        first.stop()
        if second is not None:
            second.stop()
