"""The `assistd` command as the README describes it, run as a subprocess next to the real
server: on the server's SQLite data dir, or on its PostgreSQL database, while it runs."""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.postgres import database_or_skip
from tests.support.server import RunningServer, _wait_ready, free_port, server_env

SECRET = re.compile(r"sk-assistd-[A-Za-z0-9_-]{20,}")


def assistd(
    *args: str, env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assistd", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def succeeds(*args: str, env: dict[str, str], cwd: Path | None = None) -> list[str]:
    """Runs the command, asserts exit 0 and a clean stderr, returns stdout's lines."""
    done = assistd(*args, env=env, cwd=cwd)
    assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
    assert "Traceback" not in done.stderr
    return done.stdout.splitlines()


def fails(*args: str, env: dict[str, str]) -> str:
    """Runs the command, asserts a non-zero exit with an error message and no traceback,
    returns that message."""
    done = assistd(*args, env=env)
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    assert done.stderr.startswith("Error: "), done.stderr
    return done.stderr


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def get(server_url: str, path: str, key: str, **headers: str) -> httpx.Response:
    return httpx.get(f"{server_url}{path}", headers={"Authorization": f"Bearer {key}", **headers})


@dataclass
class CreatedKey:
    id: str
    workspace_id: str
    secret: str


def create_key(env: dict[str, str], workspace: str, *flags: str) -> CreatedKey:
    lines = succeeds("key", "create", "--workspace", workspace, *flags, env=env)
    secret = lines[-1]
    assert SECRET.fullmatch(secret), lines  # alone on the last line
    found = re.search(r"\b(key_\w+) in workspace (ws_\w+)", lines[0])
    assert found, lines
    return CreatedKey(found.group(1), found.group(2), secret)


KEY_HEADER = ["ID", "WORKSPACE", "WORKSPACE_ID", "PREFIX", "ROLE", "STATE", "NAME"]


def key_rows(env: dict[str, str]) -> dict[str, list[str]]:
    """`assistd key list`, by key id, below its header row."""
    header, *rows = [line.split("\t") for line in succeeds("key", "list", env=env)]
    assert header == KEY_HEADER
    assert all(len(row) == len(header) for row in rows), rows
    return {row[0]: row for row in rows}


def workspace_rows(env: dict[str, str]) -> dict[str, str]:
    """`assistd workspace list`: name -> id, below its header row."""
    header, *rows = [line.split("\t") for line in succeeds("workspace", "list", env=env)]
    assert header == ["ID", "NAME"]
    assert all(len(row) == 2 for row in rows), rows
    return {name: ws_id for ws_id, name in rows}


# ---- workspaces -------------------------------------------------------------------------


def test_workspace_create_prints_the_id(server: RunningServer, admin: httpx.Client) -> None:
    name = unique("cli")
    lines = succeeds("workspace", "create", name, env=server.env)
    assert len(lines) == 1 and re.fullmatch(r"ws_\w+", lines[0]), lines
    ws_id = lines[0]
    assert workspace_rows(server.env)[name] == ws_id
    # The running server sees it at once.
    listed = admin.get("/admin/v1/workspaces").json()["data"]
    assert {"id": ws_id, "name": name} in [{"id": w["id"], "name": w["name"]} for w in listed]


def test_workspace_list_shows_the_default_and_api_made_workspaces(
    server: RunningServer, admin: httpx.Client
) -> None:
    name = unique("api")
    made = admin.post("/admin/v1/workspaces", json={"name": name}).json()
    rows = workspace_rows(server.env)
    assert rows[name] == made["id"]
    assert "default" in rows


def test_duplicate_workspace_name_fails(server: RunningServer) -> None:
    name = unique("twice")
    first = succeeds("workspace", "create", name, env=server.env)[0]
    message = fails("workspace", "create", name, env=server.env)
    assert name in message and "already exists" in message
    assert "default" in fails("workspace", "create", "default", env=server.env)
    assert workspace_rows(server.env)[name] == first


def test_invalid_workspace_name_fails(server: RunningServer) -> None:
    bad_names = ["has space", "ws_lookalike", ".dot", "x" * 65]
    for bad in bad_names:
        assert "workspace name" in fails("workspace", "create", bad, env=server.env)
    assert not set(bad_names) & workspace_rows(server.env).keys()


# ---- keys -------------------------------------------------------------------------------


def test_key_create_list_revoke_against_the_running_server(
    server: RunningServer, admin: httpx.Client
) -> None:
    name = unique("keys")
    ws_id = succeeds("workspace", "create", name, env=server.env)[0]
    key = create_key(server.env, name)
    assert key.workspace_id == ws_id

    # The key works at once against the server, in its own workspace.
    made = httpx.post(
        f"{server.dashscope_url}/assistants",
        json={"model": "qwen-max", "name": "made with a CLI key"},
        headers={"Authorization": f"Bearer {key.secret}"},
    )
    assert made.status_code == 200, made.text
    seen = admin.get(
        f"/api/v1/assistants/{made.json()['id']}", headers={"X-DashScope-WorkSpace": ws_id}
    )
    assert seen.status_code == 200 and seen.json()["name"] == "made with a CLI key"
    # A plain key: no admin API.
    assert get(server.base_url, "/admin/v1/keys", key.secret).status_code == 403

    row = key_rows(server.env)[key.id]
    shown = "sk-assistd-" + key.secret.removeprefix("sk-assistd-")[:4]
    assert row == [key.id, name, ws_id, f"{shown}...", "user", "active", ""]
    assert key.secret not in "\n".join(succeeds("key", "list", env=server.env))

    assert succeeds("key", "revoke", key.id, env=server.env) == [f"revoked {key.id}"]
    refused = get(server.base_url, "/api/v1/assistants", key.secret)
    assert refused.status_code == 401 and refused.json()["code"] == "InvalidApiKey"
    assert key_rows(server.env)[key.id][5] == "revoked"
    api_view = {k["id"]: k for k in admin.get("/admin/v1/keys").json()["data"]}
    assert api_view[key.id]["revoked_at"] is not None


def test_admin_key_create_by_workspace_id(server: RunningServer) -> None:
    ws_id = succeeds("workspace", "create", unique("admins"), env=server.env)[0]
    key = create_key(server.env, ws_id, "--admin")
    assert key.workspace_id == ws_id
    assert key_rows(server.env)[key.id][4] == "admin"
    keys = get(server.base_url, "/admin/v1/keys", key.secret)
    assert keys.status_code == 200, keys.text
    assert {k["workspace_id"] for k in keys.json()["data"]} == {ws_id}
    # An admin key of a workspace other than `default` may not create workspaces.
    denied = httpx.post(
        f"{server.base_url}/admin/v1/workspaces",
        json={"name": unique("no")},
        headers={"Authorization": f"Bearer {key.secret}"},
    )
    assert denied.status_code == 403


def test_admin_key_of_default_manages_everything(server: RunningServer) -> None:
    key = create_key(server.env, "default", "--admin")
    made = httpx.post(
        f"{server.base_url}/admin/v1/workspaces",
        json={"name": unique("by-cli-admin")},
        headers={"Authorization": f"Bearer {key.secret}"},
    )
    assert made.status_code == 200, made.text


def test_key_create_for_unknown_workspace_fails(server: RunningServer) -> None:
    before = key_rows(server.env)
    missing = unique("nowhere")
    message = fails("key", "create", "--workspace", missing, env=server.env)
    assert missing in message and "workspace" in message
    assert key_rows(server.env) == before


def test_key_create_needs_a_workspace(server: RunningServer) -> None:
    done = assistd("key", "create", env=server.env)
    assert done.returncode != 0 and "--workspace" in done.stderr


def test_revoke_unknown_key_fails(server: RunningServer) -> None:
    assert "key_nosuchkey" in fails("key", "revoke", "key_nosuchkey", env=server.env)


def test_revoking_a_key_made_by_the_api(server: RunningServer, admin: httpx.Client) -> None:
    made = admin.post("/admin/v1/keys", json={"workspace": "default"}).json()
    assert get(server.base_url, "/api/v1/assistants", made["key"]).status_code == 200
    succeeds("key", "revoke", made["id"], env=server.env)
    assert get(server.base_url, "/api/v1/assistants", made["key"]).status_code == 401


# ---- where the CLI finds the database ---------------------------------------------------


def _env_without(server: RunningServer, *names: str) -> dict[str, str]:
    return {k: v for k, v in server.env.items() if k not in names}


def test_options_name_the_servers_database(server: RunningServer, tmp_path: Path) -> None:
    """--data-dir (SQLite) or --config with database_url (PostgreSQL), before or after the
    command's name, reach the same database as the server's environment does."""
    env = _env_without(server, "ASSISTD_DATA_DIR", "ASSISTD_DATABASE_URL")
    if server.database_url:
        config = tmp_path / "assistd.toml"
        config.write_text(f'database_url = "{server.database_url}"\n')
        where = ["--config", str(config)]
    else:
        where = ["--data-dir", str(server.data_dir)]
    name = unique("opts")
    ws_id = succeeds(*where, "workspace", "create", name, env=env, cwd=tmp_path)[0]
    listed = succeeds("workspace", "list", *where, env=env, cwd=tmp_path)
    assert f"{ws_id}\t{name}" in listed
    assert workspace_rows(server.env)[name] == ws_id
    assert not (tmp_path / "assistd-data").exists()


def test_migrate_on_the_running_servers_database(
    server: RunningServer, admin: httpx.Client
) -> None:
    name = unique("before-migrate")
    ws_id = succeeds("workspace", "create", name, env=server.env)[0]
    assert succeeds("migrate", env=server.env) == ["migrations applied"]
    assert succeeds("migrate", env=server.env) == ["migrations applied"]
    assert workspace_rows(server.env)[name] == ws_id
    assert admin.get("/admin/v1/workspaces").status_code == 200


# ---- a fresh database: migrate, and the first start without ASSISTD_API_KEY -------------


@dataclass
class Fresh:
    data_dir: Path
    database_url: str  # "" for SQLite in data_dir

    def env(self, **extra: str) -> dict[str, str]:
        env = server_env(self.data_dir, self.database_url, "")
        del env["ASSISTD_API_KEY"]
        return {**env, **extra}


@pytest.fixture(params=["sqlite", "postgres"])
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Fresh]:
    """An empty database of each backend, nothing created in it yet."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    if request.param == "sqlite":
        yield Fresh(data_dir, "")
        return
    with ExitStack() as stack:
        url = stack.enter_context(database_or_skip(tmp_path / "pg"))
        yield Fresh(data_dir, url)


@contextmanager
def serve(env: dict[str, str], log: Path) -> Iterator[str]:
    """`assistd serve` with exactly this environment; yields its base URL."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "assistd", "serve", "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base_url, proc, log)
        yield base_url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def stored_keys(fresh: Fresh) -> list[dict[str, Any]]:
    """The api_keys table, read straight from the database."""
    if not fresh.database_url:
        with closing(sqlite3.connect(fresh.data_dir / "assistd.db")) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(row) for row in conn.execute("SELECT * FROM api_keys")]

    async def read() -> list[dict[str, Any]]:
        dsn = fresh.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
        conn = await asyncpg.connect(dsn)
        try:
            return [dict(row) for row in await conn.fetch("SELECT * FROM api_keys")]
        finally:
            await conn.close()

    return asyncio.run(read())


