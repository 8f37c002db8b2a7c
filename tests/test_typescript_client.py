"""The TypeScript client (``clients/typescript``) against real servers.

This test starts what the client's node tests need (a server with workers and the fault proxy in
front of it, a second server that holds one long-poll 1 s at most, keys, a workspace of 1,200
jobs), builds the client with ``tsc``, runs ``node --test``, and fails with node's output if any
node test fails, or if a scenario of ``clients/scenarios.json`` has no passing node test of that
name. A second test holds the client's wire types (``src/types.ts``) to the server's OpenAPI
document.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from jobhouse import JobContext, Queue, Registry, open_store
from jobhouse.api.openapi import document
from jobhouse.events import Change
from jobhouse.keys import create_key
from tests.faultproxy import running_proxy
from tests.servers import REPO, Machine, ServerProcess, running_server

CLIENT = REPO / "clients" / "typescript"
SCENARIOS = REPO / "clients" / "scenarios.json"
LIST_COUNT = 1200
NODE_MAJOR = 20
#: The longest the node tests may take (they take about 20 s).
NODE_TIMEOUT = 300
#: The origin of a browser page the main server lets in (JOBHOUSE_CORS_ORIGINS).
CORS_ORIGIN = "http://localhost:5173"
#: A node TAP line: "ok 3 - create", "not ok 4 - cancel # SKIP ...", indented for subtests.
TAP_LINE = re.compile(
    r"^(?P<indent>\s*)(?P<result>ok|not ok) \d+ - (?P<title>.*?)(?P<directive> # (?:SKIP|TODO)\b.*)?$"
)

#: The kind of the jobs listed by the 1,200-job scenario: no server runs it, so they stay queued.
listed = Registry()


@listed.kind("typescript-listed", title="Listed by the TypeScript client")
async def _listed(ctx: JobContext) -> None:  # never runs: the test servers do not know this kind
    return None


def _node_major(node: str) -> int:
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout
    match = re.match(r"v(\d+)\.", version.strip())
    return int(match.group(1)) if match else 0


def _node_tools() -> tuple[str, str]:
    """node and npm, installed with apt-get when they are missing and we may; else skip (fail in CI)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if (node is None or npm is None) and os.geteuid() == 0 and shutil.which("apt-get"):
        for argv in (["apt-get", "update"], ["apt-get", "install", "-y", "nodejs", "npm"]):
            subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, timeout=400)
        node, npm = shutil.which("node"), shutil.which("npm")
    problem = None
    if node is None or npm is None:
        problem = "node and npm are not installed (and could not be installed with apt-get)"
    elif _node_major(node) < NODE_MAJOR:
        problem = f"the TypeScript client needs Node {NODE_MAJOR} or newer; {node} is older"
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(problem)
        pytest.skip(problem)
    assert node is not None
    assert npm is not None
    return node, npm


