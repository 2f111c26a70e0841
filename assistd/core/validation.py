"""Domain rules for client input, shared by both surfaces. Each failure names its field."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from assistd.core.objects import JsonDict, Metadata, SamplingParams
from assistd.errors import InvalidRequest, PayloadTooLarge, echo
from assistd.tools.registry import known_types

METADATA_MAX_KEYS = 16
METADATA_KEY_MAX = 64
METADATA_VALUE_MAX = 512
NAME_MAX = 256
DESCRIPTION_MAX = 512
INSTRUCTIONS_MAX = 256_000
MODEL_MAX = 256
FILENAME_MAX = 512
PURPOSE_MAX = 64
MESSAGE_MAX = 256_000
TOOLS_MAX = 128
ASSISTANT_FILES_MAX = 20
MESSAGE_FILES_MAX = 10
THREAD_MESSAGES_MAX = 32
PAGE_NO_MAX = 1_000_000
# Deeper JSON is parsed fine but breaks whatever serialises it again (orjson stops at
# 255 levels, the stdlib's json near 1,000): stored, it would make every later read a 500.
JSON_DEPTH_MAX = 64

_FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def check_length(value: str | None, field: str, maximum: int) -> str | None:
    """A text field: at most `maximum` characters and no NUL, which PostgreSQL's text
    columns cannot hold (it would be a 500 there and fine on SQLite)."""
    if value is not None and len(value) > maximum:
        raise InvalidRequest(
            f"'{field}' is too long: {len(value)} characters, at most {maximum} allowed.", field
        )
    if value is not None and "\x00" in value:
        raise InvalidRequest(f"'{field}' must not contain NUL characters.", field)
    return value


def check_metadata(value: Any, field: str = "metadata") -> Metadata:
    """The vendors' metadata rules: at most 16 pairs of strings, keys up to 64 characters,
    values up to 512."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidRequest(f"'{field}' must be an object of string keys and values.", field)
    if len(value) > METADATA_MAX_KEYS:
        raise InvalidRequest(
            f"'{field}' has {len(value)} keys; at most {METADATA_MAX_KEYS} are allowed.", field
        )
    for key, item in value.items():
        _check_metadata_pair(str(key), item, field)
    return dict(value)


def _check_metadata_pair(key: str, item: Any, field: str) -> None:
    where = f"{field}.{echo(key)}"
    if len(key) > METADATA_KEY_MAX:
        raise InvalidRequest(
            f"'{field}' key '{echo(key)}' is longer than {METADATA_KEY_MAX} characters.", field
        )
    if not isinstance(item, str):
        raise InvalidRequest(f"'{where}' must be a string, not {json_type(item)}.", field)
    if len(item) > METADATA_VALUE_MAX:
        raise InvalidRequest(f"'{where}' is longer than {METADATA_VALUE_MAX} characters.", field)
    if "\x00" in key or "\x00" in item:
        raise InvalidRequest(f"'{where}' must not contain NUL characters.", field)
    if key == "object" and _names_sdk_object(item):
        # The dashscope SDK turns any JSON object whose "object" names one of its types
        # into that class, metadata included (spec 13.16): this would not come back as
        # metadata, and can crash the SDK.
        raise InvalidRequest(
            f"'{where}' must not be '{echo(item)}': the dashscope SDK would read this "
            "metadata as an object of that type.",
            field,
        )


def _names_sdk_object(value: str) -> bool:
    return value in ("assistant", "thread") or value.startswith(("assistant.", "thread."))


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, Mapping):
        return "an object"
    return "an array" if isinstance(value, list) else "a string"


def check_json_depth(value: Any) -> None:
    """JSON input nests at most JSON_DEPTH_MAX objects or arrays deep."""
    level = [value]
    for _ in range(JSON_DEPTH_MAX):  # level by level: far quicker than recursing
        level = [
            child
            for container in level
            for child in (container.values() if isinstance(container, dict) else container)
            if isinstance(child, (dict, list))
        ]
        if not level:
            return
    path = _too_deep(value, 1) or []
    shown = _json_path(path[:4]) + ("..." if len(path) > 4 else "")
    raise InvalidRequest(
        f"'{shown}' is nested too deeply: JSON input may nest at most {JSON_DEPTH_MAX} "
        "objects or arrays.",
        str(path[0]) if path else "body",
    )


def _too_deep(value: Any, depth: int) -> list[str | int] | None:
    """The path to the first object or array below JSON_DEPTH_MAX levels, if any; for
    the error message. Recurses at most JSON_DEPTH_MAX + 1 calls deep."""
    if depth > JSON_DEPTH_MAX:
        return []
    items: Iterable[tuple[str | int, Any]] = (
        value.items() if isinstance(value, dict) else enumerate(value)
    )
    for key, item in items:
        if isinstance(item, (dict, list)):
            found = _too_deep(item, depth + 1)
            if found is not None:
                return [key, *found]
    return None


