"""Keys and files at start-up, on a fresh database of each backend: ASSISTD_API_KEY must be
long, a changed one replaces the key the previous value registered, stored key prefixes
are cut short by the migration, and the data dir is private to its owner."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from assistd.store.migrations import alembic_config
from tests.cli import test_cli as cli
from tests.cli.test_cli import Fresh, get, key_rows, serve, stored_keys, succeeds
from tests.support.server import free_port

fresh = cli.fresh  # the fixture: an empty database of each backend


def configured_key(label: str, length: int = 32) -> str:
    key = f"sk-{label}-" + secrets.token_hex(32)
    return key[:length]


# ---- a short ASSISTD_API_KEY ------------------------------------------------------------


@pytest.mark.parametrize("key", ["hunter2", "sk-" + "x" * 28])
def test_a_short_configured_key_refuses_to_start(tmp_path: Path, key: str) -> None:
    """Before: `ASSISTD_API_KEY=hunter2` was accepted as an admin key."""
    data_dir = tmp_path / "data"
    env = {**Fresh(data_dir, "").env(), "ASSISTD_API_KEY": key}
    for command_line in (["serve", "--port", str(free_port())], ["key", "list"]):
        done = subprocess.run(
            [sys.executable, "-m", "assistd", *command_line],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode != 0, done.stdout + done.stderr
        (line,) = done.stderr.splitlines()
        assert line.startswith("Error: ASSISTD_API_KEY") and "32 characters" in line, line
        assert key not in done.stderr + done.stdout
    assert not data_dir.exists()


# ---- changing ASSISTD_API_KEY -----------------------------------------------------------


def test_a_changed_configured_key_replaces_the_previous_one(fresh: Fresh, tmp_path: Path) -> None:
    """Before: the key of the variable's previous value stayed a working admin key."""
    old, new = configured_key("old"), configured_key("new")
    with serve(fresh.env(ASSISTD_API_KEY=old), tmp_path / "1.log") as base_url:
        assert get(base_url, "/admin/v1/keys", old).status_code == 200
    (old_row,) = stored_keys(fresh)

    log = tmp_path / "2.log"
    with serve(fresh.env(ASSISTD_API_KEY=new), log) as base_url:
        refused = get(base_url, "/api/v1/assistants", old)
        assert refused.status_code == 401 and refused.json()["code"] == "InvalidApiKey"
        listed = get(base_url, "/admin/v1/keys", new)
        assert listed.status_code == 200, listed.text
        by_id = {k["id"]: k for k in listed.json()["data"]}
    (line,) = [line for line in log.read_text().splitlines() if "ASSISTD_API_KEY" in line]
    assert "changed" in line and "revoked" in line and old_row["id"] in line, line
    assert old not in log.read_text() and new not in log.read_text()
    assert by_id[old_row["id"]]["revoked_at"] is not None and by_id[old_row["id"]]["bootstrap"]
    (current,) = [k for k in by_id.values() if k["revoked_at"] is None]
    assert current["bootstrap"] is True and current["admin"] is True

    # The same value again changes nothing; no value leaves the key working, and says so.
    for env, name in ((fresh.env(ASSISTD_API_KEY=new), "3.log"), (fresh.env(), "4.log")):
        with serve(env, tmp_path / name) as base_url:
            assert get(base_url, "/api/v1/assistants", new).status_code == 200
            assert get(base_url, "/api/v1/assistants", old).status_code == 401
    assert "revoked" not in (tmp_path / "3.log").read_text()
    unset = (tmp_path / "4.log").read_text()
    assert f"assistd key revoke {current['id']}" in unset, unset
    assert len(stored_keys(fresh)) == 2


# ---- stored prefixes of an older database -----------------------------------------------


def _sql_url(fresh: Fresh) -> str:
    return fresh.database_url or f"sqlite+aiosqlite:///{fresh.data_dir / 'assistd.db'}"


