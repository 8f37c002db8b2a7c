"""Clients written against the two seed documents work unchanged, including their shell snippets."""

from __future__ import annotations

import asyncio
import json
import os

import httpx
import pytest

from tests.beacon import Beacon
from tests.helpers import create
from tests.servers import REPO, ServerProcess

SEEDS = REPO.parent / "shared" / "seeds"

# Seed 004's polling loop, verbatim.
POLLING_LOOP = """# Poll every 2 seconds until completed
while true; do
response=$(curl -H "X-API-Key: your-api-key" \\
https://app.hellobattlecard.com/api/jobs/job-id)
status=$(echo $response | jq -r '.job.status')
if [ "$status" = "completed" ] || [ "$status" = "failed" ]; then
echo "Job finished with status: $status"
break
fi
sleep 2
done"""

# Seed 000's curl call that starts a search, verbatim.
START_SEARCH = """curl -X POST https://api.hoody.com/api/v1/run/search/jobs \\
 -H "Authorization: Bearer <token>" \\
 -H "Content-Type: application/json" \\
 -d '{ "app": "firefox", "os": "linux", "kind": "gui" }'"""


def test_the_snippets_are_the_seeds_own() -> None:
    if not SEEDS.exists() and os.environ.get("CI") != "true":
        pytest.skip("the seed documents are not beside this checkout")
    seed_004 = (SEEDS / "004_c59e6abb5fa4c4ac.txt").read_text()
    seed_000 = " ".join((SEEDS / "000_933710bb4f749220.txt").read_text().split())
    assert POLLING_LOOP in seed_004
    assert " ".join(START_SEARCH.split()) in seed_000


async def run_bash(script: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        "bash", "-c", script, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    stdout, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, stdout.decode()


def polling_loop(server: ServerProcess, key: str, job_id: str) -> str:
    return (
        POLLING_LOOP.replace("your-api-key", key)
        .replace("https://app.hellobattlecard.com", server.url)
        .replace("job-id", job_id)
    )


async def test_the_shell_polling_loop_sees_a_job_finish(
    server: ServerProcess, key: str, client: httpx.AsyncClient, beacon: Beacon
) -> None:
    job = await create(client, "hold", input={"beacon": beacon.address})
    loop = asyncio.create_task(run_bash(polling_loop(server, key, job["id"])))
    await beacon.seen(f"started {job['id']}")
    beacon.release(job["id"])

    code, output = await loop

    assert code == 0
    assert output.strip() == "Job finished with status: completed"


@pytest.mark.parametrize("outcome", ["boom", "cancel"])
async def test_the_shell_polling_loop_sees_failures_and_cancels(
    server: ServerProcess, key: str, client: httpx.AsyncClient, beacon: Beacon, outcome: str
) -> None:
    if outcome == "boom":
        job = await create(client, "boom")
    else:
        job = await create(client, "hold", input={"beacon": beacon.address})
        await beacon.seen(f"started {job['id']}")
        assert (await client.post(f"/api/jobs/{job['id']}/cancel")).status_code == 200

    code, output = await run_bash(polling_loop(server, key, job["id"]))

    assert code == 0
    assert output.strip() == "Job finished with status: failed"


async def test_the_seed_curl_starts_a_search(server: ServerProcess, key: str, client: httpx.AsyncClient) -> None:
    script = START_SEARCH.replace("https://api.hoody.com", server.url).replace("<token>", key)

    code, output = await run_bash(script + " -s")

    assert code == 0
    handle = json.loads(output)
    assert handle["kind"] == "search-resolve"
    assert handle["status"] == "queued"
    status = await client.get(f"/api/v1/run/jobs/{handle['job_id']}", params={"wait": "done", "timeout_ms": 30000})
    assert status.json()["status"] == "done"
    assert status.json()["result"]["candidates"][0]["name"] == "Firefox Web Browser"