def _json_path(path: list[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{echo(part)}" if text else echo(part)
    return text


def check_id(value: str, field: str) -> str:
    """An object id from the client. PostgreSQL cannot take NUL in a query parameter."""
    if "\x00" in value:
        raise InvalidRequest(f"'{field}' must not contain NUL characters.", field)
    return value


def _check_function_tool(tool: Mapping[str, Any], field: str) -> None:
    function = tool.get("function")
    if not isinstance(function, Mapping):
        raise InvalidRequest(f"'{field}.function' must be an object with a 'name'.", field)
    name = function.get("name")
    if not isinstance(name, str) or not _FUNCTION_NAME.match(name):
        raise InvalidRequest(
            f"'{field}.function.name' must be 1-64 letters, digits, '_' or '-'.", field
        )
    parameters = function.get("parameters")
    if parameters is not None and not isinstance(parameters, Mapping):
        raise InvalidRequest(f"'{field}.function.parameters' must be a JSON schema object.", field)
    description = function.get("description")
    if description is not None and not isinstance(description, str):
        raise InvalidRequest(f"'{field}.function.description' must be a string.", field)


def tool_types(value: Any) -> set[str]:
    """The types the tools of `value` name (whatever else may be wrong with them)."""
    if not isinstance(value, list):
        return set()
    return {t["type"] for t in value if isinstance(t, Mapping) and isinstance(t.get("type"), str)}


def check_tools(value: Any, plugin_ids: Iterable[str], field: str = "tools") -> list[JsonDict]:
    """Tools are stored as given, once each names a type this server knows: `function`,
    a built-in (the tool registry's entry points) or one of `plugin_ids`."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidRequest(f"'{field}' must be an array of tool objects.", field)
    if len(value) > TOOLS_MAX:
        raise InvalidRequest(f"'{field}' has {len(value)} tools; at most {TOOLS_MAX}.", field)
    known = known_types(plugin_ids)
    for index, tool in enumerate(value):
        where = f"{field}[{index}]"
        if not isinstance(tool, Mapping) or not isinstance(tool.get("type"), str):
            raise InvalidRequest(f"'{where}' must be an object with a string 'type'.", field)
        if tool["type"] not in known:
            raise InvalidRequest(
                f"'{where}.type' is '{echo(tool['type'])}', which is not a tool this server knows. "
                f"Known types: {', '.join(sorted(known))}, and the ids of the workspace's "
                "plugins (POST /api/v1/plugins).",
                field,
            )
        if tool["type"] == "function":
            _check_function_tool(tool, where)
    return [dict(tool) for tool in value]


def check_sampling(params: SamplingParams) -> SamplingParams:
    ranges: dict[str, tuple[float, float]] = {
        "temperature": (0.0, 2.0),
        "top_p": (0.0, 1.0),
        "top_k": (0, 1000),
        "max_tokens": (1, 1_000_000),
    }
    for name, (low, high) in ranges.items():
        value = getattr(params, name)
        if value is not None and not low <= value <= high:
            raise InvalidRequest(f"'{name}' must be between {low:g} and {high:g}.", name)
    return params


def check_file_ids(value: Any, field: str, maximum: int) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidRequest(f"'{field}' must be an array of file id strings.", field)
    if len(value) > maximum:
        raise InvalidRequest(f"'{field}' has {len(value)} files; at most {maximum}.", field)
    for index, file_id in enumerate(value):
        check_id(file_id, f"{field}[{index}]")
    return list(dict.fromkeys(value))  # drop repeats, keep order


def text_content(value: Any, field: str = "content") -> list[JsonDict]:
    """Message content: a string, or an array of text parts, stored as text parts."""
    if isinstance(value, str):
        texts = [value]
    elif isinstance(value, list) and value:
        texts = [_text_of_part(part, f"{field}[{i}]") for i, part in enumerate(value)]
    else:
        raise InvalidRequest(
            f"'{field}' must be a non-empty string or an array of text parts.", field
        )
    total = sum(len(t) for t in texts)
    if total == 0:
        raise InvalidRequest(f"'{field}' must not be empty.", field)
    if total > MESSAGE_MAX:
        raise InvalidRequest(
            f"'{field}' is too long: {total} characters, at most {MESSAGE_MAX}.", field
        )
    return [{"type": "text", "text": {"value": t, "annotations": []}} for t in texts]


def _text_of_part(part: Any, field: str) -> str:
    if isinstance(part, str):
        return part
    if isinstance(part, Mapping) and part.get("type") == "text":
        text = part.get("text")
        if isinstance(text, Mapping):
            text = text.get("value")
        if isinstance(text, str):
            return text
    raise InvalidRequest(
        f'\'{field}\' must be a text part: {{"type": "text", "text": "..."}}.', field
    )


def check_role(value: Any, field: str = "role") -> str:
    if value not in ("user", "assistant"):
        raise InvalidRequest(
            f"'{field}' must be 'user' or 'assistant', not '{echo(value)}'.", field
        )
    return str(value)


def file_too_large(filename: str, size: int, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"File '{echo(filename)}' is {size} bytes; this server accepts files up to {limit} bytes."
    )


ATTACHMENT_TOOLS = ("code_interpreter", "file_search")
IMAGE_DETAILS = ("auto", "low", "high")
URL_MAX = 8192
RESPONSE_FORMAT_TYPES = ("text", "json_object", "json_schema")


def message_content(value: Any, field: str = "content") -> list[JsonDict]:
    """Message content that may hold images too: a string, or an array of text,
    `image_file` and `image_url` parts (OpenAI's request shapes), stored in the
    response shapes (`text` as `{"value", "annotations"}`)."""
    if isinstance(value, str):
        return text_content(value, field)
    if not isinstance(value, list) or not value:
        raise InvalidRequest(
            f"'{field}' must be a non-empty string or an array of content parts.", field
        )
    parts = [_content_part(part, f"{field}[{i}]") for i, part in enumerate(value)]
    total = sum(len(p["text"]["value"]) for p in parts if p["type"] == "text")
    if total > MESSAGE_MAX:
        raise InvalidRequest(
            f"'{field}' is too long: {total} characters, at most {MESSAGE_MAX}.", field
        )
    if total == 0 and all(p["type"] == "text" for p in parts):
        raise InvalidRequest(f"'{field}' must not be empty.", field)
    return parts


def _content_part(part: Any, field: str) -> JsonDict:
    kind = part.get("type") if isinstance(part, Mapping) else None
    if kind == "text" or isinstance(part, str):
        return {"type": "text", "text": {"value": _text_of_part(part, field), "annotations": []}}
    if kind == "image_file":
        image = _object(part.get("image_file"), f"{field}.image_file")
        file_id = image.get("file_id")
        if not isinstance(file_id, str) or not file_id:
            raise InvalidRequest(f"'{field}.image_file.file_id' must be a file id.", field)
        check_id(file_id, f"{field}.image_file.file_id")
        detail = _detail(image.get("detail"), f"{field}.image_file.detail")
        return {"type": "image_file", "image_file": {"file_id": file_id, "detail": detail}}
    if kind == "image_url":
        image = _object(part.get("image_url"), f"{field}.image_url")
        url = image.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://", "data:")):
            raise InvalidRequest(
                f"'{field}.image_url.url' must be an http(s) or data: URL.", f"{field}.image_url"
            )
        check_length(url, f"{field}.image_url.url", URL_MAX)
        detail = _detail(image.get("detail"), f"{field}.image_url.detail")
        return {"type": "image_url", "image_url": {"url": url, "detail": detail}}
    raise InvalidRequest(
        f"'{field}.type' must be 'text', 'image_file' or 'image_url', not '{echo(kind)}'.", field
    )


def _object(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidRequest(f"'{field}' must be an object.", field)
    return value


def _detail(value: Any, field: str) -> str:
    if value is None:
        return "auto"
    if value not in IMAGE_DETAILS:
        raise InvalidRequest(f"'{field}' must be 'auto', 'low' or 'high'.", field)
    return str(value)


def content_file_ids(content: list[JsonDict]) -> list[str]:
    """The files that image parts name (they must exist)."""
    return [p["image_file"]["file_id"] for p in content if p["type"] == "image_file"]


def check_attachment_tools(value: Any, field: str) -> list[str]:
    """The tools an attachment is for: each `code_interpreter` or `file_search`."""
    tools = list(dict.fromkeys(value or []))
    for tool in tools:
        if tool not in ATTACHMENT_TOOLS:
            raise InvalidRequest(
                f"'{field}' names the tool '{echo(tool)}'; an attachment is for "
                "'code_interpreter' or 'file_search'.",
                field,
            )
    return tools


def check_response_format(value: Any, field: str = "response_format") -> JsonDict | None:
    """ "auto" (None: the model's default), {"type": "text" | "json_object"}, or
    {"type": "json_schema", "json_schema": {"name", "schema"?, "description"?, "strict"?}}."""
    if value is None or value == "auto":
        return None
    kind = value.get("type") if isinstance(value, Mapping) else None
    if kind not in RESPONSE_FORMAT_TYPES:
        raise InvalidRequest(
            f"'{field}' must be \"auto\" or an object whose 'type' is 'text', 'json_object' "
            "or 'json_schema'.",
            field,
        )
    if kind != "json_schema":
        return {"type": kind}
    spec = _object(value.get("json_schema"), f"{field}.json_schema")
    name = spec.get("name")
    if not isinstance(name, str) or not _FUNCTION_NAME.match(name):
        raise InvalidRequest(
            f"'{field}.json_schema.name' must be 1-64 letters, digits, '_' or '-'.", field
        )
    schema = spec.get("schema")
    if schema is not None and not isinstance(schema, Mapping):
        raise InvalidRequest(f"'{field}.json_schema.schema' must be a JSON schema object.", field)
    strict = spec.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise InvalidRequest(f"'{field}.json_schema.strict' must be a boolean.", field)
    description = spec.get("description")
    if description is not None and not isinstance(description, str):
        raise InvalidRequest(f"'{field}.json_schema.description' must be a string.", field)
    kept = {
        k: spec[k] for k in ("name", "description", "schema", "strict") if spec.get(k) is not None
    }
    return {"type": "json_schema", "json_schema": kept}
