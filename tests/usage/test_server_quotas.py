"""The server's own limits (settings `quota_key_*`, `quota_workspace_*`) apply to every
key and workspace that sets none of its own; an own limit of 0 lifts them."""

from __future__ import annotations

import httpx

from tests.runs.conftest import StartServer
from tests.support.server import RunningServer
from tests.usage.helpers import fresh_window, key_limits, new_key


def _status(server: RunningServer, key: str) -> int:
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.get(f"{server.base_url}/v1/assistants", headers=headers, timeout=30).status_code


def test_the_servers_limits_and_a_keys_own(start_server: StartServer) -> None:
    server = start_server(
        ASSISTD_QUOTA_KEY_REQUESTS_PER_MINUTE="2",
        ASSISTD_QUOTA_WORKSPACE_REQUESTS_PER_MINUTE="5",
    )
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as admin:
        ws = admin.post("/admin/v1/workspaces", json={"name": "limited"}).json()["id"]
        settings = admin.get(f"/admin/v1/workspaces/{ws}/settings").json()
        assert settings["server_limits"]["requests_per_minute"] == 5
        (plain_id, plain), (free_id, free) = new_key(admin, ws), new_key(admin, ws)
        key_limits(admin, free_id, requests_per_minute=0)
        fresh_window()
        assert [_status(server, plain) for _ in range(3)] == [200, 200, 429]
        # The free key has no key limit; the workspace's 5 (3 used above) still holds.
        assert [_status(server, free) for _ in range(3)] == [200, 200, 429]
        assert plain_id != free_id
