"""Which tools a run offers the model, and how a call of each is carried out.

`function` tools are the client's: the run stops in requires_action for them. Built-in
types are run by the server; each is an entry point, the one place a built-in is added.
A built-in this server's configuration does not provide, or a plugin the workspace does
not have, is not offered: the run's instructions name it unavailable instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cache
from importlib.metadata import EntryPoint, entry_points

from assistd.settings import Settings
from assistd.tools.arguments import parse_arguments
from assistd.tools.base import (
    FunctionSpec,
    JsonDict,
    PluginSource,
    Tool,
    ToolContext,
    ToolResult,
    Toolset,
)
from assistd.tools.http import OutboundClient
from assistd.tools.offload import ComputeFailed, ComputePool, ComputeTimeout

log = logging.getLogger("assistd.tools")
# Built-in tools register here exactly as a third-party package would, in its
# pyproject.toml: [project.entry-points."assistd.tools"] my_tool = "pkg.module:factory",
# where factory(settings) returns a Tool or a Toolset, or None when not configured.
ENTRY_POINT_GROUP = "assistd.tools"


@cache
def _builtin_entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def known_types(plugin_ids: Iterable[str] = ()) -> frozenset[str]:
    """Every tool type an assistant or a run may name: `function`, each built-in (whether
    this server's configuration provides it or not) and the given plugin ids."""
    return frozenset({"function", *_builtin_entry_points(), *plugin_ids})


@dataclass(slots=True, frozen=True)
class OfferedTool:
    name: str  # the function name the model calls
    type: str  # "function", the built-in type as configured (alias kept), or the plugin id
    config: JsonDict  # the tool's entry on the assistant or run
    function: str = ""  # the toolset's name of the function ("" for client functions)
    parameters: JsonDict | None = None  # the schema the model's arguments must match
    toolset: Toolset | None = None  # what runs the call; None for client functions


@dataclass(slots=True)
class Offer:
    definitions: list[JsonDict] = field(default_factory=list)  # for the model request
    tools: dict[str, OfferedTool] = field(default_factory=dict)  # by function name
    unavailable: list[str] = field(default_factory=list)  # asked-for types not runnable here


class _OneFunction:
    """A Tool seen as a toolset of one function, offered under the type it was asked by."""

    def __init__(self, kind: str, tool: Tool) -> None:
        self.kind, self.tool = kind, tool
        self.timeout_s: float | None = getattr(tool, "timeout_s", None)

    async def functions(self, context: ToolContext) -> list[FunctionSpec]:
        return [FunctionSpec(self.kind, self.tool.description, self.tool.parameters)]

    async def call(self, function_name: str, args: JsonDict, context: ToolContext) -> ToolResult:
        return await self.tool.run(args, context)

    async def close(self) -> None:
        await self.tool.close()


def _as_toolset(kind: str, made: Tool | Toolset | None) -> Toolset | None:
    if made is None or hasattr(made, "functions"):
        return made  # type: ignore[return-value]
    return _OneFunction(kind, made)


class ToolRegistry:
    """Built-in tools by type, each imported and built on first use; plugins through
    `plugin_source`, which the plugin registry sets."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._entry_points = _builtin_entry_points()
        self._loaded: dict[str, Toolset | None] = {}
        self.plugin_source: PluginSource | None = None
        # CPU-bound tool work runs here, off the event loop; no process starts until used.
        self.compute = ComputePool(
            settings.tool_workers, settings.tool_wall_s, settings.tool_memory_bytes
        )
        self.http = OutboundClient(settings.outbound)  # connects on first use

    def provide(self, kind: str, toolset: Toolset) -> None:
        """Makes `toolset` the built-in of `kind`: for a built-in that needs the server's
        own services (file_search searches the store), which a factory given settings
        alone cannot build. The entry point still declares the type."""
        self._loaded[kind] = toolset

    def get(self, kind: str) -> Toolset | None:
        """The built-in of `kind`, or None if there is none or it is not configured."""
        if kind not in self._loaded:
            ep = self._entry_points.get(kind)
            toolset: Toolset | None = None
            if ep is not None:
                try:
                    toolset = _as_toolset(kind, ep.load()(self.settings))
                except Exception:
                    log.exception("the tool plugin '%s' (%s) could not be loaded", kind, ep.value)
            self._loaded[kind] = toolset
        return self._loaded[kind]

    async def load(self, kinds: Iterable[str]) -> None:
        """Imports the built-ins of `kinds` off the event loop (an import can be slow)."""
        for kind in set(kinds) & set(self._entry_points) - set(self._loaded):
            await asyncio.to_thread(self.get, kind)

    async def offer(self, run_tools: list[JsonDict], context: ToolContext) -> Offer:
        """The run's tools as OpenAI function definitions, what each name stands for, and
        the types asked for that cannot run here."""
        offer = Offer()
        for entry in run_tools:
            kind = str(entry.get("type"))
            if kind == "function":
                function = dict(entry["function"])
                tool = OfferedTool(
                    str(function["name"]), kind, entry, parameters=function.get("parameters")
                )
                _add(offer, tool, function)
                continue
            specs = await self._functions(kind, entry, context)
            if specs is None:
                if kind not in offer.unavailable:
                    offer.unavailable.append(kind)
                continue
            toolset, functions = specs
            for spec in functions:
                tool = OfferedTool(spec.name, kind, entry, spec.name, spec.parameters, toolset)
                definition = {
                    "name": spec.name,
                    "description": spec.description,
                    "parameters": spec.parameters,
                }
                _add(offer, tool, definition)
        return offer

    async def _functions(
        self, kind: str, entry: JsonDict, context: ToolContext
    ) -> tuple[Toolset, list[FunctionSpec]] | None:
        toolset = await self._toolset(kind, entry, context)
        if toolset is None:
            return None
        try:
            return toolset, await toolset.functions(self._call_context(context, entry))
        except Exception:
            log.exception("the tool '%s' could not list its functions", kind)
            return None

    async def _toolset(self, kind: str, entry: JsonDict, context: ToolContext) -> Toolset | None:
        if kind in self._entry_points:
            return self.get(kind)
        if self.plugin_source is None:
            return None
        try:
            return await self.plugin_source.toolset(context.workspace_id, kind, entry)
        except Exception:
            log.exception("the plugin '%s' could not be loaded", kind)
            return None

    def _call_context(self, context: ToolContext, entry: JsonDict) -> ToolContext:
        """What a tool is given: the run's context, its own entry, the shared clients."""
        return replace(context, config=entry, compute=self.compute, http=self.http)

    def timeout_s(self, toolset: Toolset) -> float:
        """A call's time limit: the server's, or the tool's own when that is longer."""
        own = getattr(toolset, "timeout_s", None) or 0.0
        return max(float(self.settings.tool_call_timeout_s), float(own))

    async def run(self, offered: OfferedTool, arguments: str, context: ToolContext) -> ToolResult:
        """Runs a call of a server-run tool. Whatever goes wrong becomes an output the
        model can act on; only cancellation (of the run) propagates."""
        if offered.toolset is None:
            return ToolResult(output=f"The tool '{offered.name}' cannot be run by the server.")
        args, problem = parse_arguments(arguments, offered.parameters)
        if problem is not None:
            return ToolResult(output=problem)
        limit = self.timeout_s(offered.toolset)
        context = self._call_context(context, offered.config)
        try:
            async with asyncio.timeout(limit) as deadline:
                return await offered.toolset.call(offered.function, args, context)
        except TimeoutError:
            if not deadline.expired():
                return _failed(offered, TimeoutError())
            log.warning("the tool '%s' did not answer within %g s", offered.name, limit)
            return ToolResult(
                output=f"Error: the tool '{offered.name}' did not answer within {limit:g} s, "
                "so the call was stopped. Try again with a simpler request, or answer without it."
            )
        except Exception as exc:
            return _failed(offered, exc)

    async def close(self) -> None:
        for toolset in self._loaded.values():
            if toolset is not None:
                await toolset.close()
        await self.compute.close()
        await self.http.close()


def _add(offer: Offer, tool: OfferedTool, definition: JsonDict) -> None:
    if tool.name in offer.tools:
        return  # the first tool of a name wins
    offer.tools[tool.name] = tool
    offer.definitions.append({"type": "function", "function": definition})


def _failed(offered: OfferedTool, exc: Exception) -> ToolResult:
    kind = offered.type
    if isinstance(exc, ComputeTimeout):
        return ToolResult(
            output=f"Error: the tool '{kind}' was stopped: {exc}. "
            "Try something simpler, or answer without it."
        )
    if isinstance(exc, ComputeFailed | MemoryError):
        log.warning("the tool '%s' ran out of memory or its worker died", kind)
        return ToolResult(
            output=f"Error: the tool '{kind}' was stopped: its computation needed "
            "too much memory or failed. Try something simpler, or answer without it."
        )
    log.error("the tool '%s' failed", kind, exc_info=exc)
    return ToolResult(output=f"The tool '{kind}' failed: {type(exc).__name__}.")
