"""Request bodies as the dashscope SDK sends them (spec section 4).

Types are checked here; limits and domain rules are checked in core. Unknown keys are
ignored, as the vendor's service ignored them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from assistd.core.objects import SamplingParams
from assistd.core.plugin_rules import AuthSpec
from assistd.core.plugins import PluginSpec
from assistd.core.run_service import RunSpec, ToolOutput
from assistd.core.service import AssistantPatch, AssistantSpec, MessageSpec
from assistd.errors import InvalidRequest


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class _Sampling(_Body):
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_tokens: int | None = None

    def sampling(self) -> SamplingParams:
        return SamplingParams(
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            max_tokens=self.max_tokens,
        )


class AssistantBody(_Sampling):
    model: str | None = None
    name: str | None = None
    description: str | None = None
    instructions: str | None = None
    tools: list[Any] | None = None
    file_ids: list[str] | None = None
    metadata: dict[str, Any] | None = None

    def spec(self) -> AssistantSpec:
        if self.model is None:
            raise InvalidRequest("'model' is required.", "model")
        return AssistantSpec(
            model=self.model,
            name=self.name,
            description=self.description,
            instructions=self.instructions,
            tools=self.tools,
            file_ids=self.file_ids,
            metadata=self.metadata,
            sampling=self.sampling(),
        )

    def patch(self) -> AssistantPatch:
        """The SDK sends `file_ids: []` and `metadata: null` on every update whether or not
        the caller meant them (spec section 13, item 9), so both mean "unchanged" here: a
        rename never drops files. Files are removed with the assistant files API, and
        `metadata: {}` clears metadata."""
        return AssistantPatch(
            model=self.model,
            name=self.name,
            description=self.description,
            instructions=self.instructions,
            tools=self.tools,
            file_ids=self.file_ids or None,
            metadata=self.metadata,
            sampling=self.sampling(),
        )


class AssistantFileBody(_Body):
    file_id: str


class MessageBody(_Body):
    content: Any = None
    role: str = "user"
    file_ids: list[str] | None = None
    metadata: dict[str, Any] | None = None

    def spec(self) -> MessageSpec:
        return MessageSpec(
            content=self.content, role=self.role, file_ids=self.file_ids, metadata=self.metadata
        )


class ThreadBody(_Body):
    messages: list[MessageBody] | None = None
    metadata: dict[str, Any] | None = None


class MetadataBody(_Body):
    """`Threads.update`, `Messages.update` and `Runs.update` send `{"metadata": obj|null}`;
    null means "unchanged"."""

    metadata: dict[str, Any] | None = None


class RunBody(_Sampling):
    assistant_id: str | None = None
    model: str | None = None
    instructions: str | None = None
    additional_instructions: str | None = None
    tools: list[Any] | None = None
    metadata: dict[str, Any] | None = None
    stream: bool = False

    def spec(self) -> RunSpec:
        if not self.assistant_id:
            raise InvalidRequest("'assistant_id' is required.", "assistant_id")
        return RunSpec(
            assistant_id=self.assistant_id,
            model=self.model,
            instructions=self.instructions,
            additional_instructions=self.additional_instructions,
            tools=self.tools,
            metadata=self.metadata,
            sampling=self.sampling(),
        )


class ThreadRunBody(RunBody):
    thread: ThreadBody | None = None


class ToolOutputBody(_Body):
    tool_call_id: str | None = None
    output: Any = None


class ToolOutputsBody(_Body):
    tool_outputs: list[ToolOutputBody]
    stream: bool = False

    def outputs(self) -> list[ToolOutput]:
        return [ToolOutput(output=o.output, tool_call_id=o.tool_call_id) for o in self.tool_outputs]


class PluginAuthBody(_Body):
    """How the plugin's calls authenticate (assistd extension)."""

    model_config = ConfigDict(extra="ignore", strict=True, populate_by_name=True)

    type: str | None = Field(default=None, description="none, service or user_http")
    in_: str | None = Field(default=None, alias="in", description="header or query")
    name: str | None = Field(default=None, description="the header or query parameter")
    scheme: str | None = Field(default=None, description="bearer, basic or raw")
    token: str | None = Field(default=None, description="the service credential; write-only")

    def spec(self) -> AuthSpec:
        return AuthSpec(
            type=self.type, placement=self.in_, name=self.name, scheme=self.scheme,
            token=self.token,
        )  # fmt: skip


class PluginBody(_Body):
    """A plugin to register or update (assistd extension): an OpenAPI 3 document, or an
    MCP server's streamable-HTTP endpoint (`kind: "mcp"`). On update, the fields sent
    replace the stored ones; the others stay."""

    plugin_id: str | None = None
    kind: str | None = Field(default=None, description="openapi (default) or mcp")
    description: str | None = None
    openapi: str | dict[str, Any] | None = Field(
        default=None, description="the OpenAPI 3 document: JSON or YAML text, or an object"
    )
    url: str | None = Field(
        default=None, description="mcp: the server's endpoint; openapi: the API's base URL"
    )
    auth: PluginAuthBody | None = None
    headers: dict[str, str] | None = Field(
        default=None, description="mcp: headers sent on every call; write-only values"
    )
    allowed_tools: list[str] | None = Field(
        default=None, description="mcp: the server's tools to offer (default: all)"
    )
    manifest: dict[str, Any] | None = Field(
        default=None,
        description="a legacy DashScope plugin's ai-plugin.json, with its document in "
        "`openapi`: it gives the id, description and auth type the body leaves out",
    )

    def spec(self) -> PluginSpec:
        return PluginSpec(
            plugin_id=self.plugin_id,
            kind=self.kind,
            description=self.description,
            openapi=self.openapi,
            url=self.url,
            auth=self.auth.spec() if self.auth is not None else None,
            headers=self.headers,
            allowed_tools=self.allowed_tools,
            manifest=self.manifest,
            given=frozenset(self.model_fields_set),
        )
