"""Request bodies as the openai SDK sends them (spec section 6).

Types are checked here; limits and domain rules in core. Unknown keys are ignored, and
null means "not given" everywhere, nested fields included (the SDK sends `None` as null).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from assistd.core.objects import Attachment, RunOptions, SamplingParams, ToolChoice
from assistd.core.run_service import RunSpec, ToolOutput
from assistd.core.search_stores import StoresSpec
from assistd.core.service import AssistantPatch, AssistantSpec, MessageSpec
from assistd.errors import InvalidRequest, echo


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class CodeInterpreterResources(_Body):
    file_ids: list[str] | None = None


class FileSearchResources(_Body):
    vector_store_ids: list[str] | None = None
    vector_stores: list[Any] | None = None  # stores to create inline


class ToolResources(_Body):
    """`{"code_interpreter": {"file_ids"}, "file_search": {"vector_store_ids"}}`."""

    code_interpreter: CodeInterpreterResources | None = None
    file_search: FileSearchResources | None = None

    def file_ids(self) -> list[str] | None:
        """The code interpreter's files; None when not given (unchanged on update)."""
        return self.code_interpreter.file_ids if self.code_interpreter else None

    def vector_store_ids(self) -> list[str] | None:
        return self.file_search.vector_store_ids if self.file_search else None

    def stores(self, update: bool = False) -> StoresSpec:
        """file_search's stores: named, or (on create only) to be made."""
        search = self.file_search
        if update and search is not None and search.vector_stores is not None:
            raise InvalidRequest(
                "'tool_resources.file_search.vector_stores' is only accepted on create; "
                "name the stores with 'vector_store_ids'.",
                "tool_resources.file_search.vector_stores",
            )
        return StoresSpec(self.vector_store_ids(), search.vector_stores if search else None)


class AssistantBody(_Body):
    model: str | None = None
    name: str | None = None
    description: str | None = None
    instructions: str | None = None
    tools: list[Any] | None = None
    tool_resources: ToolResources | None = None
    metadata: dict[str, Any] | None = None
    temperature: float | None = None
    top_p: float | None = None
    response_format: str | dict[str, Any] | None = None

    def sampling(self) -> SamplingParams:
        return SamplingParams(temperature=self.temperature, top_p=self.top_p)

    def spec(self) -> AssistantSpec:
        if self.model is None:
            raise InvalidRequest("'model' is required.", "model")
        resources = self.tool_resources or ToolResources()
        return AssistantSpec(
            model=self.model,
            name=self.name,
            description=self.description,
            instructions=self.instructions,
            tools=self.tools,
            file_ids=resources.file_ids(),
            metadata=self.metadata,
            sampling=self.sampling(),
            response_format=self.response_format,
            vector_store_ids=resources.vector_store_ids(),
            vector_stores=resources.stores().inline,
        )

    def patch(self) -> AssistantPatch:
        resources = self.tool_resources or ToolResources()
        return AssistantPatch(
            model=self.model,
            name=self.name,
            description=self.description,
            instructions=self.instructions,
            tools=self.tools,
            file_ids=resources.file_ids(),
            metadata=self.metadata,
            sampling=self.sampling(),
            response_format=self.response_format,
            vector_store_ids=resources.stores(update=True).ids,
        )


class AttachmentTool(_Body):
    type: str


class AttachmentBody(_Body):
    file_id: str
    tools: list[AttachmentTool] | None = None

    def attachment(self) -> Attachment:
        return Attachment(self.file_id, [t.type for t in self.tools or []])


class MessageBody(_Body):
    role: str | None = None
    content: Any = None
    attachments: list[AttachmentBody] | None = None
    metadata: dict[str, Any] | None = None

    def spec(self) -> MessageSpec:
        attachments = [a.attachment() for a in self.attachments or []]
        return MessageSpec(
            content=self.content,
            role=self.role or "user",
            metadata=self.metadata,
            attachments=attachments,
            images=True,
        )


class ThreadBody(_Body):
    messages: list[MessageBody] | None = None
    tool_resources: ToolResources | None = None
    metadata: dict[str, Any] | None = None

    def message_specs(self) -> list[MessageSpec]:
        return [m.spec() for m in self.messages or []]


class ThreadModifyBody(_Body):
    tool_resources: ToolResources | None = None
    metadata: dict[str, Any] | None = None


