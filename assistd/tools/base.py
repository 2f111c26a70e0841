"""The tool contract: one method, `run(args, context)`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

JsonDict = dict[str, Any]


@dataclass(slots=True, frozen=True)
class ToolContext:
    workspace_id: str
    thread_id: str
    run_id: str
    config: JsonDict = field(default_factory=dict)  # the tool's entry on the assistant or run


@dataclass(slots=True, frozen=True)
class ToolResult:
    output: str  # what the model reads next


class Tool(Protocol):
    name: str
    description: str
    parameters: JsonDict  # JSON schema of the arguments

    async def run(self, args: JsonDict, context: ToolContext) -> ToolResult: ...
