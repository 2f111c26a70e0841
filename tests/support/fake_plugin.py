"""A plugin server as users write them: a small weather API with its OpenAPI document,
served by the recording listener so tests see exactly what each call sent (headers,
query, body) and whether a refused call sent anything at all."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.support.listener import Answer, Listener, Seen, listener


def weather_document(url: str, *, extra_paths: dict[str, Any] | None = None) -> dict[str, Any]:
    """The weather plugin's OpenAPI 3.0 document, its server at `url`/v1."""
    return {
        "openapi": "3.0.3",
        "info": {"title": "Weather", "version": "1.0", "description": "Weather of cities."},
        "servers": [{"url": f"{url}/v1"}],
        "paths": {
            "/weather/{city}": {
                "parameters": [{"$ref": "#/components/parameters/City"}],
                "get": {
                    "operationId": "getWeather",
                    "summary": "Current weather of a city.",
                    "parameters": [
                        {"name": "units", "in": "query",
                         "schema": {"type": "string", "enum": ["metric", "imperial"]}},
                        {"name": "X-Request-Id", "in": "header", "schema": {"type": "string"}},
                        {"name": "Accept", "in": "header", "schema": {"type": "string"}},
                    ],
                    "responses": {"200": {"description": "The weather."}},
                },
            },
            "/alerts": {
                "post": {
                    "operationId": "createAlert",
                    "description": "Alerts the user when a city gets hotter than a threshold.",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {
                            "schema": {"$ref": "#/components/schemas/Alert"}}},
                    },
                    "responses": {"201": {"description": "Created."}},
                }
            },
            "/feedback": {
                "post": {
                    "operationId": "sendFeedback",
                    "requestBody": {"content": {"application/x-www-form-urlencoded": {
                        "schema": {"type": "object", "properties": {
                            "text": {"type": "string"}, "stars": {"type": "integer"}}}}}},
                    "responses": {"204": {"description": "Thanks."}},
                }
            },
            "/echo": {
                "get": {
                    "operationId": "echo",
                    "description": "Says back what it got (a careless server).",
                    "responses": {"200": {"description": "The request."}},
                }
            },
            "/forecast": {
                "get": {
                    "parameters": [{"name": "days", "in": "query", "required": True,
                                    "schema": {"type": "integer", "minimum": 1, "maximum": 7}}],
                    "responses": {"200": {"description": "Days of weather."}},
                }
            },
            **(extra_paths or {}),
        },
        "components": {
            "parameters": {
                "City": {"name": "city", "in": "path", "required": True,
                         "description": "The city's name.", "schema": {"type": "string"}},
            },
            "schemas": {
                "Alert": {
                    "type": "object",
                    "required": ["city", "threshold"],
                    "properties": {
                        "city": {"type": "string"},
                        "threshold": {"type": "number", "description": "Degrees Celsius."},
                        "note": {"type": "string", "nullable": True},
                    },
                }
            },
        },
    }  # fmt: skip


def weather_answer(seen: Seen) -> Answer:
    """The weather API's answers; /v1/echo returns the request, credential and all."""
    parts = urlsplit(seen.path)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    if parts.path.startswith("/v1/weather/"):
        city = unquote(parts.path.removeprefix("/v1/weather/"))
        return _json({"city": city, "temperature": 21.5, "units": query.get("units", "metric")})
    if parts.path == "/v1/alerts":
        return _json({"id": "alert-1", **json.loads(seen.body)}, status=201)
    if parts.path == "/v1/feedback":
        return Answer(status=204, body=b"", headers={})
    if parts.path == "/v1/echo":
        return _json({"headers": seen.headers, "query": query, "path": seen.path})
    if parts.path == "/v1/forecast":
        days = int(query.get("days", "1"))
        return _json({"days": [{"day": n, "summary": "sunny " * 40} for n in range(days)]})
    if parts.path == "/v1/text":
        return Answer(body=b"plain words", headers={"Content-Type": "text/plain"})
    return _json({"error": "no such path"}, status=404)


def _json(value: Any, status: int = 200) -> Answer:
    return Answer(status=status, body=json.dumps(value).encode())


@contextmanager
def weather_server() -> Iterator[Listener]:
    with listener(weather_answer) as server:
        yield server


def minimal_document(
    paths: dict[str, Any],
    *,
    components: dict[str, Any] | None = None,
    url: str = "http://127.0.0.1:9",
) -> dict[str, Any]:
    """An OpenAPI 3.1 document of `paths`, its server at `url`."""
    document: dict[str, Any] = {"openapi": "3.1.0", "info": {"title": "t", "version": "1"},
                                "servers": [{"url": url}], "paths": paths}  # fmt: skip
    if components:
        document["components"] = components
    return document
