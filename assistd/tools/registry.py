"""Which tools a run offers the model, and how a call of each is carried out.

`function` tools are the client's: the run stops in requires_action for them. Built-in
types are run by the server. A built-in type with no implementation on this server is
still offered, and its output tells the model it is not configured, so the run goes on.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import jsonschema

from assistd.settings import Settings
from assistd.tools.base import JsonDict, Tool, ToolContext, ToolResult
from assistd.tools.http import OutboundClient
from assistd.tools.offload import ComputeFailed, ComputePool, ComputeTimeout

log = logging.getLogger("assistd.tools")
# Built-in tools register here exactly as a third-party package would, in its
# pyproject.toml: [project.entry-points."assistd.tools"] my_tool = "pkg.module:factory",
# where factory(settings) returns a Tool.
ENTRY_POINT_GROUP = "assistd.tools"

_QUERY = {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}
_PROMPT = {"type": "object", "properties": {"prompt": {"type": "string"}}, "required": ["prompt"]}

# Descriptions and argument schemas of the built-in types, as the model is shown them.
BUILTIN_SPECS: dict[str, tuple[str, JsonDict]] = {
    "code_interpreter": (
        "Runs Python code and returns its output.",
        {"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]},
    ),
    "quark_search": ("Searches the web.", _QUERY),
    "search": ("Searches the web.", _QUERY),
    "text_to_image": ("Draws an image from a text prompt.", _PROMPT),
    "wanx": ("Draws an image from a text prompt.", _PROMPT),
    "calculator": (
        "Evaluates an arithmetic expression.",
        {
            "type": "object",
            "properties": {"expression": {"type": "string"}},
            "required": ["expression"],
        },
    ),
    "generate_qrcode": (
        "Makes a QR code image of a text.",
        {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
    ),
    "github_search": ("Searches GitHub.", _QUERY),
    "rag": ("Searches the assistant's files.", _QUERY),
    "retrieval": ("Searches the assistant's files.", _QUERY),
    "file_search": ("Searches the assistant's files.", _QUERY),
}


@dataclass(slots=True, frozen=True)
class OfferedTool:
    name: str  # the function name the model calls
    type: str  # "function" or the built-in type (or plugin id)
    config: JsonDict


class ToolRegistry:
    """Tools by type, each imported and built on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._entry_points: dict[str, EntryPoint] = {
            ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)
        }
        self._loaded: dict[str, Tool | None] = {}
        # CPU-bound tool work runs here, off the event loop; no process starts until used.
        self.compute = ComputePool(
            settings.tool_workers, settings.tool_wall_s, settings.tool_memory_bytes
        )
        self.http = OutboundClient(settings.outbound)  # connects on first use

    def get(self, kind: str) -> Tool | None:
        if kind not in self._loaded:
            ep = self._entry_points.get(kind)
            tool: Tool | None = None
            if ep is not None:
                try:
                    tool = ep.load()(self.settings)
                except Exception:
                    log.exception("the tool plugin '%s' (%s) could not be loaded", kind, ep.value)
            self._loaded[kind] = tool
        return self._loaded[kind]

    async def load(self, kinds: Iterable[str]) -> None:
        """Imports the tools of `kinds` off the event loop (a plugin's import can be slow)."""
        for kind in set(kinds) - set(self._loaded):
            await asyncio.to_thread(self.get, kind)

    def is_configured(self, kind: str) -> bool:
        return kind == "function" or self.get(kind) is not None

    def offer(
        self, run_tools: list[JsonDict], withheld: frozenset[str] = frozenset()
    ) -> tuple[list[JsonDict], dict[str, OfferedTool]]:
        """The run's tools as OpenAI function definitions, and what each name stands for.
        Types in `withheld` are left out (built-ins already found unconfigured this run)."""
        definitions: list[JsonDict] = []
        offered: dict[str, OfferedTool] = {}
        for tool in run_tools:
            kind = str(tool.get("type"))
            if kind in withheld:
                continue
            if kind == "function":
                function = dict(tool["function"])
                name = str(function["name"])
            else:
                description, parameters = self._spec(kind, tool)
                name = kind
                function = {"name": kind, "description": description, "parameters": parameters}
            if name in offered:
                continue
            offered[name] = OfferedTool(name=name, type=kind, config=tool)
            definitions.append({"type": "function", "function": function})
        return definitions, offered

    def _spec(self, kind: str, tool: JsonDict) -> tuple[str, JsonDict]:
        implementation = self.get(kind)
        if implementation is not None:
            return implementation.description, implementation.parameters
        description, parameters = BUILTIN_SPECS.get(kind, ("A plugin tool.", _QUERY))
        return str(tool.get("description") or description), parameters

    async def run(self, offered: OfferedTool, arguments: str, context: ToolContext) -> ToolResult:
        implementation = self.get(offered.type)
        if implementation is None:
            return ToolResult(
                output=f"The tool '{offered.type}' is not configured on this server, "
                "so it could not run. Answer without it."
            )
        args, problem = parse_arguments(arguments, implementation.parameters)
        if problem is not None:
            return ToolResult(output=problem)
        try:
            return await implementation.run(
                args, replace(context, compute=self.compute, http=self.http)
            )
        except ComputeTimeout as exc:
            return ToolResult(
                output=f"Error: the tool '{offered.type}' was stopped: {exc}. "
                "Try something simpler, or answer without it."
            )
        except (ComputeFailed, MemoryError):
            log.warning("the tool '%s' ran out of memory or its worker died", offered.type)
            return ToolResult(
                output=f"Error: the tool '{offered.type}' was stopped: its computation needed "
                "too much memory or failed. Try something simpler, or answer without it."
            )
        except Exception as exc:
            log.exception("the tool '%s' failed", offered.type)
            return ToolResult(output=f"The tool '{offered.type}' failed: {type(exc).__name__}.")

    async def close(self) -> None:
        for tool in self._loaded.values():
            if tool is not None:
                await tool.close()
        await self.compute.close()
        await self.http.close()


def parse_arguments(arguments: str, schema: JsonDict | None) -> tuple[JsonDict, str | None]:
    """The model's arguments as an object, or a message the model can correct itself from."""
    try:
        args = json.loads(arguments or "{}")
    except json.JSONDecodeError as exc:
        return (
            {},
            f"Invalid arguments: not valid JSON ({exc}). Call the tool again with a JSON object.",
        )
    if not isinstance(args, dict):
        return {}, "Invalid arguments: they must be a JSON object. Call the tool again."
    validator = _validator(json.dumps(schema, sort_keys=True)) if schema else None
    if validator is not None:
        error = jsonschema.exceptions.best_match(validator.iter_errors(args))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "arguments"
            return args, (
                f"Invalid arguments at '{where}': {error.message}. "
                f"Call the tool again with arguments matching: {json.dumps(schema)}"
            )
    return args, None


@functools.lru_cache(maxsize=512)
def _validator(schema_json: str) -> Any:
    """The validator of a schema, built once: `jsonschema.validate` checks the schema
    against its metaschema on every call, which costs milliseconds a tool call. None
    for a broken schema (a tool's own bug: let its calls through rather than block them)."""
    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError:
        return None
    return cls(schema)
