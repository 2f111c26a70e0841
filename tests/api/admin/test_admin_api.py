"""The admin API, /admin/v1: workspaces and API keys, over real HTTP against the real server.

Who may do what: an admin key of `default` manages everything; an admin key of another
workspace manages that workspace's keys only; a plain key manages nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import make_workspace
from tests.support.server import ADMIN_KEY, RunningServer


def client(server: RunningServer, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )


def unique(prefix: str = "adm") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["request_id"]
    return body


def error(response: httpx.Response, status: int, code: str) -> str:
    """Asserts the flat error envelope and returns its message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"request_id", "code", "message"}, body
    assert body["code"] == code, body
    assert body["request_id"]
    message: str = body["message"]
    assert message
    return message


def create_workspace(admin: httpx.Client, name: str | None = None) -> dict[str, Any]:
    return ok(admin.post("/admin/v1/workspaces", json={"name": name or unique()}))


def create_key(caller: httpx.Client, **body: Any) -> dict[str, Any]:
    return ok(caller.post("/admin/v1/keys", json=body))


# ---- workspaces -------------------------------------------------------------------------


def test_create_and_list_workspaces(admin: httpx.Client) -> None:
    name = unique("team")
    created = create_workspace(admin, name)
    assert created["object"] == "workspace"
    assert created["name"] == name
    assert created["id"].startswith("ws_")
    assert isinstance(created["created_at"], int)
    listed = ok(admin.get("/admin/v1/workspaces"))
    assert listed["object"] == "list"
    by_id = {w["id"]: w for w in listed["data"]}
    assert by_id[created["id"]] == {
        "id": created["id"], "object": "workspace", "name": name,
        "created_at": created["created_at"],
    }  # fmt: skip
    assert "default" in {w["name"] for w in listed["data"]}


def test_duplicate_workspace_name_is_a_conflict(admin: httpx.Client) -> None:
    name = unique("dup")
    first = create_workspace(admin, name)
    message = error(admin.post("/admin/v1/workspaces", json={"name": name}), 409, "Conflict")
    assert name in message
    same_name = [w for w in ok(admin.get("/admin/v1/workspaces"))["data"] if w["name"] == name]
    assert [w["id"] for w in same_name] == [first["id"]]


def test_default_workspace_cannot_be_created_again(admin: httpx.Client) -> None:
    error(admin.post("/admin/v1/workspaces", json={"name": "default"}), 409, "Conflict")


# ---- keys -------------------------------------------------------------------------------


def test_create_list_and_use_keys(server: RunningServer, admin: httpx.Client) -> None:
    ws = create_workspace(admin)
    plain = create_key(admin, workspace=ws["id"], name="ci")
    assert plain["object"] == "api_key"
    assert plain["workspace_id"] == ws["id"]
    assert plain["admin"] is False and plain["name"] == "ci" and plain["revoked_at"] is None
    assert plain["key"].startswith(plain["prefix"])
    by_name = create_key(admin, workspace=ws["name"], admin=True)
    assert by_name["workspace_id"] == ws["id"] and by_name["admin"] is True
    assert by_name["key"] != plain["key"]

    listed = admin.get("/admin/v1/keys")
    body = ok(listed)
    by_id = {k["id"]: k for k in body["data"]}
    assert by_id[plain["id"]] == {k: v for k, v in plain.items() if k not in ("key", "request_id")}
    assert by_id[by_name["id"]]["admin"] is True
    # The secrets were shown once, at creation; listings never carry them.
    assert all("key" not in k for k in body["data"])
    assert plain["key"] not in listed.text and by_name["key"] not in listed.text

    # The new key acts in its workspace.
    with client(server, plain["key"]) as user:
        made = ok(user.post("/api/v1/assistants", json={"model": "qwen-max", "name": "by key"}))
        headers = {"X-DashScope-WorkSpace": ws["id"]}
        seen = ok(admin.get(f"/api/v1/assistants/{made['id']}", headers=headers))
        assert seen["name"] == "by key"
        assert admin.get(f"/api/v1/assistants/{made['id']}").status_code == 404


@pytest.mark.parametrize("body", [{}, {"admin": True}, {"workspace": None}])
def test_key_without_a_workspace_is_400(admin: httpx.Client, body: dict[str, Any]) -> None:
    before = ok(admin.get("/admin/v1/keys"))["data"]
    message = error(admin.post("/admin/v1/keys", json=body), 400, "InvalidParameter")
    assert "workspace" in message
    assert ok(admin.get("/admin/v1/keys"))["data"] == before