class MetadataBody(_Body):
    """Modifying a message (or a run): `{"metadata": obj|null}`; null leaves it."""

    metadata: dict[str, Any] | None = None


# ---- runs (spec sections 6.4-6.6) ----------------------------------------------------

TOOL_CHOICE_MODES = ("none", "auto", "required")


class FunctionNameBody(_Body):
    name: str | None = None


class ToolChoiceBody(_Body):
    type: str
    function: FunctionNameBody | None = None


class TruncationBody(_Body):
    type: str | None = None
    last_messages: int | None = None


def _tool_choice(given: str | ToolChoiceBody | None) -> ToolChoice:
    if given is None or given == "auto":
        return ToolChoice()
    if isinstance(given, str):
        if given not in TOOL_CHOICE_MODES:
            raise InvalidRequest(
                "'tool_choice' must be 'none', 'auto', 'required' or an object naming a "
                f"tool, not '{echo(given)}'.",
                "tool_choice",
            )
        return ToolChoice(mode=given)  # type: ignore[arg-type]
    if given.type != "function":
        return ToolChoice(mode="tool", tool_type=given.type)
    name = given.function.name if given.function else None
    if not name:
        raise InvalidRequest("'tool_choice.function.name' is required.", "tool_choice")
    return ToolChoice(mode="tool", tool_type="function", name=name)


def _last_messages(given: TruncationBody | None) -> int | None:
    kind = given.type if given is not None else None
    if given is None or kind in (None, "auto"):
        return None
    if kind != "last_messages":
        raise InvalidRequest(
            f"'truncation_strategy.type' must be 'auto' or 'last_messages', not '{echo(kind)}'.",
            "truncation_strategy",
        )
    if given.last_messages is None:
        raise InvalidRequest(
            "'truncation_strategy.last_messages' is required with type 'last_messages'.",
            "truncation_strategy",
        )
    return given.last_messages


class RunBody(_Body):
    assistant_id: str | None = None
    model: str | None = None
    instructions: str | None = None
    additional_instructions: str | None = None
    additional_messages: list[MessageBody] | None = None
    tools: list[Any] | None = None
    metadata: dict[str, Any] | None = None
    temperature: float | None = None
    top_p: float | None = None
    reasoning_effort: str | None = None  # accepted; models here have no such knob
    response_format: str | dict[str, Any] | None = None
    tool_choice: str | ToolChoiceBody | None = None
    parallel_tool_calls: bool | None = None
    max_prompt_tokens: int | None = None
    max_completion_tokens: int | None = None
    truncation_strategy: TruncationBody | None = None
    stream: bool | None = None

    def options(self) -> RunOptions:
        return RunOptions(
            tool_choice=_tool_choice(self.tool_choice),
            parallel_tool_calls=self.parallel_tool_calls is not False,
            max_prompt_tokens=self.max_prompt_tokens,
            max_completion_tokens=self.max_completion_tokens,
            last_messages=_last_messages(self.truncation_strategy),
        )

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
            sampling=SamplingParams(temperature=self.temperature, top_p=self.top_p),
            options=self.options(),
            response_format=self.response_format,
            additional_messages=[m.spec() for m in self.additional_messages or []],
        )


class ThreadRunBody(RunBody):
    """`POST /threads/runs`: the run's fields (no `additional_*`), the new thread, and
    run-level `tool_resources`, whose code-interpreter files join the thread's."""

    thread: ThreadBody | None = None
    tool_resources: ToolResources | None = None

    def thread_file_ids(self) -> list[str] | None:
        own = self.thread.tool_resources if self.thread else None
        files = [*((own.file_ids() if own else None) or [])]
        files += (self.tool_resources.file_ids() if self.tool_resources else None) or []
        return list(dict.fromkeys(files)) or None


class ToolOutputBody(_Body):
    tool_call_id: str | None = None
    output: Any = None


class ToolOutputsBody(_Body):
    tool_outputs: list[ToolOutputBody] | None = None
    stream: bool | None = None

    def outputs(self) -> list[ToolOutput]:
        if self.tool_outputs is None:
            raise InvalidRequest("'tool_outputs' is required.", "tool_outputs")
        return [ToolOutput(output=o.output, tool_call_id=o.tool_call_id) for o in self.tool_outputs]
