"""The operator's side of the audit log, on a server of its own per backend (request
bodies kept and cut short, a sweep every half second): bodies redacted and capped,
retention pruning old records, and `assistd audit` as a table and as JSON lines."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.api.dashscope.test_plugins import WEATHER
from tests.audit.helpers import Caller, newest, records
from tests.cli.test_cli import fails, succeeds
from tests.runs.conftest import StartServer, start_module_server  # noqa: F401
from tests.support.db import query
from tests.support.server import RunningServer

TOKEN = "plugin-token-0123456789abcdef"
CAP = 300
DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def server(start_module_server: StartServer) -> RunningServer:  # noqa: F811
    return start_module_server(
        ASSISTD_AUDIT_BODIES="true", ASSISTD_AUDIT_BODY_MAX_BYTES=str(CAP),
        ASSISTD_AUDIT_RETENTION_DAYS="30", ASSISTD_THREAD_SWEEP_INTERVAL_S="0.5",
    )  # fmt: skip


@pytest.fixture
def caller(server: RunningServer) -> Iterator[Caller]:
    made = Caller(server)
    yield made
    made.close()


def test_bodies_are_kept_redacted_and_cut(caller: Caller) -> None:
    small = {"plugin_id": "weather_audit", "openapi": {"openapi": "3.0.3"},
             "auth": {"type": "service", "token": TOKEN}}  # fmt: skip
    caller.ds.post("/plugins", json=small)
    body = newest(caller.adm, caller.key_id)["body"]
    assert TOKEN not in body and '"token":"***"' in body.replace(" ", "")

    caller.ds.post("/plugins", json={"plugin_id": "weather_big", "openapi": WEATHER})
    body = newest(caller.adm, caller.key_id)["body"]
    assert body.startswith('{"plugin_id":"weather_big"') and "more bytes]" in body
    assert len(body.encode()) < CAP + 40

    files = {"file": ("a.txt", b"secret file text", "text/plain")}
    caller.oa.post("/files", files=files, data={"purpose": "assistants"})
    body = newest(caller.adm, caller.key_id)["body"]
    assert body.startswith("[multipart/form-data body of ") and "secret" not in body


def test_records_past_their_retention_are_pruned(caller: Caller) -> None:
    old, kept = (caller.oa.post("/threads", json={}).json()["id"] for _ in range(2))
    (record,) = records(caller.adm, object_id=old)
    at = record["created_at"] - 31 * DAY_MS
    query(caller.server, "UPDATE audit_log SET at = ? WHERE seq = ?", at, record["id"])
    deadline = time.monotonic() + 30
    while records(caller.adm, object_id=old):
        assert time.monotonic() < deadline, "the old record was not pruned"
        time.sleep(0.2)
    assert len(records(caller.adm, object_id=kept)) == 1


def test_the_cli_shows_the_log(caller: Caller) -> None:
    thread = caller.oa.post("/threads", json={}).json()["id"]
    caller.oa.delete(f"/threads/{thread}")
    env = caller.server.env
    lines = succeeds("audit", "--workspace", caller.ws, "--json", env=env)
    rows = [json.loads(line) for line in lines]
    assert [(r["method"], r["route"], r["object_ids"]) for r in rows] == [
        ("DELETE", "/v1/threads/{thread_id}", [thread]),
        ("POST", "/v1/threads", [thread]),
    ]
    assert rows == records(caller.adm, workspace=caller.ws)  # the API's records, as shown
    only = succeeds("audit", "--object", thread, "--method", "DELETE", "--json", env=env)
    assert [json.loads(line)["method"] for line in only] == ["DELETE"]
    assert succeeds("audit", "--workspace", caller.ws, "--until", "2000-01-01", env=env)[-1] == (
        "0 records"
    )

    table = "\n".join(succeeds("audit", "--key", caller.key_id, "--since", "1h", env=env))
    assert "/v1/threads/{thread_id}" in table and thread in table and caller.ws in table
    assert table.endswith("2 records")
    assert "'--since'" in fails("audit", "--since", "soon", env=env)
    assert "no-such-ws" in fails("audit", "--workspace", "no-such-ws", env=env)
