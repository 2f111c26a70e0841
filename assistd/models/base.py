"""The model backend contract: one method, `stream`.

Requests and chunks use the OpenAI chat-completions vocabulary, which every backend we
route to speaks (or, for the local model, is made to speak).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from assistd.logs import redact

JsonDict = dict[str, Any]
MAX_DETAIL_CHARS = 2000  # of an upstream's answer kept for the log


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
    # Chat-completions `tool_choice` ("none", "required", {"type": "function", ...});
    # None: the model's own choice.
    tool_choice: str | JsonDict | None = None
    parallel_tool_calls: bool | None = None  # None: the model's default
    # Chat-completions `response_format` ({"type": "json_object"} or a json_schema one)
    # the client asked for; `response_schema` (the server's own) wins over it.
    response_format: JsonDict | None = None
    # Asked again after a blank answer: a backend that can keep the reply from ending
    # before its first token does so (the local model); the others are simply asked again.
    nonempty: bool = False


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


@dataclass(slots=True, frozen=True)
class Finish:
    """Why the reply ended: "stop", "tool_calls", "length" (the token cap), ..."""

    reason: str


ModelChunk = TextDelta | ToolCallDelta | Usage | Finish


class ModelError(Exception):
    """The backend failed; `code` and `message` become the run's `last_error`.

    The tenant sees only `message`, in our words. What the upstream said (its URL, its
    answer) goes in `detail`, for the operator's log only, credentials redacted; the
    message then ends with `error_id`, which the log line carries too.
    """

    def __init__(self, code: str, message: str, detail: str = "") -> None:
        self.code = code
        self.error_id = f"err_{secrets.token_hex(8)}" if detail else ""
        self.detail = redact(detail[:MAX_DETAIL_CHARS])
        self.message = f"{message} (error id {self.error_id})." if detail else message
        super().__init__(self.message)


# Takes a piece of the reply's text at once and says so; False leaves it in the stream.
TextTaker = Callable[[str], bool]


class ModelBackend(Protocol):
    def stream(
        self, request: ModelRequest, take_text: TextTaker | None = None
    ) -> AsyncIterator[ModelChunk]:
        """The reply's chunks, in order. A backend may hand a text chunk to `take_text`
        as it arrives instead, when nothing is queued ahead of it (models.reply_feed);
        one it takes is not in the stream. A backend may also never call it."""
        ...


def chunks_of(data: Any) -> list[ModelChunk]:
    """One OpenAI streaming chunk, as parsed JSON, -> model chunks."""
    if not isinstance(data, dict):
        return []
    if "error" in data:
        error = data["error"]
        message = error.get("message") if isinstance(error, dict) else None
        raise ModelError(
            "model_error",
            "The model reported an error during its reply",
            f"error in the reply stream: {message or error}",
        )
    parts: list[ModelChunk] = []
    usage = data.get("usage")
    if usage:
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        parts.append(Usage(int(prompt or 0), int(completion or 0)))
    for choice in data.get("choices") or []:
        delta = choice.get("delta") or {}
        if delta.get("content"):
            parts.append(TextDelta(delta["content"]))
        for call in delta.get("tool_calls") or []:
            function = call.get("function") or {}
            parts.append(
                ToolCallDelta(
                    call.get("index") or 0,
                    call.get("id"),
                    function.get("name"),
                    function.get("arguments") or "",
                )
            )
        if choice.get("finish_reason"):
            parts.append(Finish(str(choice["finish_reason"])))
    return parts
