"""An OpenAPI 3.x document read into the functions a plugin offers the model.

Each operation (path x method) becomes one function. Its arguments are one JSON schema
built from the path, query and header parameters and the JSON or form request body, with
local `$ref`s inlined (the model sees no references), and a map from each argument to
where it goes in the request. Anything we cannot call faithfully (Swagger 2.0, multipart
bodies, a server we cannot locate) is refused when the plugin is registered, with a
message naming the problem, rather than failing at call time.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import yaml

from assistd.tools.base import JsonDict
from assistd.tools.plugins.naming import MAX_NAME, function_name

METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
MAX_REF_DEPTH = 8
MAX_DESCRIPTION = 1024
MAX_INLINED = 50_000  # nodes one inlining may produce
# Headers the HTTP layer sets itself; OpenAPI says parameters of these names are ignored.
_RESERVED_HEADERS = frozenset({"accept", "content-type", "authorization"})
_NOT_WORD = re.compile(r"[^A-Za-z0-9]+")
_VARIABLE = re.compile(r"\{([^{}]+)\}")


@dataclass(frozen=True, slots=True)
class Slot:
    """Where one argument goes: a path, query or header parameter (by its name in the
    request), one property of an object body (`field`), or the whole body (`body`)."""

    location: str  # path | query | header | field | body
    name: str


@dataclass(frozen=True, slots=True)
class Operation:
    name: str  # the function name the model calls
    method: str  # upper case
    path: str  # the path template, e.g. /weather/{city}
    description: str
    parameters: JsonDict  # JSON schema of the arguments
    slots: dict[str, Slot]  # argument name → where it goes
    body_kind: str | None = None  # json | form | None


class _Loader(yaml.SafeLoader):
    """YAML without aliases: a few nested aliases expand to billions of nodes."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases (*name) are not supported", mark
            )
        return super().compose_node(parent, index)


def parse_document(text: str, *, base_url: str | None = None) -> JsonDict:
    """The OpenAPI 3.x document in `text` (JSON or YAML), checked to be callable: its
    operations and their bodies are supported and its server URL is absolute (or
    relative to `base_url`). ValueError names the problem otherwise."""
    try:
        document = json.loads(text)
    except ValueError:
        try:
            loaded = yaml.load(text, Loader=_Loader)  # a SafeLoader
        except yaml.YAMLError as exc:
            where = getattr(exc, "problem_mark", None)
            at = f" (line {where.line + 1})" if where is not None else ""
            problem = getattr(exc, "problem", None)
            why = f": {problem}" if isinstance(problem, str) else ""
            raise ValueError(f"the OpenAPI document is neither JSON nor YAML{at}{why}") from None
        # JSON's data model (dates as text, keys as strings), as the registry stores it.
        document = json.loads(json.dumps(loaded, default=str))
    check_document(document, base_url=base_url)
    assert isinstance(document, dict)
    return document


def check_document(document: Any, *, base_url: str | None = None) -> None:
    """Raises ValueError naming what makes `document` unusable as a plugin."""
    if not isinstance(document, dict):
        raise ValueError("the OpenAPI document must be an object (a mapping at its top level)")
    if "swagger" in document:
        raise ValueError(
            "Swagger 2.0 documents are not supported: convert it to OpenAPI 3 "
            "(e.g. with swagger2openapi) and register that"
        )
    version = document.get("openapi")
    if not isinstance(version, str | float) or not str(version).startswith("3."):
        raise ValueError("the document is not OpenAPI 3.x: it has no 'openapi: 3.x' field")
    server_url(document, base_url)
    if not load_operations("plugin", document):
        raise ValueError("the OpenAPI document has no operations under 'paths'")


def server_url(document: JsonDict, base_url: str | None = None) -> str:
    """The absolute URL operation paths are appended to: the first `servers[].url` (its
    variables given their defaults), resolved against `base_url` when it is relative."""
    servers = document.get("servers")
    url = "/"  # OpenAPI's default: the document's own location
    if isinstance(servers, list) and servers and isinstance(servers[0], dict):
        url = _expand(servers[0]) or "/"
    absolute = urljoin(base_url, url) if base_url else url
    parts = urlsplit(absolute)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        if not base_url:
            raise ValueError(
                f"the document's server URL '{url}' is not an absolute http(s) URL: "
                "give the plugin's base URL, or an absolute servers[0].url"
            )
        raise ValueError(f"the plugin's server URL '{absolute}' is not an http(s) URL")
    return absolute.rstrip("/")


