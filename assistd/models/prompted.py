"""Tool calling for models without native tool calls.

The tools are described in the system prompt and the answer is decoded under a JSON
schema that allows exactly one of: a message, or a call of one of the given tools with
arguments valid for that tool's schema. The answer is turned back into ordinary chunks:
message text streams as it is decoded, a tool call arrives as one ToolCallDelta.

A turn that offers no tools (the last one of a run whose tool rounds are spent) is sent
as plain conversation: the earlier calls and their results become sentences, which a
small model can answer from; tool-role messages with no tools in sight it cannot read.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from assistd.models.base import (
    Finish,
    JsonDict,
    ModelBackend,
    ModelChunk,
    ModelRequest,
    TextDelta,
    TextTaker,
    ToolCallDelta,
    Usage,
)

_CONTENT_START = re.compile(r'"content"\s*:\s*"')


def answer_schema(tools: list[JsonDict]) -> JsonDict:
    choices: list[JsonDict] = [
        {
            "type": "object",
            "properties": {"type": {"const": "message"}, "content": {"type": "string"}},
            "required": ["type", "content"],
            "additionalProperties": False,
        }
    ]
    for tool in tools:
        function = tool["function"]
        parameters = function.get("parameters") or {"type": "object", "properties": {}}
        choices.append(
            {
                "type": "object",
                "properties": {
                    "type": {"const": "tool_call"},
                    "name": {"const": function["name"]},
                    "arguments": parameters,
                },
                "required": ["type", "name", "arguments"],
                "additionalProperties": False,
            }
        )
    return {"anyOf": choices}


def tools_prompt(tools: list[JsonDict]) -> str:
    lines = [
        "You can call tools. Answer with one JSON object, either",
        '{"type": "message", "content": "<your reply to the user>"} or',
        '{"type": "tool_call", "name": "<tool name>", "arguments": {<arguments>}}.',
        "Call a tool when it helps; after its result arrives, reply with a message.",
        "Tools:",
    ]
    for tool in tools:
        f = tool["function"]
        params = json.dumps(f.get("parameters") or {}, ensure_ascii=False)
        lines.append(f"- {f['name']}: {f.get('description') or ''} Arguments schema: {params}")
    return "\n".join(lines)


def _flatten_history(messages: list[JsonDict]) -> list[JsonDict]:
    """Native tool turns become plain text turns the model can read."""
    flat: list[JsonDict] = []
    for message in messages:
        if message["role"] == "assistant" and message.get("tool_calls"):
            for call in message["tool_calls"]:
                arguments = call["function"].get("arguments") or "{}"
                name = json.dumps(call["function"]["name"])
                text = f'{{"type": "tool_call", "name": {name}, "arguments": {arguments}}}'
                flat.append({"role": "assistant", "content": text})
        elif message["role"] == "tool":
            flat.append({"role": "user", "content": f"Tool result: {message.get('content', '')}"})
        else:
            flat.append(message)
    return flat


def _append(messages: list[JsonDict], role: str, text: str) -> None:
    """Adds a turn, joined to the one before if that has the same role."""
    if messages and messages[-1]["role"] == role:
        messages[-1] = {"role": role, "content": f"{messages[-1]['content']}\n{text}"}
    else:
        messages.append({"role": role, "content": text})


def _call_key(function: JsonDict) -> tuple[str, str]:
    arguments = str(function.get("arguments") or "{}")
    with contextlib.suppress(json.JSONDecodeError):
        arguments = json.dumps(json.loads(arguments), sort_keys=True)
    return str(function.get("name")), arguments


def plain_history(messages: list[JsonDict]) -> list[JsonDict]:
    """Tool turns as plain talk: the assistant says what it called, the user says what
    came back. A call made again with the same arguments is told once."""
    plain: list[JsonDict] = []
    names: dict[str, str] = {}  # tool_call_id -> the tool's name, for calls told
    seen: set[tuple[str, str]] = set()
    for message in messages:
        if message["role"] == "assistant" and message.get("tool_calls"):
            lines = [str(message["content"])] if message.get("content") else []
            for call in message["tool_calls"]:
                key = _call_key(call["function"])
                if key in seen:
                    continue
                seen.add(key)
                names[call["id"]] = key[0]
                arguments = call["function"].get("arguments") or "{}"
                lines.append(f"I called the tool {key[0]} with {arguments}.")
            if lines:
                _append(plain, "assistant", " ".join(lines))
        elif message["role"] == "tool":
            name = names.get(str(message.get("tool_call_id")))
            if name is not None:
                _append(plain, "user", f"The tool {name} returned: {message.get('content', '')}")
        else:
            plain.append(message)
    return plain


def _has_tool_turns(messages: list[JsonDict]) -> bool:
    return any(m["role"] == "tool" or m.get("tool_calls") for m in messages)


def prompted_request(request: ModelRequest) -> ModelRequest:
    messages = _flatten_history(request.messages)
    guide = tools_prompt(request.tools)
    if messages and messages[0]["role"] == "system":
        messages[0] = {"role": "system", "content": f"{messages[0]['content']}\n\n{guide}"}
    else:
        messages.insert(0, {"role": "system", "content": guide})
    return ModelRequest(
        model=request.model,
        messages=messages,
        temperature=request.temperature,
        top_p=request.top_p,
        top_k=request.top_k,
        max_tokens=request.max_tokens,
        response_schema=answer_schema(request.tools),
    )


class _ContentStreamer:
    """Pulls the value of `"content": "..."` out of a JSON text as it grows."""

    def __init__(self) -> None:
        self.buffer = ""
        self.emitted = 0  # characters of the decoded content already handed out
        self.done = False

    def feed(self, text: str) -> str:
        self.buffer += text
        if self.done:
            return ""
        match = _CONTENT_START.search(self.buffer)
        if match is None:
            return ""
        raw = self.buffer[match.end() :]
        safe = _complete_prefix(raw)
        self.done = len(safe) < len(raw) and raw[len(safe)] == '"'
        decoded: str = json.loads(f'"{safe}"')
        new = decoded[self.emitted :]
        self.emitted = len(decoded)
        return new


def _complete_prefix(raw: str) -> str:
    """The longest prefix of a JSON string body that holds no partial escape and no
    closing quote."""
    i = 0
    while i < len(raw):
        char = raw[i]
        if char == '"':
            return raw[:i]
        if char == "\\":
            width = 6 if raw[i + 1 : i + 2] == "u" else 2
            if i + width > len(raw):
                return raw[:i]
            i += width
            continue
        i += 1
    return raw


class PromptedToolCalls:
    """Wraps a backend so that tools work through schema-constrained decoding."""

    def __init__(self, inner: ModelBackend) -> None:
        self.inner = inner

    async def stream(
        self, request: ModelRequest, take_text: TextTaker | None = None
    ) -> AsyncIterator[ModelChunk]:
        """Every chunk in the stream: what the inner backend says passes through this
        first (`take_text` is not used)."""
        if not request.tools:
            if _has_tool_turns(request.messages):
                request = replace(request, messages=plain_history(request.messages))
            async for chunk in self.inner.stream(request):
                yield chunk
            return
        streamer = _ContentStreamer()
        async for chunk in self.inner.stream(prompted_request(request)):
            if isinstance(chunk, TextDelta):
                text = streamer.feed(chunk.text)
                if text:
                    yield TextDelta(text)
            elif isinstance(chunk, (Usage, Finish)):
                yield chunk
        call = _tool_call(streamer.buffer)
        if call is not None:
            yield call


def _tool_call(answer: str) -> ToolCallDelta | None:
    try:
        parsed: Any = json.loads(answer)
    except json.JSONDecodeError:
        return None
    if not isinstance(parsed, dict) or parsed.get("type") != "tool_call":
        return None
    return ToolCallDelta(
        index=0,
        id=f"call_{secrets.token_hex(12)}",
        name=str(parsed.get("name", "")),
        arguments=json.dumps(parsed.get("arguments") or {}, ensure_ascii=False),
    )
