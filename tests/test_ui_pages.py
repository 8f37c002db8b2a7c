"""The dashboard beyond the jobs table, in headless Chromium against real servers: the search,
sources and overview pages; what a newcomer sees after the README's tour; accessibility (names,
keyboard, contrast, reduced motion) and a phone-sized screen; 500 jobs changing at once."""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.beacon import Beacon
from tests.browser import DESKTOP, STEPS_SEEN, UI, watched
from tests.kinds import SEED_STEPS
from tests.readme import other_port, run_tour, serve_script
from tests.servers import Machine, ServerProcess, running_server

playwright_api = pytest.importorskip("playwright.async_api")
expect = playwright_api.expect

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]

#: Every control with a name a screen reader can say, and every piece of text readable against what
#: is behind it (WCAG AA: 4.5:1, or 3:1 for large text). Returns what fails, as text.
AUDIT = """() => {
  const problems = [];
  const named = (el) =>
    [...(el.labels || [])].map((l) => l.textContent).join(" ").trim() ||
    (el.getAttribute("aria-label") || "").trim() ||
    (["A", "BUTTON"].includes(el.tagName) ? el.textContent.trim() : "");
  for (const el of document.querySelectorAll("input, select, textarea, button, progress, a[href]")) {
    if (!el.closest("[hidden]") && !named(el)) problems.push("no name: " + el.outerHTML.slice(0, 80));
  }
  const rgb = (c) => c.match(/[\\d.]+/g).map(Number);
  const lum = (c) => {
    const [r, g, b] = c.slice(0, 3).map((v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4));
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const behind = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length < 4 || c[3] > 0) return c;
    }
    return [255, 255, 255];
  };
  const texts = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const seen = new Set();
  while (texts.nextNode()) {
    const el = texts.currentNode.parentElement;
    if (!texts.currentNode.textContent.trim() || seen.has(el)) continue;
    seen.add(el);
    if (!el.getClientRects().length || el.closest(".visually-hidden, .skip, progress")) continue;
    const style = getComputedStyle(el);
    const [hi, lo] = [lum(rgb(style.color)), lum(behind(el))].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) problems.push(`contrast ${ratio.toFixed(2)}: ${el.textContent.trim().slice(0, 40)}`);
  }
  return problems;
}"""

#: Records, from now on, the gap between animation frames, long tasks (over 50 ms on the page's main
#: thread), the most rows the jobs table held and the most elements the document held.
MEASURE = """() => {
  const m = (window.__measure = { gaps: [], longTasks: [], maxRows: 0, maxElements: 0, running: true });
  let last = performance.now();
  const frame = (now) => {
    m.gaps.push(now - last);
    last = now;
    m.maxRows = Math.max(m.maxRows, document.querySelectorAll("table.jobs tbody tr").length);
    m.maxElements = Math.max(m.maxElements, document.getElementsByTagName("*").length);
    if (m.running) requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) m.longTasks.push(entry.duration);
  }).observe({ type: "longtask" });
}"""


async def run_search(ui: UI, app: str) -> str:
    """Start a search for `app` from the search page; wait for its end; the search job's id."""
    page = ui.page
    await page.get_by_label("Application", exact=True).fill(app)
    await page.get_by_role("button", name="Search").click()
    await expect(page.locator(".search-status")).to_contain_text("done", timeout=30_000)
    href = await page.locator(".search-status a").get_attribute("href")
    assert href is not None
    assert href.startswith("#/jobs/")
    return href.removeprefix("#/jobs/")


# -- the pages ------------------------------------------------------------------------------------


async def test_a_search_started_from_its_page_shows_the_ranked_candidates(ui: UI) -> None:
    await ui.sign_in("#/search")
    job_id = await run_search(ui, "firefox")
    async with ui.api() as client:
        answer = (await client.get(f"/api/v1/run/jobs/{job_id}")).json()
    ranked = [c["app"] for c in answer["result"]["candidates"]]
    assert ranked
    assert ranked[0] == "firefox"
    shown = ui.page.locator("table.candidates tbody tr td:nth-child(3)")
    await expect(shown).to_have_text(ranked)
    await expect(ui.page.get_by_role("heading", level=2)).to_contain_text(f"{len(ranked)} candidate")


