"""DELETE /admin/v1/workspaces/{id or name}: over real HTTP against the real server, with
the database read back directly to see that nothing of a deleted workspace stays behind.

Before: the route did not exist ("DashScope calls live under /api/v1").
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import asyncpg
import httpx
import pytest

from tests.api.admin.test_admin_api import client, create_key, create_workspace, error, ok, unique
from tests.support.server import RunningServer

# Every table whose rows belong to a workspace.
TABLES = ["assistants", "assistant_files", "threads", "messages", "runs", "run_steps", "files"]


def stored_rows(server: RunningServer, workspace_id: str) -> dict[str, int]:
    """How many rows of each table (and API keys) the workspace has, read from the database."""
    queries = {t: f"SELECT count(*) FROM {t} WHERE workspace_id = $1" for t in TABLES}
    queries["api_keys"] = "SELECT count(*) FROM api_keys WHERE workspace_id = $1"
    queries["workspaces"] = "SELECT count(*) FROM workspaces WHERE id = $1"
    if not server.database_url:
        with closing(sqlite3.connect(server.data_dir / "assistd.db")) as conn:
            return {
                t: conn.execute(q.replace("$1", "?"), (workspace_id,)).fetchone()[0]
                for t, q in queries.items()
            }

    async def count() -> dict[str, int]:
        dsn = server.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
        conn = await asyncpg.connect(dsn)
        try:
            return {t: int(await conn.fetchval(q, workspace_id)) for t, q in queries.items()}
        finally:
            await conn.close()

    return asyncio.run(count())


def fill(server: RunningServer, key: str) -> None:
    """An assistant with a file, and a thread whose run has completed (messages, steps)."""
    with client(server, key) as user:
        upload = user.post(
            "/api/v1/files",
            files={"files": ("notes.txt", b"hello")},
            data={"purpose": "assistants"},
        )
        assert upload.status_code == 200, upload.text
        file_id = upload.json()["data"]["uploaded_files"][0]["file_id"]
        assistant = ok(user.post("/api/v1/assistants", json={"model": "m", "file_ids": [file_id]}))
        thread = ok(user.post("/api/v1/threads", json={"messages": [{"content": "hi"}]}))
        run = ok(
            user.post(
                f"/api/v1/threads/{thread['id']}/runs", json={"assistant_id": assistant["id"]}
            )
        )
        deadline = time.monotonic() + 60
        while run["status"] in ("queued", "in_progress") and time.monotonic() < deadline:
            time.sleep(0.1)
            run = ok(user.get(f"/api/v1/threads/{thread['id']}/runs/{run['id']}"))
        assert run["status"] == "completed", run


@pytest.fixture
def workspace(server: RunningServer, admin: httpx.Client) -> Iterator[tuple[dict[str, Any], str]]:
    """A fresh workspace and a plain key of it."""
    ws = create_workspace(admin, unique("doomed"))
    yield ws, create_key(admin, workspace=ws["id"])["key"]


def test_an_empty_workspace_is_deleted_with_its_keys(
    server: RunningServer, admin: httpx.Client, workspace: tuple[dict[str, Any], str]
) -> None:
    ws, key = workspace
    deleted = ok(admin.delete(f"/admin/v1/workspaces/{ws['id']}"))
    assert deleted["id"] == ws["id"] and deleted["name"] == ws["name"]
    assert deleted["object"] == "workspace.deleted" and deleted["deleted"] is True
    assert ws["id"] not in {w["id"] for w in ok(admin.get("/admin/v1/workspaces"))["data"]}
    assert ws["id"] not in {k["workspace_id"] for k in ok(admin.get("/admin/v1/keys"))["data"]}
    with client(server, key) as user:
        error(user.get("/api/v1/assistants"), 401, "InvalidApiKey")
    assert set(stored_rows(server, ws["id"]).values()) == {0}
    error(admin.delete(f"/admin/v1/workspaces/{ws['id']}"), 404, "NotFound")
    # The name is free again.
    assert create_workspace(admin, ws["name"])["id"] != ws["id"]


def test_a_workspace_is_deleted_by_name(
    admin: httpx.Client, workspace: tuple[dict[str, Any], str]
) -> None:
    ws, _ = workspace
    assert ok(admin.delete(f"/admin/v1/workspaces/{ws['name']}"))["id"] == ws["id"]
    message = error(admin.delete(f"/admin/v1/workspaces/{ws['name']}"), 404, "NotFound")
    assert ws["name"] in message


def test_a_workspace_that_holds_objects_needs_force(
    server: RunningServer, admin: httpx.Client, workspace: tuple[dict[str, Any], str]
) -> None:
    ws, key = workspace
    fill(server, key)
    held = stored_rows(server, ws["id"])
    assert all(held[t] for t in TABLES), held

    for query in ("", "?force=false"):
        refused = admin.delete(f"/admin/v1/workspaces/{ws['id']}{query}")
        message = error(refused, 409, "Conflict")
        assert "1 assistant" in message and "1 thread" in message and "1 file" in message
        assert "force" in message
    assert stored_rows(server, ws["id"]) == held
    with client(server, key) as user:
        ok(user.get("/api/v1/assistants"))

    deleted = ok(admin.delete(f"/admin/v1/workspaces/{ws['id']}?force=true"))
    assert deleted["deleted"] is True
    assert set(stored_rows(server, ws["id"]).values()) == {0}
    with client(server, key) as user:
        error(user.get("/api/v1/assistants"), 401, "InvalidApiKey")


def test_the_default_workspace_is_never_deleted(admin: httpx.Client) -> None:
    for query in ("", "?force=true"):
        message = error(admin.delete(f"/admin/v1/workspaces/default{query}"), 409, "Conflict")
        assert "default" in message
    assert "default" in {w["name"] for w in ok(admin.get("/admin/v1/workspaces"))["data"]}
    ok(admin.get("/api/v1/assistants"))


def test_deleting_a_missing_workspace_is_404(admin: httpx.Client) -> None:
    missing = unique("never")
    assert missing in error(admin.delete(f"/admin/v1/workspaces/{missing}"), 404, "NotFound")


def test_force_must_be_a_boolean(
    admin: httpx.Client, workspace: tuple[dict[str, Any], str]
) -> None:
    ws, _ = workspace
    refused = admin.delete(f"/admin/v1/workspaces/{ws['id']}?force=maybe")
    assert "force" in error(refused, 400, "InvalidParameter")
    assert ws["id"] in {w["id"] for w in ok(admin.get("/admin/v1/workspaces"))["data"]}


def test_only_an_admin_key_of_default_deletes_workspaces(
    server: RunningServer, admin: httpx.Client, workspace: tuple[dict[str, Any], str]
) -> None:
    """A workspace admin is refused alike for its own, another and a missing workspace."""
    ws, plain_key = workspace
    own = create_key(admin, workspace=ws["id"], admin=True)["key"]
    other = create_workspace(admin)
    with client(server, own) as owner, client(server, plain_key) as plain:
        messages = set()
        for target in (ws["id"], other["name"], unique("missing")):
            messages.add(error(owner.delete(f"/admin/v1/workspaces/{target}"), 403, "AccessDenied"))
            error(plain.delete(f"/admin/v1/workspaces/{target}"), 403, "AccessDenied")
        assert len(messages) == 1
        ok(owner.get("/admin/v1/keys"))
    ids = {w["id"] for w in ok(admin.get("/admin/v1/workspaces"))["data"]}
    assert {ws["id"], other["id"]} <= ids
