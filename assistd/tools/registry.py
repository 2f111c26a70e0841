"""Which tools a run offers the model, and how a call of each is carried out.

`function` tools are the client's: the run stops in requires_action for them. Built-in
types are run by the server. A built-in type with no implementation on this server is
still offered, and its output tells the model it is not configured, so the run goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from assistd.tools.base import JsonDict, Tool, ToolContext, ToolResult

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
    def __init__(self, tools: dict[str, Tool] | None = None) -> None:
        self.tools = tools or {}

    def is_configured(self, kind: str) -> bool:
        return kind == "function" or kind in self.tools

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
        implementation = self.tools.get(kind)
        if implementation is not None:
            return implementation.description, implementation.parameters
        description, parameters = BUILTIN_SPECS.get(kind, ("A plugin tool.", _QUERY))
        return str(tool.get("description") or description), parameters

    async def run(self, offered: OfferedTool, args: Any, context: ToolContext) -> ToolResult:
        implementation = self.tools.get(offered.type)
        if implementation is None:
            return ToolResult(
                output=f"The tool '{offered.type}' is not configured on this server, "
                "so it could not run. Answer without it."
            )
        return await implementation.run(args if isinstance(args, dict) else {}, context)