def test_key_for_unknown_workspace_is_404(admin: httpx.Client) -> None:
    missing = unique("nowhere")
    message = error(admin.post("/admin/v1/keys", json={"workspace": missing}), 404, "NotFound")
    assert missing in message


def test_revoke_key(server: RunningServer, admin: httpx.Client) -> None:
    _, key = make_workspace(admin)
    with client(server, key) as user:
        ok(user.get("/api/v1/assistants"))
        key_id = next(
            k["id"] for k in ok(admin.get("/admin/v1/keys"))["data"] if key.startswith(k["prefix"])
        )
        revoked = ok(admin.post(f"/admin/v1/keys/{key_id}/revoke"))
        assert revoked["id"] == key_id and isinstance(revoked["revoked_at"], int)
        assert "key" not in revoked
        error(user.get("/api/v1/assistants"), 401, "InvalidApiKey")
    again = ok(admin.post(f"/admin/v1/keys/{key_id}/revoke"))  # idempotent
    assert again["revoked_at"] == revoked["revoked_at"]
    listed = {k["id"]: k for k in ok(admin.get("/admin/v1/keys"))["data"]}
    assert listed[key_id]["revoked_at"] == revoked["revoked_at"]


def test_revoke_unknown_key_is_404(admin: httpx.Client) -> None:
    message = error(admin.post("/admin/v1/keys/key_nosuchkey/revoke"), 404, "NotFound")
    assert "key_nosuchkey" in message


# ---- who may do what --------------------------------------------------------------------

ADMIN_CALLS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/admin/v1/workspaces", None),
    ("POST", "/admin/v1/workspaces", {"name": "plain-key-workspace"}),
    ("GET", "/admin/v1/keys", None),
    ("POST", "/admin/v1/keys", {}),
    ("POST", "/admin/v1/keys/{key_id}/revoke", None),
    ("DELETE", "/admin/v1/workspaces/default", None),
]