def _expand(server: JsonDict) -> str:
    url = str(server.get("url") or "")
    variables = server.get("variables")
    if not isinstance(variables, dict):
        return url

    def default(match: re.Match[str]) -> str:
        variable = variables.get(match.group(1))
        return str(variable.get("default", "")) if isinstance(variable, dict) else match.group(0)

    return _VARIABLE.sub(default, url)


def load_operations(
    plugin_id: str,
    document: JsonDict,
    *,
    description: str = "",
    hidden: Collection[tuple[str, str]] = (),
) -> list[Operation]:
    """One Operation per path x method of `document`. `hidden` holds (location, name) of
    parameters the server fills itself (the credential), left out of the arguments."""
    found = list(_operations(document))
    hidden_keys = {(where, name.lower()) for where, name in hidden}
    operations: list[Operation] = []
    names: set[str] = set()
    for path, method, item, operation in found:
        operation_id = operation.get("operationId")
        local = operation_id if isinstance(operation_id, str) and operation_id else None
        name = function_name(
            plugin_id, None if len(found) == 1 else local or _method_path(method, path)
        )
        if name in names:
            digest = hashlib.sha256(f"{method} {path}".encode()).hexdigest()[:8]
            name = f"{name[: MAX_NAME - 9]}_{digest}"
        names.add(name)
        parameters, slots, body_kind = _arguments(document, path, method, item, operation,
                                                  hidden_keys)  # fmt: skip
        text = operation.get("description") or operation.get("summary") or description
        operations.append(
            Operation(
                name=name,
                method=method.upper(),
                path=path,
                description=str(text or f"{method.upper()} {path}")[:MAX_DESCRIPTION],
                parameters=parameters,
                slots=slots,
                body_kind=body_kind,
            )
        )
    return operations


def _method_path(method: str, path: str) -> str:
    """An operation's name when it has no operationId: GET /weather/{city} → get_weather_city."""
    return _NOT_WORD.sub("_", f"{method} {path}").strip("_")


def _operations(document: JsonDict) -> Iterator[tuple[str, str, JsonDict, JsonDict]]:
    paths = document.get("paths")
    if not isinstance(paths, dict):
        return
    for path, raw_item in paths.items():
        item = inline(raw_item, document)
        if not isinstance(item, dict):
            continue
        for method in METHODS:
            operation = item.get(method)
            if isinstance(operation, dict):
                yield str(path), method, item, operation


def _arguments(
    document: JsonDict,
    path: str,
    method: str,
    item: JsonDict,
    operation: JsonDict,
    hidden: set[tuple[str, str]],
) -> tuple[JsonDict, dict[str, Slot], str | None]:
    properties: JsonDict = {}
    required: list[str] = []
    slots: dict[str, Slot] = {}
    for parameter in _parameters(document, item, operation):
        where, wire = parameter["in"], str(parameter["name"])
        if (where, wire.lower()) in hidden or (
            where == "header" and wire.lower() in _RESERVED_HEADERS
        ):
            continue
        argument = wire if wire not in properties else f"{where}_{wire}"
        properties[argument] = _parameter_schema(parameter)
        slots[argument] = Slot(where, wire)
        if parameter.get("required") or where == "path":
            required.append(argument)
    body = inline(operation.get("requestBody"), document)
    body_kind = None
    if isinstance(body, dict):
        media = _body_media(body, method, path)
        if media is not None:
            body_kind, body_schema = media
            _add_body(body_schema, bool(body.get("required")), properties, required, slots)
    schema: JsonDict = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(dict.fromkeys(required))
    return schema, slots, body_kind


def _parameters(document: JsonDict, item: JsonDict, operation: JsonDict) -> list[JsonDict]:
    """The path item's parameters overridden by the operation's, by (location, name)."""
    merged: dict[tuple[str, str], JsonDict] = {}
    for raw in [*(item.get("parameters") or []), *(operation.get("parameters") or [])]:
        parameter = inline(raw, document)
        if (
            isinstance(parameter, dict)
            and isinstance(parameter.get("name"), str)
            and parameter.get("in") in ("path", "query", "header")  # cookies: not sent
        ):
            merged[(parameter["in"], parameter["name"])] = parameter
    return list(merged.values())


def _parameter_schema(parameter: JsonDict) -> JsonDict:
    schema = parameter.get("schema")
    content = parameter.get("content")
    if not isinstance(schema, dict) and isinstance(content, dict) and content:
        first = next(iter(content.values()))
        schema = first.get("schema") if isinstance(first, dict) else None
    result = to_json_schema(schema) if isinstance(schema, dict) else {"type": "string"}
    if parameter.get("description") and "description" not in result:
        result["description"] = str(parameter["description"])
    return result


