"""Function tools from plain typed Python functions.

`function_tool(fn)` builds the `{"type": "function", "function": {...}}` definition an
assistant or a run takes: the name is the function's, the description is the first
paragraph of its docstring, and the JSON schema of the parameters comes from the
signature (per-parameter descriptions from a Google-style `Args:` section).
`call_function(fn, arguments)` is the other half of the loop: it runs `fn` with the
arguments a `requires_action` run asks for and gives back the output to submit.

Supported annotations: str, int, float, bool, list / list[X], dict / dict[str, X],
Literal[...], Enum subclasses, and `X | None` / Optional[X]. A parameter with a default
is not required.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import inspect
import json
import re
import types
import typing
from collections.abc import Callable
from typing import Any

JsonDict = dict[str, Any]

_SCALARS: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ARGS_HEADER = re.compile(r"^(\s*)(Args|Arguments|Parameters):\s*$")
_ARG_LINE = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


def function_tool(fn: Callable[..., Any]) -> JsonDict:
    """The function tool definition of `fn`; TypeError if `fn` cannot be described."""
    name = getattr(fn, "__name__", "")
    if not _NAME.match(name):
        raise TypeError(f"function_tool: {name!r} is not a valid tool name")
    doc = inspect.getdoc(fn) or ""
    description = _first_paragraph(doc)
    if not description:
        raise TypeError(f"function_tool: {name}() has no docstring to describe it")
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": _parameters(fn, _arg_docs(doc)),
        },
    }


def call_function(fn: Callable[..., Any], arguments: str | None) -> str:
    """Calls `fn` with the JSON `arguments` of a tool call; its result as text.

    An async `fn` is run to completion with asyncio.run; from inside an event loop use
    `acall_function`. Bad arguments raise ValueError (not JSON, not an object) or
    TypeError (missing or unknown names), for the caller to report back to the model.
    """
    kwargs = _kwargs(fn, arguments)
    if inspect.iscoroutinefunction(fn) and _loop_running():
        raise RuntimeError("call_function: inside an event loop, await acall_function")
    result = fn(**kwargs)
    if inspect.isawaitable(result):
        result = asyncio.run(_awaited(result))
    return as_text(result)


async def acall_function(fn: Callable[..., Any], arguments: str | None) -> str:
    """`call_function` for async callers: awaits `fn` when it is a coroutine function."""
    result = fn(**_kwargs(fn, arguments))
    if inspect.isawaitable(result):
        result = await result
    return as_text(result)


def as_text(value: Any) -> str:
    """A tool output: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=_json_default)


# ---- schema ---------------------------------------------------------------------------


def _parameters(fn: Callable[..., Any], docs: dict[str, str]) -> JsonDict:
    signature = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn)
    except (NameError, TypeError) as exc:
        msg = f"function_tool: cannot resolve the annotations of {fn.__name__}(): {exc}"
        raise TypeError(msg) from exc
    properties: JsonDict = {}
    required: list[str] = []
    for param in signature.parameters.values():
        where = f"parameter '{param.name}' of {fn.__name__}()"
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            raise TypeError(f"function_tool: {where} cannot be passed by name from JSON")
        if param.name not in hints:
            raise TypeError(f"function_tool: {where} has no type annotation")
        schema = _schema(hints[param.name], where)
        if param.name in docs:
            schema["description"] = docs[param.name]
        if param.default is param.empty:
            required.append(param.name)
        elif _is_json(default := _plain(param.default)):
            schema["default"] = default
        properties[param.name] = schema
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _schema(annotation: Any, where: str) -> JsonDict:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation in _SCALARS:
        return {"type": _SCALARS[annotation]}
    if annotation is list or origin is list:
        items = {"items": _schema(args[0], where)} if args else {}
        return {"type": "array", **items}
    if annotation is dict or origin is dict:
        if args and args[0] is not str:
            raise TypeError(f"function_tool: {where}: JSON object keys are strings, not {args[0]}")
        return {
            "type": "object",
            **({"additionalProperties": _schema(args[1], where)} if args else {}),
        }
    if origin is typing.Literal:
        return _enum_schema(list(args), where)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return _enum_schema([member.value for member in annotation], where)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return {"anyOf": [_schema(rest[0], where), {"type": "null"}]}
    raise TypeError(f"function_tool: {where} has an unsupported annotation {annotation!r}")


def _enum_schema(values: list[Any], where: str) -> JsonDict:
    kinds = {_SCALARS.get(type(v)) for v in values}
    if None in kinds:
        raise TypeError(f"function_tool: {where}: choices must be str, int, float or bool")
    schema: JsonDict = {"enum": values}
    if len(kinds) == 1:
        schema = {"type": kinds.pop(), **schema}
    return schema


# ---- docstrings -----------------------------------------------------------------------


def _first_paragraph(doc: str) -> str:
    lines: list[str] = []
    for line in doc.splitlines():
        if not line.strip() or _ARGS_HEADER.match(line):
            if lines:
                break
            continue
        lines.append(line.strip())
    return " ".join(lines)


def _arg_docs(doc: str) -> dict[str, str]:
    """name -> description from a Google-style `Args:` section."""
    found: dict[str, str] = {}
    lines = doc.splitlines()
    start = next((i for i, line in enumerate(lines) if _ARGS_HEADER.match(line)), None)
    if start is None:
        return found
    header_indent = _indent(lines[start])
    item_indent: int | None = None
    current: str | None = None
    for line in lines[start + 1 :]:
        if not line.strip():
            continue
        indent = _indent(line)
        if indent <= header_indent:
            break  # the next section
        item_indent = indent if item_indent is None else item_indent
        match = _ARG_LINE.match(line.strip())
        if indent == item_indent and match:
            current = match.group(1)
            found[current] = match.group(2).strip()
        elif current is not None:
            found[current] = f"{found[current]} {line.strip()}".strip()
    return found


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


# ---- calling --------------------------------------------------------------------------


def _kwargs(fn: Callable[..., Any], arguments: str | None) -> JsonDict:
    try:
        parsed = json.loads(arguments) if arguments and arguments.strip() else {}
    except json.JSONDecodeError as exc:
        raise ValueError(f"the arguments of {fn.__name__}() are not JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise ValueError(f"the arguments of {fn.__name__}() must be a JSON object")
    signature = inspect.signature(fn)
    signature.bind(**parsed)  # TypeError naming a missing or unexpected argument
    hints = typing.get_type_hints(fn)
    return {key: _to_enum(hints.get(key), value) for key, value in parsed.items()}


def _to_enum(annotation: Any, value: Any) -> Any:
    """Enum parameters get their member, not the raw JSON value."""
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    options = typing.get_args(annotation) if union else (annotation,)
    for option in options:
        if isinstance(option, type) and issubclass(option, enum.Enum) and value is not None:
            return option(value)
    return value


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def _awaited(awaitable: typing.Awaitable[Any]) -> Any:
    return await awaitable


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _json_default(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, set | frozenset):
        return list(value)
    return str(value)
