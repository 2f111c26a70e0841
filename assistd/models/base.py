"""The model backend contract: one method, `stream`.

Requests and chunks use the OpenAI chat-completions vocabulary, which every backend we
route to speaks (or, for the local model, is made to speak).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

JsonDict = dict[str, Any]


@dataclass(slots=True)
class ModelRequest:
    model: str  # the name the backend knows (the route's upstream model)
    messages: list[JsonDict]  # OpenAI chat messages: system/user/assistant/tool
    tools: list[JsonDict] = field(default_factory=list)  # OpenAI function tools
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_tokens: int | None = None
    # A JSON schema the answer must follow (decoded under a grammar where supported).
    response_schema: JsonDict | None = None


@dataclass(slots=True, frozen=True)
class TextDelta:
    text: str


@dataclass(slots=True, frozen=True)
class ToolCallDelta:
    """A fragment of the tool call at `index`; `id` and `name` come with the first one."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(slots=True, frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int


ModelChunk = TextDelta | ToolCallDelta | Usage


class ModelError(Exception):
    """The backend failed; `code` and `message` become the run's `last_error`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ModelBackend(Protocol):
    def stream(self, request: ModelRequest) -> AsyncIterator[ModelChunk]: ...
