"""What the audit tests share: a workspace with a plain key and a global admin key of
their own (so the newest record of a key is the call just made), and reading records."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.server import RunningServer

MUTATING = ("POST", "PUT", "PATCH", "DELETE")


def _client(base_url: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60)


@dataclass
class Caller:
    """A fresh workspace, its plain key (`ds`, `oa`: the two vendor surfaces) and a new
    admin key of `default` (`adm`: the admin API)."""

    server: RunningServer
    ws: str = ""
    key_id: str = ""
    admin_key_id: str = ""
    clients: dict[str, httpx.Client] = field(default_factory=dict)

    def __post_init__(self) -> None:
        boss = _client(self.server.base_url + "/admin/v1", self.server.admin_key)
        made = boss.post("/workspaces", json={"name": f"audit-{secrets.token_hex(4)}"})
        assert made.status_code == 200, made.text
        self.ws = made.json()["id"]
        plain = boss.post("/keys", json={"workspace": self.ws}).json()
        admin = boss.post("/keys", json={"workspace": "default", "admin": True}).json()
        boss.close()
        self.key_id, self.admin_key_id = plain["id"], admin["id"]
        base = self.server.base_url
        self.clients = {
            "ds": _client(base + "/api/v1", plain["key"]),
            "oa": _client(base + "/v1", plain["key"]),
            "adm": _client(base + "/admin/v1", admin["key"]),
        }

    @property
    def ds(self) -> httpx.Client:
        return self.clients["ds"]

    @property
    def oa(self) -> httpx.Client:
        return self.clients["oa"]

    @property
    def adm(self) -> httpx.Client:
        return self.clients["adm"]

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


def records(admin: httpx.Client, **filters: Any) -> list[dict[str, Any]]:
    """Records through GET /admin/v1/audit (`admin`: a client of /admin/v1)."""
    answer = admin.get("/audit", params={"limit": 100, **filters})
    assert answer.status_code == 200, answer.text
    data: list[dict[str, Any]] = answer.json()["data"]
    return data


def newest(admin: httpx.Client, key_id: str) -> dict[str, Any]:
    found = records(admin, key_id=key_id, limit=1)
    assert found, f"no audit record for key {key_id}"
    return found[0]


def now_ms() -> int:
    return time.time_ns() // 1_000_000
