"""OpenAPI plugin calls against a real local plugin server through the real guarded
client: arguments placed in path, query, headers and body, each auth type arriving as
configured, the credential never shown back (outputs, logs), long answers cut, and a
plugin on a non-public address refused before a byte is sent."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest

from assistd.settings import OutboundSettings
from assistd.tools.base import ToolContext
from assistd.tools.http import OutboundClient
from assistd.tools.plugins.openapi import OpenApiToolset, PluginAuth
from tests.support.fake_plugin import minimal_document, weather_document, weather_server
from tests.support.listener import Answer, listener

TOKEN = "s3cr3t-T0ken+/="


@pytest.fixture
async def allowed() -> AsyncIterator[OutboundClient]:
    client = OutboundClient(OutboundSettings(allow_networks=["127.0.0.0/8"]))
    yield client
    await client.close()


@pytest.fixture
async def guarded() -> AsyncIterator[OutboundClient]:
    client = OutboundClient(OutboundSettings())
    yield client
    await client.close()


def _context(http: OutboundClient, entry: dict[str, Any] | None = None) -> ToolContext:
    return ToolContext("ws", "thread", "run", config=entry or {"type": "weather"}, http=http)


def _weather(url: str, auth: PluginAuth | None = None, **options: Any) -> OpenApiToolset:
    return OpenApiToolset("weather", weather_document(url), auth or PluginAuth(), **options)


async def test_a_call_sends_path_query_and_header_and_reads_json(
    allowed: OutboundClient,
) -> None:
    with weather_server() as server:
        toolset = _weather(server.url)
        args = {"city": "São Paulo/../x", "units": "imperial", "X-Request-Id": "r-1"}
        result = await toolset.call("weather__getWeather", args, _context(allowed))
    assert json.loads(result.output) == {"status": 200, "data": {
        "city": "São Paulo/../x", "temperature": 21.5, "units": "imperial"}}  # fmt: skip
    (seen,) = server.seen
    assert seen.path == "/v1/weather/S%C3%A3o%20Paulo%2F..%2Fx?units=imperial"
    assert seen.headers["X-Request-Id"] == "r-1" and seen.headers["Accept"] == "application/json"


async def test_json_and_form_bodies(allowed: OutboundClient) -> None:
    with weather_server() as server:
        toolset = _weather(server.url)
        created = await toolset.call("weather__createAlert", {"city": "Oslo", "threshold": 25},
                                     _context(allowed))  # fmt: skip
        thanked = await toolset.call("weather__sendFeedback", {"text": "nice & warm", "stars": 5},
                                     _context(allowed))  # fmt: skip
    assert json.loads(created.output) == {"status": 201, "data": {
        "id": "alert-1", "city": "Oslo", "threshold": 25}}  # fmt: skip
    assert json.loads(thanked.output) == {"status": 204, "data": ""}
    alert, feedback = server.seen
    assert json.loads(alert.body) == {"city": "Oslo", "threshold": 25}
    assert feedback.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert feedback.body == b"text=nice+%26+warm&stars=5"


@pytest.mark.parametrize(
    "auth, entry, where, expected",
    [
        (PluginAuth(type="service", token=TOKEN), None, "Authorization", f"Bearer {TOKEN}"),
        (PluginAuth(type="service", scheme="basic", token=f"bob:{TOKEN}"), None, "Authorization",
         "Basic " + base64.b64encode(f"bob:{TOKEN}".encode()).decode()),
        (PluginAuth(type="service", name="X-API-Key", scheme="raw", token=TOKEN), None,
         "X-API-Key", TOKEN),
        (PluginAuth(type="service", placement="query", name="appid", token=TOKEN), None,
         "?appid", TOKEN),
        (PluginAuth(type="user"), {"type": "weather", "auth": {"type": "user_http",
         "user_token": TOKEN}}, "Authorization", f"Bearer {TOKEN}"),
    ],
    ids=["bearer", "basic", "api-key-header", "api-key-query", "user-token"],
)  # fmt: skip
async def test_each_auth_arrives_as_configured_and_is_never_shown(
    allowed: OutboundClient,
    caplog: pytest.LogCaptureFixture,
    auth: PluginAuth,
    entry: dict[str, Any] | None,
    where: str,
    expected: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    # As assistd.logs.setup_logging has it: httpx2 logs each request's URL at info.
    caplog.set_level(logging.WARNING, logger="httpx2")
    with weather_server() as server:
        toolset = _weather(server.url, auth)
        context = _context(allowed, entry)
        echoed = await toolset.call("weather__echo", {}, context)
        weather = await toolset.call("weather__getWeather", {"city": "Oslo"}, context)
    for seen in server.seen:
        if where.startswith("?"):
            assert json.loads(echoed.output)["data"]["query"] == {where[1:]: "[redacted]"}
            assert where[1:] + "=" in seen.path
        else:
            assert seen.headers[where] == expected
    assert "[redacted]" in echoed.output
    wire_forms = {TOKEN, expected, str(httpx2.QueryParams({"k": TOKEN}))[2:],
                  base64.b64encode(f"bob:{TOKEN}".encode()).decode()}  # fmt: skip
    for text in (echoed.output, weather.output, caplog.text):
        assert not [form for form in wire_forms if form in text]
    assert json.loads(weather.output)["status"] == 200


async def test_a_user_plugin_without_the_users_token_says_so(allowed: OutboundClient) -> None:
    with weather_server() as server:
        toolset = _weather(server.url, PluginAuth(type="user"))
        for entry in ({"type": "weather"}, {"type": "weather", "auth": {"type": "user_http"}}):
            result = await toolset.call("weather__echo", {}, _context(allowed, entry))
            assert "needs the user's own token" in result.output
            assert '"user_token"' in result.output
    assert server.connections == 0


async def test_bad_arguments_get_a_correctable_message(allowed: OutboundClient) -> None:
    with weather_server() as server:
        toolset = _weather(server.url)
        missing = await toolset.call("weather__get_forecast", {}, _context(allowed))
        too_many = await toolset.call("weather__get_forecast", {"days": 30}, _context(allowed))
        unknown = await toolset.call("weather__nothing", {}, _context(allowed))
    assert missing.output.startswith("Invalid arguments at 'arguments': 'days' is a required")
    assert too_many.output.startswith("Invalid arguments at 'days': 30 is greater than")
    assert "has no function 'weather__nothing'" in unknown.output
    assert "weather__getWeather" in unknown.output
    assert server.connections == 0


async def test_a_long_response_is_cut_and_says_so(allowed: OutboundClient) -> None:
    with weather_server() as server:
        toolset = _weather(server.url, output_bytes=1500)
        result = await toolset.call("weather__get_forecast", {"days": 7}, _context(allowed))
    assert len(result.output.encode()) <= 1500
    cut = json.loads(result.output)
    assert cut["status"] == 200 and cut["data"].startswith('{"days": [{"day": 0')
    assert cut["truncated"].startswith("cut: the response has")


async def test_errors_and_text_answers_are_passed_on(allowed: OutboundClient) -> None:
    extra = {"/text": {"get": {"operationId": "text"}}, "/gone": {"get": {"operationId": "gone"}}}
    with weather_server() as server:
        toolset = OpenApiToolset("weather", weather_document(server.url, extra_paths=extra),
                                 PluginAuth())  # fmt: skip
        text = await toolset.call("weather__text", {}, _context(allowed))
        gone = await toolset.call("weather__gone", {}, _context(allowed))
    assert json.loads(text.output) == {"status": 200, "data": "plain words"}
    assert json.loads(gone.output) == {"status": 404, "data": {"error": "no such path"}}


async def test_a_loopback_plugin_is_refused_without_the_allow_setting(
    guarded: OutboundClient,
) -> None:
    auth = PluginAuth(type="service", placement="query", name="key", token=TOKEN)
    with weather_server() as server:
        toolset = _weather(server.url, auth)
        result = await toolset.call("weather__getWeather", {"city": "Oslo"}, _context(guarded))
    assert result.output.startswith("Error: the plugin 'weather' could not be called: refused "
                                    "to connect to 127.0.0.1")  # fmt: skip
    assert "private, loopback" in result.output and TOKEN not in result.output
    assert server.connections == 0


async def test_a_server_that_stalls_is_reported_as_a_timeout() -> None:
    client = OutboundClient(OutboundSettings(allow_networks=["127.0.0.0/8"], total_timeout_s=0.5))
    try:
        with listener(lambda _: Answer(body=b'{"a"', stall_s=3)) as server:
            toolset = OpenApiToolset("slow", minimal_document({"/x": {"get": {}}}, url=server.url),
                                     PluginAuth())  # fmt: skip
            result = await toolset.call("slow", {}, _context(client))
    finally:
        await client.close()
    assert result.output == ("Error: the plugin 'slow' could not be called: 127.0.0.1 did not "
                             "answer within 0.5 seconds")  # fmt: skip
