"""GET /admin/v1/audit: a failed call's record and no change behind it; who may read
which records; the filters and pages. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.audit.helpers import Caller, newest, now_ms, records
from tests.support.db import query
from tests.support.server import RunningServer


@pytest.fixture
def caller(server: RunningServer) -> Iterator[Caller]:
    made = Caller(server)
    yield made
    made.close()


def test_a_refused_call_records_its_failure_and_changes_nothing(caller: Caller) -> None:
    answer = caller.oa.post("/assistants", json={"model": "m", "temperature": "hot"})
    assert answer.status_code == 400
    record = newest(caller.adm, caller.key_id)
    assert (record["method"], record["route"]) == ("POST", "/v1/assistants")
    assert record["status"] == 400 and record["error_code"] == "invalid_request_error"
    assert record["workspace_id"] == caller.ws and record["object_ids"] == []
    assert caller.oa.get("/assistants").json()["data"] == []


def test_a_conflict_inside_the_transaction_records_the_failure_alone(caller: Caller) -> None:
    """Deleting a workspace that still holds objects fails inside the admin unit, after
    it has read them: the unit rolls back, and the record says so once."""
    thread = caller.oa.post("/threads", json={}).json()["id"]
    answer = caller.adm.delete(f"/workspaces/{caller.ws}")
    assert answer.status_code == 409
    mine = records(caller.adm, key_id=caller.admin_key_id, object_id=caller.ws)
    assert [(r["method"], r["status"], r["error_code"]) for r in mine] == [
        ("DELETE", 409, "Conflict")
    ]
    assert caller.oa.get(f"/threads/{thread}").status_code == 200  # nothing went
    assert query(caller.server, "SELECT 1 FROM workspaces WHERE id = ?", caller.ws)


def test_one_record_per_successful_call(caller: Caller) -> None:
    made = caller.oa.post("/assistants", json={"model": "m"}).json()["id"]
    caller.oa.post(f"/assistants/{made}", json={"name": "x"})
    caller.oa.delete(f"/assistants/{made}")
    mine = records(caller.adm, object_id=made)
    assert [(r["method"], r["route"], r["status"]) for r in mine] == [
        ("DELETE", "/v1/assistants/{assistant_id}", 200),
        ("POST", "/v1/assistants/{assistant_id}", 200),
        ("POST", "/v1/assistants", 200),
    ]  # newest first
    assert len({r["request_id"] for r in mine}) == 3


def test_a_workspace_key_cannot_read_the_log(server: RunningServer, caller: Caller) -> None:
    with httpx.Client(base_url=server.base_url, headers=caller.oa.headers) as plain:
        answer = plain.get("/admin/v1/audit")
    assert answer.status_code == 403 and "admin" in answer.json()["message"]
    anonymous = httpx.get(f"{server.base_url}/admin/v1/audit")
    assert anonymous.status_code == 401


def test_a_workspace_admin_reads_its_own_workspace_only(
    server: RunningServer, caller: Caller
) -> None:
    other = Caller(server)
    try:
        other.oa.post("/threads", json={})
        caller.oa.post("/threads", json={})
        made = caller.adm.post("/keys", json={"workspace": caller.ws, "admin": True}).json()
        headers = {"Authorization": f"Bearer {made['key']}"}
        with httpx.Client(base_url=server.base_url + "/admin/v1", headers=headers) as local:
            seen = records(local)
            assert seen and {r["workspace_id"] for r in seen} == {caller.ws}
            assert local.get("/audit", params={"workspace": other.ws}).status_code == 404
            assert records(local, key_id=other.key_id) == []
    finally:
        other.close()


def test_filters_and_pages(caller: Caller) -> None:
    start = now_ms()
    threads = [caller.oa.post("/threads", json={}).json()["id"] for _ in range(5)]
    caller.oa.delete(f"/threads/{threads[0]}")
    mine = records(caller.adm, workspace=caller.ws, since=str(start))
    assert [r["object_ids"] for r in mine] == [[threads[0]], *[[t] for t in reversed(threads)]]
    assert [r["id"] for r in mine] == sorted((r["id"] for r in mine), reverse=True)
    deleted = records(caller.adm, workspace=caller.ws, method="delete")
    assert [r["object_ids"] for r in deleted] == [[threads[0]]]
    assert records(caller.adm, workspace=caller.ws, until=str(start)) == []
    assert len(records(caller.adm, workspace=caller.ws, since="1h")) == 6

    first = caller.adm.get("/audit", params={"workspace": caller.ws, "limit": 4}).json()
    assert first["has_more"] and len(first["data"]) == 4
    rest = caller.adm.get(
        "/audit", params={"workspace": caller.ws, "limit": 4, "after": first["last_id"]}
    ).json()
    assert not rest["has_more"]
    assert [r["id"] for r in first["data"] + rest["data"]] == [r["id"] for r in mine]


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"since": "yesterday"}, "since"),
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"after": "x"}, "after"),
        ({"method": "GET"}, "method"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_bad_filter_is_a_400_naming_it(
    caller: Caller, params: dict[str, str], named: str
) -> None:
    answer = caller.adm.get("/audit", params=params)
    assert answer.status_code == 400, answer.text
    assert f"'{named}'" in answer.json()["message"]


def test_a_nul_in_the_path_is_recorded_as_sent(caller: Caller) -> None:
    """PostgreSQL's text takes no NUL: the record keeps the path percent-encoded."""
    answer = caller.oa.post("/assistants/asst_%00x", json={"name": "x"})
    assert answer.status_code == 400
    (record,) = records(caller.adm, limit=1)  # refused before its key was looked at
    assert record["path"] == "/v1/assistants/asst_%00x" and record["status"] == 400
