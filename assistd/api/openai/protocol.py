"""Request bodies as the openai SDK sends them (spec section 6).

Types are checked here; limits and domain rules in core. Unknown keys are ignored, and
null means "not given" everywhere, nested fields included (the SDK sends `None` as null).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from assistd.core.objects import Attachment, SamplingParams
from assistd.core.service import AssistantPatch, AssistantSpec, MessageSpec
from assistd.errors import InvalidRequest


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

    def vector_store_ids(self, where: str = "") -> list[str] | None:
        search = self.file_search
        if search is not None and search.vector_stores:
            raise InvalidRequest(
                f"'{where}tool_resources.file_search.vector_stores': this server cannot "
                "create vector stores yet.",
                f"{where}tool_resources.file_search.vector_stores",
            )
        return search.vector_store_ids if search else None


def _resources(given: ToolResources | None) -> ToolResources:
    return given if given is not None else ToolResources()


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
        resources = _resources(self.tool_resources)
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
        )

    def patch(self) -> AssistantPatch:
        resources = _resources(self.tool_resources)
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
            vector_store_ids=resources.vector_store_ids(),
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
