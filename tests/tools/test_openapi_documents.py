"""OpenAPI plugin documents into functions: names within the models' limits, argument
schemas from parameters and bodies, local refs inlined (cycles and deep chains cut), YAML
read like JSON, and unusable documents refused with the reason."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from assistd.tools.plugins.openapi import (
    OpenApiToolset,
    PluginAuth,
    load_operations,
    parse_ai_plugin,
    parse_document,
)
from tests.support.fake_plugin import minimal_document, weather_document

TOKEN = "s3cr3t-T0ken+/="
HERE = "http://127.0.0.1:9"
UPLOAD = {"openapi": "3.0.0", "servers": [{"url": "https://a.example"}]}


def _by_name(plugin_id: str, document: dict[str, Any]) -> dict[str, Any]:
    return {op.name: op for op in load_operations(plugin_id, document)}


# --- documents into functions -------------------------------------------------------


def test_each_operation_is_a_function_named_after_the_plugin() -> None:
    operations = _by_name("weather", parse_document(json.dumps(weather_document(HERE))))
    assert set(operations) == {
        "weather__getWeather", "weather__createAlert", "weather__sendFeedback",
        "weather__echo", "weather__get_forecast",
    }  # fmt: skip
    get = operations["weather__getWeather"]
    assert (get.method, get.path, get.description) == ("GET", "/weather/{city}",
                                                       "Current weather of a city.")  # fmt: skip
    assert get.parameters == {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "The city's name."},
            "units": {"type": "string", "enum": ["metric", "imperial"]},
            "X-Request-Id": {"type": "string"},  # Accept is the HTTP layer's, left out
        },
        "required": ["city"],
    }
    assert get.slots["city"].location == "path" and get.slots["units"].location == "query"


def test_an_object_body_joins_the_arguments() -> None:
    alert = _by_name("weather", weather_document(HERE))["weather__createAlert"]
    assert alert.parameters["required"] == ["city", "threshold"]
    assert alert.parameters["properties"]["note"] == {"type": ["string", "null"]}
    assert alert.body_kind == "json" and alert.slots["threshold"].location == "field"
    assert alert.description.startswith("Alerts the user")
    feedback = _by_name("weather", weather_document(HERE))["weather__sendFeedback"]
    assert feedback.body_kind == "form" and set(feedback.parameters["properties"]) == {
        "text", "stars"}  # fmt: skip


def test_a_clashing_or_non_object_body_goes_under_body() -> None:
    document = minimal_document({
        "/items/{name}": {"put": {
            "parameters": [{"name": "name", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "properties": {"name": {"type": "string"}}}}}},
        }},
        "/tags": {"post": {"requestBody": {"content": {"application/json": {
            "schema": {"type": "array", "items": {"type": "string"}}}}}}},
    })  # fmt: skip
    operations = _by_name("shop", document)
    put = operations["shop__put_items_name"]
    assert set(put.parameters["properties"]) == {"name", "body"}
    assert put.parameters["required"] == ["name", "body"]
    tags = operations["shop__post_tags"]
    assert tags.parameters["properties"]["body"]["type"] == "array"
    assert "required" not in tags.parameters


def test_a_single_operation_is_named_by_the_plugin_alone() -> None:
    document = minimal_document({"/now": {"get": {"operationId": "now", "summary": "The time."}}})
    (operation,) = load_operations("clock", document)
    assert operation.name == "clock"
    bare = minimal_document({"/now": {"get": {}}})
    (unnamed,) = load_operations("clock", bare, description="Clock.")
    assert unnamed.description == "Clock."


def test_names_stay_within_limits_and_apart() -> None:
    long_id = "x" * 70
    document = minimal_document(
        {"/a": {"get": {"operationId": long_id}}, "/b": {"get": {"operationId": long_id}}}
    )
    names = [op.name for op in load_operations("p", document)]
    assert len(set(names)) == 2 and all(len(n) <= 64 for n in names)
    same = minimal_document({"/a-b": {"get": {}}, "/a_b": {"get": {}}})
    assert len({op.name for op in load_operations("p", same)}) == 2


def test_refs_are_inlined_and_a_cycle_ends_in_an_empty_schema() -> None:
    document = minimal_document(
        {"/nodes": {"post": {
            "operationId": "addNode",
            "parameters": [{"$ref": "#/components/parameters/Trace"}],
            "requestBody": {"$ref": "#/components/requestBodies/Node"},
        }}},
        components={
            "parameters": {"Trace": {"name": "trace", "in": "query",
                                     "schema": {"$ref": "#/components/schemas/Flag"}}},
            "requestBodies": {"Node": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Node"}}}}},
            "schemas": {
                "Flag": {"type": "boolean"},
                "Node": {"type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}},
                    "owner": {"$ref": "#/components/schemas/Missing"},
                }},
            },
        },
    )  # fmt: skip
    (operation,) = load_operations("tree", document)
    assert "$ref" not in json.dumps(operation.parameters)
    properties = operation.parameters["properties"]
    assert properties["trace"] == {"type": "boolean"}
    assert properties["children"] == {"type": "array", "items": {}}  # Node inside Node
    assert properties["owner"] == {}
    assert operation.parameters["required"] == ["name"]


def test_deep_ref_chains_stop_at_eight() -> None:
    schemas = {f"S{n}": {"type": "object", "properties": {"next": {"$ref": f"#/components/"
               f"schemas/S{n + 1}"}}} for n in range(12)}  # fmt: skip
    document = minimal_document(
        {
            "/deep": {
                "post": {
                    "requestBody": {
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/S0"}}
                        }
                    }
                }
            }
        },
        components={"schemas": schemas},
    )
    (operation,) = load_operations("deep", document)
    depth, node = 0, operation.parameters["properties"]["next"]
    while node:
        depth, node = depth + 1, node["properties"]["next"]
    assert depth == 7  # S1..S7 inside S0: eight references followed in all


def test_yaml_documents_read_like_json() -> None:
    document = weather_document(HERE)
    document["info"]["x-released"] = "2024-05-01"
    text = yaml.safe_dump(document).replace("'2024-05-01'", "2024-05-01")  # a YAML date
    parsed = parse_document(text)
    assert parsed["info"]["x-released"] == "2024-05-01"
    assert _by_name("weather", parsed).keys() == _by_name("weather", document).keys()
    assert parse_document("openapi: 3.0.0\ninfo: {title: t, version: '1'}\nservers: [{url: "
                          "'https://{region}.example.com/api', variables: {region: {default: "
                          "eu}}}]\npaths: {/x: {get: {}}}\n")["openapi"] == "3.0.0"  # fmt: skip


@pytest.mark.parametrize(
    "text, reason",
    [
        ('{"swagger": "2.0", "paths": {}}', "Swagger 2.0 documents are not supported"),
        ('{"openapi": "2.1", "paths": {"/x": {"get": {}}}}', "not OpenAPI 3.x"),
        ('{"info": {}, "paths": {"/x": {"get": {}}}}', "not OpenAPI 3.x"),
        ('{"openapi": "3.1.0", "servers": [{"url": "https://a.example"}], "paths": {}}',
         "no operations"),
        ('{"openapi": "3.1.0", "paths": {"/x": {"get": {}}}}', "not an absolute http(s) URL"),
        ('{"openapi": "3.1.0", "servers": [{"url": "/api"}], "paths": {"/x": {"get": {}}}}',
         "give the plugin's base URL"),
        ('{"openapi": "3.0.0", "servers": [{"url": "ftp://a.example"}], "paths": {"/x": {}}}',
         "not an absolute http(s) URL"),
        ("openapi: 3.0.0\npaths: {/x: [\n", "neither JSON nor YAML (line"),
        ("- just\n- a list\n", "must be an object"),
        ("a: &x [1]\nb: [*x, *x]\n", "YAML aliases"),
        (json.dumps({**UPLOAD, "paths": {"/up": {"post": {"requestBody": {"content": {
         "multipart/form-data": {"schema": {"type": "object"}}}}}}}}),
         "POST /up: multipart request bodies are not"),
        (json.dumps({**UPLOAD, "paths": {"/up": {"put": {"requestBody": {"content": {
         "text/plain": {}}}}}}}), "PUT /up: request bodies of type text/plain are not"),
    ],
)  # fmt: skip
def test_unusable_documents_are_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        parse_document(text)


def test_a_relative_server_is_resolved_against_the_base_url() -> None:
    text = json.dumps({"openapi": "3.1.0", "servers": [{"url": "/api"}], "paths": {"/x": {
        "get": {}}}})  # fmt: skip
    toolset = OpenApiToolset("p", parse_document(text, base_url="https://plugins.example/doc"),
                             PluginAuth(), base_url="https://plugins.example/doc")  # fmt: skip
    assert toolset.base_url == "https://plugins.example/api"


def test_the_credential_parameter_is_not_asked_of_the_model() -> None:
    document = minimal_document({"/q": {"get": {"parameters": [
        {"name": "api_key", "in": "query", "schema": {"type": "string"}},
        {"name": "q", "in": "query", "schema": {"type": "string"}}]}}})  # fmt: skip
    auth = PluginAuth(type="service", placement="query", name="api_key", token=TOKEN)
    toolset = OpenApiToolset("search", document, auth)
    assert set(toolset.operations["search"].parameters["properties"]) == {"q"}


def test_auth_settings_are_checked_and_the_token_is_never_shown() -> None:
    auth = PluginAuth(type="service", token=TOKEN)
    assert TOKEN not in repr(auth)
    with pytest.raises(ValueError, match="unknown auth scheme 'digest'"):
        PluginAuth(scheme="digest")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown auth placement 'cookie'"):
        PluginAuth(placement="cookie")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="has service auth but no token"):
        OpenApiToolset("w", weather_document(HERE), PluginAuth(type="service"))


def test_the_legacy_ai_plugin_manifest() -> None:
    manifest = {
        "schema_version": "v1", "name_for_human": "待办事项插件", "name_for_model": "todo",
        "description_for_human": "管理待办事项。", "description_for_model": "Manages a todo list.",
        "auth": {"type": "user_http", "authorization_type": "bearer"},
        "api": {"type": "openapi"}, "logo_url": "http://localhost:3333/logo.png",
        "contact_email": "support@example.com",
    }  # fmt: skip
    plugin = parse_ai_plugin(manifest, yaml.safe_dump(weather_document(HERE)))
    assert (plugin.plugin_id, plugin.name) == ("todo", "待办事项插件")
    assert plugin.description == "Manages a todo list."
    assert plugin.auth == PluginAuth(type="user", scheme="bearer")
    with pytest.raises(ValueError, match="name_for_model"):
        parse_ai_plugin({**manifest, "name_for_model": "to-do"}, json.dumps(weather_document(HERE)))
    with pytest.raises(ValueError, match="auth type 'oauth' is not supported"):
        parse_ai_plugin({**manifest, "auth": {"type": "oauth"}}, json.dumps(weather_document(HERE)))
