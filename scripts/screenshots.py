"""Take the dashboard's screenshots in docs/img again.

A server with the example kinds (examples/battlecard.py) on a store in a temporary directory, a few
jobs at different points of their run, and Debian's chromium through Playwright:

    .venv/bin/python scripts/screenshots.py
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
from playwright.async_api import Page, async_playwright

REPO = Path(__file__).resolve().parent.parent
IMG = REPO / "docs" / "img"
JOBHOUSE = [sys.executable, "-m", "jobhouse"]
#: (competitor, seconds per step): some end before the pictures, some are mid-way, one is cancelled.
DESKTOP, PHONE = {"width": 1200, "height": 560}, {"width": 390, "height": 760}
JOBS = [("Acme", 0.1), ("Globex", 0.2), ("Initech", 1.6), ("Umbrella", 2.5), ("Hooli", 4), ("Soylent", 30)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def shoot(page: Page, url: str, name: str, ready: str) -> None:
    await page.goto(url)
    await page.locator(ready).first.wait_for()
    await page.wait_for_timeout(300)  # let the last frame of live updates land
    await page.screenshot(path=str(IMG / name))
    print(f"docs/img/{name}")


def main() -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("Debian's chromium is needed: apt-get install chromium")
    with tempfile.TemporaryDirectory() as data:
        port = free_port()
        where = ["--data-dir", data]
        key = subprocess.run(
            [*JOBHOUSE, "keys", "create", "--workspace", "demo", *where], check=True, capture_output=True, text=True
        ).stdout.strip()
        serve = [*JOBHOUSE, "serve", "--app", "examples.battlecard:jobs", "--port", str(port), *where]
        server = subprocess.Popen(serve, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            asyncio.run(take(f"http://127.0.0.1:{port}", key, chromium))
        finally:
            server.terminate()
            server.wait(10)


async def take(base: str, key: str, chromium: str) -> None:
    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": key}) as api:
        for _ in range(100):
            try:
                if (await api.get("/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                await asyncio.sleep(0.1)
        search = await api.post("/api/v1/run/search/jobs", json={"app": "python3", "limit": 5})
        made = {}
        for name, pause in JOBS:
            job = {"competitor": name, "seconds_per_step": pause}
            body = {"type": "collect", "displayTitle": f"Analyzing {name}", "competitorId": name.lower()}
            made[name] = (await api.post("/api/jobs", json=body | {"input": job})).json()["job"]["id"]
        await api.get(f"/api/v1/run/jobs/{search.json()['job_id']}?wait=done&timeout_ms=30000")
        await asyncio.sleep(3.5)
        await api.post(f"/api/jobs/{made['Soylent']}/cancel")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium)
        for size, suffix in ((DESKTOP, ""), (PHONE, "-phone")):
            page = await (await browser.new_context(viewport=size)).new_page()
            await page.goto(f"{base}/ui")
            await page.evaluate(f"sessionStorage.setItem('jobhouse.key', {key!r})")
            await shoot(page, f"{base}/ui#/jobs", f"dashboard-jobs{suffix}.png", "tbody tr")
            if not suffix:
                await shoot(page, f"{base}/ui#/jobs/{made['Hooli']}", "dashboard-job.png", "ol.timeline li")
                await shoot(page, f"{base}/ui#/overview", "dashboard-overview.png", "tr[data-kind]")
        await browser.close()


if __name__ == "__main__":
    main()
