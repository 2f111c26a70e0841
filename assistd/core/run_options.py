"""Rules for a run's options (tool choice, token caps, truncation), shared by both
surfaces; and what they mean for one model turn. Each failure names its field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from assistd.core.objects import JsonDict, Run, RunOptions, ToolChoice
from assistd.errors import InvalidRequest, echo
from assistd.tools.registry import OfferedTool

TOKENS_MIN = 256  # OpenAI's floor for max_prompt_tokens and max_completion_tokens
TOKENS_MAX = 10_000_000
LAST_MESSAGES_MAX = 1_000_000


def check_run_options(options: RunOptions) -> RunOptions:
    for name in ("max_prompt_tokens", "max_completion_tokens"):
        value = getattr(options, name)
        if value is not None and not TOKENS_MIN <= value <= TOKENS_MAX:
            raise InvalidRequest(
                f"'{name}' must be between {TOKENS_MIN} and {TOKENS_MAX}, not {value}.", name
            )
    last = options.last_messages
    if last is not None and not 1 <= last <= LAST_MESSAGES_MAX:
        raise InvalidRequest(
            f"'truncation_strategy.last_messages' must be between 1 and {LAST_MESSAGES_MAX}, "
            f"not {last}.",
            "truncation_strategy",
        )
    return options


def check_tool_choice(choice: ToolChoice, tools: list[JsonDict]) -> None:
    """A run may require only a tool it has."""
    if choice.mode == "required" and not tools:
        raise InvalidRequest(
            "'tool_choice' is 'required', but the run has no tools.", "tool_choice"
        )
    if choice.mode != "tool":
        return
    for tool in tools:
        if tool.get("type") != choice.tool_type:
            continue
        if choice.tool_type != "function" or _function_name(tool) == choice.name:
            return
    named = f"the function '{echo(choice.name or '')}'" if choice.name else f"'{choice.tool_type}'"
    raise InvalidRequest(
        f"'tool_choice' names {named}, which is not one of the run's tools.", "tool_choice"
    )


def _function_name(tool: Mapping[str, Any]) -> str | None:
    function = tool.get("function")
    return function.get("name") if isinstance(function, Mapping) else None


def model_tool_choice(choice: ToolChoice, names: dict[str, str]) -> str | JsonDict | None:
    """The tool choice in the chat-completions vocabulary every model backend takes, over
    the functions offered this turn (`names`: function name -> tool type). A named
    built-in is forced through the function it is offered as; one not offered (it
    cannot run here) forces nothing. None: the model's own."""
    if choice.mode == "auto":
        return None
    if choice.mode in ("none", "required"):
        return choice.mode
    for name, kind in names.items():
        if kind == choice.tool_type and (choice.name is None or name == choice.name):
            return {"type": "function", "function": {"name": name}}
    return None


def chat_response_format(value: JsonDict | None) -> JsonDict | None:
    """The run's response format as chat completions take it (None: plain text)."""
    if value is None or value.get("type") == "text":
        return None
    if value.get("type") == "json_object":
        return {"type": "json_object"}
    return {"type": "json_schema", "json_schema": dict(value.get("json_schema") or {})}


def turn_shape(run: Run, offered: Mapping[str, OfferedTool], forced: bool) -> dict[str, Any]:
    """The model request's tool choice, parallel calls and response format for one turn.
    The tool choice binds only `forced` turns, and only when tools are offered."""
    choice = (
        model_tool_choice(run.options.tool_choice, {n: t.type for n, t in offered.items()})
        if forced and offered
        else None
    )
    return {
        "tool_choice": choice,
        "parallel_tool_calls": None if run.options.parallel_tool_calls else False,
        "response_format": chat_response_format(run.options.response_format),
    }


def turn_max_tokens(run: Run, default: int | None) -> int | None:
    """A turn's cap: the model's (or the run's sampling) one, within what the run has left."""
    budget = completion_budget(run)
    if budget is None:
        return default
    return min(default, budget) if default else budget


def turn_window(run: Run, window: int, reserve: int) -> int:
    """The context window a turn may fill: the model's, within the run's prompt budget."""
    budget = prompt_budget(run)
    return window if budget is None else min(window, budget + reserve)


def cap_reached(run: Run) -> str | None:
    """Which of the run's token caps leaves it no room for another turn, if any."""
    if completion_budget(run) == 0:
        return "max_completion_tokens"
    if prompt_budget(run) == 0:
        return "max_prompt_tokens"
    return None


def capped_turn(run: Run) -> bool:
    """Whether a reply cut off for its length was cut by the run's own cap."""
    return run.options.max_completion_tokens is not None


def completion_budget(run: Run) -> int | None:
    """The completion tokens the run may still spend (None: no cap)."""
    cap = run.options.max_completion_tokens
    if cap is None:
        return None
    return max(cap - int((run.usage or {}).get("completion_tokens", 0)), 0)


def prompt_budget(run: Run) -> int | None:
    """The prompt tokens the run may still spend (None: no cap)."""
    cap = run.options.max_prompt_tokens
    if cap is None:
        return None
    return max(cap - int((run.usage or {}).get("prompt_tokens", 0)), 0)
