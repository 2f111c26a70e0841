"""Plugins in runs, through the dashscope SDK: the scripted model calls a registered
OpenAPI plugin's function and gets its server's answer, with each kind of credential;
the credential never reaches a step, the model, a message or the log; a workspace's
plugin is its own; and every address the outbound guard refuses (private, loopback in
any spelling, link-local metadata, a redirect to a private host), an oversized answer
and a server that never finishes all end as a clear tool output, the refused targets
having received no byte (a listener proves it)."""

from __future__ import annotations

import base64
import json
import secrets
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import dashscope
import httpx
import pytest
from dashscope import Assistants, Messages, Runs, Steps, Threads

from tests.ops.helpers import server_log
from tests.runs.conftest import StartServer, sdk_at, sdk_on, workspace_key
from tests.runs.helpers import ok, wait_done
from tests.support.fake_mcp import HttpMcp, http_mcp, stdio_command
from tests.support.fake_model import FakeModel, Reply, ToolCalls
from tests.support.listener import Answer, Listener, Seen, listener
from tests.support.sdk import as_json
from tests.support.server import RunningServer

ROOT = Path(__file__).resolve().parents[2]  # where `python -m tests.support...` runs
TOKEN = "svc-" + secrets.token_hex(16)
USER_TOKEN = "usr-" + secrets.token_hex(16)
OUTBOUND = {
    "allow_networks": ["127.0.0.1/32"],  # the test servers' address, and only it
    "max_response_bytes": 65536,
    "read_timeout_s": 1.0,
    "total_timeout_s": 2.0,
}


def weather_doc(base_url: str) -> dict[str, Any]:
    """Two operations, so the functions are named `<plugin_id>__<operationId>`."""
    city = {"name": "city", "in": "query", "required": True, "schema": {"type": "string"}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "Weather", "version": "1.0"},
        "servers": [{"url": base_url}],
        "paths": {
            "/weather": {"get": {"operationId": "get_weather", "summary": "The weather.",
                                 "parameters": [city],
                                 "responses": {"200": {"description": "the weather"}}}},
            "/alerts": {"get": {"operationId": "list_alerts", "summary": "Alerts.",
                                "responses": {"200": {"description": "alerts"}}}},
        },
    }  # fmt: skip


def weather(seen: Seen) -> Answer:
    """The plugin's server: the weather of the city asked for (never its credentials)."""
    query = parse_qs(urlsplit(seen.path).query)
    city = query.get("city", ["?"])[0]
    return Answer(body=json.dumps({"city": city, "sky": f"sunny in {city}"}).encode())


@pytest.fixture(scope="module")
def weather_api() -> Iterator[Listener]:
    with listener(weather) as api:
        yield api


@pytest.fixture(scope="module")
def allowing(
    start_module_server: StartServer, fake_model: FakeModel, weather_api: Listener,
    tmp_path_factory: pytest.TempPathFactory,
) -> RunningServer:  # fmt: skip
    """A server whose guard allows 127.0.0.1 (where the test servers listen), with a
    plugin its configuration declares, and the most talkative log."""
    doc = tmp_path_factory.mktemp("declared") / "forecast.json"
    doc.write_text(json.dumps(weather_doc(f"{weather_api.url}/declared")))
    command, args = stdio_command()
    declared = {
        "forecast": {"openapi": str(doc), "description": "The forecast.",
                     "auth": {"type": "service", "name": "X-Api-Key",
                              "token_env": "FORECAST_KEY"}},
        "local_tools": {"kind": "mcp", "command": command, "args": args,
                        "cwd": str(ROOT), "allowed_tools": ["add", "pid"]},
    }  # fmt: skip
    return start_module_server(
        ASSISTD_OPENAI_BASE_URL=fake_model.base_url,
        ASSISTD_OUTBOUND=json.dumps(OUTBOUND),
        ASSISTD_PLUGINS=json.dumps(declared),
        ASSISTD_LOG_LEVEL="debug",
        FORECAST_KEY=TOKEN,
    )


def api(server: RunningServer) -> httpx.Client:
    """Raw HTTP with the key the SDK holds now."""
    headers = {"Authorization": f"Bearer {dashscope.api_key}"}
    return httpx.Client(base_url=server.dashscope_url, headers=headers, timeout=30)