def test_migrate_creates_a_fresh_database(fresh: Fresh, tmp_path: Path) -> None:
    assert succeeds("migrate", env=fresh.env()) == ["migrations applied"]
    assert succeeds("migrate", env=fresh.env()) == ["migrations applied"]
    assert stored_keys(fresh) == []
    assert workspace_rows(fresh.env()).keys() == {"default"}
    if not fresh.database_url:
        assert (fresh.data_dir / "assistd.db").is_file()
    # A server started on it afterwards works (and, with no key yet, prints the first one).
    with serve(fresh.env(), tmp_path / "serve.log") as base_url:
        assert httpx.get(f"{base_url}/healthz").status_code == 200
    assert len(SECRET.findall((tmp_path / "serve.log").read_text())) == 1


def test_first_start_prints_an_admin_key_once(fresh: Fresh, tmp_path: Path) -> None:
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    with serve(fresh.env(), first_log) as base_url:
        printed = SECRET.findall(first_log.read_text())
        assert len(printed) == 1, first_log.read_text()
        # and how to mint another admin key if this one is lost
        assert "assistd key create --workspace default --admin" in first_log.read_text()
        secret = printed[0]
        keys = get(base_url, "/admin/v1/keys", secret)
        assert keys.status_code == 200, keys.text
        (only,) = keys.json()["data"]
        assert only["admin"] is True and secret.startswith(only["prefix"])
        made = httpx.post(
            f"{base_url}/admin/v1/workspaces",
            json={"name": "made-by-first-key"},
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert made.status_code == 200, made.text
    with serve(fresh.env(), second_log) as base_url:
        assert get(base_url, "/admin/v1/keys", secret).status_code == 200
    second = second_log.read_text()
    assert not SECRET.search(second) and "admin API key" not in second, second

    # Only the key's SHA-256 is stored, never the key.
    (row,) = stored_keys(fresh)
    assert row["key_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert not any(secret in str(value) for value in row.values())
    if not fresh.database_url:  # nor anywhere else in the database's files
        stored = list(fresh.data_dir.iterdir())
        assert any(p.name == "assistd.db" for p in stored)
        for path in stored:
            assert secret.encode() not in path.read_bytes(), path


def test_no_key_is_printed_when_the_cli_made_one_first(fresh: Fresh, tmp_path: Path) -> None:
    key = create_key(fresh.env(), "default", "--admin")
    log = tmp_path / "serve.log"
    with serve(fresh.env(), log) as base_url:
        assert get(base_url, "/admin/v1/keys", key.secret).status_code == 200
    assert not SECRET.search(log.read_text())


def test_configured_key_is_registered_not_printed(fresh: Fresh, tmp_path: Path) -> None:
    configured = "sk-configured-" + secrets.token_hex(16)
    log = tmp_path / "serve.log"
    with serve(fresh.env(ASSISTD_API_KEY=configured), log) as base_url:
        assert get(base_url, "/admin/v1/keys", configured).status_code == 200
    assert configured not in log.read_text() and not SECRET.search(log.read_text())
    (row,) = stored_keys(fresh)
    assert row["key_hash"] == hashlib.sha256(configured.encode()).hexdigest()
    assert row["admin"] in (True, 1)
