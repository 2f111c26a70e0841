"""The tool contract: one method, `run(args, context)`.

A tool declares its name, a description and the JSON schema of its arguments; the
executor validates the model's arguments against that schema before calling `run`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

JsonDict = dict[str, Any]


class FileAccess(Protocol):
    """What a tool may do with assistd Files: read the run's inputs, save its outputs."""

    async def read(self, file_id: str) -> tuple[str, bytes] | None:
        """(filename, content) of a file of the run's workspace, or None."""
        ...

    async def save(self, filename: str, content: bytes) -> str:
        """Stores a new file in the run's workspace; returns its id."""
        ...


@dataclass(slots=True, frozen=True)
class ToolContext:
    workspace_id: str
    thread_id: str
    run_id: str
    files: FileAccess | None = None
    # Files attached to the assistant and the thread's messages, for tools that read them.
    input_file_ids: tuple[str, ...] = ()
    config: JsonDict = field(default_factory=dict)  # the tool's entry on the assistant or run


@dataclass(slots=True, frozen=True)
class ToolResult:
    output: str  # what the model reads next
    image_file_ids: tuple[str, ...] = ()  # images to show the user in the reply
    file_ids: tuple[str, ...] = ()  # other files to attach to the reply


class Tool(Protocol):
    name: str
    description: str
    parameters: JsonDict  # JSON schema of the arguments

    async def run(self, args: JsonDict, context: ToolContext) -> ToolResult: ...

    async def close(self) -> None:
        """Releases what the tool holds (kernels, clients) when the server stops."""
        ...