def register(server: RunningServer, base_url: str, **body: Any) -> str:
    pid = body.pop("plugin_id", None) or f"wx_{secrets.token_hex(3)}"
    with api(server) as client:
        made = client.post(
            "/plugins", json={"plugin_id": pid, "openapi": weather_doc(base_url), **body}
        )
    assert made.status_code == 200, made.text
    return pid


@dataclass
class Called:
    run: Any
    thread_id: str
    call: dict[str, Any]  # the step's tool call, as the SDK gives it
    output: str
    model: str


def call_plugin(fake_model: FakeModel, pid: str, city: str, tool: dict[str, Any] | None = None,
                function: str = "get_weather", args: dict[str, Any] | None = None,
                ) -> Called:  # fmt: skip
    """A run whose model calls the plugin's function once, then answers."""
    args = args if args is not None else {"city": city}
    model = fake_model.new_model(
        ToolCalls([(f"{pid}__{function}", args)]), Reply("Here is the weather.")
    )
    assistant = ok(Assistants.create(model=model, tools=[tool or {"type": pid}]))
    thread = ok(Threads.create(messages=[{"role": "user", "content": f"Weather in {city}?"}]))
    run = ok(Runs.create(thread.id, assistant_id=assistant.id))
    done = wait_done(thread.id, run.id)
    assert done.status == "completed", as_json(done)
    steps = ok(Steps.list(run.id, thread_id=thread.id, order="asc")).data
    assert [s.type for s in steps] == ["tool_calls", "message_creation"], as_json(steps)
    [call] = steps[0].step_details.tool_calls
    assert call["type"] == pid, call
    output = call[pid]["output"]
    assert json.loads(call[pid]["input"]) == args
    return Called(done, thread.id, call, str(output), model)


def seen_for(api_server: Listener, city: str) -> Seen:
    [seen] = [s for s in api_server.seen if f"city={city}" in s.path]
    return seen


# ---- a plugin answers, with each kind of credential ---------------------------------------

AUTHS = {
    "none": ({}, None, None),
    "bearer": ({"type": "service", "token": TOKEN}, "authorization", f"Bearer {TOKEN}"),
    "api-key-header": ({"type": "service", "name": "X-Api-Key", "token": TOKEN},
                       "x-api-key", TOKEN),
    "basic": ({"type": "service", "scheme": "basic", "token": f"me:{TOKEN}"}, "authorization",
              "Basic " + base64.b64encode(f"me:{TOKEN}".encode()).decode()),
    "query": ({"type": "service", "in": "query", "name": "key", "token": TOKEN}, "?key", TOKEN),
}  # fmt: skip


@pytest.mark.parametrize("kind", list(AUTHS))
def test_the_plugin_answers_with_its_credential(
    allowing: RunningServer, fake_model: FakeModel, weather_api: Listener, kind: str
) -> None:
    auth, where, expected = AUTHS[kind]
    city = f"Oslo-{secrets.token_hex(3)}"
    with sdk_on(allowing):
        pid = register(allowing, f"{weather_api.url}/v1", auth=auth or None)
        called = call_plugin(fake_model, pid, city)
        text = ok(Messages.list(called.thread_id)).data[0].content[0].text.value
        assert text == "Here is the weather."
        if kind != "none":
            assert_secret_nowhere(allowing, fake_model, called, TOKEN)
    assert f"sunny in {city}" in called.output
    seen = seen_for(weather_api, city)
    assert seen.method == "GET" and urlsplit(seen.path).path == "/v1/weather"
    if where == "?key":
        assert parse_qs(urlsplit(seen.path).query)["key"] == [expected]
    elif where is not None:
        assert {k.lower(): v for k, v in seen.headers.items()}[where] == expected
    # The model read the plugin's answer as the tool's result.
    second = fake_model.requests(called.model)[1]
    [result] = [m for m in second["messages"] if m["role"] == "tool"]
    assert f"sunny in {city}" in result["content"]


def test_a_user_token_comes_with_the_tool_entry(
    allowing: RunningServer, fake_model: FakeModel, weather_api: Listener
) -> None:
    city = f"Bergen-{secrets.token_hex(3)}"
    with sdk_on(allowing):
        pid = register(allowing, f"{weather_api.url}/v1", auth={"type": "user_http"})
        entry = {"type": pid, "auth": {"type": "user_http", "user_token": USER_TOKEN}}
        called = call_plugin(fake_model, pid, city, tool=entry)
    assert f"sunny in {city}" in called.output
    assert seen_for(weather_api, city).headers["Authorization"] == f"Bearer {USER_TOKEN}"
    assert USER_TOKEN not in called.output and USER_TOKEN not in server_log(allowing)


