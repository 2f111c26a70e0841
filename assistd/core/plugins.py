"""Use-cases of the plugin registry: register, list, get, update and delete a workspace's
plugins, and read one back for the tool source that builds its toolset.

Credentials are sealed (encrypted) before they are stored and are never handed back:
a plugin read through this service says only whether it has a token, and shows each
header's value as a mask. Plugins the operator declares in the configuration belong to
every workspace and can be read here, not changed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, NoReturn

from assistd.core import plugin_rules as rules
from assistd.core.ids import now_ms
from assistd.core.objects import Page, PageRequest, Plugin, PluginAuth
from assistd.errors import Forbidden, InvalidRequest, NotFound, echo
from assistd.secrets import SecretBox
from assistd.settings import PluginSettings, Settings
from assistd.store.base import Store
from assistd.tools.plugins.credentials import Credentials, seal, unseal
from assistd.tools.plugins.openapi import parse_ai_plugin


@dataclass(slots=True)
class PluginSpec:
    plugin_id: Any = None
    kind: Any = None
    description: Any = None
    openapi: Any = None  # the document's JSON or YAML text, or a parsed object
    url: Any = None
    auth: rules.AuthSpec | None = None
    headers: Any = None
    allowed_tools: Any = None
    # A legacy DashScope plugin's ai-plugin.json, read with `openapi` at registration: it
    # gives the id, description and auth type that the request leaves out.
    manifest: Any = None
    # The fields the request set, null included: on update, the others stay as they are.
    given: frozenset[str] = field(default_factory=frozenset)


EVERY_FIELD = ("description", "openapi", "url", "auth", "headers", "allowed_tools")


@dataclass(slots=True)
class _Checked:
    """The fields of a spec that can be checked before the stored plugin is read."""

    description: str | None
    document: str | None
    url: str | None
    allowed_tools: list[str] | None


def declared_plugin(plugin_id: str, declared: PluginSettings) -> Plugin:
    """A plugin of the configuration as the API shows it (no paths, no secrets)."""
    auth = declared.auth
    return Plugin(
        id=plugin_id,
        kind=declared.kind,
        created_at=0,
        updated_at=0,
        description=declared.description,
        url=declared.url,
        auth=PluginAuth(auth.type, auth.placement, auth.name, auth.effective_scheme),
        header_names=list(declared.headers),
        allowed_tools=declared.allowed_tools,
        has_token=auth.key() is not None,
        declared=True,
    )


class PluginService:
    def __init__(self, store: Store, settings: Settings, box: SecretBox) -> None:
        self.store = store
        self.settings = settings
        self.box = box
        # Told (workspace, plugin id) after a plugin changes or goes, so the toolsets
        # built from it are closed now rather than at their next use.
        self.changed: Callable[[str, str], Awaitable[None]] | None = None

    # ---- the API's use-cases ------------------------------------------------------------

    async def register(self, ws: str, spec: PluginSpec) -> Plugin:
        if spec.manifest is not None:
            spec = await asyncio.to_thread(_with_manifest, spec)
        plugin_id = rules.check_plugin_id(spec.plugin_id, self.settings.plugins)
        kind = rules.check_kind(spec.kind, spec.openapi, spec.url)
        now = now_ms()
        plugin = Plugin(id=plugin_id, kind=kind, created_at=now, updated_at=now)
        spec = replace(spec, given=frozenset(EVERY_FIELD))  # a new plugin: all of them
        checked = await self._check(plugin, spec)
        plugin = self._merged(plugin, checked, spec, Credentials())
        async with self.store.workspace(ws, write=True) as unit:
            await unit.plugins.insert(plugin)
        return plugin

    async def list(self, ws: str, page: PageRequest) -> Page[Plugin]:
        async with self.store.workspace(ws) as unit:
            return await unit.plugins.page(page)

    async def get(self, ws: str, plugin_id: str) -> Plugin:
        async with self.store.workspace(ws) as unit:
            found = await unit.plugins.get(plugin_id)
        if found is not None:
            return found
        declared = self.settings.plugins.get(plugin_id)
        if declared is not None:
            return declared_plugin(plugin_id, declared)
        raise NotFound.of("plugin", plugin_id)

    async def update(self, ws: str, plugin_id: str, spec: PluginSpec) -> Plugin:
        if spec.plugin_id is not None and spec.plugin_id != plugin_id:
            raise InvalidRequest(
                f"'plugin_id' is '{echo(spec.plugin_id)}', but the URL names '{echo(plugin_id)}'; "
                "a plugin's id cannot change.",
                "plugin_id",
            )
        if spec.manifest is not None:
            raise InvalidRequest(
                "'manifest' is read when a plugin is registered; update its fields instead.",
                "manifest",
            )
        async with self.store.workspace(ws) as unit:
            stored = await unit.plugins.get(plugin_id) or self._missing(plugin_id)
        if spec.kind is not None and spec.kind != stored.kind:
            raise InvalidRequest(
                f"'kind' cannot change from '{stored.kind}'; delete the plugin and register "
                "it again.",
                "kind",
            )
        checked = await self._check(stored, spec)
        async with self.store.workspace(ws, write=True) as unit:
            current = await unit.plugins.get(plugin_id) or self._missing(plugin_id)
            updated = self._merged(current, checked, spec, self._previous(current))
            updated.updated_at = max(now_ms(), current.updated_at + 1)
            await unit.plugins.replace(updated)
        await self._tell(ws, plugin_id)
        return updated

    async def delete(self, ws: str, plugin_id: str) -> None:
        async with self.store.workspace(ws, write=True) as unit:
            if not await unit.plugins.delete(plugin_id):
                self._missing(plugin_id)
        await self._tell(ws, plugin_id)

    async def _tell(self, ws: str, plugin_id: str) -> None:
        if self.changed is not None:
            await self.changed(ws, plugin_id)

    def _missing(self, plugin_id: str) -> NoReturn:
        if plugin_id in self.settings.plugins:
            raise Forbidden(
                f"The plugin '{echo(plugin_id)}' is declared in this server's configuration; "
                "only its operator can change or remove it."
            )
        raise NotFound.of("plugin", plugin_id)

    # ---- for the tool source ------------------------------------------------------------

    async def revision(self, ws: str, plugin_id: str) -> int | None:
        async with self.store.workspace(ws) as unit:
            return await unit.plugins.revision(plugin_id)

    async def stored(self, ws: str, plugin_id: str) -> tuple[Plugin, Credentials] | None:
        """The plugin with its unsealed credentials, to build its toolset."""
        async with self.store.workspace(ws) as unit:
            found = await unit.plugins.get(plugin_id)
        return (found, unseal(self.box, found.sealed)) if found is not None else None

    # ---- checks -------------------------------------------------------------------------

    async def _check(self, plugin: Plugin, spec: PluginSpec) -> _Checked:
        """The fields `spec` sets, checked against `plugin` (as stored, or new)."""
        given = spec.given
        if "url" in given and spec.url is None and plugin.kind == "mcp":
            raise InvalidRequest("'url' is required: the MCP server's endpoint.", "url")
        url = plugin.url if "url" not in given else spec.url
        if "url" in given and url is not None:
            url = rules.check_url(url, "url")
        document = None
        if plugin.kind == "openapi":
            _refuse(spec, "headers", "allowed_tools")
            if "openapi" in given and spec.openapi is None:
                raise InvalidRequest(
                    "'openapi' is required: the plugin's OpenAPI 3 document.", "openapi"
                )
            if "openapi" in given or "url" in given:  # the document must resolve against url
                text = spec.openapi if "openapi" in given else plugin.document
                # Parsing a large document is CPU work: off the event loop.
                document = await asyncio.to_thread(rules.check_document, text, url)
        else:
            _refuse(spec, "openapi", "auth")
        return _Checked(
            description=rules.check_description(spec.description) if "description" in given
            else None,
            document=document,
            url=url,
            allowed_tools=rules.check_allowed_tools(spec.allowed_tools),
        )  # fmt: skip

    def _previous(self, plugin: Plugin) -> Credentials:
        try:
            return unseal(self.box, plugin.sealed)
        except ValueError:  # sealed under another secret_key: the caller must give them again
            return Credentials()

    def _merged(
        self, plugin: Plugin, checked: _Checked, spec: PluginSpec, previous: Credentials
    ) -> Plugin:
        given = spec.given
        auth, token = rules.check_auth(spec.auth, (plugin.auth, previous.token))
        headers = (
            rules.check_headers(spec.headers, previous.headers)
            if "headers" in given
            else previous.headers
        )
        credentials = Credentials(token=token, headers=headers)
        return replace(
            plugin,
            description=plugin.description if checked.description is None
            else checked.description,
            document=checked.document if checked.document is not None else plugin.document,
            url=checked.url if "url" in given else plugin.url,
            auth=auth,
            header_names=list(headers),
            allowed_tools=checked.allowed_tools if "allowed_tools" in given
            else plugin.allowed_tools,
            sealed=seal(self.box, credentials),
            has_token=token is not None,
        )  # fmt: skip


def _refuse(spec: PluginSpec, *names: str) -> None:
    """Fields the plugin's kind does not take, when the request gives them."""
    for name in names:
        if getattr(spec, name) is not None:
            kind = "an MCP" if name in ("openapi", "auth") else "an OpenAPI"
            hint = {
                "auth": " Send its credential in 'headers' (e.g. Authorization).",
                "headers": " Give its credential in 'auth'.",
            }.get(name, "")
            raise InvalidRequest(f"'{name}' does not apply to {kind} plugin.{hint}", name)


def _with_manifest(spec: PluginSpec) -> PluginSpec:
    """`spec` with what its ai-plugin.json manifest gives where the request gave nothing."""
    if not isinstance(spec.manifest, dict):
        raise InvalidRequest("'manifest' must be the ai-plugin.json object.", "manifest")
    if spec.openapi is None:
        raise InvalidRequest("'openapi' is required with 'manifest': its OpenAPI document.",
                             "openapi")  # fmt: skip
    base_url = spec.url if isinstance(spec.url, str) else None
    text = rules.check_document(spec.openapi, base_url)
    try:
        read = parse_ai_plugin(spec.manifest, text, base_url=base_url)
    except ValueError as exc:
        raise InvalidRequest(f"'manifest': {exc}", "manifest") from None
    auth = spec.auth or rules.AuthSpec()
    if auth.type is None and read.auth.type != "none":
        auth = replace(auth, type=read.auth.type, scheme=auth.scheme or read.auth.scheme)
    return replace(
        spec,
        plugin_id=spec.plugin_id or read.plugin_id,
        description=spec.description if spec.description is not None else read.description,
        openapi=text,
        auth=auth,
    )
