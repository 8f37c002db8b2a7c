"""Driving the dashboard (`/ui`) in Debian's headless Chromium with Playwright, for the UI tests.

Chromium is used through its executable path (no browser download). Without it a test skips with a
reason, except with CI=true, where it fails. Every page opened through `watched` is checked, when
the test ends, for console errors, uncaught exceptions and Content-Security-Policy violations.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.servers import ServerProcess

#: Runs before the page's own scripts (and outside its CSP): records every CSP violation.
WATCH_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(e.violatedDirective + " " + e.blockedURI);
});
"""
#: Records each job row's current step each time it changes (window.__steps[id]: the texts in order).
STEPS_SEEN = """() => {
  const seen = (window.__steps = {});
  new MutationObserver(() => {
    for (const cell of document.querySelectorAll("table.jobs tbody td.step")) {
      const texts = (seen[cell.parentElement.dataset.id] ??= []);
      if (texts.at(-1) !== cell.textContent) texts.push(cell.textContent);
    }
  }).observe(document.getElementById("main"), { subtree: true, childList: true, characterData: true });
}"""
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        reason = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@asynccontextmanager
async def launched() -> AsyncIterator[Any]:
    """A headless Chromium (playwright's async API is imported here, so that collecting the tests
    needs no browser)."""
    executable = chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=executable)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class UI:
    """A page of the dashboard, signed in (or about to be) with `key` on `server`."""

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


@asynccontextmanager
async def watched(
    browser: Any, server: ServerProcess, key: str, timeout: float = 10_000, **context: Any
) -> AsyncIterator[UI]:
    """A new browser context and page on `server`; when the block ends, no CSP violation and no
    console error or uncaught exception but those the test expected."""
    made = await browser.new_context(**({"viewport": PHONE} | context))
    await made.add_init_script(WATCH_CSP)
    page = await made.new_page()
    page.set_default_timeout(timeout)
    session = UI(page, server, key)
    page.on("console", lambda m: session.problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: session.problems.append(f"uncaught: {e}"))
    try:
        yield session
        violations = await page.evaluate("window.__csp")
    finally:
        await made.close()
    assert violations == [], violations
    unexpected = [p for p in session.problems if not any(e in p for e in session.expected)]
    assert unexpected == [], unexpected
