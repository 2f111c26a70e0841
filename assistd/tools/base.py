"""The tool contract.

A `Tool` offers one function: it declares its name, a description and the JSON schema of
its arguments, and implements `run(args, context)`. A `Toolset` (a plugin, an MCP server)
offers several functions, listed per call context, and implements `call(name, args,
context)`. Either way the registry validates the model's arguments against the
function's schema first, and stops a call that overruns its time: the registry's
`tool_call_timeout_s`, or the tool's own `timeout_s` attribute when it declares a longer one.

Built-ins register by entry point (group `assistd.tools`): `factory(settings)` returns a
Tool or a Toolset, or None when this server's configuration does not provide it (the type
is still accepted on assistants; it is not offered to the model). Per-workspace plugins
come from a `PluginSource`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar

if TYPE_CHECKING:
    from assistd.tools.http import OutboundClient

JsonDict = dict[str, Any]
P = ParamSpec("P")
T = TypeVar("T")


class FileAccess(Protocol):
    """What a tool may do with assistd Files: read the run's inputs, save its outputs."""

    async def read(self, file_id: str) -> tuple[str, bytes] | None:
        """(filename, content) of a file of the run's workspace, or None."""
        ...

    async def save(self, filename: str, content: bytes) -> str:
        """Stores a new file in the run's workspace; returns its id."""
        ...

    def link(self, file_id: str) -> str:
        """An absolute, signed, expiring URL that downloads the file without an API key."""
        ...


class Compute(Protocol):
    """Where a tool runs CPU-bound work: in another process, under a wall-time limit, so
    the server's event loop never waits for it (assistd.tools.offload.ComputePool)."""

    async def call(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """function(*args, **kwargs); `function` must be importable by its module and name."""
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
    compute: Compute | None = None  # set by the tool registry for every call
    http: OutboundClient | None = None  # the guarded outbound client, set likewise
    call_id: str = ""  # the call being run (set by the tool round for each call)

    def require_compute(self) -> Compute:
        if self.compute is None:
            raise RuntimeError("this tool needs the registry's compute pool")
        return self.compute

    def require_http(self) -> OutboundClient:
        if self.http is None:
            raise RuntimeError("this tool needs the registry's outbound client")
        return self.http


# How a reply names a file the code interpreter wrote: its path in the sandbox's working
# directory, as OpenAI's code interpreter names them (the reply's text gets a
# `file_path` annotation for each).
SANDBOX_FILES_URL = "sandbox:/mnt/data/"


@dataclass(slots=True, frozen=True)
class ToolResult:
    output: str  # what the model reads next
    # What the step's `output` shows when it differs from what the model reads (a search's
    # results as a JSON array, where the model gets a numbered list).
    display: str | None = None
    image_file_ids: tuple[str, ...] = ()  # images to show the user in the reply
    file_ids: tuple[str, ...] = ()  # other files to attach to the reply
    # What the step shows of the call beyond its output (file_search's results), kept
    # with the step so that a run taken over or read later shows them too.
    details: JsonDict | None = None


class Tool(Protocol):
    name: str
    description: str
    parameters: JsonDict  # JSON schema of the arguments

    async def run(self, args: JsonDict, context: ToolContext) -> ToolResult: ...

    async def close(self) -> None:
        """Releases what the tool holds (kernels, clients) when the server stops."""
        ...


@dataclass(slots=True, frozen=True)
class FunctionSpec:
    """One function a toolset offers the model."""

    name: str  # unique within the toolset; [A-Za-z0-9_-], at most 64 characters
    description: str
    parameters: JsonDict  # JSON schema of the arguments


class Toolset(Protocol):
    """A tool that offers several functions: a plugin's operations, an MCP server's tools."""

    async def functions(self, context: ToolContext) -> list[FunctionSpec]: ...

    async def call(self, function: str, args: JsonDict, context: ToolContext) -> ToolResult: ...

    async def close(self) -> None: ...


class PluginSource(Protocol):
    """Where the tool registry finds the toolset of a type that is not a built-in: the
    workspace's registered plugins (OpenAPI, MCP) and those the operator declares."""

    async def toolset(self, workspace_id: str, plugin_id: str, entry: JsonDict) -> Toolset | None:
        """The toolset of `plugin_id` in the workspace, with the tool entry of the
        assistant or run (`entry`, which may carry a per-call `auth`); None if unknown."""
        ...