def _run(argv: list[str], what: str) -> None:
    result = subprocess.run(argv, cwd=CLIENT, capture_output=True, text=True, check=False, timeout=300)
    if result.returncode != 0:
        pytest.fail(f"{what} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


def _build(npm: str) -> None:
    """`npm ci` when node_modules is missing or older than the lock file; then `npm run build`,
    unless dist/ was built, and test/usage.ts checked, from exactly these sources and settings."""
    digest = hashlib.sha256((CLIENT / "package-lock.json").read_bytes()).hexdigest()
    stamp = CLIENT / "node_modules" / ".jobhouse-lock-sha256"
    if not stamp.exists() or stamp.read_text() != digest:
        _run([npm, "ci", "--no-audit", "--no-fund"], "npm ci")
        stamp.write_text(digest)
    built = CLIENT / "dist" / ".jobhouse-build-sha256"
    sources = _build_inputs()
    if built.exists() and built.read_text() == sources and (CLIENT / "dist" / "index.js").exists():
        return
    built.unlink(missing_ok=True)
    _run([npm, "run", "build"], "npm run build (tsc)")
    built.write_text(sources)


def _build_inputs() -> str:
    """A digest of everything `npm run build` reads: the lock and package files, both tsconfigs,
    src/ and test/usage.ts (the client's sources, and the typed usage the second tsc checks)."""
    files = ["package.json", "package-lock.json", "tsconfig.json", "test/tsconfig.json", "test/usage.ts"]
    paths = sorted([*(CLIENT / name for name in files), *(CLIENT / "src").rglob("*.ts")])
    digest = hashlib.sha256()
    for path in paths:
        digest.update(f"{path.relative_to(CLIENT)}\0".encode())
        digest.update(path.read_bytes() if path.exists() else b"(missing)")
    return digest.hexdigest()


async def _list_workspace(server: ServerProcess) -> str:
    """A key of a fresh workspace holding LIST_COUNT queued jobs, enqueued straight into the store."""
    workspace = f"ts-list-{os.urandom(4).hex()}"
    store = open_store(server.database)
    await store.open(migrate=False)
    try:
        queue = Queue(store, listed)
        jobs = [queue.new_job("typescript-listed", workspace=workspace, metadata={"n": n}) for n in range(LIST_COUNT)]
        await queue.enqueue_many(jobs)
        key, _ = await create_key(store, workspace)
        return key
    finally:
        await store.close()


async def _revoked_key(server: ServerProcess) -> str:
    key = await server.new_key()
    store = open_store(server.database)
    await store.open(migrate=False)
    try:
        assert await store.keys.revoke(key.split("_")[1])
    finally:
        await store.close()
    return key


def _passed_titles(tap: str) -> set[str]:
    """The titles of the top-level node tests that passed (not skipped, not todo)."""
    passed = set()
    for line in tap.splitlines():
        match = TAP_LINE.match(line)
        if match and not match["indent"] and match["result"] == "ok" and not match["directive"]:
            passed.add(match["title"].replace("\\#", "#").replace("\\\\", "\\"))
    return passed


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_the_typescript_client_passes_every_scenario(machine: Machine, tmp_path: Path) -> None:
    node, npm = _node_tools()
    scenarios = [scenario["name"] for scenario in json.loads(SCENARIOS.read_text())]
    await asyncio.to_thread(_build, npm)

    with (
        running_server(tmp_path / "main.db", machine, env={"JOBHOUSE_CORS_ORIGINS": CORS_ORIGIN}) as server,
        running_server(tmp_path / "short.db", machine, env={"JOBHOUSE_LONG_POLL_MAX": "1"}) as short,
        running_proxy(server.url) as proxy,
    ):
        env = {
            **os.environ,
            "JOBHOUSE_URL": server.url,
            "JOBHOUSE_KEY": await server.new_key(),
            "JOBHOUSE_OTHER_KEY": await server.new_key(),
            "JOBHOUSE_REVOKED_KEY": await _revoked_key(server),
            "JOBHOUSE_PROXY_URL": proxy.url,
            "JOBHOUSE_CORS_ORIGIN": CORS_ORIGIN,
            "JOBHOUSE_LIST_KEY": await _list_workspace(server),
            "JOBHOUSE_LIST_COUNT": str(LIST_COUNT),
            "JOBHOUSE_SHORT_POLL_URL": short.url,
            "JOBHOUSE_SHORT_POLL_KEY": await short.new_key(),
        }
        tap = tmp_path / "node.tap"
        files = sorted(str(path.relative_to(CLIENT)) for path in (CLIENT / "test").glob("*.test.mjs"))
        argv = [node, "--test", "--test-reporter=spec", "--test-reporter-destination=stdout"]
        argv += ["--test-reporter=tap", f"--test-reporter-destination={tap}", *files]
        process = await asyncio.create_subprocess_exec(
            *argv, cwd=CLIENT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(), timeout=NODE_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()
            pytest.fail(f"node --test did not finish within {NODE_TIMEOUT} s", pytrace=False)
        report = output.decode(errors="replace")
        print(report)  # shown by pytest -s, or with the failure
        if process.returncode != 0:
            pytest.fail(
                f"node --test failed ({process.returncode}):\n{report}\n"
                f"--- server log (tail) ---\n{server.output()[-4000:]}",
                pytrace=False,
            )

    passed = _passed_titles(tap.read_text())
    missing = [name for name in scenarios if name not in passed]
    assert not missing, f"scenarios with no passing node test of that name: {missing}\n{report}"


# -- the client's types against the server's OpenAPI document (no node needed) -------------------

#: Each wire interface of clients/typescript/src/types.ts → its schema in /openapi.json.
TS_SCHEMAS = {
    "Step": "Step",
    "JobErrorInfo": "ErrorInfo",
    "AttemptError": "AttemptError",
    "Job": "WorkspaceJob",
    "JobPage": "JobPage",
    "CreateJob": "CreateJob",
    "RunJob": "RunJob",
    "Selector": "Selector",
    "Candidate": "Candidate",
    "SearchResponse": "SearchResponse",
    "Source": "Source",
    "SourceList": "SourceList",
    "JobChange": "WorkspaceJobEvent",
    "RunJobChange": "RunJobEvent",
}
#: Each string union of types.ts → (schema, property) whose enum it must equal.
TS_ENUMS = {
    "StepStatus": ("Step", "status"),
    "JobStatus": ("WorkspaceJob", "status"),
    "RunJobStatus": ("RunJob", "status"),
    "MatchTier": ("Candidate", "match"),
}
_INTERFACE = re.compile(r"^export interface (\w+)(?:<[^>]*>)? \{\n(.*?)^\}", re.MULTILINE | re.DOTALL)
_FIELD = re.compile(r"^  (\w+)(\??):", re.MULTILINE)
_UNION = re.compile(r'^export type (\w+) = ((?:"[^"]*"(?: \| )?)+);', re.MULTILINE)


def _enum_of(schema: dict[str, Any]) -> set[str]:
    if "enum" in schema:
        return set(schema["enum"])
    return set().union(*(_enum_of(option) for option in schema.get("anyOf", [])))


def test_the_typescript_types_match_the_openapi_document() -> None:
    source = (CLIENT / "src" / "types.ts").read_text()
    schemas = document(["collect"], ["path"])["components"]["schemas"]
    interfaces = {name: dict(_FIELD.findall(body)) for name, body in _INTERFACE.findall(source)}
    for interface, schema_name in TS_SCHEMAS.items():
        schema = schemas[schema_name]
        fields = interfaces[interface]
        assert set(fields) == set(schema["properties"]), f"{interface} vs {schema_name}"
        optional = {name for name, mark in fields.items() if mark}
        assert optional == set(schema["properties"]) - set(schema.get("required", [])), interface
    unions = {name: set(re.findall(r'"([^"]*)"', values)) for name, values in _UNION.findall(source)}
    for union, (schema_name, prop) in TS_ENUMS.items():
        assert unions[union] == _enum_of(schemas[schema_name]["properties"][prop]), union
    assert unions["JobEventType"] == {change.value for change in Change}
