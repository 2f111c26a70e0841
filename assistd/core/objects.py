"""Domain objects: plain dataclasses shared by every surface and every store.

JSON-shaped fields (tools, content parts, metadata) are kept as plain dicts in the
neutral shape both wire protocols share; each surface's render.py picks what it shows.
Tool calls, step details and required actions are typed: only a renderer gives them a
wire shape, and only the store a JSON one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

JsonDict = dict[str, Any]
Metadata = dict[str, Any]
Order = Literal["asc", "desc"]


@dataclass(slots=True)
class Workspace:
    id: str
    name: str
    created_at: int
    limits: JsonDict | None = None  # its own quotas (core/quotas.py); None: the server's


@dataclass(slots=True)
class ApiKey:
    id: str
    workspace_id: str
    prefix: str
    admin: bool
    created_at: int
    revoked_at: int | None = None
    name: str = ""
    bootstrap: bool = False  # registered from ASSISTD_API_KEY
    limits: JsonDict | None = None  # its own quotas (core/quotas.py); None: the server's


@dataclass(slots=True)
class Principal:
    """Who is calling: the key, its own workspace, and the workspace this call acts in."""

    key_id: str
    key_workspace_id: str
    workspace_id: str
    admin: bool
    # True for admin keys of the `default` workspace: they act in every workspace.
    global_admin: bool
    key_limits: JsonDict | None = None  # the key's own quotas and the workspace's
    workspace_limits: JsonDict | None = None


@dataclass(slots=True)
class SamplingParams:
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_tokens: int | None = None


@dataclass(slots=True)
class Attachment:
    """A file given with a message, and the tools it is for (`code_interpreter`,
    `file_search`); a DashScope message's files have no tools named."""

    file_id: str
    tools: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Assistant:
    id: str
    created_at: int
    model: str
    name: str | None = None
    description: str | None = None
    instructions: str | None = None
    tools: list[JsonDict] = field(default_factory=list)
    file_ids: list[str] = field(default_factory=list)
    metadata: Metadata = field(default_factory=dict)
    sampling: SamplingParams = field(default_factory=SamplingParams)
    # How answers are to be formatted: None for the model's default ("auto"), else
    # {"type": "text" | "json_object"} or {"type": "json_schema", "json_schema": {...}}.
    response_format: JsonDict | None = None
    vector_store_ids: list[str] = field(default_factory=list)  # what file_search searches


@dataclass(slots=True)
class AssistantFile:
    id: str  # the file's id
    assistant_id: str
    created_at: int


@dataclass(slots=True)
class Thread:
    id: str
    created_at: int
    metadata: Metadata = field(default_factory=dict)
    file_ids: list[str] = field(default_factory=list)  # the code interpreter's, for its runs
    vector_store_ids: list[str] = field(default_factory=list)  # file_search's, for its runs


@dataclass(slots=True)
class Message:
    id: str
    thread_id: str
    created_at: int
    role: str
    content: list[JsonDict]
    file_ids: list[str] = field(default_factory=list)
    metadata: Metadata = field(default_factory=dict)
    assistant_id: str | None = None
    run_id: str | None = None
    status: str = "completed"
    completed_at: int | None = None
    # The files with the tools each is for; `file_ids` holds the same files.
    attachments: list[Attachment] = field(default_factory=list)


@dataclass(slots=True)
class MessageFile:
    id: str  # the file's id
    message_id: str
    created_at: int


@dataclass(slots=True)
class StoredFile:
    id: str
    created_at: int
    filename: str
    bytes: int
    purpose: str
    description: str | None = None
    md5: str = ""


@dataclass(slots=True)
class ToolChoice:
    """Which tools the model may call: `auto` (its choice), `none` (no tool at all),
    `required` (at least one), or `tool` (the one tool of type `tool_type`, and for a
    function the one called `name`)."""

    mode: Literal["auto", "none", "required", "tool"] = "auto"
    tool_type: str | None = None
    name: str | None = None


@dataclass(slots=True)
class RunOptions:
    """How a run's model turns are shaped, beyond sampling. Every default is "as the
    model does it unasked", so a run created without them behaves as before."""

    tool_choice: ToolChoice = field(default_factory=ToolChoice)
    # None: the model's own ("auto"); else {"type": "text" | "json_object"} or
    # {"type": "json_schema", "json_schema": {"name", "schema"?, "strict"?, ...}}.
    response_format: JsonDict | None = None
    parallel_tool_calls: bool = True
    max_prompt_tokens: int | None = None  # over the whole run; reached: it ends incomplete
    max_completion_tokens: int | None = None  # likewise
    last_messages: int | None = None  # only the thread's newest N messages; None: all that fit


@dataclass(slots=True)
class Run:
    id: str
    thread_id: str
    assistant_id: str
    created_at: int
    status: str
    model: str
    instructions: str | None = None
    tools: list[JsonDict] = field(default_factory=list)
    file_ids: list[str] = field(default_factory=list)
    metadata: Metadata = field(default_factory=dict)
    required_action: RequiredAction | None = None
    last_error: JsonDict | None = None
    started_at: int | None = None
    expires_at: int | None = None
    cancelled_at: int | None = None
    failed_at: int | None = None
    completed_at: int | None = None
    usage: JsonDict | None = None
    sampling: SamplingParams = field(default_factory=SamplingParams)
    options: RunOptions = field(default_factory=RunOptions)
    # Why a run ended `incomplete`: "max_completion_tokens" or "max_prompt_tokens".
    incomplete_reason: str | None = None
    leg: int = 1  # the times it was queued (internal: see store/schema.py); never rendered
    key_id: str | None = None  # the API key that created it (usage per key); never rendered


