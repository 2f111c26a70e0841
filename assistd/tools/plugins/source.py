"""Where the tool registry finds a plugin's toolset: the workspace's registered plugins,
then those the operator declares in the configuration.

A toolset is built once (an OpenAPI document parsed, an MCP connection kept open) and
reused while its plugin is unchanged: every lookup reads the plugin's revision, one
indexed query, so a change made by another process (the CLI, another replica) is seen
at once, and the toolsets of a changed or deleted plugin are closed.

Whatever a toolset hands back passes through `_Redacting`, which replaces the plugin's
secrets (its stored token and headers, and the user's token of the call's tool entry),
so a server that echoes a credential cannot put it in a run step, in what the model
reads, or in a log line.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import traceback
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, quote_plus

from assistd.core.objects import Plugin
from assistd.errors import StartupError
from assistd.logs import redact
from assistd.settings import PluginSettings, Settings
from assistd.tools.base import FunctionSpec, JsonDict, ToolContext, ToolResult, Toolset
from assistd.tools.plugins.credentials import Credentials
from assistd.tools.plugins.mcp import McpServer, McpToolset
from assistd.tools.plugins.openapi import REDACTED, OpenApiToolset, PluginAuth, parse_document

log = logging.getLogger("assistd.tools.plugins")
_DECLARED = ""  # the workspace key of plugins the configuration declares
_MIN_SECRET = 4  # shorter "secrets" are not scrubbed: they would mangle every output


class PluginLookup(Protocol):
    """The plugin registry as the source reads it (assistd.core.plugins.PluginService)."""

    async def revision(self, ws: str, plugin_id: str) -> int | None: ...
    async def stored(self, ws: str, plugin_id: str) -> tuple[Plugin, Credentials] | None: ...


@dataclass
class _Built:
    revision: int
    toolset: Toolset | None  # None: the plugin cannot be used (logged when built)


class WorkspacePlugins:
    """The registry's PluginSource."""

    def __init__(
        self,
        lookup: PluginLookup,
        settings: Settings,
        declared_documents: dict[str, JsonDict] | None = None,  # from check_declared
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
        async with self._locks[key]:
            built = self._built.get(key)
            if built is None or built.revision != revision:
                if built is not None:
                    await _close([built.toolset])
                built = self._built[key] = _Built(revision, await self._build(key))
            return built.toolset

    async def forget(self, workspace_id: str, plugin_id: str) -> None:
        """Closes the toolset built for a plugin (it changed, or is gone)."""
        built = self._built.pop((workspace_id, plugin_id), None)
        if built is not None:
            await _close([built.toolset])

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        built, self._built = list(self._built.values()), {}
        await _close(b.toolset for b in built)

    async def _build(self, key: tuple[str, str]) -> Toolset | None:
        workspace_id, plugin_id = key
        try:
            if workspace_id == _DECLARED:
                return self._declared(plugin_id)
            found = await self.lookup.stored(workspace_id, plugin_id)
            return await self._registered(*found) if found is not None else None
        except ValueError as exc:  # a secret sealed under another key, a token missing
            log.warning("the plugin '%s' cannot be used: %s", plugin_id, redact(str(exc)))
            return None

    async def _registered(self, plugin: Plugin, credentials: Credentials) -> Toolset:
        if plugin.kind == "mcp":
            server = McpServer(
                url=plugin.url, headers=credentials.headers,
                allowed_tools=_tuple(plugin.allowed_tools),
            )  # fmt: skip
            return self._redacting(plugin.id, self._mcp(plugin.id, server), credentials)
        text = plugin.document or ""
        document = await asyncio.to_thread(parse_document, text, base_url=plugin.url)
        auth = PluginAuth(
            type=plugin.auth.type, placement=plugin.auth.placement, name=plugin.auth.name,
            scheme=plugin.auth.scheme,
            token=credentials.token if plugin.auth.type == "service" else None,
        )  # fmt: skip
        toolset = self._openapi(plugin.id, document, auth, plugin.url, plugin.description)
        return self._redacting(plugin.id, toolset, credentials)

    def _declared(self, plugin_id: str) -> Toolset | None:
        declared = self.settings.plugins[plugin_id]
        credentials = Credentials(token=declared.auth.key(), headers=dict(declared.headers))
        if declared.kind == "mcp":
            if not (declared.url or declared.command):
                return None
            server = McpServer(
                url=declared.url, command=declared.command, args=tuple(declared.args),
                env=dict(declared.env), headers=dict(declared.headers),
                cwd=str(declared.cwd) if declared.cwd is not None else None,
                allowed_tools=_tuple(declared.allowed_tools),
            )  # fmt: skip
            return self._redacting(plugin_id, self._mcp(plugin_id, server), credentials)
        if declared.openapi is None:
            return None
        document = self._declared_documents.get(plugin_id) or _declared_document(
            plugin_id, declared
        )
        setting = declared.auth
        auth = PluginAuth(
            type=setting.type, placement=setting.placement, name=setting.name,
            scheme=setting.effective_scheme,
            token=credentials.token if setting.type == "service" else None,
        )  # fmt: skip
        toolset = self._openapi(plugin_id, document, auth, declared.url, declared.description)
        return self._redacting(plugin_id, toolset, credentials)

    def _openapi(
        self, plugin_id: str, document: JsonDict, auth: PluginAuth, base_url: str | None,
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
            call_timeout_s=self.settings.tool_call_timeout_s,
        )  # fmt: skip

    def _redacting(self, plugin_id: str, toolset: Toolset, credentials: Credentials) -> Toolset:
        return _Redacting(toolset, plugin_id, credentials.secrets())


def check_declared(settings: Settings) -> dict[str, JsonDict]:
    """Reads and checks the configuration's plugins, at start: their OpenAPI documents by
    plugin id, or StartupError naming the plugin whose document does not load or whose
    token is missing."""
    documents: dict[str, JsonDict] = {}
    for plugin_id, declared in settings.plugins.items():
        where = f"plugins.{plugin_id}"
        auth = declared.auth
        if auth.type == "service" and auth.key() is None:
            source = f"the variable {auth.token_env}" if auth.token_env else "auth.token"
            raise StartupError(f"{where}: 'service' auth needs a token, and {source} is unset")
        if declared.kind == "openapi" and declared.openapi is not None:
            documents[plugin_id] = _declared_document(plugin_id, declared)
        elif not (declared.url or declared.command):
            log.warning(
                "the plugin '%s' has no %s: assistants may name it, but it offers nothing",
                plugin_id,
                "openapi document" if declared.kind == "openapi" else "url or command",
            )
    return documents


def _declared_document(plugin_id: str, declared: PluginSettings) -> JsonDict:
    path = declared.openapi
    assert path is not None
    where = f"plugins.{plugin_id}.openapi"
    try:
        return parse_document(Path(path).read_text(encoding="utf-8"), base_url=declared.url)
    except OSError as exc:
        raise StartupError(f"{where}: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise StartupError(f"{where}: {path} is not UTF-8 text") from None
    except ValueError as exc:
        raise StartupError(f"{where}: {path} is not a usable document: {exc}") from None


def _tuple(names: list[str] | None) -> tuple[str, ...] | None:
    return tuple(names) if names is not None else None


async def _close(toolsets: Iterable[Toolset | None]) -> None:
    for toolset in list(toolsets):
        if toolset is None:
            continue
        try:
            await toolset.close()
        except Exception as exc:  # one toolset's failure must not keep the others open
            log.warning("a plugin toolset did not close cleanly: %s", type(exc).__name__)


class _Redacting:
    """A toolset whose outputs, errors and log lines never carry its secrets."""

    def __init__(self, inner: Toolset, plugin_id: str, secrets: list[str]) -> None:
        self.inner = inner
        self.plugin_id = plugin_id
        self.secrets = _forms(secrets)

    async def functions(self, context: ToolContext) -> list[FunctionSpec]:
        return await self.inner.functions(context)

    async def call(self, function: str, args: JsonDict, context: ToolContext) -> ToolResult:
        secrets = self.secrets + _forms([_user_token(context.config)])
        try:
            result = await self.inner.call(function, args, context)
        except Exception as exc:
            trace = _scrub("".join(traceback.format_exception(exc)), secrets)
            log.error("the plugin '%s' failed in %s: %s", self.plugin_id, function, redact(trace))
            message = f"The plugin '{self.plugin_id}' failed ({type(exc).__name__})."
            error = {"error": {"code": "plugin_failed", "message": message}}
            return ToolResult(output=json.dumps(error))
        display = _scrub(result.display, secrets) if result.display is not None else None
        return replace(result, output=_scrub(result.output, secrets), display=display)

    async def close(self) -> None:
        await self.inner.close()


def _user_token(entry: JsonDict) -> str:
    """The per-call token of a tool entry `{"auth": {"type": "user_http", "user_token"}}`."""
    auth = entry.get("auth")
    token = auth.get("user_token") if isinstance(auth, dict) else None
    return token if isinstance(token, str) else ""


def _forms(secrets: Iterable[str]) -> list[str]:
    """Every form a secret may take on the wire, longest first."""
    forms: set[str] = set()
    for secret in secrets:
        forms |= {secret, quote(secret, safe=""), quote_plus(secret),
                  base64.b64encode(secret.encode()).decode()}  # fmt: skip
        if ":" in secret:  # basic: user:password; the password alone is secret too
            forms.add(secret.split(":", 1)[1])
    return sorted((f for f in forms if len(f) >= _MIN_SECRET), key=len, reverse=True)


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text