async def test_sources_show_their_last_sync_and_counts_and_a_sync_runs_live(ui: UI) -> None:
    await ui.sign_in("#/sources")
    async with ui.api() as client:
        before = (await client.get("/api/v1/run/sources")).json()["sources"]
    rows = ui.page.locator("table.sources tbody tr")
    await expect(rows).to_have_count(len(before))
    await ui.page.get_by_role("button", name="Sync all sources").click()
    line = ui.page.locator(".syncs .sync").first
    await expect(line).to_contain_text("completed", timeout=30_000)
    await expect(line.locator("progress")).to_have_attribute("value", "100")
    async with ui.api() as client:
        after = (await client.get("/api/v1/run/sources")).json()["sources"]
    assert all(source["synced_at"] for source in after)
    for source in after:  # the table is read again once the sync ends
        row = ui.page.locator(f'tr[data-source="{source["id"]}"]')
        await expect(row.locator("td").nth(1)).to_have_text(str(source["candidate_count"]))
        await expect(row.locator("td").first).not_to_have_text("never")


async def test_the_overview_counts_by_kind_and_ages_the_oldest_queued_job_live(ui: UI) -> None:
    async with Beacon() as beacon:
        held = [await ui.create(type="solo", input={"beacon": beacon.address}) for _ in range(3)]
        await beacon.seen(f"started {held[0]['id']}")
        await ui.create(type="boom")
        await ui.sign_in("#/overview")
        solo = ui.page.locator('tr[data-kind="solo"]')
        await expect(solo.locator("td.queued")).to_have_text("2")
        await expect(solo.locator("td.running")).to_have_text("1")
        await expect(ui.page.locator('tr[data-kind="boom"] td.failed')).to_have_text("1")
        await expect(ui.page.locator(".oldest")).to_contain_text("solo")
        for job in held:  # each ends, the next starts: the counts follow without a reload
            await beacon.seen(f"started {job['id']}")
            beacon.release(job["id"])
        await expect(solo.locator("td.queued")).to_have_text("0")
        await expect(solo.locator("td.running")).to_have_text("0")
        await expect(ui.page.locator(".oldest")).to_contain_text("none queued")
        await ui.create(type="boom")
        await expect(ui.page.locator('tr[data-kind="boom"] td.failed')).to_have_text("2")
    assert await ui.same_page()


# -- a newcomer -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("bootstrapped")
async def test_after_the_readme_tour_a_newcomer_sees_its_jobs_searches_and_watches_one_end(
    browser: Any, tmp_path: Path
) -> None:
    """The README's run command and tour as written; then /ui, signed in with the tour's key."""
    server = await asyncio.to_thread(serve_script, tmp_path, "--port", str(other_port()))
    try:
        result, key = await asyncio.to_thread(run_tour, server, tmp_path)
        assert result.returncode == 0, result.stderr
        async with watched(browser, server, key, viewport=DESKTOP) as ui:
            page = ui.page
            await page.goto(f"{server.url}/ui")
            await page.get_by_label("API key").fill(key)
            await page.keyboard.press("Enter")
            rows = page.locator("tbody tr")
            await expect(rows.locator("td:nth-child(2)")).to_have_text(["collect", "collect", "search-resolve"])
            await expect(rows.locator("td:nth-child(3)")).to_have_text(["cancelled", "completed", "completed"])
            await page.get_by_role("link", name="Search").click()
            await run_search(ui, "python3")
            await expect(page.locator("table.candidates tbody tr td:nth-child(3)").first).to_have_text("python3")
            await page.get_by_role("link", name="Jobs").click()
            await expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
            await page.evaluate(STEPS_SEEN)
            async with ui.api() as client:  # the tour's first job again: four steps of a second
                made = await client.post("/api/jobs", json={"type": "collect", "input": {"seconds_per_step": 1}})
            job_id = made.json()["job"]["id"]
            row = ui.row(job_id)
            await expect(row).to_have_attribute("data-status", "completed", timeout=15_000)
            seen = await page.evaluate(f"window.__steps[{json.dumps(job_id)}]")
            # The steps in their order, never back; a loaded machine may have passed the first before
            # the new row was read.
            order = [name for _, name in SEED_STEPS]
            shown = [order.index(step) for step in seen if step not in ("", "—")]
            assert shown == sorted(set(shown)), seen
            assert shown[-2:] == [2, 3], seen
            await row.get_by_role("link").click()
            steps = page.locator("ol.timeline .step-status")
            await expect(steps).to_have_text(["completed"] * 4)
    finally:
        server.stop()


