"""What a plugin registration may hold: each check names the field at fault.

A plugin's id becomes a tool type, so it may not take a built-in's name. Its OpenAPI
document must load (every operation becomes a function), its URLs must be plain
http(s) URLs (where they lead is checked at each call, by the outbound guard), and its
credentials must be fit to go in a header or a query string.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

from assistd.core import validation as v
from assistd.core.objects import PluginAuth
from assistd.errors import InvalidRequest, StartupError, echo
from assistd.settings import PLUGIN_ID
from assistd.tools.plugins.openapi import parse_document
from assistd.tools.registry import known_types

KINDS = ("openapi", "mcp")
# A tool type a plugin id may not take besides the built-ins and `function`: `mcp`, the
# type an OpenAI-style entry names an MCP server by.
RESERVED_IDS = frozenset({"mcp"})
DESCRIPTION_MAX = 1024  # what a model accepts as a function's description
DOCUMENT_MAX = 2_000_000
URL_MAX = 2048
SECRET_MAX = 4096
HEADERS_MAX = 32
ALLOWED_TOOLS_MAX = 256
MASK = "****"  # what a stored header value reads as; sent back, it keeps the value
_AUTH_TYPES = {"none": "none", "service": "service", "service_http": "service",
               "user": "user", "user_http": "user"}  # fmt: skip
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}")
_QUERY_NAME = re.compile(r"[A-Za-z0-9_.~\[\]-]{1,128}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Headers the outbound client sets itself (the pinned Host, the body's framing).
_OWN_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "upgrade"})


@dataclass(slots=True)
class AuthSpec:
    type: Any = None
    placement: Any = None  # `in` on the wire
    name: Any = None
    scheme: Any = None
    token: Any = None


def reserved_ids() -> frozenset[str]:
    """Every built-in type (the tool entry points), `function` and `mcp`."""
    return known_types(RESERVED_IDS)


def check_plugin_id(value: Any, declared: Iterable[str]) -> str:
    if not isinstance(value, str) or not PLUGIN_ID.fullmatch(value):
        raise InvalidRequest(
            f"'plugin_id' must be 1-64 letters, digits or '_', not '{echo(value)}'.", "plugin_id"
        )
    if value in reserved_ids():
        raise InvalidRequest(
            f"'plugin_id' '{value}' is the name of a built-in tool type; choose another id.",
            "plugin_id",
        )
    if value in declared:
        raise InvalidRequest(
            f"'plugin_id' '{value}' is a plugin this server's configuration declares for "
            "every workspace; choose another id.",
            "plugin_id",
        )
    return value


def check_declared_ids(declared: Iterable[str]) -> None:
    """At start: the configuration's plugins may not take a built-in's name either."""
    for plugin_id in declared:
        if plugin_id in reserved_ids():
            raise StartupError(
                f"plugins.{plugin_id}: '{plugin_id}' is the name of a built-in tool type; "
                "give the plugin another id"
            )


def check_kind(kind: Any, openapi: Any, url: Any) -> str:
    """The kind asked for, or the one the fields imply (a document: openapi)."""
    if kind is None:
        return "mcp" if openapi is None and url is not None else "openapi"
    if kind not in KINDS:
        raise InvalidRequest(f"'kind' must be 'openapi' or 'mcp', not '{echo(kind)}'.", "kind")
    return str(kind)


def check_description(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidRequest("'description' must be a string.", "description")
    return v.check_length(value, "description", DESCRIPTION_MAX) or ""


def check_document(value: Any, base_url: str | None) -> str:
    """The document as text (an object is kept as JSON), once it loads: OpenAPI 3, an
    absolute server URL (or one relative to `base_url`), operations that can be called."""
    if isinstance(value, Mapping):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, str):
        text = value
    else:
        raise InvalidRequest(
            "'openapi' must be the OpenAPI 3 document: its JSON or YAML text, or a JSON object.",
            "openapi",
        )
    if not text.strip():
        raise InvalidRequest("'openapi' is empty; give the OpenAPI 3 document.", "openapi")
    v.check_length(text, "openapi", DOCUMENT_MAX)
    try:
        parse_document(text, base_url=base_url)
    except (ValueError, RecursionError) as exc:
        raise InvalidRequest(
            f"'openapi' is not a usable OpenAPI document: {exc}", "openapi"
        ) from None
    return text


def check_url(value: Any, field: str) -> str:
    """An http(s) URL with a host and no credentials. Where it leads is checked at each
    call, when the name is resolved (a registration must not probe the network)."""
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"'{field}' must be an http:// or https:// URL.", field)
    if len(value) > URL_MAX or _CONTROL.search(value) or " " in value:
        raise InvalidRequest(
            f"'{field}' must be a URL of at most {URL_MAX} characters, without spaces.", field
        )
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError as exc:
        raise InvalidRequest(f"'{field}' is not a valid URL: {exc}.", field) from None
    if parts.scheme not in ("http", "https"):
        raise InvalidRequest(
            f"'{field}' must be an http:// or https:// URL, not '{echo(parts.scheme)}:'.", field
        )
    if not parts.hostname:
        raise InvalidRequest(f"'{field}' has no host.", field)
    if parts.username is not None or parts.password is not None:
        raise InvalidRequest(
            f"'{field}' must not carry credentials (user:password@); use 'auth' or 'headers'.",
            field,
        )
    return value


def check_secret(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"'{field}' must be a non-empty string.", field)
    if len(value) > SECRET_MAX:
        raise InvalidRequest(f"'{field}' is longer than {SECRET_MAX} characters.", field)
    if _CONTROL.search(value):
        raise InvalidRequest(
            f"'{field}' must not contain line breaks or control characters.", field
        )
    return value


def check_auth(
    spec: AuthSpec | None, previous: tuple[PluginAuth, str | None] | None = None
) -> tuple[PluginAuth, str | None]:
    """The auth settings and the service token. A service plugin updated without a new
    token keeps its stored one."""
    if spec is None:
        return previous or (PluginAuth(), None)
    kind = "none" if spec.type is None else _AUTH_TYPES.get(str(spec.type))
    if kind is None:
        raise InvalidRequest(
            f"'auth.type' must be 'none', 'service' or 'user_http', not '{echo(spec.type)}'.",
            "auth.type",
        )
    placement = spec.placement or "header"
    if placement not in ("header", "query"):
        raise InvalidRequest(
            f"'auth.in' must be 'header' or 'query', not '{echo(placement)}'.", "auth.in"
        )
    name = _auth_name(spec.name, placement)
    scheme = spec.scheme or ("bearer" if name.lower() == "authorization" else "raw")
    if scheme not in ("bearer", "basic", "raw"):
        raise InvalidRequest(
            f"'auth.scheme' must be 'bearer', 'basic' or 'raw', not '{echo(scheme)}'.",
            "auth.scheme",
        )
    # Each value was checked against its choices above.
    auth = PluginAuth(
        type=cast(Any, kind), placement=cast(Any, placement), name=name, scheme=cast(Any, scheme)
    )
    return auth, _token(kind, spec.token, previous)


def _auth_name(value: Any, placement: str) -> str:
    if value is None:
        if placement == "query":
            raise InvalidRequest(
                "'auth.name' is required with 'in': 'query': it names the query parameter.",
                "auth.name",
            )
        return "Authorization"
    pattern = _HEADER_NAME if placement == "header" else _QUERY_NAME
    if not isinstance(value, str) or not pattern.fullmatch(value):
        what = "header name" if placement == "header" else "query parameter name"
        raise InvalidRequest(f"'auth.name' is not a valid {what}: '{echo(value)}'.", "auth.name")
    if placement == "header" and value.lower() in _OWN_HEADERS:
        raise InvalidRequest(f"'auth.name' cannot be the '{value}' header.", "auth.name")
    return value


def _token(kind: str, token: Any, previous: tuple[PluginAuth, str | None] | None) -> str | None:
    if kind != "service":
        if token is not None:
            raise InvalidRequest(
                "'auth.token' is only for 'service' auth. A 'user_http' plugin's token comes "
                "with each assistant or run, in its tool entry's auth.user_token.",
                "auth.token",
            )
        return None
    if token is None or token == MASK:
        kept = previous[1] if previous is not None and previous[0].type == "service" else None
        if kept is None:
            raise InvalidRequest("'auth.token' is required for 'service' auth.", "auth.token")
        return kept
    return check_secret(token, "auth.token")


def check_headers(value: Any, previous: Mapping[str, str] | None = None) -> dict[str, str]:
    """Headers sent on every call. A value given as MASK keeps the stored one."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidRequest("'headers' must be an object of header names and values.", "headers")
    if len(value) > HEADERS_MAX:
        raise InvalidRequest(
            f"'headers' has {len(value)} headers; at most {HEADERS_MAX}.", "headers"
        )
    checked: dict[str, str] = {}
    for name, item in value.items():
        if not _HEADER_NAME.fullmatch(str(name)) or str(name).lower() in _OWN_HEADERS:
            raise InvalidRequest(f"'headers' has an invalid header name '{echo(name)}'.", "headers")
        if item == MASK:
            if previous is None or name not in previous:
                raise InvalidRequest(
                    f"'headers.{echo(name)}' is '{MASK}', which keeps a stored value, but "
                    "none is stored: give the header's value.",
                    "headers",
                )
            checked[name] = previous[name]
            continue
        checked[name] = check_secret(item, f"headers.{name}")
    return checked


def check_allowed_tools(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise InvalidRequest("'allowed_tools' must be an array of tool names.", "allowed_tools")
    if len(value) > ALLOWED_TOOLS_MAX:
        raise InvalidRequest(
            f"'allowed_tools' has {len(value)} names; at most {ALLOWED_TOOLS_MAX}.",
            "allowed_tools",
        )
    for index, name in enumerate(value):
        if not name or len(name) > 128 or _CONTROL.search(name):
            raise InvalidRequest(
                f"'allowed_tools[{index}]' must be a tool name of 1-128 printable characters.",
                "allowed_tools",
            )
    return list(dict.fromkeys(value))
