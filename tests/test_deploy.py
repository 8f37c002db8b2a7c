"""Deployment, as docs/deploy.md tells it: backups on both stores and their restore (the page's own
commands, run as written), the systemd units' command lines run with their environment, and the
container image (built only where a container engine answers)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobhouse.backup import backup, dump_command
from jobhouse.errors import BackupFailed
from jobhouse.store import open_store
from tests import pg
from tests.helpers import api_client, create
from tests.servers import REPO, ServerProcess, free_port, running_server
from tests.sse import read

DEPLOY = REPO / "deploy"
UNITS = DEPLOY / "systemd"
DEPLOY_MD = REPO / "docs" / "deploy.md"
BIN = Path(sys.executable).parent
JOBHOUSE = str(BIN / "jobhouse")
INSTALLED = "/opt/jobhouse/bin/jobhouse"  # where the units and docs install it


# -- the page's commands --------------------------------------------------------------------------

_BLOCK = re.compile(r"<!-- tests/test_deploy.py runs this block: (\S+) -->\n```sh\n(.*?)^```", re.M | re.S)


def doc_block(name: str) -> str:
    blocks = dict(_BLOCK.findall(DEPLOY_MD.read_text("utf-8")))
    assert name in blocks, f"docs/deploy.md has no block marked {name!r}"
    return blocks[name]


def run_block(name: str, cwd: Path, **variables: str) -> str:
    """Run the marked shell block of docs/deploy.md as written, with `variables` set and this
    environment's `jobhouse` first on PATH; returns its stdout and fails the test if it fails."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **variables}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", doc_block(name)], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, f"docs/deploy.md block {name} failed:\n{done.stdout}{done.stderr}"
    return done.stdout