# -- accessibility and small screens ----------------------------------------------------------------


async def visit_every_page(ui: UI) -> AsyncIterator[str]:
    """Sign in, then open each page in turn (a job's page on a finished job); yields each route."""
    job = await ui.create(type="echo", displayTitle="An echo", competitorId="acme")
    async with ui.api() as client:
        await client.get(f"/api/jobs/{job['id']}?wait=done&timeout_ms=10000")
    yield "sign-in"
    await ui.sign_in()
    pages = {"jobs": "Jobs", f"jobs/{job['id']}": "An echo", "search": "Search", "sources": "Sources"}
    for route, heading in (pages | {"overview": "Overview"}).items():
        await ui.page.evaluate(f"location.hash = {json.dumps('#/' + route)}")
        await expect(ui.page.get_by_role("heading", level=1)).to_have_text(heading)
        await expect(ui.page.locator("main table, main dl, main form:visible").first).to_be_visible()
        yield route


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_every_control_has_a_name_and_every_text_enough_contrast(
    browser: Any, ui_server: ServerProcess, scheme: str
) -> None:
    """On every page, in the light and the dark colours (as the system asks)."""
    async with watched(browser, ui_server, await ui_server.new_key(), color_scheme=scheme) as ui:
        await ui.page.goto(f"{ui.server.url}/ui")
        found = {}
        async for route in visit_every_page(ui):
            if route == "search":
                await run_search(ui, "firefox")  # the candidates table too
            found[route] = await ui.page.evaluate(AUDIT)
    assert found == {key: [] for key in found}


async def test_every_page_fits_a_phone_screen(ui: UI) -> None:
    await ui.page.goto(f"{ui.server.url}/ui")
    wide = {}
    async for route in visit_every_page(ui):
        # Nothing wider than the screen (wide tables scroll inside their own box), and every
        # control big enough for a finger (WCAG's 24 px).
        wide[route] = await ui.page.evaluate("""() => [
            document.documentElement.scrollWidth - window.innerWidth,
            ...[...document.querySelectorAll("button, input, select")]
              .filter((el) => el.getClientRects().length && el.getBoundingClientRect().height < 24)
              .map((el) => el.outerHTML.slice(0, 60)),
        ]""")
    assert wide == {key: [0] for key in wide}


async def test_everything_can_be_done_from_the_keyboard(ui: UI) -> None:
    page = ui.page
    job = await ui.create(type="echo", displayTitle="By keyboard")
    await page.goto(f"{ui.server.url}/ui")
    await page.keyboard.type(ui.key)  # the key field has the focus
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    await expect(ui.row(job["id"])).to_be_visible()
    assert await page.evaluate("document.activeElement.textContent") == "Jobs"  # the new page's heading
    skip = page.get_by_role("link", name="Skip to content")  # first in the tab order, shown when focused
    await skip.focus()
    box = await skip.bounding_box()
    assert box is not None
    assert box["x"] >= 0
    assert box["y"] >= 0
    await page.keyboard.press("Enter")
    assert await page.evaluate("[document.activeElement.id, location.hash]") == ["main", "#/jobs"]
    for _ in range(30):  # on through the filters to the job's link
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.textContent") == "By keyboard":
            break
    else:
        pytest.fail("the job's link was never reached with Tab")
    assert await page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", level=1)).to_have_text("By keyboard")
    assert await page.evaluate("document.activeElement.tagName") == "H1"  # focus follows to the new page