@dataclass(slots=True)
class ToolCall:
    """One call the model made: of a client function, a built-in tool or a plugin."""

    id: str
    type: str  # "function", the built-in's type as configured (alias kept), or a plugin id
    name: str  # the function name the model called
    arguments: str  # JSON text, as the model wrote it
    output: str | None = None  # what the model reads; None until the call is answered
    display: str | None = None  # what the step shows as its output, when that differs
    image_file_ids: list[str] = field(default_factory=list)  # images the call made
    file_ids: list[str] = field(default_factory=list)  # other files the call made
    # What the step shows of the call beyond its output (file_search: its ranking options
    # and results, with each result's text and citation marker), kept with the step.
    details: JsonDict | None = None


@dataclass(slots=True)
class ToolCallsDetails:
    tool_calls: list[ToolCall] = field(default_factory=list)
    type: Literal["tool_calls"] = "tool_calls"


@dataclass(slots=True)
class MessageCreationDetails:
    message_id: str
    type: Literal["message_creation"] = "message_creation"


StepDetails = ToolCallsDetails | MessageCreationDetails


@dataclass(slots=True)
class RequiredAction:
    """What a run in requires_action waits for: outputs of these function calls."""

    tool_calls: list[ToolCall]
    type: Literal["submit_tool_outputs"] = "submit_tool_outputs"


@dataclass(slots=True)
class RunStep:
    id: str
    run_id: str
    thread_id: str
    assistant_id: str
    created_at: int
    type: str
    status: str
    step_details: StepDetails
    last_error: JsonDict | None = None
    usage: JsonDict | None = None
    completed_at: int | None = None
    cancelled_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    metadata: Metadata = field(default_factory=dict)


@dataclass(slots=True)
class PluginAuth:
    """How a plugin's calls carry their credential. The credential itself is not here:
    it is stored encrypted (`Plugin.sealed`) and decrypted only to make a call."""

    # service: one stored token; user: the tool entry's token, per call
    type: Literal["none", "service", "user"] = "none"
    placement: Literal["header", "query"] = "header"
    name: str = "Authorization"  # the header or query parameter
    scheme: Literal["bearer", "basic", "raw"] = "bearer"


@dataclass(slots=True)
class Plugin:
    """A workspace's custom tool: an OpenAPI document's operations or an MCP server's
    tools, offered under the tool type `id`."""

    id: str
    kind: str  # openapi | mcp
    created_at: int
    updated_at: int  # grows with every change; toolsets built from it are rebuilt
    description: str = ""
    document: str | None = None  # the OpenAPI document as given (JSON or YAML text)
    url: str | None = None  # the MCP endpoint, or an OpenAPI plugin's base URL
    auth: PluginAuth = field(default_factory=PluginAuth)
    header_names: list[str] = field(default_factory=list)  # their values are secret
    allowed_tools: list[str] | None = None  # an MCP server's tools to offer; None: all
    # The encrypted JSON {"token": str | None, "headers": {name: value}}; None: no secret.
    sealed: str | None = None
    has_token: bool = False
    declared: bool = False  # from the operator's configuration, offered to every workspace


@dataclass(slots=True, frozen=True)
class PageRequest:
    limit: int = 20
    order: Order = "desc"
    after: str | None = None
    before: str | None = None


T = TypeVar("T")


@dataclass(slots=True)
class Page(Generic[T]):
    items: list[T]
    has_more: bool

    @property
    def first_id(self) -> str | None:
        return getattr(self.items[0], "id", None) if self.items else None

    @property
    def last_id(self) -> str | None:
        return getattr(self.items[-1], "id", None) if self.items else None


# Knowledge: vector stores (knowledge bases), the files in them, and what a search finds.


@dataclass(slots=True)
class VectorStore:
    id: str
    created_at: int
    name: str | None
    embedder: str  # the embedding model's name, recorded so every query uses the same one
    dimension: int
    max_chunk_tokens: int = 800
    chunk_overlap_tokens: int = 400
    metadata: Metadata = field(default_factory=dict)
    expires_after: JsonDict | None = None  # {"anchor": "last_active_at", "days": N}
    expires_at: int | None = None
    last_active_at: int | None = None


@dataclass(slots=True)
class VectorStoreFile:
    id: str  # the file's id: a file is in a vector store at most once
    vector_store_id: str
    created_at: int
    status: str = "in_progress"  # in_progress | completed | failed | cancelled
    last_error: JsonDict | None = None  # {"code": ..., "message": ...} when failed
    usage_bytes: int = 0
    chunk_count: int = 0
    attributes: Metadata = field(default_factory=dict)
    max_chunk_tokens: int = 800
    chunk_overlap_tokens: int = 400
    batch_id: str | None = None  # the file batch that added it


@dataclass(slots=True)
class FileBatch:
    """Files added to a vector store together; its counts are its files' statuses."""

    id: str
    vector_store_id: str
    created_at: int
    cancelled: bool = False
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def status(self) -> str:
        if self.cancelled:
            return "cancelled"
        return "in_progress" if self.counts.get("in_progress") else "completed"


@dataclass(slots=True)
class KnowledgeChunk:
    """One chunk of a file, as stored: its text, where it came from, and its vector."""

    file_id: str
    position: int
    text: str
    tokens: int
    page: int | None
    embedding: list[float]


@dataclass(slots=True)
class SearchHit:
    vector_store_id: str
    file_id: str
    filename: str
    position: int
    page: int | None
    text: str
    score: float  # in [0, 1], higher first; follows the final order
    attributes: Metadata = field(default_factory=dict)
