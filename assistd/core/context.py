"""What the model is shown for a run: instructions, the thread, and the run's own steps,
cut to fit the model's context window (oldest thread turns dropped first, never the
instructions, never the run's own tool turns)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from assistd.core.objects import (
    JsonDict,
    Message,
    MessageCreationDetails,
    PageRequest,
    Run,
    RunStep,
    ToolCall,
    ToolCallsDetails,
)
from assistd.core.rag import is_rag_step
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


def _step_turns(steps: list[RunStep], outputs_of: dict[str, Message]) -> list[JsonDict]:
    turns: list[JsonDict] = []
    for step in steps:
        details = step.step_details
        if isinstance(details, MessageCreationDetails) and step.status == "completed":
            message = outputs_of.get(details.message_id)
            if message is not None:
                turns.append({"role": "assistant", "content": message_text(message)})
        elif isinstance(details, ToolCallsDetails) and not is_rag_step(step):
            # a `rag` search is in the instructions, not a call the model made
            turns.extend(_tool_turns(details.tool_calls))
    return turns


def _tool_turns(calls: list[ToolCall]) -> list[JsonDict]:
    """A round of answered calls as the model's chat format has it (not a wire shape of
    ours: what every model backend takes)."""
    answered = [c for c in calls if c.output is not None]
    if not answered:
        return []
    requests = [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for c in answered
    ]
    turns: list[JsonDict] = [{"role": "assistant", "content": None, "tool_calls": requests}]
    turns.extend({"role": "tool", "tool_call_id": c.id, "content": c.output} for c in answered)
    return turns


async def _thread_history(
    unit: WorkspaceUnit, run: Run, budget: int, last_messages: int | None = None
) -> tuple[list[JsonDict], bool]:
    """The newest thread messages that fit in `budget` tokens (and, given, the newest
    `last_messages` of them), oldest first, and whether older ones were left out. The
    newest message is always kept."""
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
            if kept and (used > budget or len(kept) == last_messages):
                kept.reverse()
                return kept, True
            kept.append({"role": message.role, "content": text})
        if not page.has_more:
            kept.reverse()
            return kept, False
        cursor = page.last_id


def unavailable_note(kinds: list[str]) -> str:
    """The line that tells the model which of the tools it was given cannot run here."""
    return (
        f"These tools requested for this conversation are unavailable on this server: "
        f"{', '.join(kinds)}. If the user asks for them, say that they are not available here."
    )


def _instructions(run: Run, unavailable: list[str], given: str | None) -> str | None:
    instructions = given if given is not None else run.instructions
    lines = [instructions] if instructions else []
    if unavailable:
        lines.append(unavailable_note(unavailable))
    return "\n\n".join(lines) or None


async def build_context(
    unit: WorkspaceUnit,
    run: Run,
    context_window: int,
    reserve_for_output: int,
    unavailable: list[str] | None = None,
    last_messages: int | None = None,
    steps: list[RunStep] | None = None,
    instructions: str | None = None,
) -> ModelContext:
    """`unavailable`: tool types the run asks for that this server cannot run;
    `last_messages`: at most this many of the thread's newest messages; `steps`: the
    run's steps, when the caller has just read them; `instructions`: the run's own, as
    its `rag` tool filled them in (None: the run's as they are)."""
    if steps is None:
        steps = await unit.steps.all_of(run.id)
    created = [
        s.step_details.message_id
        for s in steps
        if isinstance(s.step_details, MessageCreationDetails)
    ]
    run_turns = _step_turns(steps, await unit.messages.get_many(created))
    system_text = _instructions(run, unavailable or [], instructions)
    system = [{"role": "system", "content": system_text}] if system_text else []
    fixed = sum(estimate_tokens(json.dumps(m, ensure_ascii=False)) for m in system + run_turns)
    budget = max(context_window - reserve_for_output - fixed, 0)
    history, truncated = await _thread_history(unit, run, budget, last_messages)
    return ModelContext(messages=system + history + run_turns, truncated=truncated)
