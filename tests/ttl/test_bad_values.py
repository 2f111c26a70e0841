"""A TTL that is not one is a 400 naming the field, in each surface's envelope: the
workspace setting on the admin API, the thread's metadata key on both vendor APIs."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from dashscope import Threads

from tests.api.admin.test_admin_api import error
from tests.api.openai.conftest import sdk
from tests.conftest import make_workspace
from tests.runs.conftest import sdk_at
from tests.runs.helpers import ok
from tests.support.sdk import assert_error
from tests.support.server import RunningServer

KEY = "expires_after_seconds"
BAD_METADATA = ["soon", "-5", "1.5", "", "99999999999"]


@pytest.mark.parametrize("value", [-1, "3600", 1.5, True, 10**12, [60]])
def test_bad_workspace_ttls(server: RunningServer, admin: httpx.Client, value: Any) -> None:
    ws, _ = make_workspace(admin, "ttl-bad")
    url = f"/admin/v1/workspaces/{ws}/settings"
    message = error(admin.post(url, json={"thread_ttl_seconds": value}), 400, "InvalidParameter")
    assert "thread_ttl_seconds" in message
    assert admin.get(url).json()["thread_ttl_seconds"] is None  # nothing changed


def test_unknown_setting_and_workspace(server: RunningServer, admin: httpx.Client) -> None:
    ws, _ = make_workspace(admin, "ttl-bad")
    url = f"/admin/v1/workspaces/{ws}/settings"
    assert "thread_ttl" in error(admin.post(url, json={"thread_ttl": 60}), 400, "InvalidParameter")
    error(admin.get("/admin/v1/workspaces/no-such-ws/settings"), 404, "NotFound")
    cleared = admin.post(url, json={"thread_ttl_seconds": None})
    assert cleared.status_code == 200 and cleared.json()["thread_ttl_seconds"] is None


def test_bad_thread_ttls_openai(server: RunningServer, admin: httpx.Client) -> None:
    _, key = make_workspace(admin, "ttl-bad")
    with sdk(server, key) as client:
        thread = client.beta.threads.create(metadata={KEY: "60"})
        for value in BAD_METADATA:
            with pytest.raises(openai.BadRequestError) as created:
                client.beta.threads.create(metadata={KEY: value})
            assert KEY in created.value.message
            with pytest.raises(openai.BadRequestError) as modified:
                client.beta.threads.update(thread.id, metadata={KEY: value})
            assert KEY in modified.value.message
        assert client.beta.threads.retrieve(thread.id).metadata == {KEY: "60"}


def test_bad_thread_ttls_dashscope(server: RunningServer, admin: httpx.Client) -> None:
    _, key = make_workspace(admin, "ttl-bad")
    with sdk_at(server, key):
        thread = ok(Threads.create(metadata={KEY: "0"}))
        for value in BAD_METADATA:
            assert_error(Threads.create(metadata={KEY: value}), 400, "InvalidParameter", KEY)
            bad = Threads.update(thread.id, metadata={KEY: value})
            assert_error(bad, 400, "InvalidParameter", KEY)