def jobhouse(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([JOBHOUSE, *args], env={**os.environ, **(env or {})}, capture_output=True, text=True)


async def job_ids(http: httpx.AsyncClient) -> set[str]:
    """Every job of the client's workspace, page by page."""
    ids: set[str] = set()
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        response = await http.get("/api/jobs", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        ids |= {job["id"] for job in page["jobs"]}
        cursor = page["nextCursor"]
        if cursor is None:
            return ids


async def finished(http: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    response = await http.get(f"/api/jobs/{job_id}", params={"wait": "done", "timeout_ms": 20000})
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()["job"]
    return job


async def assert_ready(url: str) -> None:
    """The server at `url` finds its store reachable and at its own schema version (/readyz)."""
    async with httpx.AsyncClient(timeout=10) as http:
        ready = await http.get(f"{url}/readyz")
    assert (ready.status_code, ready.json()["status"]) == (200, "ready"), ready.text


# -- SQLite: jobhouse backup, under load, and the documented restore --------------------------------


@pytest.mark.timeout(180)  # two servers and a backup: about 10 s alone, far more on a loaded machine
@pytest.mark.slow
async def test_a_backup_taken_while_jobs_run_restores_every_job_that_existed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"JOBHOUSE_DATA_DIR": str(data), "JOBHOUSE_DATABASE_URL": ""}  # the store: the data directory's
    backup = tmp_path / "backups" / "jobhouse.db"
    backup.parent.mkdir()

    with running_server(data / "jobhouse.db", env=env) as server:
        key = await server.new_key()
        async with api_client(server.url, {"Authorization": f"Bearer {key}"}) as http:
            earlier = [await create(http, "echo", input={"n": n}) for n in range(10)]
            for job in earlier:
                assert (await finished(http, job["id"]))["status"] == "completed"
            created: list[str] = []
            going = asyncio.Event()
            stop = asyncio.Event()

            async def keep_creating() -> None:
                while not stop.is_set():
                    created.append((await create(http, "echo", input={"n": len(created)}))["id"])
                    going.set()

            creator = asyncio.create_task(keep_creating())
            await going.wait()
            existed = await job_ids(http)
            at_start = len(created)
            command = await asyncio.create_subprocess_exec(  # the page's command, as written
                "bash",
                "-euo",
                "pipefail",
                "-c",
                doc_block("sqlite-backup"),
                env={**os.environ, **env, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "BACKUP": str(backup)},
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await command.communicate()
            during = len(created) - at_start
            stop.set()
            await creator
            everything = await job_ids(http)
        assert server.stop() == 0

    assert command.returncode == 0, err.decode()
    assert during > 0, "no job was created while the backup ran"
    assert re.fullmatch(
        rf"{re.escape(str(backup))}: \d+ jobs, schema \d+, .*integrity ok \(sqlite, .*\)\n", out.decode()
    )
    assert backup.stat().st_mode & 0o777 == 0o600
    assert not list(backup.parent.glob(".*"))  # no partial file left behind
    with sqlite3.connect(backup) as copy:
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # one self-contained file

    run_block("sqlite-restore", tmp_path, DATA=str(data), BACKUP=str(backup))
    assert (data / "jobhouse.db").stat().st_mode & 0o777 == 0o600
    with running_server(data / "jobhouse.db", env=env, args=["--no-workers"]) as restored:
        await assert_ready(restored.url)
        async with api_client(restored.url, {"Authorization": f"Bearer {key}"}) as http:
            kept = await job_ids(http)
            first = (await http.get(f"/api/jobs/{earlier[0]['id']}")).json()["job"]
    assert existed <= kept <= everything
    assert (first["status"], first["result"]) == ("completed", {"input": {"n": 0}})


def test_backup_refuses_what_it_cannot_do_and_never_overwrites_unasked(tmp_path: Path) -> None:
    """The command's exit code and message once; the other refusals from `jobhouse.backup` itself."""
    data = tmp_path / "data"
    env = {"JOBHOUSE_DATA_DIR": str(data), "JOBHOUSE_DATABASE_URL": ""}
    target = tmp_path / "copy.db"

    missing = jobhouse("backup", str(target), env=env)
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr == f"jobhouse: No SQLite store at {data / 'jobhouse.db'}\n"
    assert not (data / "jobhouse.db").exists()  # the backup never creates the store it backs up
    assert not target.exists()

    data.mkdir()
    url = f"sqlite:///{data / 'jobhouse.db'}"
    asyncio.run(migrated(url))
    target.write_text("an older copy")
    target.chmod(0o644)
    with pytest.raises(BackupFailed, match=f"^{re.escape(str(target))} already exists: choose another path"):
        backup(url, target)
    assert target.read_text() == "an older copy"

    replaced = backup(url, target, replace=True)
    assert (replaced.path, replaced.method, replaced.jobs) == (target, "sqlite", 0)
    assert target.stat().st_mode & 0o777 == 0o600
    with sqlite3.connect(target) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]

    with pytest.raises(BackupFailed, match=f"^No directory {re.escape(str(tmp_path / 'no'))}$"):
        backup(url, tmp_path / "no" / "dir.db")
    with pytest.raises(BackupFailed, match="is a directory"):
        backup(url, data)
    with pytest.raises(BackupFailed, match="is the store itself"):
        backup(url, data / "jobhouse.db", replace=True)
    assert sorted(os.listdir(tmp_path)) == ["copy.db", "data"]  # nothing half-written left behind


async def migrated(url: str) -> None:
    store = open_store(url)
    await store.open()
    await store.close()


def test_backup_of_postgresql_without_pg_dump_says_what_to_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without PostgreSQL's programs
    with pytest.raises(BackupFailed) as refused:
        backup("postgresql://jobhouse:s3cret@db.invalid/jobs?schema=queue", tmp_path / "jobs.dump")
    assert "pg_dump and pg_restore are not on PATH" in refused.value.message
    assert "pg_dump --format=custom --schema=queue --file=FILE DATABASE_URL" in refused.value.message
    assert "s3cret" not in refused.value.message
    assert list(tmp_path.iterdir()) == []


def test_the_dump_command_keeps_the_password_off_the_command_line() -> None:
    args, env = dump_command("postgresql://jobhouse:s3cret@db.internal:5433/jobs?schema=queue&sslmode=require")
    assert env == {"PGPASSWORD": "s3cret"}
    assert args[:2] == ["--format=custom", "--schema=queue"]
    assert args[2].startswith("--dbname=")
    assert sorted(args[2].removeprefix("--dbname=").split()) == [
        "dbname=jobs",
        "host=db.internal",
        "port=5433",
        "sslmode=require",
        "user=jobhouse",
    ]


# -- PostgreSQL: pg_dump (by hand or by jobhouse backup), restored into a new database --------------


@pytest.fixture
def pg_tools() -> None:
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None or shutil.which("createdb") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("pg_dump, pg_restore and createdb must be on PATH under CI")
        pytest.skip("pg_dump, pg_restore or createdb is not on PATH (install PostgreSQL's client programs)")


@pytest.mark.timeout(180)  # two servers, a dump and a restore: about 10 s alone, far more on a loaded machine
@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.usefixtures("pg_tools")
@pytest.mark.parametrize("dump", ["pg_dump", "jobhouse backup"])
async def test_a_dump_restored_into_a_new_database_serves_the_same_jobs(
    dump: str, pg_database: str, tmp_path: Path
) -> None:
    schema = pg.new_schema()
    new_db = f"jobhouse_restored_{secrets.token_hex(4)}"
    new_url = pg.with_database(pg_database, new_db)
    try:
        with running_server(pg.with_schema(pg_database, schema)) as server:
            key = await server.new_key()
            async with api_client(server.url, {"Authorization": f"Bearer {key}"}) as http:
                jobs = [await create(http, kind, input={}) for kind in ("echo", "echo", "boom")]
                ended = {job["id"]: await finished(http, job["id"]) for job in jobs}
                if dump == "pg_dump":
                    run_block("pg-backup", tmp_path, DB=pg_database, SCHEMA=schema)
                else:
                    url = pg.with_schema(pg_database, schema)
                    done = jobhouse("backup", str(tmp_path / "jobhouse.dump"), env={"JOBHOUSE_DATABASE_URL": url})
                    assert done.returncode == 0, done.stderr
                    assert done.stdout.startswith(f"{tmp_path / 'jobhouse.dump'}: ")
                    assert (tmp_path / "jobhouse.dump").stat().st_mode & 0o777 == 0o600

        out = run_block("pg-restore", tmp_path, DB=pg_database, SCHEMA=schema, NEW_DB=new_db, NEW_URL=new_url)
        assert out == "Schema is up to date\n"
        with running_server(pg.with_schema(new_url, schema), args=["--no-workers"]) as restored:
            await assert_ready(restored.url)
            async with api_client(restored.url, {"Authorization": f"Bearer {key}"}) as http:
                assert await job_ids(http) == set(ended)
                for job_id, job in ended.items():
                    again = (await http.get(f"/api/jobs/{job_id}")).json()["job"]
                    assert (again["status"], again["result"], again["error"]) == (
                        job["status"],
                        job["result"],
                        job["error"],
                    )
        assert [job["status"] for job in ended.values()] == ["completed", "completed", "failed"]
    finally:
        pg.drop_schema(pg_database, schema)
        import psycopg

        with psycopg.connect(pg_database, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {new_db} WITH (FORCE)")


# -- the systemd units ----------------------------------------------------------------------------

Unit = list[tuple[str, str, str]]
"""A unit file as (section, key, value) lines, in order (keys such as Environment= repeat)."""


def read_unit(path: Path) -> Unit:
    lines: Unit = []
    section = ""
    for raw in path.read_text("utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not a key=value line: {raw!r}"
        lines.append((section, key.strip(), value.strip()))
    return lines


def values(unit: Unit, key: str, section: str = "Service") -> list[str]:
    """The values of `key`, with systemd's rule that an empty assignment resets the list."""
    found: list[str] = []
    for sect, name, value in unit:
        if (sect, name) == (section, key):
            found = [*found, value] if value else []
    return found


SERVICES = ["jobhouse.service", "jobhouse-worker@.service", "jobhouse-backup.service"]


def test_the_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """With the installed path replaced by this environment's jobhouse (verify checks it exists)."""
    shutil.copytree(UNITS, tmp_path, dirs_exist_ok=True)
    for path in [*tmp_path.glob("*.service"), *tmp_path.glob("*.d/*.conf")]:
        path.write_text(path.read_text("utf-8").replace(INSTALLED, JOBHOUSE))
    names = [*SERVICES, "jobhouse-backup.timer"]
    analyze = shutil.which("systemd-analyze")
    if analyze is None:  # at least every line parses, as configparser reads INI files
        import configparser

        for name in names:
            parser = configparser.ConfigParser(strict=False, interpolation=None)
            parser.optionxform = str  # type: ignore[assignment,method-assign]
            parser.read(tmp_path / name)
            assert {"Unit"} <= set(parser.sections()), name
        return
    done = subprocess.run(
        [analyze, "verify", *(str(tmp_path / name) for name in names)], capture_output=True, text=True
    )
    complaints = [
        line for line in (done.stdout + done.stderr).splitlines() if str(tmp_path) in line or "jobhouse" in line
    ]
    assert (done.returncode, complaints) == (0, []), done.stdout + done.stderr


def test_every_service_is_sandboxed_and_outwaits_the_shutdown_grace() -> None:
    for name in SERVICES:
        unit = read_unit(UNITS / name)
        settings = {key: value for section, key, value in unit if section == "Service"}
        for key, value in {
            "DynamicUser": "yes",
            "ProtectSystem": "strict",
            "NoNewPrivileges": "yes",
            "PrivateTmp": "yes",
            "EnvironmentFile": "-/etc/jobhouse/env",
        }.items():
            assert settings.get(key) == value, f"{name}: {key}={settings.get(key)}"
        assert "jobhouse" in settings["StateDirectory"].split(), name
        environment = dict(item.split("=", 1) for item in values(unit, "Environment"))
        assert environment["JOBHOUSE_DATA_DIR"] == "%S/jobhouse", name
        if name != "jobhouse-backup.service":
            assert (settings["Restart"], settings["KillSignal"]) == ("on-failure", "SIGTERM"), name
            assert float(settings["TimeoutStopSec"]) > float(environment["JOBHOUSE_SHUTDOWN_GRACE"]), name


@contextmanager
def unit_process(
    name: str, state: Path, env_file: Path, *, dropins: tuple[str, ...] = (), instance: str = "1"
) -> Iterator[subprocess.Popen[str]]:
    """The unit's ExecStart= run as systemd would (drop-ins applied, specifiers %S and %i filled in,
    Environment= then the EnvironmentFile= given here), with this environment's jobhouse for the
    installed one, in /, with nothing else in the environment but PATH and HOME."""
    unit = read_unit(UNITS / name)
    for dropin in dropins:
        unit += read_unit(UNITS / dropin)

    def fill(text: str) -> str:
        return text.replace("%S", str(state)).replace("%i", instance)

    argv = shlex.split(fill(values(unit, "ExecStart")[-1]))
    assert argv[0] == INSTALLED
    env = {"PATH": os.environ["PATH"], "HOME": str(state / "home")}
    for assignment in values(unit, "Environment"):
        for item in shlex.split(fill(assignment)):
            variable, _, value = item.partition("=")
            env[variable] = value
    assert values(unit, "EnvironmentFile") == ["-/etc/jobhouse/env"]
    for line in env_file.read_text().splitlines():
        variable, _, value = line.partition("=")
        env[variable] = value
    for directory in values(unit, "StateDirectory")[-1].split():  # made by systemd before the start
        (state / directory).mkdir(mode=0o700, exist_ok=True)
    log = (state / f"{name}.log").open("w")
    process = subprocess.Popen([JOBHOUSE, *argv[1:]], cwd="/", env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()


def stop_timeout(name: str) -> float:
    return float({key: value for _, key, value in read_unit(UNITS / name)}["TimeoutStopSec"])


def wait_healthy(url: str, process: subprocess.Popen[str], log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"exited with {process.returncode}:\n{log.read_text()}"
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"no answer on {url}/healthz:\n{log.read_text()}")


def stopped_cleanly(process: subprocess.Popen[str], name: str) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(stop_timeout(name))


@pytest.mark.timeout(180)  # four processes, one after another: about 10 s alone, far more on a loaded machine
@pytest.mark.slow
async def test_the_units_start_serve_run_jobs_back_up_and_stop_on_sigterm(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    port = free_port()
    env_file = tmp_path / "env"  # what /etc/jobhouse/env would hold
    env_file.write_text(f"JOBHOUSE_APP=tests.kinds:jobs\nJOBHOUSE_PORT={port}\nPYTHONPATH={REPO}\n")
    url = f"http://127.0.0.1:{port}"

    # One machine, one process: `jobhouse serve` with its workers.
    with unit_process("jobhouse.service", state, env_file) as api:
        wait_healthy(url, api, state / "jobhouse.service.log")
        key = (state / "jobhouse" / "first-key").read_text().strip()
        async with api_client(url, {"Authorization": f"Bearer {key}"}) as http:
            first = await create(http, "echo", input={"by": "serve"})
            assert (await finished(http, first["id"]))["status"] == "completed"
        assert stopped_cleanly(api, "jobhouse.service") == 0
    assert (state / "jobhouse").stat().st_mode & 0o777 == 0o700
    assert (state / "jobhouse" / "jobhouse.db").stat().st_mode & 0o777 == 0o600

    # The API without workers, and a worker instance running its jobs, on the same data directory.
    api_only = ("jobhouse.service.d/api-only.conf",)
    with (
        unit_process("jobhouse.service", state, env_file, dropins=api_only) as api,
        unit_process("jobhouse-worker@.service", state, env_file, instance="1") as worker,
    ):
        wait_healthy(url, api, state / "jobhouse.service.log")
        async with api_client(url, {"Authorization": f"Bearer {key}"}) as http:
            job = await create(http, "echo", input={"by": "worker"})
            done = await finished(http, job["id"])
            assert (done["status"], done["result"]) == ("completed", {"input": {"by": "worker"}})

            with unit_process("jobhouse-backup.service", state, env_file) as backup:
                assert backup.wait(60) == 0, (state / "jobhouse-backup.service.log").read_text()
            latest = state / "jobhouse-backup" / "latest"
            assert latest.stat().st_mode & 0o777 == 0o600
            with sqlite3.connect(latest) as copy:
                kept = {row[0] for row in copy.execute("SELECT id FROM jobs")}
            assert {first["id"], job["id"]} <= kept
        assert stopped_cleanly(worker, "jobhouse-worker@.service") == 0
        assert stopped_cleanly(api, "jobhouse.service") == 0


# -- the container image --------------------------------------------------------------------------


def containerfile() -> list[tuple[str, str]]:
    """deploy/Containerfile's instructions, as (INSTRUCTION, arguments), continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (DEPLOY / "Containerfile").read_text("utf-8"))
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_the_image_copies_only_what_the_build_context_holds() -> None:
    allowed = [
        line[1:].rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines() if line.startswith("!")
    ]
    instructions = containerfile()
    sources = [shlex.split(args)[:-1] for name, args in instructions if name == "COPY" and "--from" not in args]
    for source in (item for group in sources for item in group):
        assert (REPO / source).exists(), source
        assert any(source == entry or source.startswith(f"{entry}/") for entry in allowed), source
    final = instructions[max(i for i, (name, _) in enumerate(instructions) if name == "FROM") :]
    assert ("USER", "jobhouse") in final
    assert ("VOLUME", "/var/lib/jobhouse") in final
    assert ("EXPOSE", "8000") in final
    assert ("CMD", '["jobhouse", "serve", "--host", "0.0.0.0"]') in final


def test_the_image_healthcheck_passes_on_a_server_and_fails_without_one(idle_server: ServerProcess) -> None:
    check = next(args for name, args in containerfile() if name == "HEALTHCHECK")
    argv = json.loads(check[check.index("CMD") + 3 :])
    assert argv[0] == "python"
    port = idle_server.url.rsplit(":", 1)[1]
    healthy = subprocess.run([sys.executable, *argv[1:]], env={"JOBHOUSE_PORT": port}, capture_output=True)
    assert healthy.returncode == 0, healthy.stderr
    nobody = str(free_port())
    down = subprocess.run([sys.executable, *argv[1:]], env={"JOBHOUSE_PORT": nobody}, capture_output=True)
    assert down.returncode != 0


@pytest.mark.timeout(180)  # a build downloads and installs the image: about 10 s alone, far more on a loaded machine
@pytest.mark.slow
def test_the_container_image_builds_and_answers_its_healthcheck() -> None:
    docker = shutil.which("docker") or shutil.which("podman")
    if docker is None:
        pytest.skip("no container engine client (docker or podman) on PATH: the image was not built")
    if subprocess.run([docker, "info"], capture_output=True).returncode != 0:
        pytest.skip(f"{Path(docker).name} info failed (no container engine answers): the image was not built")
    tag = f"jobhouse-test:{secrets.token_hex(4)}"
    build = subprocess.run(
        [docker, "build", "-f", "deploy/Containerfile", "-t", tag, "."], cwd=REPO, capture_output=True
    )
    assert build.returncode == 0, build.stderr.decode()
    try:
        port = free_port()
        started = subprocess.run(
            [docker, "run", "-d", "--rm", "-p", f"127.0.0.1:{port}:8000", tag], capture_output=True, text=True
        )
        assert started.returncode == 0, started.stderr
        container = started.stdout.strip()
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                    if response.status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the container never answered /healthz"
                time.sleep(0.2)
            user = subprocess.run([docker, "exec", container, "id", "-u"], capture_output=True, text=True)
            assert user.stdout.strip() == "10001"
        finally:
            assert subprocess.run([docker, "stop", "--time", "45", container], capture_output=True).returncode == 0
    finally:
        subprocess.run([docker, "image", "rm", "-f", tag], capture_output=True)


# -- the page shows the files as they are ---------------------------------------------------------


@pytest.mark.parametrize("name", ["Caddyfile", "nginx.conf"])
def test_deploy_md_shows_the_proxy_configuration_whole(name: str) -> None:
    assert (DEPLOY / "proxy" / name).read_text("utf-8") in DEPLOY_MD.read_text("utf-8")


# -- the reverse proxies --------------------------------------------------------------------------


def test_the_caddyfile_is_valid_caddy_configuration() -> None:
    caddy = shutil.which("caddy")
    if caddy is None:
        pytest.skip("caddy is not on PATH: deploy/proxy/Caddyfile was not checked")
    done = subprocess.run(
        [caddy, "validate", "--adapter", "caddyfile", "--config", str(DEPLOY / "proxy" / "Caddyfile")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@contextmanager
def nginx_in_front(upstream: str, tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """deploy/proxy/nginx.conf running, with only its certificate, its ports and its upstream
    replaced (a self-signed certificate for 127.0.0.1; free ports); yields the HTTPS and plain
    HTTP base URLs and the certificate to trust."""
    nginx, openssl = shutil.which("nginx"), shutil.which("openssl")
    if nginx is None or openssl is None:
        pytest.skip("nginx or openssl is not on PATH: deploy/proxy/nginx.conf was not run")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    request = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
    subprocess.run(
        [openssl, *request, "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    https, plain = free_port(), free_port()
    conf = (DEPLOY / "proxy" / "nginx.conf").read_text("utf-8")
    for old, new in {
        "/etc/letsencrypt/live/jobs.example.com/fullchain.pem": str(cert),
        "/etc/letsencrypt/live/jobs.example.com/privkey.pem": str(key),
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https} ssl http2;",
        "listen 80;": f"listen 127.0.0.1:{plain};",
        "server 127.0.0.1:8000;": f"server {upstream.removeprefix('http://')};",
        "root /var/www/letsencrypt;": f"root {tmp_path};",
    }.items():
        assert conf.count(old) == 1, old
        conf = conf.replace(old, new)
    (tmp_path / "jobhouse.conf").write_text(conf)
    kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    temp = " ".join(f"{kind}_temp_path {tmp_path / kind};" for kind in kinds)  # not the system's
    (tmp_path / "nginx.conf").write_text(
        f"events {{}}\nhttp {{\n  access_log off;\n  {temp}\n  include {tmp_path / 'jobhouse.conf'};\n}}\n"
    )
    log = tmp_path / "nginx.log"
    globals_ = f"daemon off; master_process on; pid {tmp_path / 'nginx.pid'}; error_log {log};"
    process = subprocess.Popen(
        [nginx, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-g", globals_],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text() if log.exists() else "nginx exited"
            try:
                httpx.get(f"http://127.0.0.1:{plain}/", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "nginx never answered"
                time.sleep(0.05)
        yield f"https://127.0.0.1:{https}", f"http://127.0.0.1:{plain}", cert
    finally:
        process.terminate()
        process.wait(10)


async def test_nginx_ends_tls_passes_event_streams_on_at_once_and_refuses_plain_http(
    idle_server: ServerProcess, tmp_path: Path
) -> None:
    import ssl

    key = await idle_server.new_key()
    with nginx_in_front(idle_server.url, tmp_path) as (https, plain, cert):
        trust = ssl.create_default_context(cafile=str(cert))
        async with httpx.AsyncClient(
            base_url=https, verify=trust, headers={"Authorization": f"Bearer {key}"}, timeout=10
        ) as http:
            assert (await http.get("/healthz")).json()["status"] == "ok"
            job = await create(http, "echo", input={})  # the idle server runs no workers: it stays queued
            # The stream stays open (the job never ends here), so its first frame can only arrive if
            # the proxy passes frames on as they come rather than buffering the response.
            stream = await asyncio.wait_for(read(http, f"/api/jobs/{job['id']}/events", until=lambda _: True), 10)
            assert stream.status == 200
            assert (stream.frames[0].data["id"], stream.frames[0].data["status"]) == (job["id"], "queued")
            assert not stream.ended
        async with httpx.AsyncClient(base_url=plain, timeout=10) as http:
            refused = await http.get("/api/jobs", headers={"Authorization": f"Bearer {key}"})
            assert refused.status_code == 403