def test_a_declared_plugin_serves_every_workspace(
    allowing: RunningServer, fake_model: FakeModel, weather_api: Listener
) -> None:
    for _ in range(2):
        city = f"Tromso-{secrets.token_hex(3)}"
        with sdk_on(allowing):
            called = call_plugin(fake_model, "forecast", city)
            with api(allowing) as client:
                shown = client.get("/plugins/forecast").json()
                assert shown["declared"] is True and shown["auth"]["has_token"] is True
                assert client.delete("/plugins/forecast").status_code == 403
                again = client.post(
                    "/plugins",
                    json={"plugin_id": "forecast", "openapi": weather_doc("https://e.com")},
                )
                assert again.status_code == 400 and "configuration" in again.json()["message"]
        assert f"sunny in {city}" in called.output
        seen = seen_for(weather_api, city)
        assert urlsplit(seen.path).path == "/declared/weather"
        assert seen.headers["X-Api-Key"] == TOKEN
        assert TOKEN not in called.output


# ---- MCP servers ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mcp_server() -> Iterator[HttpMcp]:
    with http_mcp() as server:
        yield server


def test_a_registered_mcp_server_answers(
    allowing: RunningServer, fake_model: FakeModel, mcp_server: HttpMcp
) -> None:
    pid = f"mcp_{secrets.token_hex(3)}"
    before = len(mcp_server.seen.headers)
    with sdk_on(allowing):
        with api(allowing) as client:
            made = client.post("/plugins", json={
                "plugin_id": pid, "kind": "mcp", "url": mcp_server.url,
                "headers": {"X-Api-Key": TOKEN}, "allowed_tools": ["shout", "add"],
            })  # fmt: skip
            assert made.status_code == 200, made.text
        called = call_plugin(fake_model, pid, "-", function="shout", args={"word": "hello"})
        assert called.output == "HELLO"
        offered = fake_model.requests(called.model)[0]["tools"]
        assert sorted(t["function"]["name"] for t in offered) == [f"{pid}__add", f"{pid}__shout"]
        assert_secret_nowhere(allowing, fake_model, called, TOKEN)
    sent = mcp_server.seen.headers[before:]
    assert sent and all(h.get("x-api-key") == TOKEN for h in sent)


def test_a_declared_stdio_mcp_server_answers(
    allowing: RunningServer, fake_model: FakeModel
) -> None:
    with sdk_on(allowing):
        called = call_plugin(fake_model, "local_tools", "-", function="add", args={"a": 2, "b": 3})
    assert called.output == "5"


def assert_secret_nowhere(
    server: RunningServer, fake_model: FakeModel, called: Called, secret: str
) -> None:
    """Not in the run, its steps, its messages, what the model was sent, nor the log."""
    thread_id, run_id = called.thread_id, called.run.id
    shown = [
        as_json(ok(Runs.retrieve(run_id, thread_id=thread_id))),
        as_json(ok(Steps.list(run_id, thread_id=thread_id))),
        as_json(ok(Messages.list(thread_id))),
        fake_model.requests(called.model),
    ]
    for item in shown:
        assert secret not in json.dumps(item), item
    assert secret not in server_log(server)


# ---- tenancy -------------------------------------------------------------------------------


def test_each_workspace_uses_its_own_plugin_of_the_same_id(
    allowing: RunningServer, fake_model: FakeModel
) -> None:
    pid = f"shared_{secrets.token_hex(3)}"
    with listener(weather) as mine, listener(weather) as theirs:
        _, key_a = workspace_key(allowing)
        _, key_b = workspace_key(allowing)
        with sdk_at(allowing, key_a):
            register(allowing, f"{mine.url}/v1", plugin_id=pid,
                     auth={"type": "service", "token": TOKEN})  # fmt: skip
        with sdk_at(allowing, key_b):
            register(allowing, f"{theirs.url}/v1", plugin_id=pid)
            called = call_plugin(fake_model, pid, "Lima")
            with api(allowing) as client:
                assert client.delete(f"/plugins/{pid}").status_code == 200
            gone = Assistants.create(model="qwen-max", tools=[{"type": pid}])
            assert gone.status_code == 400
        assert "sunny in Lima" in called.output
        assert mine.connections == 0 and len(theirs.seen) == 1
        assert "Authorization" not in theirs.seen[0].headers  # A's token stayed A's
        with sdk_at(allowing, key_a):  # A's plugin is untouched by B's deletion
            assert "sunny in Quito" in call_plugin(fake_model, pid, "Quito").output
        assert mine.seen[0].headers["Authorization"] == f"Bearer {TOKEN}"