def _body_media(body: JsonDict, method: str, path: str) -> tuple[str, JsonDict] | None:
    """(json | form, the body's schema), preferring JSON; ValueError for a body only
    multipart or another unsupported type can carry."""
    content = body.get("content")
    if not isinstance(content, dict) or not content:
        return None
    kinds = {str(media).split(";")[0].strip().lower(): entry for media, entry in content.items()}
    for media, entry in kinds.items():
        if media in ("application/json", "*/*") or media.endswith("+json"):
            return "json", _media_schema(entry)
    if "application/x-www-form-urlencoded" in kinds:
        return "form", _media_schema(kinds["application/x-www-form-urlencoded"])
    where = f"{method.upper()} {path}"
    if any(media.startswith("multipart/") for media in kinds):
        raise ValueError(f"{where}: multipart request bodies are not supported (use JSON or form)")
    raise ValueError(
        f"{where}: request bodies of type {', '.join(sorted(kinds))} are not supported "
        "(only application/json or application/x-www-form-urlencoded)"
    )


def _media_schema(entry: Any) -> JsonDict:
    schema = entry.get("schema") if isinstance(entry, dict) else None
    return to_json_schema(schema) if isinstance(schema, dict) else {}


def _add_body(
    schema: JsonDict,
    required_body: bool,
    properties: JsonDict,
    required: list[str],
    slots: dict[str, Slot],
) -> None:
    """An object body's properties join the arguments; a clash or any other body goes
    whole under `body`."""
    fields = _object_fields(schema)
    if fields is not None and fields[0] and not set(fields[0]) & set(properties):
        for name, field_schema in fields[0].items():
            properties[name] = field_schema
            slots[name] = Slot("field", name)
        if required_body:
            required.extend(name for name in fields[1] if name in fields[0])
        return
    argument = "body" if "body" not in properties else "request_body"
    properties[argument] = schema
    slots[argument] = Slot("body", "")
    if required_body:
        required.append(argument)


def _object_fields(schema: JsonDict) -> tuple[JsonDict, list[str]] | None:
    """(properties, required) of an object schema, `allOf` parts merged; None when the
    schema is not a plain object."""
    if schema.get("type") not in (None, "object"):
        return None
    properties: JsonDict = dict(schema.get("properties") or {})
    required = [str(name) for name in schema.get("required") or []]
    for part in schema.get("allOf") or []:
        fields = _object_fields(part) if isinstance(part, dict) else None
        if fields is None:
            return None
        properties.update(fields[0])
        required.extend(fields[1])
    if schema.get("oneOf") or schema.get("anyOf"):
        return None
    return properties, required


def inline(node: Any, document: JsonDict) -> Any:
    """`node` with its local `$ref`s replaced by what they point to; a cycle, a chain
    deeper than MAX_REF_DEPTH, a reference outside the document, or any reference once
    MAX_INLINED nodes were produced (wide schemas nest exponentially) becomes `{}`."""
    return _inline(node, document, 0, frozenset(), [MAX_INLINED])


def _inline(
    node: Any, document: JsonDict, depth: int, seen: frozenset[str], left: list[int]
) -> Any:
    left[0] -= 1
    if isinstance(node, list):
        return [_inline(value, document, depth, seen, left) for value in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        target = _pointer(document, ref)
        if ref in seen or depth >= MAX_REF_DEPTH or left[0] <= 0 or not isinstance(target, dict):
            return {}
        resolved = _inline(target, document, depth + 1, seen | {ref}, left)
        siblings = {key: value for key, value in node.items() if key != "$ref"}
        return {**resolved, **_inline(siblings, document, depth, seen, left)}
    return {key: _inline(value, document, depth, seen, left) for key, value in node.items()}


def _pointer(document: JsonDict, ref: str) -> Any:
    if not ref.startswith("#/"):
        return None
    node: Any = document
    for token in ref[2:].split("/"):
        key = unquote(token).replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return None
    return node


def to_json_schema(schema: JsonDict) -> JsonDict:
    """An OpenAPI 3.0 schema as JSON Schema: `nullable` becomes a "null" type and the
    boolean `exclusiveMinimum/Maximum` the numeric form (3.1 schemas pass unchanged)."""
    result = copy.deepcopy(schema)
    _convert(result)
    return result


def _convert(node: Any) -> None:
    if isinstance(node, list):
        for value in node:
            _convert(value)
        return
    if not isinstance(node, dict):
        return
    if node.get("nullable") is True:  # a property named "nullable" holds a dict
        del node["nullable"]
        if isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(node.get(bound), bool) and node.pop(bound) and limit in node:
            node[bound] = node.pop(limit)
    for value in node.values():
        _convert(value)