@pytest.mark.parametrize(("motion", "transition"), [("reduce", "0s"), ("no-preference", "0.2s")])
async def test_progress_bars_move_without_animation_when_motion_is_reduced(
    browser: Any, ui_server: ServerProcess, motion: str, transition: str
) -> None:
    async with watched(browser, ui_server, await ui_server.new_key(), reduced_motion=motion) as ui:
        job = await ui.create(type="echo", displayTitle="Still")
        await ui.sign_in()
        bar = ui.row(job["id"]).locator("progress")
        await expect(bar).to_be_visible()
        assert await bar.evaluate("(el) => getComputedStyle(el).transitionDuration") == transition


# -- load -----------------------------------------------------------------------------------------


@pytest.mark.timeout(180)  # its server is niced: beside other heavy tests it may take a while
async def test_500_jobs_changing_at_once_keep_the_table_responsive(
    browser: Any, tmp_path: Path, machine: Machine
) -> None:
    """500 jobs run at once (each through four steps of 0.2 s) while two tables watch: one showing
    all 500, one a page of 25. Measured in the browser: the gaps between frames and the long tasks
    (the page stays responsive), and the rows and elements (the DOM stays bounded)."""
    # The server runs niced: its burst of 500 jobs must not starve the tests running beside this one.
    serve = [sys.executable, "-m", "jobhouse", "serve", "--app", "tests.ui_kinds:jobs", "--concurrency", "500"]
    with running_server(tmp_path / "db.sqlite", machine, command=["nice", "-n", "10", *serve]) as server:
        key = await server.new_key()
        async with (
            watched(browser, server, key, viewport=DESKTOP) as everything,
            watched(browser, server, key, viewport=DESKTOP) as paged,
        ):
            await everything.sign_in("#/jobs?limit=500")
            await paged.sign_in("#/jobs")
            for ui in (everything, paged):
                await expect(ui.page.locator("#connection")).to_contain_text("Live")
                await ui.page.evaluate(MEASURE)
            async with httpx.AsyncClient(base_url=server.url, headers={"X-API-Key": key}) as client:
                gate = asyncio.Semaphore(50)

                async def create(n: int) -> None:
                    async with gate:
                        made = await client.post("/api/jobs", json={"type": "ticker", "displayTitle": f"tick {n}"})
                        assert made.status_code == 202, made.text

                await asyncio.gather(*(create(n) for n in range(500)))
            done = everything.page.locator('table.jobs tbody tr[data-status="completed"]')
            await expect(done).to_have_count(500, timeout=90_000)
            await expect(paged.page.locator('table.jobs tbody tr[data-status="completed"]')).to_have_count(25)
            measured = [
                await ui.page.evaluate("() => { window.__measure.running = false; return window.__measure; }")
                for ui in (everything, paged)
            ]
            elements = await everything.page.evaluate("document.getElementsByTagName('*').length")
    for name, m in zip(("500 rows", "25 rows"), measured, strict=True):
        gaps = sorted(m["gaps"])
        print(
            f"{name}: {len(gaps)} frames, gap median {statistics.median(gaps):.1f} ms, "
            f"p95 {gaps[int(len(gaps) * 0.95)]:.1f} ms, max {gaps[-1]:.1f} ms; "
            f"{len(m['longTasks'])} long tasks, longest {max(m['longTasks'], default=0):.0f} ms; "
            f"most rows {m['maxRows']}, most elements {m['maxElements']}"
        )
        assert gaps[int(len(gaps) * 0.95)] < 100, "more than 5% of frames took over 100 ms"
        assert max(m["longTasks"], default=0) < 500
    assert measured[0]["maxRows"] == 500
    assert measured[1]["maxRows"] == 25  # a page never grows past its size, however many jobs come
    assert measured[0]["maxElements"] <= elements + 50  # rows are updated in place, not added
