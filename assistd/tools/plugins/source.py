"""Where the tool registry finds a plugin's toolset: the workspace's registered plugins,
then those the operator declares in the configuration.

A toolset is built once (an OpenAPI document parsed, an MCP session opened) and reused
while its plugin is unchanged: every lookup reads the plugin's revision, one indexed
query, so a change made by another process (the CLI, another replica) is seen at once.
A plugin whose tokens come with each call (`user_http`) gets one toolset per token.

Whatever a toolset hands back passes through `_Redacting`, which replaces the plugin's
own secrets, so a server that echoes its credential cannot put it in a run step, in
what the model reads, or in a log line.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import traceback
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import yaml

from assistd.core.objects import Plugin
from assistd.errors import StartupError
from assistd.logs import redact
from assistd.settings import PluginSettings, Settings
from assistd.tools.base import FunctionSpec, JsonDict, ToolContext, ToolResult, Toolset
from assistd.tools.plugins.credentials import Credentials
from assistd.tools.plugins.mcp import McpServer, McpToolset
from assistd.tools.plugins.openapi import (
    OpenApiToolset,
    PluginAuth,
    load_operations,
    parse_document,
)

log = logging.getLogger("assistd.tools.plugins")
TOKENS_PER_PLUGIN = 32  # toolsets kept per user_http plugin, one per caller's token
_DECLARED = ""  # the workspace key of plugins the configuration declares
_MASK = "****"
_MIN_SECRET = 4  # shorter "secrets" are not scrubbed: they would mangle every output


class PluginLookup(Protocol):
    """The plugin registry as the source reads it (assistd.core.plugins.PluginService)."""

    async def revision(self, ws: str, plugin_id: str) -> int | None: ...
    async def stored(self, ws: str, plugin_id: str) -> tuple[Plugin, Credentials] | None: ...


@dataclass
class _Built:
    revision: int
    by_token: OrderedDict[str, Toolset] = field(default_factory=OrderedDict)


class WorkspacePlugins:
    """The registry's PluginSource."""

    def __init__(
        self,
        lookup: PluginLookup,
        settings: Settings,
        declared_documents: dict[str, dict[str, Any]] | None = None,  # from check_declared
    ) -> None:
        self.lookup = lookup
        self.settings = settings
        self._declared_documents = declared_documents or {}
        self._built: dict[tuple[str, str], _Built] = {}
        self._locks: defaultdict[tuple[str, str], asyncio.Lock] = defaultdict(asyncio.Lock)
        self._closed = False

    async def toolset(self, workspace_id: str, plugin_id: str, entry: JsonDict) -> Toolset | None:
        revision = await self.lookup.revision(workspace_id, plugin_id)
        key = (workspace_id, plugin_id)
        if revision is None:
            await self.forget(workspace_id, plugin_id)  # deleted: release what was built
            if plugin_id not in self.settings.plugins:
                return None
            key, revision = (_DECLARED, plugin_id), 0
        user_token = _user_token(entry)
        variant = hashlib.sha256(user_token.encode()).hexdigest() if user_token else ""
        async with self._locks[key]:
            built = self._built.get(key)
            if built is None or built.revision != revision:
                if built is not None:
                    await _close(built.by_token.values())
                built = self._built[key] = _Built(revision)
            toolset = built.by_token.get(variant)
            if toolset is None:
                toolset = await self._build(key, user_token)
                if toolset is None:
                    return None
                built.by_token[variant] = toolset
                if len(built.by_token) > TOKENS_PER_PLUGIN:
                    await _close([built.by_token.popitem(last=False)[1]])
            built.by_token.move_to_end(variant)
            return toolset

    async def forget(self, workspace_id: str, plugin_id: str) -> None:
        """Closes the toolsets built for a plugin (it changed, or is gone)."""
        built = self._built.pop((workspace_id, plugin_id), None)
        if built is not None:
            await _close(built.by_token.values())

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        built, self._built = list(self._built.values()), {}
        for each in built:
            await _close(each.by_token.values())

    async def _build(self, key: tuple[str, str], user_token: str | None) -> Toolset | None:
        workspace_id, plugin_id = key
        if workspace_id == _DECLARED:
            return self._build_declared(plugin_id, user_token)
        try:
            found = await self.lookup.stored(workspace_id, plugin_id)
        except ValueError as exc:  # the server's secret changed since it was registered
            log.warning("the plugin '%s' cannot be used: %s", plugin_id, exc)
            return None
        if found is None:
            return None
        plugin, credentials = found
        if plugin.kind == "mcp":
            server = McpServer(
                url=plugin.url, headers=credentials.headers, allowed_tools=plugin.allowed_tools
            )
            return self._redacting(plugin_id, self._mcp(plugin_id, server), credentials.secrets())
        document = await asyncio.to_thread(parse_document, plugin.document or "")
        token = credentials.token if plugin.auth.type == "service" else user_token
        auth = PluginAuth(
            type=plugin.auth.type, placement=plugin.auth.placement, name=plugin.auth.name,
            scheme=plugin.auth.scheme, token=token,
        )  # fmt: skip
        toolset = self._openapi(plugin_id, document, auth, plugin.url, plugin.description)
        return self._redacting(plugin_id, toolset, [*credentials.secrets(), user_token or ""])

    def _build_declared(self, plugin_id: str, user_token: str | None) -> Toolset | None:
        declared = self.settings.plugins[plugin_id]
        if _source_of(declared) is None:
            return None
        if declared.kind == "mcp":
            server = McpServer(
                url=declared.url, command=declared.command, args=list(declared.args),
                env=dict(declared.env), headers=dict(declared.headers),
                allowed_tools=declared.allowed_tools,
            )  # fmt: skip
            secrets = list(declared.headers.values())
            return self._redacting(plugin_id, self._mcp(plugin_id, server), secrets)
        document = self._declared_documents.get(plugin_id)
        if document is None:  # not checked at start (a test's settings): read it now
            assert declared.openapi is not None
            document = _declared_document(plugin_id, declared.openapi, f"plugins.{plugin_id}")
        setting = declared.auth
        token = setting.key() if setting.type == "service" else user_token
        auth = PluginAuth(
            type=setting.type, placement=setting.placement, name=setting.name,
            scheme=setting.scheme, token=token,
        )  # fmt: skip
        toolset = self._openapi(plugin_id, document, auth, declared.url, declared.description)
        return self._redacting(plugin_id, toolset, [token or ""])

    def _openapi(
        self, plugin_id: str, document: dict[str, Any], auth: PluginAuth, base_url: str | None,
        description: str,
    ) -> Toolset:  # fmt: skip
        return OpenApiToolset(
            plugin_id, document, auth, base_url=base_url,
            output_bytes=self.settings.plugin_output_bytes, description=description,
        )  # fmt: skip

    def _mcp(self, plugin_id: str, server: McpServer) -> Toolset:
        return McpToolset(
            plugin_id, server, refresh_s=self.settings.mcp_refresh_s,
            output_bytes=self.settings.plugin_output_bytes,
        )  # fmt: skip

    def _redacting(self, plugin_id: str, toolset: Toolset, secrets: list[str]) -> Toolset:
        return _Redacting(toolset, plugin_id, [s for s in secrets if len(s) >= _MIN_SECRET])