# ---- the outbound guard, through a plugin ------------------------------------------------


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


REFUSED_HOSTS = {
    "private 10.x": ("10.1.2.3", None),
    "loopback": ("127.0.0.1", "127.0.0.1"),
    "decimal loopback": ("2130706433", "127.0.0.1"),
    "a name of loopback": ("localhost", "127.0.0.1"),
    "IPv4-mapped IPv6": ("[::ffff:127.0.0.1]", "127.0.0.1"),
    "IPv6 loopback": ("[::1]", "::1"),
    "metadata": ("169.254.169.254", None),
}


@pytest.mark.parametrize("case", list(REFUSED_HOSTS))
def test_private_targets_are_refused_with_a_clear_output(
    ds: str, server: RunningServer, fake_model: FakeModel, case: str
) -> None:
    """The session's server allows no private network."""
    host, listen_on = REFUSED_HOSTS[case]
    if listen_on == "::1" and not _ipv6_loopback():
        pytest.skip("this machine has no IPv6 loopback")
    with listener(weather, host=listen_on or "127.0.0.1") as target:
        port = f":{target.port}" if listen_on else ""
        pid = register(server, f"http://{host}{port}/v1",
                       auth={"type": "service", "token": TOKEN})  # fmt: skip
        called = call_plugin(fake_model, pid, "Nowhere")
        assert target.connections == 0, case
    assert "refused" in called.output.lower(), called.output
    assert "sunny" not in called.output and TOKEN not in called.output


def test_a_redirect_to_a_private_host_is_refused(
    allowing: RunningServer, fake_model: FakeModel
) -> None:
    """127.0.0.1 is allowed; 127.0.0.2 is not, and never hears from the server."""
    with listener(weather, host="127.0.0.2") as private:
        location = f"http://127.0.0.2:{private.port}/v1/weather?city=Nowhere"
        redirect = Answer(status=302, body=b"", headers={"Location": location})
        with listener(lambda _: redirect) as allowed, sdk_on(allowing):
            pid = register(allowing, f"{allowed.url}/v1")
            called = call_plugin(fake_model, pid, "Nowhere")
            assert len(allowed.seen) == 1
        assert private.connections == 0
    assert "refused" in called.output.lower() and "127.0.0.2" in called.output


def test_an_oversized_answer_is_refused(allowing: RunningServer, fake_model: FakeModel) -> None:
    huge = Answer(body=b'{"sky": "' + b"x" * (4 * OUTBOUND["max_response_bytes"]) + b'"}')
    with listener(lambda _: huge) as big, sdk_on(allowing):
        pid = register(allowing, f"{big.url}/v1")
        called = call_plugin(fake_model, pid, "Big")
    assert "larger than" in called.output, called.output[:500]
    assert len(called.output) < 4096


def test_a_server_that_never_finishes_times_out(
    allowing: RunningServer, fake_model: FakeModel
) -> None:
    stalled = Answer(body=b'{"sky": ', stall_s=30)
    with listener(lambda _: stalled) as slow, sdk_on(allowing):
        pid = register(allowing, f"{slow.url}/v1")
        called = call_plugin(fake_model, pid, "Slow")
    output = called.output.lower()
    assert "timed out" in output or "did not answer" in output, called.output


def test_the_token_is_not_in_the_database_file(allowing: RunningServer) -> None:
    if allowing.database_url:
        pytest.skip("the SQLite file is this test's subject")
    with sdk_on(allowing):
        register(allowing, "https://weather.example.com", auth={"type": "service", "token": TOKEN})
    files = [p for p in Path(allowing.data_dir).glob("assistd.db*") if p.is_file()]
    assert files and not any(TOKEN.encode() in p.read_bytes() for p in files)