async def _at_first_revision_with(fresh: Fresh, keys: dict[str, tuple[str, str]]) -> None:
    """The schema of revision 0001, with `keys` (secret -> (id, name)) stored as 0001's
    code stored them: the first 15 characters of the secret as the prefix."""
    engine = create_async_engine(_sql_url(fresh))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.upgrade(alembic_config(c), "0001"))
            await conn.execute(
                text("INSERT INTO workspaces (id, name, created_at) VALUES ('ws_d', 'default', 1)")
            )
            for secret, (key_id, name) in keys.items():
                await conn.execute(
                    text(
                        "INSERT INTO api_keys (id, workspace_id, key_hash, prefix, name, admin,"
                        " created_at) VALUES (:id, 'ws_d', :hash, :prefix, :name, true, 1)"
                    ),
                    {"id": key_id, "hash": _hash(secret), "prefix": secret[:15], "name": name},
                )
    finally:
        await engine.dispose()


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def test_migration_cuts_the_stored_prefixes(fresh: Fresh, tmp_path: Path) -> None:
    """Before: a short configured key's whole secret, 15 characters of others, were kept
    and listed."""
    generated = "sk-assistd-" + secrets.token_urlsafe(32)
    keys = {
        generated: ("key_generated", "ci"),
        "hunter2": ("key_short", "ASSISTD_API_KEY"),
        "sk-configured-abcdefg": ("key_longer", "ASSISTD_API_KEY"),
    }
    asyncio.run(_at_first_revision_with(fresh, keys))
    assert succeeds("migrate", env=fresh.env()) == ["migrations applied"]

    prefixes = {row["id"]: row["prefix"] for row in stored_keys(fresh)}
    assert prefixes == {
        "key_generated": generated[:15], "key_short": "hunt", "key_longer": "sk-c",
    }  # fmt: skip
    listed = key_rows(fresh.env())
    assert {key_id: row[3] for key_id, row in listed.items()} == {
        key_id: f"{prefix}..." for key_id, prefix in prefixes.items()
    }

    # The keys the variable registered are now its bootstrap keys: a new value replaces them.
    new = configured_key("new", 40)
    log = tmp_path / "serve.log"
    with serve(fresh.env(ASSISTD_API_KEY=new), log) as base_url:
        assert get(base_url, "/api/v1/assistants", generated).status_code == 200
        assert get(base_url, "/api/v1/assistants", "sk-configured-abcdefg").status_code == 401
        assert get(base_url, "/api/v1/assistants", new).status_code == 200
    assert "key_short" in log.read_text() and "key_longer" in log.read_text()


# ---- a private data dir -----------------------------------------------------------------


@contextmanager
def umask(mask: int) -> Iterator[None]:
    """The mask the server is started under (children inherit it)."""
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def modes(data_dir: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(data_dir.stat().st_mode)}
    for path in data_dir.iterdir():
        found[path.name] = stat.S_IMODE(path.stat().st_mode)
    return found


def _write_something(base_url: str, key: str) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    made = httpx.post(f"{base_url}/admin/v1/workspaces", json={"name": "w"}, headers=headers)
    assert made.status_code in (200, 409), made.text


def test_the_data_dir_and_its_files_are_private(tmp_path: Path) -> None:
    """Before: the data dir was 0755 and the database 0644 under the usual umask."""
    key = configured_key("modes")
    fresh = Fresh(tmp_path / "new" / "data", "")
    with umask(0o022), serve(fresh.env(ASSISTD_API_KEY=key), tmp_path / "1.log") as base_url:
        _write_something(base_url, key)
        found = modes(fresh.data_dir)
    assert {"assistd.db", "assistd.db-wal", "assistd.db-shm"} <= found.keys(), found
    assert found == {name: 0o700 if name == "." else 0o600 for name in found}

    # An existing data dir, left open by an older version, is tightened.
    fresh.data_dir.chmod(0o755)
    for path in fresh.data_dir.iterdir():
        path.chmod(0o644)
    with umask(0o022), serve(fresh.env(ASSISTD_API_KEY=key), tmp_path / "2.log") as base_url:
        _write_something(base_url, key)
        found = modes(fresh.data_dir)
    assert found == {name: 0o700 if name == "." else 0o600 for name in found}
