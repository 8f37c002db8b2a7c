"""The jobhouse command: keys, migrate, and the first-run key of serve."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from tests.servers import REPO, running_server

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
        assert key.split("_")[2] not in listing.stdout

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


def test_the_first_serve_prints_a_key_once(tmp_path: Path) -> None:
    db = tmp_path / "first.db"
    with running_server(db) as server:
        keys = sorted(set(re.findall(r"jh_[a-z0-9]{12}_[A-Za-z0-9_-]{43}", "".join(server.stdout))))
        assert len(keys) == 1
        assert httpx.get(server.url + "/api/jobs", headers={"X-API-Key": keys[0]}).json() == {
            "jobs": [],
            "nextCursor": None,
        }
    with running_server(db) as again:
        assert "jh_" not in "".join(again.stdout)


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
