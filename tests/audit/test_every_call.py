"""Every mutating call of the DashScope API, the OpenAI API and the admin API leaves one
complete audit record: time, key, workspace, method, route template, the ids in its path
and of what it created, and its outcome. The table of calls is checked against the app's
own routes, so a new mutating route without a case here fails this test.

Each call is made over real HTTP with a key of its own; the record is read back through
GET /admin/v1/audit (filtered by that key: the newest record is the call's). On SQLite
and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
import pytest

from assistd.api.audit import READS_BY_POST
from assistd.app import SURFACES
from tests.api.dashscope.test_plugins import WEATHER
from tests.audit.helpers import MUTATING, Caller, newest, now_ms
from tests.support.fake_model import FakeModel, Gate, Reply, ToolCalls
from tests.support.server import RunningServer

Result = tuple[httpx.Response, list[str]]  # the answer, and the ids its record must name
Case = Callable[["World"], Result]
CASES: dict[tuple[str, str], Case] = {}
FUNCTION = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


class World:
    """The objects the calls act on, made by the calls before them."""

    def __init__(self, caller: Caller, fake: FakeModel) -> None:
        self.c, self.fake = caller, fake
        self.ids: dict[str, str] = {}
        self.gates: list[Gate] = []

    def upload(self, client: httpx.Client, name: str) -> str:
        files = {"file": (name, b"assistd audit test text\n", "text/plain")}
        made = client.post("/files", files=files, data={"purpose": "assistants"})
        assert made.status_code == 200, made.text
        return str(made.json()["id"])

    def gate(self) -> str:
        gate = Gate("late")
        self.gates.append(gate)
        return self.fake.new_model(gate)

    def tool_model(self) -> str:
        return self.fake.new_model(ToolCalls([("get_weather", {"city": "Paris"})]), Reply("ok"))


def case(method: str, route: str) -> Callable[[Case], Case]:
    def register(fn: Case) -> Case:
        CASES[(method, route)] = fn
        return fn

    return register


def ok(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def wait_status(client: httpx.Client, thread_id: str, run_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        run = ok(client.get(f"/threads/{thread_id}/runs/{run_id}"))
        if run["status"] == status:
            return run
        assert time.monotonic() < deadline, f"run stayed {run['status']}, wanted {status}"
        time.sleep(0.05)


def thread_of(client: httpx.Client) -> str:
    return str(ok(client.post("/threads", json={}))["id"])


# ---- DashScope: /api/v1 --------------------------------------------------------------


@case("POST", "/api/v1/files")
def ds_upload(w: World) -> Result:
    files = {"files": ("notes.txt", b"assistd audit\n", "text/plain")}
    answer = w.c.ds.post("/files", files=files, data={"purpose": "assistants"})
    uploaded = ok(answer)["data"]["uploaded_files"]
    w.ids["ds_file"] = uploaded[0]["file_id"]
    return answer, [w.ids["ds_file"]]


@case("POST", "/api/v1/assistants")
def ds_create_assistant(w: World) -> Result:
    answer = w.c.ds.post("/assistants", json={"model": w.gate(), "name": "audited"})
    w.ids["ds_asst"] = ok(answer)["id"]
    return answer, [w.ids["ds_asst"]]


@case("POST", "/api/v1/assistants/{assistant_id}")
def ds_update_assistant(w: World) -> Result:
    a = w.ids["ds_asst"]
    return w.c.ds.post(f"/assistants/{a}", json={"name": "renamed"}), [a]


@case("POST", "/api/v1/assistants/{assistant_id}/files")
def ds_attach_file(w: World) -> Result:
    a, f = w.ids["ds_asst"], w.ids["ds_file"]
    return w.c.ds.post(f"/assistants/{a}/files", json={"file_id": f}), [a]


@case("DELETE", "/api/v1/assistants/{assistant_id}/files/{file_id}")
def ds_detach_file(w: World) -> Result:
    a, f = w.ids["ds_asst"], w.ids["ds_file"]
    return w.c.ds.delete(f"/assistants/{a}/files/{f}"), [a, f]


@case("POST", "/api/v1/threads")
def ds_create_thread(w: World) -> Result:
    body = {"messages": [{"role": "user", "content": "hello"}]}
    answer = w.c.ds.post("/threads", json=body)
    w.ids["ds_thread"] = ok(answer)["id"]
    return answer, [w.ids["ds_thread"]]


@case("POST", "/api/v1/threads/{thread_id}")
def ds_update_thread(w: World) -> Result:
    t = w.ids["ds_thread"]
    return w.c.ds.post(f"/threads/{t}", json={"metadata": {"k": "v"}}), [t]


@case("POST", "/api/v1/threads/{thread_id}/messages")
def ds_create_message(w: World) -> Result:
    t = w.ids["ds_thread"]
    answer = w.c.ds.post(f"/threads/{t}/messages", json={"role": "user", "content": "more"})
    w.ids["ds_msg"] = ok(answer)["id"]
    return answer, [t, w.ids["ds_msg"]]


@case("POST", "/api/v1/threads/{thread_id}/messages/{message_id}")
def ds_update_message(w: World) -> Result:
    t, m = w.ids["ds_thread"], w.ids["ds_msg"]
    return w.c.ds.post(f"/threads/{t}/messages/{m}", json={"metadata": {"k": "v"}}), [t, m]


@case("POST", "/api/v1/threads/{thread_id}/runs")
def ds_create_run(w: World) -> Result:
    t = w.ids["ds_thread"]
    answer = w.c.ds.post(f"/threads/{t}/runs", json={"assistant_id": w.ids["ds_asst"]})
    w.ids["ds_run"] = ok(answer)["id"]
    return answer, [t, w.ids["ds_run"]]


@case("POST", "/api/v1/threads/{thread_id}/runs/{run_id}")
def ds_update_run(w: World) -> Result:
    t, r = w.ids["ds_thread"], w.ids["ds_run"]
    return w.c.ds.post(f"/threads/{t}/runs/{r}", json={"metadata": {"k": "v"}}), [t, r]


@case("POST", "/api/v1/threads/{thread_id}/runs/{run_id}/cancel")
def ds_cancel_run(w: World) -> Result:
    t, r = w.ids["ds_thread"], w.ids["ds_run"]
    return w.c.ds.post(f"/threads/{t}/runs/{r}/cancel"), [t, r]


@case("POST", "/api/v1/threads/runs")
def ds_create_thread_and_run(w: World) -> Result:
    body = {
        "assistant_id": w.ids["ds_asst"],
        "thread": {"messages": [{"role": "user", "content": "x"}]},
    }
    answer = w.c.ds.post("/threads/runs", json=body)
    made = ok(answer)
    return answer, [made["thread_id"], made["id"]]


@case("POST", "/api/v1/threads/{thread_id}/runs/{run_id}/submit_tool_outputs")
def ds_submit(w: World) -> Result:
    a = ok(w.c.ds.post("/assistants", json={"model": w.tool_model(), "tools": [FUNCTION]}))
    t = thread_of(w.c.ds)
    w.c.ds.post(f"/threads/{t}/messages", json={"role": "user", "content": "weather?"})
    r = ok(w.c.ds.post(f"/threads/{t}/runs", json={"assistant_id": a["id"]}))["id"]
    waiting = wait_status(w.c.ds, t, r, "requires_action")
    (call,) = waiting["required_action"]["submit_tool_outputs"]["tool_calls"]
    outputs = {"tool_outputs": [{"tool_call_id": call["id"], "output": "22C"}]}
    return w.c.ds.post(f"/threads/{t}/runs/{r}/submit_tool_outputs", json=outputs), [t, r]


@case("POST", "/api/v1/plugins")
def ds_register_plugin(w: World) -> Result:
    w.ids["plugin"] = f"weather_{w.c.ws[-6:]}"
    answer = w.c.ds.post("/plugins", json={"plugin_id": w.ids["plugin"], "openapi": WEATHER})
    return answer, [w.ids["plugin"]]


@case("POST", "/api/v1/plugins/{plugin_id}")
def ds_update_plugin(w: World) -> Result:
    p = w.ids["plugin"]
    return w.c.ds.post(f"/plugins/{p}", json={"openapi": WEATHER}), [p]


@case("DELETE", "/api/v1/plugins/{plugin_id}")
def ds_delete_plugin(w: World) -> Result:
    p = w.ids["plugin"]
    return w.c.ds.delete(f"/plugins/{p}"), [p]


@case("DELETE", "/api/v1/threads/{thread_id}")
def ds_delete_thread(w: World) -> Result:
    t = thread_of(w.c.ds)
    return w.c.ds.delete(f"/threads/{t}"), [t]


@case("DELETE", "/api/v1/assistants/{assistant_id}")
def ds_delete_assistant(w: World) -> Result:
    a = ok(w.c.ds.post("/assistants", json={"model": "m"}))["id"]
    return w.c.ds.delete(f"/assistants/{a}"), [a]


@case("DELETE", "/api/v1/files/{file_id}")
def ds_delete_file(w: World) -> Result:
    f = w.upload(w.c.oa, "gone.txt")
    return w.c.ds.delete(f"/files/{f}"), [f]


# ---- OpenAI: /v1 -------------------------------------------------------------------


@case("POST", "/v1/files")
def oa_upload(w: World) -> Result:
    files = {"file": ("notes.txt", b"assistd audit test text\n", "text/plain")}
    answer = w.c.oa.post("/files", files=files, data={"purpose": "assistants"})
    w.ids["oa_file"] = ok(answer)["id"]
    return answer, [w.ids["oa_file"]]


@case("POST", "/v1/assistants")
def oa_create_assistant(w: World) -> Result:
    answer = w.c.oa.post("/assistants", json={"model": w.gate(), "name": "audited"})
    w.ids["oa_asst"] = ok(answer)["id"]
    return answer, [w.ids["oa_asst"]]


@case("POST", "/v1/assistants/{assistant_id}")
def oa_update_assistant(w: World) -> Result:
    a = w.ids["oa_asst"]
    return w.c.oa.post(f"/assistants/{a}", json={"name": "renamed"}), [a]


@case("POST", "/v1/threads")
def oa_create_thread(w: World) -> Result:
    answer = w.c.oa.post("/threads", json={"messages": [{"role": "user", "content": "hi"}]})
    w.ids["oa_thread"] = ok(answer)["id"]
    return answer, [w.ids["oa_thread"]]


@case("POST", "/v1/threads/{thread_id}")
def oa_update_thread(w: World) -> Result:
    t = w.ids["oa_thread"]
    return w.c.oa.post(f"/threads/{t}", json={"metadata": {"k": "v"}}), [t]


@case("POST", "/v1/threads/{thread_id}/messages")
def oa_create_message(w: World) -> Result:
    t = w.ids["oa_thread"]
    answer = w.c.oa.post(f"/threads/{t}/messages", json={"role": "user", "content": "more"})
    w.ids["oa_msg"] = ok(answer)["id"]
    return answer, [t, w.ids["oa_msg"]]


@case("POST", "/v1/threads/{thread_id}/messages/{message_id}")
def oa_update_message(w: World) -> Result:
    t, m = w.ids["oa_thread"], w.ids["oa_msg"]
    return w.c.oa.post(f"/threads/{t}/messages/{m}", json={"metadata": {"k": "v"}}), [t, m]


@case("DELETE", "/v1/threads/{thread_id}/messages/{message_id}")
def oa_delete_message(w: World) -> Result:
    t, m = w.ids["oa_thread"], w.ids["oa_msg"]
    return w.c.oa.delete(f"/threads/{t}/messages/{m}"), [t, m]


@case("POST", "/v1/threads/{thread_id}/runs")
def oa_create_run(w: World) -> Result:
    t = w.ids["oa_thread"]
    answer = w.c.oa.post(f"/threads/{t}/runs", json={"assistant_id": w.ids["oa_asst"]})
    w.ids["oa_run"] = ok(answer)["id"]
    return answer, [t, w.ids["oa_run"]]


@case("POST", "/v1/threads/{thread_id}/runs/{run_id}")
def oa_update_run(w: World) -> Result:
    t, r = w.ids["oa_thread"], w.ids["oa_run"]
    return w.c.oa.post(f"/threads/{t}/runs/{r}", json={"metadata": {"k": "v"}}), [t, r]


@case("POST", "/v1/threads/{thread_id}/runs/{run_id}/cancel")
def oa_cancel_run(w: World) -> Result:
    t, r = w.ids["oa_thread"], w.ids["oa_run"]
    return w.c.oa.post(f"/threads/{t}/runs/{r}/cancel"), [t, r]


@case("POST", "/v1/threads/runs")
def oa_create_thread_and_run(w: World) -> Result:
    body = {
        "assistant_id": w.ids["oa_asst"],
        "thread": {"messages": [{"role": "user", "content": "x"}]},
    }
    made = ok(answer := w.c.oa.post("/threads/runs", json=body))
    return answer, [made["thread_id"], made["id"]]


@case("POST", "/v1/threads/{thread_id}/runs/{run_id}/submit_tool_outputs")
def oa_submit(w: World) -> Result:
    a = ok(w.c.oa.post("/assistants", json={"model": w.tool_model(), "tools": [FUNCTION]}))
    t = str(
        ok(w.c.oa.post("/threads", json={"messages": [{"role": "user", "content": "w?"}]}))["id"]
    )
    r = ok(w.c.oa.post(f"/threads/{t}/runs", json={"assistant_id": a["id"]}))["id"]
    waiting = wait_status(w.c.oa, t, r, "requires_action")
    (call,) = waiting["required_action"]["submit_tool_outputs"]["tool_calls"]
    outputs = {"tool_outputs": [{"tool_call_id": call["id"], "output": "22C"}]}
    return w.c.oa.post(f"/threads/{t}/runs/{r}/submit_tool_outputs", json=outputs), [t, r]


@case("POST", "/v1/vector_stores")
def oa_create_store(w: World) -> Result:
    answer = w.c.oa.post("/vector_stores", json={"name": "audited"})
    w.ids["vs"] = ok(answer)["id"]
    return answer, [w.ids["vs"]]


@case("POST", "/v1/vector_stores/{vector_store_id}")
def oa_update_store(w: World) -> Result:
    v = w.ids["vs"]
    return w.c.oa.post(f"/vector_stores/{v}", json={"name": "renamed"}), [v]


@case("POST", "/v1/vector_stores/{vector_store_id}/files")
def oa_add_store_file(w: World) -> Result:
    v, f = w.ids["vs"], w.ids["oa_file"]
    return w.c.oa.post(f"/vector_stores/{v}/files", json={"file_id": f}), [v, f]


@case("POST", "/v1/vector_stores/{vector_store_id}/files/{file_id}")
def oa_update_store_file(w: World) -> Result:
    v, f = w.ids["vs"], w.ids["oa_file"]
    return w.c.oa.post(f"/vector_stores/{v}/files/{f}", json={"attributes": {"k": "v"}}), [v, f]


@case("POST", "/v1/vector_stores/{vector_store_id}/file_batches")
def oa_create_batch(w: World) -> Result:
    v = w.ids["vs"]
    files = [w.upload(w.c.oa, f"b{n}.txt") for n in range(2)]
    answer = w.c.oa.post(f"/vector_stores/{v}/file_batches", json={"file_ids": files})
    w.ids["batch"] = ok(answer)["id"]
    return answer, [v, w.ids["batch"], *files]


@case("POST", "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}/cancel")
def oa_cancel_batch(w: World) -> Result:
    v, b = w.ids["vs"], w.ids["batch"]
    return w.c.oa.post(f"/vector_stores/{v}/file_batches/{b}/cancel"), [v, b]


@case("DELETE", "/v1/vector_stores/{vector_store_id}/files/{file_id}")
def oa_remove_store_file(w: World) -> Result:
    v, f = w.ids["vs"], w.ids["oa_file"]
    return w.c.oa.delete(f"/vector_stores/{v}/files/{f}"), [v, f]


@case("DELETE", "/v1/vector_stores/{vector_store_id}")
def oa_delete_store(w: World) -> Result:
    v = w.ids["vs"]
    return w.c.oa.delete(f"/vector_stores/{v}"), [v]


@case("DELETE", "/v1/threads/{thread_id}")
def oa_delete_thread(w: World) -> Result:
    t = thread_of(w.c.oa)
    return w.c.oa.delete(f"/threads/{t}"), [t]


@case("DELETE", "/v1/assistants/{assistant_id}")
def oa_delete_assistant(w: World) -> Result:
    a = ok(w.c.oa.post("/assistants", json={"model": "m"}))["id"]
    return w.c.oa.delete(f"/assistants/{a}"), [a]


@case("DELETE", "/v1/files/{file_id}")
def oa_delete_file(w: World) -> Result:
    f = w.upload(w.c.oa, "gone.txt")
    return w.c.oa.delete(f"/files/{f}"), [f]


# ---- admin: /admin/v1 ----------------------------------------------------------------


@case("POST", "/admin/v1/workspaces")
def adm_create_workspace(w: World) -> Result:
    answer = w.c.adm.post("/workspaces", json={"name": f"made-{w.c.ws[-8:]}"})
    w.ids["ws"] = ok(answer)["id"]
    return answer, [w.ids["ws"]]


@case("POST", "/admin/v1/workspaces/{workspace}/settings")
def adm_settings(w: World) -> Result:
    s = w.ids["ws"]
    return w.c.adm.post(f"/workspaces/{s}/settings", json={"thread_ttl_seconds": 3600}), [s]


@case("POST", "/admin/v1/keys")
def adm_create_key(w: World) -> Result:
    answer = w.c.adm.post("/keys", json={"workspace": w.ids["ws"]})
    w.ids["key"] = ok(answer)["id"]
    return answer, [w.ids["key"]]


@case("POST", "/admin/v1/keys/{key_id}/limits")
def adm_key_limits(w: World) -> Result:
    k = w.ids["key"]
    return w.c.adm.post(f"/keys/{k}/limits", json={"requests_per_minute": 600}), [k]


@case("POST", "/admin/v1/keys/{key_id}/revoke")
def adm_revoke_key(w: World) -> Result:
    k = w.ids["key"]
    return w.c.adm.post(f"/keys/{k}/revoke"), [k]


@case("DELETE", "/admin/v1/workspaces/{workspace}")
def adm_delete_workspace(w: World) -> Result:
    s = w.ids["ws"]
    return w.c.adm.delete(f"/workspaces/{s}"), [s]


# ---- the test ------------------------------------------------------------------------


def routes_by_method(methods_kept: Sequence[str]) -> set[tuple[str, str]]:
    """Every (method, route template) of the three APIs with one of these methods."""
    found = set()
    for surface in SURFACES:
        for router in surface.routers:
            for route in router.routes:
                methods = getattr(route, "methods", None) or set()
                path = surface.prefix + str(getattr(route, "path", ""))
                found |= {(m, path) for m in methods if m in methods_kept}
    return found


def mutating_routes() -> set[tuple[str, str]]:
    """The routes the audit log records: all that change something (a search POSTs its
    query but is a read)."""
    return {(m, path) for m, path in routes_by_method(MUTATING) if path not in READS_BY_POST}


def test_the_reads_by_post_are_routes_of_the_app() -> None:
    assert {path for _, path in routes_by_method(["POST"])} >= READS_BY_POST


def test_the_table_covers_every_mutating_route() -> None:
    routes = mutating_routes()
    assert len(routes) > 40
    assert routes - set(CASES) == set(), "mutating routes without an audit case"
    assert set(CASES) - routes == set(), "cases of routes that are gone"


@pytest.fixture
def world(server: RunningServer, fake_model: FakeModel) -> Iterator[World]:
    caller = Caller(server)
    made = World(caller, fake_model)
    try:
        yield made
    finally:
        for gate in made.gates:
            gate.open()
        caller.close()


def check_record(
    w: World, method: str, route: str, answer: httpx.Response, ids: list[str], since: int
) -> None:
    admin = route.startswith("/admin/")
    key_id = w.c.admin_key_id if admin else w.c.key_id
    record = newest(w.c.adm, key_id)
    where = f"{method} {route}"
    assert (record["method"], record["route"]) == (method, route), where
    assert record["path"] == answer.request.url.path, where
    assert record["status"] == answer.status_code == 200, f"{where}: {answer.text}"
    assert record["error_code"] is None, where
    assert record["key_id"] == key_id, where
    if not admin:
        assert record["workspace_id"] == w.c.ws, where
    else:
        assert record["workspace_id"], where  # the admin key's own (default's)
    assert since <= record["created_at"] <= now_ms(), where
    assert record["request_id"], where
    assert record["body"] is None, where  # bodies are kept only with audit_bodies
    missing = set(ids) - set(record["object_ids"])
    assert not missing, f"{where}: {missing} not in {record['object_ids']}"


def test_every_mutating_call_leaves_a_complete_record(world: World) -> None:
    assert set(CASES) == mutating_routes()
    for (method, route), call in CASES.items():
        since = now_ms()
        answer, ids = call(world)
        check_record(world, method, route, answer, ids, since)


def test_a_search_is_a_read_and_leaves_no_record(world: World) -> None:
    made = world.c.oa.post("/vector_stores", json={"name": "searched"})
    before = newest(world.c.adm, world.c.key_id)
    assert before["object_ids"] == [ok(made)["id"]]
    for body in ({"query": "audit"}, {"query": ""}):  # answered 200, then 400
        world.c.oa.post(f"/vector_stores/{ok(made)['id']}/search", json=body)
    assert newest(world.c.adm, world.c.key_id) == before
