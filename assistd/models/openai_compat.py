"""Any OpenAI-compatible chat-completions endpoint, through the official SDK's async client.

One client per route, shared by every run on it (connection pooling, no per-run setup).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import openai

from assistd.models.base import (
    ModelChunk,
    ModelError,
    ModelRequest,
    TextDelta,
    ToolCallDelta,
    Usage,
)


class OpenAICompatBackend:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        timeout_s: float = 120.0,
        max_retries: int = 2,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        self.client = openai.AsyncOpenAI(
            base_url=base_url, api_key=api_key or "none", timeout=timeout_s, max_retries=max_retries
        )
        self.extra_body = extra_body or {}

    def _arguments(self, request: ModelRequest) -> dict[str, Any]:
        args: dict[str, Any] = {
            "model": request.model,
            "messages": request.messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.tools:
            args["tools"] = request.tools
        if request.response_schema is not None:
            args["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": "answer",
                    "schema": request.response_schema,
                    "strict": True,
                },
            }
        for name in ("temperature", "top_p", "max_tokens"):
            value = getattr(request, name)
            if value is not None:
                args[name] = value
        extra = dict(self.extra_body)
        if request.top_k is not None:
            extra["top_k"] = (
                request.top_k
            )  # not an OpenAI parameter; vLLM, llama.cpp and DashScope take it
        if extra:
            args["extra_body"] = extra
        return args

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelChunk]:
        try:
            response = await self.client.chat.completions.create(**self._arguments(request))
            async for chunk in response:
                for part in _chunks(chunk):
                    yield part
        except openai.APIStatusError as exc:
            raise ModelError(
                "model_error", f"The model endpoint answered {exc.status_code}: {exc.message}"
            ) from exc
        except openai.APITimeoutError as exc:
            raise ModelError("model_timeout", "The model endpoint did not answer in time.") from exc
        except openai.APIConnectionError as exc:
            raise ModelError(
                "model_unreachable", f"Could not reach the model endpoint: {exc}."
            ) from exc


def _chunks(chunk: Any) -> list[ModelChunk]:
    parts: list[ModelChunk] = []
    if chunk.usage is not None:
        parts.append(Usage(chunk.usage.prompt_tokens or 0, chunk.usage.completion_tokens or 0))
    for choice in chunk.choices or []:
        delta = choice.delta
        if delta is None:
            continue
        if delta.content:
            parts.append(TextDelta(delta.content))
        for call in delta.tool_calls or []:
            function = call.function
            parts.append(
                ToolCallDelta(
                    index=call.index,
                    id=call.id,
                    name=function.name if function else None,
                    arguments=(function.arguments or "") if function else "",
                )
            )
    return parts
