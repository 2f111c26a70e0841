"""A plugin described by an OpenAPI 3.x document, as a toolset: one function per
operation, each call sent through the guarded outbound client.

The plugin's server is a URL an API caller chose, so every call is guarded (SSRF). The
credential (the operator's service token, or the user's token from the tool entry) is
added to the request here and nowhere else; every text that leaves this module (the
output the model reads and the step shows, log lines) has it redacted, in case the
server echoes it or an error message quotes a URL that carries it.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Literal, get_args
from urllib.parse import quote, quote_plus

import httpx2

from assistd.tools.arguments import invalid_arguments
from assistd.tools.base import FunctionSpec, JsonDict, ToolContext, ToolResult
from assistd.tools.http import OutboundError, OutboundResponse
from assistd.tools.plugins.openapi_schema import (
    Operation,
    check_document,
    load_operations,
    parse_document,
    server_url,
)

__all__ = [
    "OpenApiToolset",
    "Operation",
    "PluginAuth",
    "PluginManifest",
    "check_document",
    "load_operations",
    "parse_ai_plugin",
    "parse_document",
    "server_url",
]

log = logging.getLogger("assistd.tools.plugins")

AuthType = Literal["none", "service", "user"]
Placement = Literal["header", "query"]
Scheme = Literal["bearer", "basic", "raw"]
REDACTED = "[redacted]"
# Tool entry auth types that carry the user's own token (DashScope's shapes).
USER_AUTH_TYPES = ("user_http", "dashscope_plugin")


@dataclass(frozen=True, slots=True)
class PluginAuth:
    """How a plugin's calls are authenticated. `service`: the operator's `token`, kept
    server side; `user`: the token in the tool entry's `auth.user_token`, per call. The
    credential goes in the header or query parameter `name`; in a header it is written
    as `Bearer <token>`, `Basic <base64(token)>` (token = "user:password") or as is."""

    type: AuthType = "none"
    placement: Placement = "header"
    name: str = "Authorization"
    scheme: Scheme = "bearer"
    token: str | None = field(default=None, repr=False)  # plaintext, never shown

    def __post_init__(self) -> None:
        for value, allowed, what in (
            (self.type, AuthType, "auth type"),
            (self.placement, Placement, "auth placement"),
            (self.scheme, Scheme, "auth scheme"),
        ):
            if value not in get_args(allowed):
                raise ValueError(
                    f"unknown {what} '{value}' (one of {', '.join(get_args(allowed))})"
                )
        if not self.name.strip():
            raise ValueError("the auth header or query parameter needs a name")

    def hidden(self) -> tuple[tuple[str, str], ...]:
        """The parameter the credential fills, which the model is not asked for."""
        return () if self.type == "none" else ((self.placement, self.name),)

    def place(self, token: str, headers: dict[str, str], params: dict[str, Any]) -> None:
        if self.placement == "query":
            params[self.name] = token  # a query parameter carries the token as is
        elif self.scheme == "bearer":
            headers[self.name] = f"Bearer {token}"
        elif self.scheme == "basic":
            headers[self.name] = f"Basic {_b64(token)}"
        else:
            headers[self.name] = token


@dataclass(frozen=True, slots=True)
class PluginManifest:
    """A legacy DashScope plugin: `ai-plugin.json` with its OpenAPI document."""

    plugin_id: str  # name_for_model
    name: str  # name_for_human
    description: str  # description_for_model
    document: JsonDict
    auth: PluginAuth  # without its token: the operator gives that at registration


def parse_ai_plugin(
    manifest: JsonDict, openapi_text: str, *, base_url: str | None = None
) -> PluginManifest:
    """The plugin an `ai-plugin.json` manifest and its OpenAPI file describe; ValueError
    names what is wrong with either."""
    plugin_id = manifest.get("name_for_model")
    if not isinstance(plugin_id, str) or not plugin_id.replace("_", "").isalnum():
        raise ValueError("ai-plugin.json: name_for_model must be letters, digits and '_'")
    if len(plugin_id) > 20 or not plugin_id.isascii():
        raise ValueError("ai-plugin.json: name_for_model must be at most 20 ASCII characters")
    api = manifest.get("api") or {"type": "openapi"}
    if not isinstance(api, dict) or api.get("type", "openapi") != "openapi":
        raise ValueError("ai-plugin.json: api.type must be 'openapi'")
    document = parse_document(openapi_text, base_url=base_url)
    info = document.get("info")
    about = info.get("description") if isinstance(info, dict) else None
    return PluginManifest(
        plugin_id=plugin_id,
        name=str(manifest.get("name_for_human") or plugin_id),
        description=str(manifest.get("description_for_model") or about or ""),
        document=document,
        auth=_manifest_auth(manifest.get("auth")),
    )


def _manifest_auth(auth: Any) -> PluginAuth:
    kind = auth.get("type", "none") if isinstance(auth, dict) else "none"
    if kind == "none":
        return PluginAuth()
    if kind not in ("service_http", "user_http"):
        raise ValueError(f"ai-plugin.json: auth type '{kind}' is not supported "
                         "(none, service_http or user_http)")  # fmt: skip
    given = str(auth.get("authorization_type") or "bearer").lower()
    if given not in ("bearer", "basic"):
        raise ValueError(f"ai-plugin.json: authorization_type '{given}' is not supported")
    scheme: Scheme = "basic" if given == "basic" else "bearer"
    return PluginAuth(type="service" if kind == "service_http" else "user", scheme=scheme)


class OpenApiToolset:
    """The functions of one plugin (assistd.tools.base.Toolset)."""

    def __init__(
        self,
        plugin_id: str,
        document: JsonDict,
        auth: PluginAuth,
        *,
        base_url: str | None = None,
        output_bytes: int = 32768,
        description: str = "",
    ) -> None:
        """ValueError when the document cannot be called (see parse_document) or a
        service credential has no token. `base_url` resolves a relative server URL."""
        if auth.type == "service" and not auth.token:
            raise ValueError(f"the plugin '{plugin_id}' has service auth but no token")
        self.plugin_id = plugin_id
        self.auth = auth
        self.base_url = server_url(document, base_url)
        self.output_bytes = output_bytes
        operations = load_operations(plugin_id, document, description=description,
                                     hidden=auth.hidden())  # fmt: skip
        self.operations = {operation.name: operation for operation in operations}

    async def functions(self, context: ToolContext) -> list[FunctionSpec]:
        return [FunctionSpec(op.name, op.description, op.parameters)
                for op in self.operations.values()]  # fmt: skip

    async def call(self, function: str, args: JsonDict, context: ToolContext) -> ToolResult:
        operation = self.operations.get(function)
        if operation is None:
            names = ", ".join(self.operations)
            return ToolResult(f"The plugin '{self.plugin_id}' has no function '{function}' "
                              f"(it has: {names}).")  # fmt: skip
        problem = invalid_arguments(args, operation.parameters)
        if problem is not None:
            return ToolResult(problem)
        token = self._token(context)
        if self.auth.type != "none" and not token:
            return ToolResult(self._needs_token())
        secrets = _secrets(token)
        url, headers, params, body = _request(self.base_url, operation, args)
        if token:
            self.auth.place(token, headers, params)
        try:
            response = await context.require_http().request(
                operation.method, url, trusted=False, headers=headers, params=params, **body
            )
        except OutboundError as exc:
            message = _redact(str(exc), secrets)
            log.info("plugin %s: %s %s refused: %s", self.plugin_id, operation.method,
                     operation.path, message)  # fmt: skip
            return ToolResult(f"Error: the plugin '{self.plugin_id}' could not be called: "
                              f"{message}")  # fmt: skip
        log.info("plugin %s: %s %s -> %d", self.plugin_id, operation.method, operation.path,
                 response.status)  # fmt: skip
        return ToolResult(_output(response, secrets, self.output_bytes))

    async def close(self) -> None:
        pass  # the outbound client is the registry's

    def _token(self, context: ToolContext) -> str | None:
        if self.auth.type == "service":
            return self.auth.token
        if self.auth.type != "user":
            return None
        auth = context.config.get("auth")
        if not isinstance(auth, dict) or auth.get("type", "user_http") not in USER_AUTH_TYPES:
            return None
        token = auth.get("user_token")
        return token if isinstance(token, str) and token.strip() else None

    def _needs_token(self) -> str:
        return (
            f"The plugin '{self.plugin_id}' needs the user's own token, and none was given, "
            "so it was not called. Tell the user that this tool needs their token: the "
            f'tool entry must carry {{"type": "{self.plugin_id}", "auth": {{"type": '
            '"user_http", "user_token": "..."}}.'
        )


def _request(
    base_url: str, operation: Operation, args: JsonDict
) -> tuple[str, dict[str, str], dict[str, Any], dict[str, Any]]:
    """(url, headers, query parameters, body keyword) of a call of `operation`."""
    path = operation.path
    headers = {"Accept": "application/json"}
    params: dict[str, Any] = {}
    fields: JsonDict = {}
    whole: Any = None
    for argument, value in args.items():
        slot = operation.slots.get(argument)
        if slot is None or value is None:
            continue  # not a parameter of the operation: nowhere to send it
        if slot.location == "path":
            path = path.replace("{" + slot.name + "}", _segment(value))
        elif slot.location == "query":
            params[slot.name] = (
                [_text(v) for v in value] if isinstance(value, list) else _text(value)
            )
        elif slot.location == "header":
            headers[slot.name] = _text(value).replace("\r", " ").replace("\n", " ")
        elif slot.location == "field":
            fields[slot.name] = value
        else:
            whole = value
    payload = fields if fields else whole
    body: dict[str, Any] = {}
    if payload is not None and operation.body_kind == "form":
        if isinstance(payload, dict):
            body["data"] = {key: _text(value) for key, value in payload.items()}
        else:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            body["content"] = _text(payload).encode()
    elif payload is not None:
        body["json"] = payload
    return base_url + path, headers, params, body


def _segment(value: Any) -> str:
    """A path parameter as one encoded segment ('/' encoded, '.' and '..' too)."""
    text = quote(_text(value), safe="")
    return text.replace(".", "%2E") if text in (".", "..") else text


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _output(response: OutboundResponse, secrets: list[str], limit: int) -> str:
    """`{"status", "data"}` as JSON text of at most `limit` bytes, the credential
    redacted; a longer response is cut and says so."""
    data = _data(response, secrets)
    text = _redact(json.dumps({"status": response.status, "data": data}, ensure_ascii=False),
                   secrets)  # fmt: skip
    if len(text.encode()) <= limit:
        return text
    whole = _redact(data if isinstance(data, str) else json.dumps(data, ensure_ascii=False),
                    secrets).encode()  # fmt: skip
    budget = limit - 200
    while True:
        piece = whole[: max(budget, 0)].decode("utf-8", errors="ignore")
        shown = len(piece.encode())
        note = f"cut: the response has {len(whole)} bytes; only the first {shown} are shown"
        text = json.dumps({"status": response.status, "data": piece, "truncated": note},
                          ensure_ascii=False)  # fmt: skip
        excess = len(text.encode()) - limit
        if excess <= 0 or budget <= 0:
            return text
        budget -= max(excess, 16)


def _data(response: OutboundResponse, secrets: list[str]) -> Any:
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind.startswith(("image/", "audio/", "video/")) or kind in (
        "application/octet-stream", "application/pdf", "application/zip",
    ):  # fmt: skip
        return f"({len(response.content)} bytes of {kind}, not shown)"
    text = _redact(response.text, secrets)
    if "json" in kind or text.lstrip().startswith(("{", "[")):
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text


def _secrets(token: str | None) -> list[str]:
    """Every form the credential may take on the wire, longest first."""
    if not token:
        return []
    query = str(httpx2.QueryParams({"k": token}))[2:]  # as the request's URL carries it
    forms = {token, quote(token, safe=""), quote_plus(token), query, _b64(token)}
    if ":" in token:  # basic: user:password; the password alone is secret too
        forms.add(token.split(":", 1)[1])
    return sorted((form for form in forms if len(form) >= 4), key=len, reverse=True)


def _redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


def _b64(token: str) -> str:
    return base64.b64encode(token.encode()).decode()