def check_declared(settings: Settings) -> dict[str, dict[str, Any]]:
    """Reads and checks the configuration's plugins, at start: their OpenAPI documents by
    plugin id, or StartupError naming the plugin whose document does not load or whose
    token is missing."""
    documents: dict[str, dict[str, Any]] = {}
    for plugin_id, declared in settings.plugins.items():
        where = f"plugins.{plugin_id}"
        if declared.kind == "openapi" and declared.openapi is not None:
            documents[plugin_id] = _declared_document(plugin_id, declared.openapi, where)
        auth = declared.auth
        if auth.type == "service" and auth.key() is None:
            source = f"the variable {auth.token_env}" if auth.token_env else "auth.token"
            raise StartupError(f"{where}: 'service' auth needs a token, and {source} is unset")
        if _source_of(declared) is None:
            log.warning(
                "the plugin '%s' has no %s: assistants may name it, but it offers nothing",
                plugin_id,
                "openapi document" if declared.kind == "openapi" else "url or command",
            )
    return documents


def _source_of(declared: PluginSettings) -> str | Path | None:
    if declared.kind == "mcp":
        return declared.url or declared.command
    return declared.openapi


def _declared_document(plugin_id: str, path: Path, where: str) -> dict[str, Any]:
    try:
        document = parse_document(path.read_text(encoding="utf-8"))
        load_operations(plugin_id, document)
    except OSError as exc:
        raise StartupError(f"{where}.openapi: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise StartupError(f"{where}.openapi: {path} is not UTF-8 text") from None
    except (ValueError, yaml.YAMLError) as exc:
        raise StartupError(f"{where}.openapi: {path} is not a usable document: {exc}") from None
    return document


def _user_token(entry: JsonDict) -> str | None:
    """The per-call token of a tool entry `{"auth": {"type": "user_http", "user_token"}}`."""
    auth = entry.get("auth")
    if not isinstance(auth, dict):
        return None
    token = auth.get("user_token")
    return token if isinstance(token, str) and token else None


async def _close(toolsets: Any) -> None:
    for toolset in list(toolsets):
        try:
            await toolset.close()
        except Exception as exc:  # one toolset's failure must not keep the others open
            log.warning("a plugin toolset did not close cleanly: %s", type(exc).__name__)


class _Redacting:
    """A toolset whose outputs, errors and log lines never carry its secrets."""

    def __init__(self, inner: Toolset, plugin_id: str, secrets: list[str]) -> None:
        self.inner = inner
        self.plugin_id = plugin_id
        forms = {f for s in secrets for f in (s, quote(s, safe=""), _b64(s))}
        self.secrets = sorted(forms, key=len, reverse=True)  # longest first

    async def functions(self, context: ToolContext) -> list[FunctionSpec]:
        return await self.inner.functions(context)

    async def call(self, function: str, args: JsonDict, context: ToolContext) -> ToolResult:
        try:
            result = await self.inner.call(function, args, context)
        except Exception as exc:
            trace = "".join(traceback.format_exception(exc))
            log.error("the plugin '%s' failed in %s: %s", self.plugin_id, function,
                      redact(self._scrub(trace)))  # fmt: skip
            message = f"The plugin '{self.plugin_id}' failed ({type(exc).__name__})."
            return ToolResult(output=json.dumps({"error": {"code": "plugin_failed",
                                                           "message": message}}))  # fmt: skip
        display = self._scrub(result.display) if result.display is not None else None
        return replace(result, output=self._scrub(result.output), display=display)

    async def close(self) -> None:
        await self.inner.close()

    def _scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, _MASK)
        return text


def _b64(secret: str) -> str:
    return base64.b64encode(secret.encode()).decode()
