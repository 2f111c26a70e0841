"""Helpers of the usage and quota tests: keys made through the admin API, limits set
on them, and timing against the quotas' one-minute windows."""

from __future__ import annotations

import time
from typing import Any

import httpx

WINDOW_S = 60


def new_key(admin: httpx.Client, workspace_id: str) -> tuple[str, str]:
    """A plain key of the workspace: (key id, secret)."""
    made = admin.post("/admin/v1/keys", json={"workspace": workspace_id})
    assert made.status_code == 200, made.text
    return made.json()["id"], made.json()["key"]


def key_limits(admin: httpx.Client, key_id: str, **limits: int | None) -> dict[str, Any]:
    answer = admin.post(f"/admin/v1/keys/{key_id}/limits", json=limits)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def workspace_limits(admin: httpx.Client, workspace: str, **limits: int | None) -> dict[str, Any]:
    answer = admin.post(f"/admin/v1/workspaces/{workspace}/settings", json={"limits": limits})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def left_in_window() -> float:
    return WINDOW_S - time.time() % WINDOW_S


def fresh_window(needed_s: float = 15) -> None:
    """Waits, if need be, for a window with at least `needed_s` seconds left, so that
    the requests a test counts all fall into one window."""
    if left_in_window() < needed_s:
        time.sleep(left_in_window() + 0.3)


def window_ending(within_s: float = 6) -> None:
    """Waits until the window has at most `within_s` seconds left (and at least 2), so
    that a Retry-After is short."""
    while not 2 <= left_in_window() <= within_s:
        time.sleep(max(0.1, left_in_window() - within_s))


def usage_rows(admin: httpx.Client, **params: str) -> list[dict[str, Any]]:
    answer = admin.get("/admin/v1/usage", params=params)
    assert answer.status_code == 200, answer.text
    rows: list[dict[str, Any]] = answer.json()["data"]
    return rows
