"""What the model is shown for a run: instructions, the thread, and the run's own steps,
cut to fit the model's context window (oldest thread turns dropped first, never the
instructions, never the run's own tool turns)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from assistd.core.objects import JsonDict, Message, PageRequest, Run, RunStep
from assistd.store.base import WorkspaceUnit

# A rough count: about 3 characters a token for mixed text, plus per-message framing.
# It errs on the side of sending less, which is the safe side of a context window.
CHARS_PER_TOKEN = 3
MESSAGE_OVERHEAD = 4
_PAGE = 100


def estimate_tokens(text: str) -> int:
    return len(text) // CHARS_PER_TOKEN + MESSAGE_OVERHEAD


def message_text(message: Message) -> str:
    return "".join(part["text"]["value"] for part in message.content if part.get("type") == "text")


@dataclass(slots=True)
class ModelContext:
    messages: list[JsonDict]
    truncated: bool  # older thread messages were left out to fit the window


def tool_call_name_and_arguments(call: JsonDict) -> tuple[str, str]:
    kind = str(call.get("type"))
    if kind == "function":
        return str(call["function"]["name"]), str(call["function"].get("arguments") or "{}")
    details = call.get(kind) or {}
    return kind, str(details.get("input") or "{}")


def tool_call_output(call: JsonDict) -> str | None:
    kind = str(call.get("type"))
    details = call.get("function") if kind == "function" else call.get(kind)
    output = (details or {}).get("output")
    return None if output is None else str(output)


def _step_turns(steps: list[RunStep], outputs_of: dict[str, Message]) -> list[JsonDict]:
    turns: list[JsonDict] = []
    for step in steps:
        if step.type == "message_creation" and step.status == "completed":
            message = outputs_of.get(step.step_details["message_creation"]["message_id"])
            if message is not None:
                turns.append({"role": "assistant", "content": message_text(message)})
        elif step.type == "tool_calls":
            turns.extend(_tool_turns(step.step_details.get("tool_calls") or []))
    return turns


def _tool_turns(calls: list[JsonDict]) -> list[JsonDict]:
    answered = [c for c in calls if tool_call_output(c) is not None]
    if not answered:
        return []
    requests = []
    for call in answered:
        name, arguments = tool_call_name_and_arguments(call)
        requests.append(
            {
                "id": call["id"],
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }
        )
    turns: list[JsonDict] = [{"role": "assistant", "content": None, "tool_calls": requests}]
    for call in answered:
        turns.append(
            {"role": "tool", "tool_call_id": call["id"], "content": tool_call_output(call)}
        )
    return turns


async def _thread_history(
    unit: WorkspaceUnit, run: Run, budget: int
) -> tuple[list[JsonDict], bool]:
    """The newest thread messages that fit in `budget` tokens, oldest first, and whether
    older ones were left out. The newest message is always kept."""
    kept: list[JsonDict] = []
    used = 0
    cursor: str | None = None
    while True:
        page = await unit.messages.page(
            run.thread_id, PageRequest(limit=_PAGE, order="desc", after=cursor)
        )
        for message in page.items:
            if message.run_id == run.id:
                continue
            text = message_text(message)
            used += estimate_tokens(text)
            if kept and used > budget:
                kept.reverse()
                return kept, True
            kept.append({"role": message.role, "content": text})
        if not page.has_more:
            kept.reverse()
            return kept, False
        cursor = page.last_id


async def build_context(
    unit: WorkspaceUnit, run: Run, context_window: int, reserve_for_output: int
) -> ModelContext:
    steps = await unit.steps.all_of(run.id)
    created = [
        s.step_details["message_creation"]["message_id"]
        for s in steps
        if s.type == "message_creation"
    ]
    run_turns = _step_turns(steps, await unit.messages.get_many(created))
    system = [{"role": "system", "content": run.instructions}] if run.instructions else []
    fixed = sum(estimate_tokens(json.dumps(m, ensure_ascii=False)) for m in system + run_turns)
    budget = max(context_window - reserve_for_output - fixed, 0)
    history, truncated = await _thread_history(unit, run, budget)
    return ModelContext(messages=system + history + run_turns, truncated=truncated)
