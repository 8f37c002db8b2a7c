"""The jobhouse command: keys, migrate, the first-run key of serve, and how settings are read and checked."""

from __future__ import annotations

import os
import pty
import re
import select
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from jobhouse.settings import Settings
from tests.servers import REPO, free_port, running_server

KEY = re.compile(r"^jh_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$")


def jobhouse(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JOBHOUSE_DATABASE_URL": f"sqlite:///{db}"}
    return subprocess.run(
        [sys.executable, "-m", "jobhouse", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
    )


def test_keys_create_prints_only_the_key_on_an_empty_store(tmp_path: Path) -> None:
    result = jobhouse("keys", "create", "--workspace", "acme", db=tmp_path / "new.db")
    assert result.returncode == 0, result.stderr
    assert KEY.match(result.stdout.strip())
    assert result.stdout.count("\n") == 1


def test_keys_list_shows_keys_without_secrets_and_revoke_stops_them(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    key = jobhouse("keys", "create", "--workspace", "acme", "--label", "ci", db=db).stdout.strip()
    key_id = key.split("_")[1]
    with running_server(db, args=["--no-workers"]) as server:
        headers = {"X-API-Key": key}
        assert httpx.get(server.url + "/api/jobs", headers=headers).status_code == 200

        listing = jobhouse("keys", "list", db=db)
        assert listing.returncode == 0
        assert key_id in listing.stdout
        assert "acme" in listing.stdout
        assert "ci" in listing.stdout
        assert key.split("_", 2)[2] not in listing.stdout

        revoked = jobhouse("keys", "revoke", key_id, db=db)
        assert revoked.returncode == 0, revoked.stderr
        assert httpx.get(server.url + "/api/jobs", headers=headers).status_code == 401

        again = jobhouse("keys", "revoke", key_id, db=db)
        assert again.returncode == 1
        assert "No active key" in again.stderr


def test_keys_create_works_while_a_server_uses_the_store(tmp_path: Path) -> None:
    db = tmp_path / "busy.db"
    with running_server(db) as server:
        key = jobhouse("keys", "create", "--workspace", "late", db=db).stdout.strip()
        response = httpx.post(server.url + "/api/jobs", headers={"X-API-Key": key}, json={"type": "echo"})
        assert response.status_code == 202
        assert response.json()["job"]["workspaceId"] == "late"


def test_a_bad_workspace_name_is_refused_clearly(tmp_path: Path) -> None:
    result = jobhouse("keys", "create", "--workspace", "no spaces allowed", db=tmp_path / "j.db")
    assert result.returncode == 2
    assert "Workspace names" in result.stderr
    assert "Traceback" not in result.stderr


def test_migrate_applies_once(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    first = jobhouse("migrate", db=db)
    assert first.returncode == 0
    assert "0001_initial" in first.stdout
    assert jobhouse("migrate", db=db).stdout.strip() == "Schema is up to date"


def test_the_first_serve_keeps_its_key_in_a_private_file_and_not_in_its_logs(tmp_path: Path) -> None:
    db = tmp_path / "first.db"
    data = tmp_path / "data"
    with running_server(db, env={"JOBHOUSE_DATA_DIR": str(data)}) as server:
        key_file = data / "first-key"
        key = key_file.read_text().strip()
        assert KEY.match(key)
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        assert httpx.get(server.url + "/api/jobs", headers={"X-API-Key": key}).json() == {
            "jobs": [],
            "nextCursor": None,
        }
        # Not a terminal: the key is not printed (journald or a container runtime would keep it).
        assert "jh_" not in server.output()
        assert str(key_file) in "".join(server.stderr)
    with running_server(db, env={"JOBHOUSE_DATA_DIR": str(data)}) as again:
        assert "first-key" not in again.output()
    assert key_file.read_text().strip() == key


def test_the_first_serve_shows_its_key_on_a_terminal(tmp_path: Path) -> None:
    primary, secondary = pty.openpty()
    port = free_port()
    env = {
        **os.environ,
        "JOBHOUSE_DATABASE_URL": f"sqlite:///{tmp_path / 'tty.db'}",
        "JOBHOUSE_DATA_DIR": str(tmp_path / "data"),
        "JOBHOUSE_PORT": str(port),
        "JOBHOUSE_SOURCES": "path",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "jobhouse", "serve", "--no-workers"],
        cwd=REPO, env=env, stdout=secondary, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    os.close(secondary)
    shown = b""
    try:
        deadline = time.monotonic() + 30
        while b"jhkey" not in shown.replace(b"jh_", b"jhkey") and time.monotonic() < deadline:
            ready, _, _ = select.select([primary], [], [], 0.5)
            if ready:
                shown += os.read(primary, 4096)
        key = (tmp_path / "data" / "first-key").read_text().strip()
        assert key.encode() in shown
    finally:
        process.terminate()
        process.wait(15)
        os.close(primary)


def test_the_store_and_its_key_live_in_the_data_dir_wherever_commands_run(tmp_path: Path) -> None:
    data = tmp_path / "data"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"JOBHOUSE_DATA_DIR": str(data)}
    created = run("keys", "create", "--workspace", "acme", env=env, cwd=elsewhere)
    assert created.returncode == 0, created.stderr
    assert (data / "jobhouse.db").exists()
    assert stat.S_IMODE((data / "jobhouse.db").stat().st_mode) == 0o600
    assert list(elsewhere.iterdir()) == []
    # The flag names the same place as the variable, from any directory.
    listed = run("keys", "list", "--data-dir", str(data), env={}, cwd=REPO)
    assert created.stdout.strip().split("_")[1] in listed.stdout
    # Without either, XDG_DATA_HOME decides.
    xdg = run("keys", "create", "--workspace", "x", env={"XDG_DATA_HOME": str(tmp_path / "xdg")}, cwd=elsewhere)
    assert xdg.returncode == 0, xdg.stderr
    assert (tmp_path / "xdg" / "jobhouse" / "jobhouse.db").exists()


def test_keys_revoke_takes_an_id_or_the_whole_key_and_never_echoes_a_secret(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    key = jobhouse("keys", "create", "--workspace", "acme", db=db).stdout.strip()
    garbled = "jh_" + key[3:-1]  # one letter short: neither an id nor a key
    refused = jobhouse("keys", "revoke", garbled, db=db)
    assert refused.returncode == 2
    assert garbled not in refused.stdout + refused.stderr
    assert key.split("_", 2)[2][:20] not in refused.stdout + refused.stderr
    revoked = jobhouse("keys", "revoke", key, db=db)  # a whole key names its id
    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout.strip() == f"Revoked {key.split('_')[1]}"
    assert key.split("_", 2)[2][:20] not in revoked.stdout + revoked.stderr


def test_a_bad_app_is_a_clear_error(tmp_path: Path) -> None:
    env = {**os.environ, "JOBHOUSE_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    for app in ("no.such.module:jobs", "tests.kinds:missing", "nocolon"):
        result = subprocess.run(
            [sys.executable, "-m", "jobhouse", "serve", "--app", app],
            capture_output=True, text=True, cwd=REPO, env=env, timeout=60,
        )  # fmt: skip
        assert result.returncode == 2
        assert "cannot start" in result.stderr
        assert "Traceback" not in result.stderr


def test_a_store_that_cannot_be_opened_stops_serve_and_worker_clearly(tmp_path: Path) -> None:
    env = {
        "JOBHOUSE_DATABASE_URL": f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}",
        "JOBHOUSE_PORT": str(free_port()),
    }
    for command in (["serve", "--no-workers"], ["worker"]):
        result = run(*command, env=env)
        assert result.returncode == 2, result.stderr
        assert "jobhouse: cannot start: SQLite: unable to open database file" in result.stderr
        assert "Traceback" not in result.stderr


# -- settings: read from the environment and flags, checked before anything starts -------------


def run(*args: str, env: dict[str, str], cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    environ = {name: value for name, value in os.environ.items() if not name.startswith("JOBHOUSE_")}
    return subprocess.run(
        [sys.executable, "-m", "jobhouse", *args],
        capture_output=True, text=True, cwd=cwd, env=environ | env, timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ["serve", "--port", "70000"],
            {},
            "jobhouse: bad setting --port=70000: Input should be less than or equal to 65535",
        ),
        (
            ["serve"],
            {"JOBHOUSE_HEARTBEAT": "30"},
            "jobhouse: bad setting JOBHOUSE_HEARTBEAT='30': must be less than lease",
        ),
        (
            ["worker", "-c", "-1"],
            {},
            "jobhouse: bad setting --concurrency=-1: Input should be greater than or equal to 0",
        ),
        (["keys", "create", "-w", "acme"], {"JOBHOUSE_LEASE": "soon"}, "jobhouse: bad setting JOBHOUSE_LEASE='soon': "),
        (
            ["migrate"],
            {"JOBHOUSE_LOG_LEVEL": "loud"},
            "jobhouse: bad setting JOBHOUSE_LOG_LEVEL='loud': 'loud' is not one",
        ),
    ],
)
def test_a_bad_setting_stops_the_command_naming_its_variable_or_flag(
    tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    db = tmp_path / "never.db"
    result = run(*args, env={"JOBHOUSE_DATABASE_URL": f"sqlite:///{db}", **env})
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(message)
    assert "Traceback" not in result.stderr
    assert not db.exists()  # stopped before it opened the store


def test_every_bad_setting_is_listed(tmp_path: Path) -> None:
    env = {"JOBHOUSE_PORT": "http", "JOBHOUSE_POOL_SIZE": "0", "JOBHOUSE_SOURCES": "path,apt,web"}
    result = run("serve", env={"JOBHOUSE_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", **env})
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "jobhouse: 3 bad settings:",
        "  JOBHOUSE_PORT='http': Input should be a valid integer, unable to parse string as an integer",
        "  JOBHOUSE_POOL_SIZE='0': Input should be greater than or equal to 1",
        "  JOBHOUSE_SOURCES='path,apt,web': 'web' is not one of path, desktop, dpkg, apt, catalogs",
    ]


def test_a_dotenv_file_is_not_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("JOBHOUSE_PORT=not-a-port\nJOBHOUSE_DATABASE_URL=sqlite:///elsewhere.db\n")
    db = tmp_path / "here.db"
    result = run("migrate", env={"JOBHOUSE_DATABASE_URL": f"sqlite:///{db}"}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert db.exists()
    assert not (tmp_path / "elsewhere.db").exists()


def test_from_env_reads_defaults_then_variables_then_flags() -> None:
    environ = {
        "JOBHOUSE_DATABASE_URL": "sqlite:///env.db",
        "JOBHOUSE_PORT": "8001",
        "JOBHOUSE_APP": "one:jobs, two:jobs,",
        "JOBHOUSE_CATALOGS": "a.yaml,b.yaml",
        "JOBHOUSE_LEASE": "",  # empty: unset
        "JOBHOUSE_LOG_LEVEL": "WARNING",
        "JOBHOUSE_DATABASE": "sqlite:///not-a-variable-of-ours.db",
        "jobhouse_host": "0.0.0.0",  # names are matched exactly
    }
    settings = Settings.from_env(environ, port=8002, apps=(), database=None)
    assert settings.database == "sqlite:///env.db"
    assert settings.port == 8002  # the flag wins
    assert settings.apps == ("one:jobs", "two:jobs")  # () and None mean "flag not given"
    assert settings.catalogs == ("a.yaml", "b.yaml")
    assert settings.lease == Settings().lease
    assert settings.log_level == "warning"
    assert settings.host == "127.0.0.1"
    assert Settings.from_env(environ, apps=("three:jobs",)).apps == ("three:jobs",)


def test_keywords_alone_make_settings_and_they_are_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBHOUSE_PORT", "9999")
    settings = Settings(database="sqlite:///k.db", heartbeat=0.2, sources=("path",))
    assert settings.port == 8000  # the environment is for from_env only
    assert (settings.database, settings.heartbeat, settings.sources) == ("sqlite:///k.db", 0.2, ("path",))
    with pytest.raises(ValidationError, match="frozen"):
        settings.port = 1  # type: ignore[misc]
    with pytest.raises(ValidationError, match=re.escape("heartbeat (40.0) must be less than lease (30.0)")):
        Settings(heartbeat=40)
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Settings(prot=8001)


def test_serve_keeps_no_access_log_unless_asked(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    for extra, logged in (({}, False), ({"JOBHOUSE_ACCESS_LOG": "true"}, True)):
        with running_server(db, args=["--no-workers"], env={"JOBHOUSE_LOG_LEVEL": "info", **extra}) as server:
            assert httpx.get(server.url + "/healthz?marker").status_code == 200
        output = server.output()
        assert "serving HTTP with uvloop and httptools" in output
        assert ('"GET /healthz?marker HTTP/1.1" 200' in output) is logged, output