@pytest.fixture
def plain(server: RunningServer, admin: httpx.Client) -> Iterator[tuple[httpx.Client, str]]:
    """A client with a plain key of a fresh workspace, and that key's id."""
    ws_id, key = make_workspace(admin)
    key_id = next(
        k["id"] for k in ok(admin.get("/admin/v1/keys"))["data"] if k["workspace_id"] == ws_id
    )
    with client(server, key) as user:
        yield user, key_id


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_CALLS)
def test_plain_key_is_forbidden(
    admin: httpx.Client,
    plain: tuple[httpx.Client, str],
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    user, key_id = plain
    before_ws = ok(admin.get("/admin/v1/workspaces"))["data"]
    before_keys = ok(admin.get("/admin/v1/keys"))["data"]
    response = user.request(method, path.format(key_id=key_id), json=body)
    error(response, 403, "AccessDenied")
    # Nothing changed, not even the plain key's own revocation.
    assert ok(admin.get("/admin/v1/workspaces"))["data"] == before_ws
    assert ok(admin.get("/admin/v1/keys"))["data"] == before_keys
    ok(user.get("/api/v1/assistants"))


@pytest.fixture
def ws_admin(
    server: RunningServer, admin: httpx.Client
) -> Iterator[tuple[httpx.Client, dict[str, Any]]]:
    """A client with an admin key of a fresh (non-default) workspace, and that workspace."""
    ws = create_workspace(admin, unique("owned"))
    key = create_key(admin, workspace=ws["id"], admin=True)["key"]
    with client(server, key) as owner:
        yield owner, ws


def test_workspace_admin_sees_only_its_workspace(
    admin: httpx.Client, ws_admin: tuple[httpx.Client, dict[str, Any]]
) -> None:
    owner, ws = ws_admin
    other_ws, _ = make_workspace(admin)
    listed = ok(owner.get("/admin/v1/workspaces"))["data"]
    assert [w["id"] for w in listed] == [ws["id"]]
    keys = ok(owner.get("/admin/v1/keys"))["data"]
    assert keys and {k["workspace_id"] for k in keys} == {ws["id"]}
    everything = ok(admin.get("/admin/v1/keys"))["data"]
    assert {k["workspace_id"] for k in everything} >= {ws["id"], other_ws}


def test_workspace_admin_cannot_create_workspaces(
    admin: httpx.Client, ws_admin: tuple[httpx.Client, dict[str, Any]]
) -> None:
    owner, _ = ws_admin
    name = unique("sneaky")
    error(owner.post("/admin/v1/workspaces", json={"name": name}), 403, "AccessDenied")
    assert name not in {w["name"] for w in ok(admin.get("/admin/v1/workspaces"))["data"]}


def test_workspace_admin_manages_keys_of_its_workspace_only(
    server: RunningServer, admin: httpx.Client, ws_admin: tuple[httpx.Client, dict[str, Any]]
) -> None:
    owner, ws = ws_admin
    mine = create_key(owner, workspace=ws["id"])
    assert mine["workspace_id"] == ws["id"] and mine["admin"] is False
    also_mine = create_key(owner, workspace=ws["name"], admin=True)
    assert also_mine["workspace_id"] == ws["id"]

    other_ws, other_key = make_workspace(admin)
    denied = owner.post("/admin/v1/keys", json={"workspace": other_ws})
    error(denied, 404, "NotFound")
    denied = owner.post("/admin/v1/keys", json={"workspace": "default", "admin": True})
    error(denied, 404, "NotFound")

    other_id = next(
        k["id"] for k in ok(admin.get("/admin/v1/keys"))["data"] if k["workspace_id"] == other_ws
    )
    error(owner.post(f"/admin/v1/keys/{other_id}/revoke"), 404, "NotFound")
    with client(server, other_key) as other:
        ok(other.get("/api/v1/assistants"))  # still works

    ok(owner.post(f"/admin/v1/keys/{mine['id']}/revoke"))
    with client(server, mine["key"]) as revoked:
        error(revoked.get("/api/v1/assistants"), 401, "InvalidApiKey")


def test_workspace_admin_cannot_tell_other_workspaces_from_missing_ones(
    admin: httpx.Client, ws_admin: tuple[httpx.Client, dict[str, Any]]
) -> None:
    owner, _ = ws_admin
    other = create_workspace(admin)
    answers = set()
    for target in (other["name"], other["id"], "default", unique("missing"), "ws_missing"):
        response = owner.post("/admin/v1/keys", json={"workspace": target, "admin": True})
        message = error(response, 404, "NotFound")
        answers.add(message.replace(target, "<target>"))
    assert len(answers) == 1, answers
    assert {k["workspace_id"] for k in ok(admin.get("/admin/v1/keys"))["data"]}.isdisjoint(
        {other["id"]}
    )


def test_workspace_admin_cannot_act_in_other_workspaces(
    admin: httpx.Client, ws_admin: tuple[httpx.Client, dict[str, Any]]
) -> None:
    owner, ws = ws_admin
    other_ws, _ = make_workspace(admin)
    for target in (other_ws, "default"):
        denied = owner.get("/api/v1/assistants", headers={"X-DashScope-WorkSpace": target})
        error(denied, 403, "AccessDenied")
    ok(owner.get("/api/v1/assistants", headers={"X-DashScope-WorkSpace": ws["id"]}))


@pytest.mark.parametrize("path", ["/admin/v1/workspaces", "/admin/v1/keys"])
def test_admin_api_without_a_key_is_401(server: RunningServer, path: str) -> None:
    error(httpx.get(f"{server.base_url}{path}"), 401, "InvalidApiKey")
    error(httpx.post(f"{server.base_url}{path}", json={"name": unique()}), 401, "InvalidApiKey")


# ---- bad bodies -------------------------------------------------------------------------

BAD_BODIES: list[tuple[str, Any, str]] = [
    ("/admin/v1/workspaces", {}, "name"),
    ("/admin/v1/workspaces", {"name": 42}, "name"),
    ("/admin/v1/workspaces", {"name": None}, "name"),
    ("/admin/v1/workspaces", {"name": ""}, "name"),
    ("/admin/v1/workspaces", {"name": "has space"}, "name"),
    ("/admin/v1/workspaces", {"name": "x" * 65}, "name"),
    ("/admin/v1/workspaces", {"name": "ws_lookalike"}, "name"),
    ("/admin/v1/workspaces", {"name": "fine", "colour": "red"}, "colour"),
    ("/admin/v1/keys", {"workspace": 7}, "workspace"),
    ("/admin/v1/keys", {"admin": "yes"}, "admin"),
    ("/admin/v1/keys", {"name": ["a"]}, "name"),
    ("/admin/v1/keys", {"workspace": "default", "scope": "all"}, "scope"),
]


@pytest.mark.parametrize(("path", "body", "field"), BAD_BODIES)
def test_bad_body_is_400_naming_the_field(
    admin: httpx.Client, path: str, body: Any, field: str
) -> None:
    before = ok(admin.get(path))["data"]
    message = error(admin.post(path, json=body), 400, "InvalidParameter")
    assert field in message
    assert ok(admin.get(path))["data"] == before


@pytest.mark.parametrize("path", ["/admin/v1/workspaces", "/admin/v1/keys"])
@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"a string"', b"42"])
def test_body_that_is_not_a_json_object_is_400(admin: httpx.Client, path: str, raw: bytes) -> None:
    response = admin.post(path, content=raw, headers={"Content-Type": "application/json"})
    message = error(response, 400, "InvalidParameter")
    assert "JSON" in message or "body" in message


# ---- names and what listings show of a key ----------------------------------------------

BAD_LABELS: list[tuple[str, str, dict[str, Any], str]] = [
    ("POST", "/admin/v1/keys", {"workspace": "default", "name": "x" * 129}, "name"),
    ("POST", "/admin/v1/keys", {"workspace": "default", "name": "x" * 1_000_000}, "name"),
    ("POST", "/admin/v1/keys", {"workspace": "default", "name": "nul\u0000inside"}, "name"),
    ("POST", "/admin/v1/keys", {"workspace": "default", "name": "tab\there"}, "name"),
    ("POST", "/admin/v1/keys", {"workspace": "default", "name": "bell\u0007"}, "name"),
    ("POST", "/admin/v1/keys", {"workspace": "x" * 129}, "workspace"),
    ("POST", "/admin/v1/keys", {"workspace": "de\u0000fault"}, "workspace"),
    ("POST", "/admin/v1/workspaces", {"name": "nul\u0000inside"}, "name"),
    ("POST", "/admin/v1/workspaces", {"name": "x" * 1_000_000}, "name"),
    ("POST", "/admin/v1/keys/key_%00x/revoke", {}, "key_id"),
    ("POST", f"/admin/v1/keys/key_{'x' * 200}/revoke", {}, "key_id"),
    ("DELETE", "/admin/v1/workspaces/de%00fault", {}, "workspace"),
    ("DELETE", f"/admin/v1/workspaces/{'x' * 200}", {}, "workspace"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), BAD_LABELS)
def test_long_or_unprintable_names_are_400_naming_the_field(
    admin: httpx.Client, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    """Before: 500 on PostgreSQL (names over 128 characters, NUL), 1 MB names stored on SQLite."""
    before = ok(admin.get("/admin/v1/keys"))["data"], ok(admin.get("/admin/v1/workspaces"))["data"]
    response = admin.request(method, path, json=body or None)
    message = error(response, 400, "InvalidParameter")
    assert field in message and len(message) < 200
    after = ok(admin.get("/admin/v1/keys"))["data"], ok(admin.get("/admin/v1/workspaces"))["data"]
    assert after == before


def test_a_key_name_of_128_printable_characters_is_kept(admin: httpx.Client) -> None:
    name = "é-名前 " * 25 + "abc"
    assert len(name) == 128
    created = create_key(admin, workspace="default", name=name)
    listed = {k["id"]: k for k in ok(admin.get("/admin/v1/keys"))["data"]}
    assert created["name"] == listed[created["id"]]["name"] == name


def test_listings_show_four_characters_of_a_key_at_most(admin: httpx.Client) -> None:
    """Before: the first 15 characters were stored and shown: all of a short key given
    through ASSISTD_API_KEY, 15 of 21 for a longer one."""
    made = [create_key(admin, workspace="default", admin=flag) for flag in (False, True)]
    for key in made:
        assert key["prefix"] == "sk-assistd-" + key["key"][11:15]
    listed = admin.get("/admin/v1/keys")
    keys = ok(listed)["data"]
    for key in keys:
        secret_part = key["prefix"].removeprefix("sk-assistd-")
        assert len(secret_part) <= 4, key
    (bootstrap,) = [k for k in keys if k["bootstrap"] and k["revoked_at"] is None]
    assert bootstrap["prefix"] == ADMIN_KEY[:4] and bootstrap["admin"] is True
    assert ADMIN_KEY[:5] not in listed.text
    assert not any(key["key"][:16] in listed.text for key in made)
