"""The plugin registry (`/api/v1/plugins`, an assistd extension) over raw HTTP, and its
plugins as tool types on assistants through the dashscope SDK: registration from JSON
and YAML documents, listing, update, deletion, clear 4xx answers, credentials that never
come back, and workspaces that do not see each other's plugins."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml
from dashscope import Assistants

from tests.conftest import make_workspace
from tests.support.server import RunningServer

TOKEN = "plugin-token-" + secrets.token_hex(12)
HEADER_SECRET = "mcp-header-" + secrets.token_hex(12)

WEATHER: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "Weather", "version": "1.0"},
    "servers": [{"url": "https://weather.example.com/v1"}],
    "paths": {
        "/weather": {
            "get": {
                "operationId": "get_weather",
                "summary": "The weather in a city.",
                "parameters": [
                    {"name": "city", "in": "query", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {"200": {"description": "the weather"}},
            }
        },
        "/alerts": {
            "get": {
                "operationId": "list_alerts",
                "summary": "Weather alerts.",
                "responses": {"200": {"description": "the alerts"}},
            }
        },
    },
}


def client_for(server: RunningServer, key: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.Client(base_url=server.dashscope_url, headers=headers, timeout=30)


@pytest.fixture
def api(server: RunningServer, admin: httpx.Client, ds: str) -> Iterator[httpx.Client]:
    """Raw HTTP as the workspace the dashscope SDK is pointed at (the `ds` fixture)."""
    import dashscope

    with client_for(server, str(dashscope.api_key)) as client:
        yield client


def plugin_id() -> str:
    return f"weather_{secrets.token_hex(3)}"


def register(api: httpx.Client, **body: Any) -> dict[str, Any]:
    answer = api.post("/plugins", json=body)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def refused(answer: httpx.Response, status: int, *words: str) -> str:
    """The DashScope error envelope, with a message naming the problem."""
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"request_id", "code", "message"}, body
    for word in words:
        assert word in body["message"], body["message"]
    return str(body["message"])


# ---- registration ------------------------------------------------------------------------


def test_register_from_json_text_then_read_it_back(api: httpx.Client) -> None:
    pid = plugin_id()
    made = register(api, plugin_id=pid, description="Weather.", openapi=json.dumps(WEATHER))
    assert made["plugin_id"] == made["id"] == pid
    assert made["object"] == "plugin" and made["kind"] == "openapi"
    assert made["description"] == "Weather."
    assert made["auth"] == {
        "type": "none", "in": "header", "name": "Authorization", "scheme": "bearer",
        "has_token": False,
    }  # fmt: skip
    assert made["request_id"] and made["declared"] is False
    got = api.get(f"/plugins/{pid}").json()
    assert json.loads(got["openapi"]) == WEATHER
    assert {k: v for k, v in got.items() if k != "request_id"} == {
        k: v for k, v in made.items() if k != "request_id"
    }


def test_register_from_yaml_text_and_from_an_object(api: httpx.Client) -> None:
    from_yaml = register(api, plugin_id=plugin_id(), openapi=yaml.safe_dump(WEATHER))
    assert yaml.safe_load(from_yaml["openapi"]) == WEATHER
    from_object = register(api, plugin_id=plugin_id(), openapi=WEATHER)
    assert json.loads(from_object["openapi"]) == WEATHER


def test_list_pages_without_documents(api: httpx.Client) -> None:
    ids = [register(api, plugin_id=plugin_id(), openapi=WEATHER)["id"] for _ in range(3)]
    listed = api.get("/plugins", params={"limit": 2, "order": "asc"}).json()
    assert listed["object"] == "list" and listed["has_more"] is True
    assert [p["id"] for p in listed["data"]] == ids[:2]
    assert all("openapi" not in p for p in listed["data"])
    rest = api.get("/plugins", params={"order": "asc", "after": ids[1]}).json()
    assert [p["id"] for p in rest["data"]] == ids[2:] and rest["has_more"] is False


def test_update_replaces_the_fields_sent(api: httpx.Client) -> None:
    pid = plugin_id()
    made = register(
        api, plugin_id=pid, description="v1", openapi=WEATHER,
        auth={"type": "service", "token": TOKEN},
    )  # fmt: skip
    changed = api.post(f"/plugins/{pid}", json={"description": "v2"}).json()
    assert changed["description"] == "v2"
    assert changed["auth"]["has_token"] is True  # kept without being sent again
    assert changed["updated_at"] > made["updated_at"]
    assert json.loads(changed["openapi"]) == WEATHER
    smaller = {**WEATHER, "paths": {"/weather": WEATHER["paths"]["/weather"]}}
    changed = api.post(f"/plugins/{pid}", json={"openapi": smaller, "auth": {"type": "none"}})
    assert changed.status_code == 200, changed.text
    assert json.loads(changed.json()["openapi"]) == smaller
    assert changed.json()["auth"]["has_token"] is False


def test_delete_then_it_is_gone(api: httpx.Client) -> None:
    pid = plugin_id()
    register(api, plugin_id=pid, openapi=WEATHER)
    deleted = api.delete(f"/plugins/{pid}")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["id"] == pid and deleted.json()["deleted"] is True
    refused(api.get(f"/plugins/{pid}"), 404, pid)
    refused(api.delete(f"/plugins/{pid}"), 404, pid)
    # The id is free again.
    register(api, plugin_id=pid, openapi=WEATHER)


def test_a_relative_server_url_needs_a_base_url(api: httpx.Client) -> None:
    relative = {**WEATHER, "servers": [{"url": "/v1"}]}
    refused(api.post("/plugins", json={"plugin_id": plugin_id(), "openapi": relative}),
            400, "openapi")  # fmt: skip
    pid = plugin_id()
    made = register(api, plugin_id=pid, openapi=relative, url="https://api.example.com")
    assert made["url"] == "https://api.example.com"
    # Without its base URL the document would lead nowhere: refused, nothing changed.
    refused(api.post(f"/plugins/{pid}", json={"url": None}), 400, "openapi")
    moved = api.post(f"/plugins/{pid}", json={"url": "https://eu.example.com"})
    assert moved.status_code == 200 and moved.json()["url"] == "https://eu.example.com"


def test_a_legacy_ai_plugin_manifest(api: httpx.Client) -> None:
    name = f"legacy_{secrets.token_hex(3)}"
    manifest = {
        "schema_version": "v1", "name_for_model": name, "name_for_human": "Weather",
        "description_for_model": "Looks up the weather.", "api": {"type": "openapi"},
        "auth": {"type": "service_http", "authorization_type": "bearer"},
    }  # fmt: skip
    refused(api.post("/plugins", json={"manifest": manifest, "openapi": WEATHER}), 400,
            "auth.token")  # fmt: skip
    made = register(api, manifest=manifest, openapi=yaml.safe_dump(WEATHER),
                    auth={"token": TOKEN})  # fmt: skip
    assert made["plugin_id"] == name and made["description"] == "Looks up the weather."
    assert made["auth"]["type"] == "service" and made["auth"]["has_token"] is True
    bad = {**manifest, "name_for_model": "no spaces please"}
    refused(api.post("/plugins", json={"manifest": bad, "openapi": WEATHER}), 400, "manifest")
    refused(api.post(f"/plugins/{name}", json={"manifest": manifest}), 400, "manifest")


def test_an_mcp_server(api: httpx.Client) -> None:
    pid = plugin_id()
    made = register(
        api, plugin_id=pid, kind="mcp", url="https://mcp.example.com/mcp",
        headers={"Authorization": f"Bearer {HEADER_SECRET}"}, allowed_tools=["forecast"],
    )  # fmt: skip
    assert made["kind"] == "mcp" and made["url"] == "https://mcp.example.com/mcp"
    assert made["headers"] == {"Authorization": "****"}
    assert made["allowed_tools"] == ["forecast"]
    # "****" keeps the stored value; a new header joins it.
    changed = api.post(
        f"/plugins/{pid}", json={"headers": {"Authorization": "****", "X-Team": "blue"}}
    ).json()
    assert changed["headers"] == {"Authorization": "****", "X-Team": "****"}
    assert HEADER_SECRET not in json.dumps(changed)


# ---- clear refusals ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, words",
    [
        ({"openapi": WEATHER}, ["plugin_id"]),
        ({"plugin_id": "has-dash", "openapi": WEATHER}, ["plugin_id", "has-dash"]),
        ({"plugin_id": "x" * 65, "openapi": WEATHER}, ["plugin_id"]),
        ({"plugin_id": "quark_search", "openapi": WEATHER}, ["quark_search", "built-in"]),
        ({"plugin_id": "function", "openapi": WEATHER}, ["function", "built-in"]),
        ({"plugin_id": "p1"}, ["openapi", "required"]),
        ({"plugin_id": "p1", "openapi": "{not json: [yaml"}, ["openapi"]),
        ({"plugin_id": "p1", "openapi": "just words"}, ["openapi"]),
        ({"plugin_id": "p1", "openapi": {"swagger": "2.0", "paths": {}}}, ["openapi"]),
        ({"plugin_id": "p1", "openapi": 42}, ["openapi"]),
        ({"plugin_id": "p1", "openapi": WEATHER, "kind": "grpc"}, ["kind", "grpc"]),
        ({"plugin_id": "p1", "openapi": WEATHER, "auth": {"type": "oauth"}}, ["auth.type"]),
        ({"plugin_id": "p1", "openapi": WEATHER, "auth": {"type": "service"}},
         ["auth.token", "required"]),
        ({"plugin_id": "p1", "openapi": WEATHER, "auth": {"type": "user_http", "token": "t"}},
         ["auth.token", "user_token"]),
        ({"plugin_id": "p1", "openapi": WEATHER,
          "auth": {"type": "service", "token": "a\r\nX-Evil: 1"}}, ["auth.token", "line"]),
        ({"plugin_id": "p1", "openapi": WEATHER, "auth": {"type": "service", "in": "query",
                                                          "token": "t0k3n"}}, ["auth.name"]),
        ({"plugin_id": "p1", "openapi": WEATHER, "auth": {"type": "service", "in": "cookie",
                                                          "token": "t0k3n"}}, ["auth.in"]),
        ({"plugin_id": "p1", "openapi": WEATHER, "headers": {"X-A": "b"}}, ["headers"]),
        ({"plugin_id": "p1", "kind": "mcp"}, ["url", "required"]),
        ({"plugin_id": "p1", "kind": "mcp", "url": "ftp://example.com/mcp"}, ["url", "ftp"]),
        ({"plugin_id": "p1", "kind": "mcp", "url": "http://u:p@example.com/"}, ["credentials"]),
        ({"plugin_id": "p1", "kind": "mcp", "url": "http:///nohost"}, ["url", "host"]),
        ({"plugin_id": "p1", "kind": "mcp", "url": "https://e.com/", "openapi": WEATHER},
         ["openapi", "MCP"]),
        ({"plugin_id": "p1", "kind": "mcp", "url": "https://e.com/",
          "headers": {"Host": "evil"}}, ["header name"]),
        ({"plugin_id": "p1", "kind": "mcp", "url": "https://e.com/",
          "headers": {"X-Key": "****"}}, ["X-Key", "stored"]),
        ({"plugin_id": "p1", "kind": "mcp", "url": "https://e.com/", "allowed_tools": "all"},
         ["allowed_tools"]),
        ({"plugin_id": 7, "openapi": WEATHER}, ["plugin_id"]),
    ],
)  # fmt: skip
def test_bad_registrations_are_4xx_naming_the_problem(
    api: httpx.Client, body: dict[str, Any], words: list[str]
) -> None:
    refused(api.post("/plugins", json=body), 400, *words)
    assert "p1" not in [p["id"] for p in api.get("/plugins").json()["data"]]


def test_a_duplicate_id_is_a_conflict(api: httpx.Client) -> None:
    pid = plugin_id()
    register(api, plugin_id=pid, openapi=WEATHER)
    refused(api.post("/plugins", json={"plugin_id": pid, "openapi": WEATHER}), 409, pid)


def test_bad_updates(api: httpx.Client) -> None:
    pid = plugin_id()
    register(api, plugin_id=pid, openapi=WEATHER)
    refused(api.post(f"/plugins/{pid}", json={"kind": "mcp"}), 400, "kind")
    refused(api.post(f"/plugins/{pid}", json={"plugin_id": "other"}), 400, "plugin_id")
    refused(api.post(f"/plugins/{pid}", json={"openapi": "nope"}), 400, "openapi")
    refused(api.post(f"/plugins/{pid}", json={"openapi": None}), 400, "openapi")
    refused(api.post("/plugins/missing_one", json={"description": "x"}), 404, "missing_one")
    assert json.loads(api.get(f"/plugins/{pid}").json()["openapi"]) == WEATHER


# ---- credentials -------------------------------------------------------------------------


def test_credentials_never_come_back(server: RunningServer, api: httpx.Client) -> None:
    pid, mcp_id = plugin_id(), plugin_id()
    answers = [
        api.post("/plugins", json={"plugin_id": pid, "openapi": WEATHER,
                                   "auth": {"type": "service", "in": "query", "name": "key",
                                            "token": TOKEN}}),
        api.post("/plugins", json={"plugin_id": mcp_id, "kind": "mcp",
                                   "url": "https://mcp.example.com/",
                                   "headers": {"X-Key": HEADER_SECRET}}),
        api.get(f"/plugins/{pid}"), api.get(f"/plugins/{mcp_id}"), api.get("/plugins"),
        api.post(f"/plugins/{pid}", json={"description": "renamed"}),
        api.post(f"/plugins/{mcp_id}", json={"allowed_tools": ["a"]}),
        api.get("/openapi.json"),
    ]  # fmt: skip
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert TOKEN not in answer.text and HEADER_SECRET not in answer.text
    assert answers[2].json()["auth"] == {
        "type": "service", "in": "query", "name": "key", "scheme": "raw", "has_token": True
    }  # fmt: skip
    # Stored encrypted: not in the database's bytes either (SQLite's file, here).
    if not server.database_url:
        stored = (server.data_dir / "assistd.db").read_bytes()
        wal = server.data_dir / "assistd.db-wal"
        stored += wal.read_bytes() if wal.exists() else b""
        assert TOKEN.encode() not in stored and HEADER_SECRET.encode() not in stored


# ---- tool types on assistants, and tenancy -----------------------------------------------


def test_assistants_name_registered_plugins(api: httpx.Client) -> None:
    pid = plugin_id()
    unknown = Assistants.create(model="qwen-max", tools=[{"type": pid}])
    assert unknown.status_code == 400 and pid in unknown.message
    register(api, plugin_id=pid, openapi=WEATHER)
    made = Assistants.create(model="qwen-max", tools=[{"type": pid}, {"type": "quark_search"}])
    assert made.status_code == 200, made
    assert [t["type"] for t in made.tools] == [pid, "quark_search"]
    user = {"type": pid, "auth": {"type": "user_http", "user_token": "per-user"}}
    updated = Assistants.update(made.id, tools=[user])
    assert updated.status_code == 200, updated
    api.delete(f"/plugins/{pid}")
    again = Assistants.create(model="qwen-max", tools=[{"type": pid}])
    assert again.status_code == 400 and pid in again.message


def test_another_workspace_cannot_see_use_or_delete_a_plugin(
    server: RunningServer, admin: httpx.Client, api: httpx.Client
) -> None:
    pid = plugin_id()
    register(api, plugin_id=pid, openapi=WEATHER, auth={"type": "service", "token": TOKEN})
    _, other_key = make_workspace(admin, "other")
    with client_for(server, other_key) as other:
        refused(other.get(f"/plugins/{pid}"), 404, pid)
        refused(other.post(f"/plugins/{pid}", json={"description": "mine"}), 404, pid)
        refused(other.delete(f"/plugins/{pid}"), 404, pid)
        assert pid not in [p["id"] for p in other.get("/plugins").json()["data"]]
        use = other.post("/assistants", json={"model": "qwen-max", "tools": [{"type": pid}]})
        refused(use, 400, pid)
        # The same id is free there: it is another plugin.
        theirs = other.post("/plugins", json={"plugin_id": pid, "openapi": WEATHER})
        assert theirs.status_code == 200 and theirs.json()["auth"]["has_token"] is False
    mine = api.get(f"/plugins/{pid}").json()
    assert mine["auth"]["has_token"] is True and mine["description"] == ""


def test_the_api_document_lists_the_plugin_routes(api: httpx.Client) -> None:
    doc = api.get("/openapi.json").json()
    assert {"post", "get"} <= set(doc["paths"]["/api/v1/plugins"])
    assert {"get", "post", "delete"} <= set(doc["paths"]["/api/v1/plugins/{plugin_id}"])
    register_op = doc["paths"]["/api/v1/plugins"]["post"]
    assert "extension" in register_op["description"] and register_op["tags"] == ["plugins"]
    schema = doc["components"]["schemas"]["PluginBody"]
    assert {"plugin_id", "openapi", "auth", "url", "headers"} <= set(schema["properties"])
