"""Quotas when scaled out: two `assistd serve --no-worker` replicas count one key's and
one workspace's requests in the same Redis window, so a limit holds for the whole
deployment, not per replica; keys without limits leave nothing in Redis."""

from __future__ import annotations

import asyncio

import httpx

from tests.conftest import make_workspace
from tests.distributed.conftest import Cluster
from tests.support.redis import redis_or_skip
from tests.support.server import RunningServer
from tests.usage.helpers import fresh_window, key_limits, new_key, workspace_limits


def _get(server: RunningServer, key: str, path: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.get(f"{server.base_url}{path}", headers=headers, timeout=30)


def _quota_keys(prefix: str) -> list[str]:
    async def scan() -> list[str]:
        client = await redis_or_skip()
        try:
            return [str(k) async for k in client.scan_iter(match=f"{prefix}quota:*")]
        finally:
            await client.aclose()

    return asyncio.run(scan())


def test_two_replicas_share_the_counts(cluster: Cluster) -> None:
    (a, b), _ = cluster.start(replicas=2)
    prefix = cluster.env["ASSISTD_REDIS_PREFIX"]
    headers = {"Authorization": f"Bearer {a.admin_key}"}
    with httpx.Client(base_url=a.base_url, headers=headers, timeout=30) as admin:
        ws, free = make_workspace(admin, "shared")
        key_id, key = new_key(admin, ws)
        key_limits(admin, key_id, requests_per_minute=4)
        fresh_window()
        for replica in (a, b, a, b, a, b):  # no limit on this key: Redis is not asked
            assert _get(replica, free, "/api/v1/assistants").status_code == 200
        assert _quota_keys(prefix) == []

        for replica in (a, b, a, b):
            assert _get(replica, key, "/api/v1/assistants").status_code == 200
        refused = _get(b, key, "/api/v1/assistants")
        assert refused.status_code == 429 and refused.json()["code"] == "Throttling"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert _get(a, key, "/v1/assistants").json()["error"]["code"] == "rate_limit_exceeded"
        assert any(f"k:{key_id}:requests_per_minute:" in k for k in _quota_keys(prefix))

        workspace_limits(admin, ws, requests_per_minute=3)
        fresh_window()
        statuses = [_get(r, free, "/api/v1/assistants").status_code for r in (a, b, a, b)]
        assert statuses == [200, 200, 200, 429]
