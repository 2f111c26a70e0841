"""Checking a model's tool arguments against a JSON schema, said so the model can correct
them. Validators are built once per schema: `jsonschema.validate` checks the schema against
its metaschema on every call, which costs milliseconds a tool call."""

from __future__ import annotations

import functools
import json
from typing import Any

import jsonschema

JsonDict = dict[str, Any]


def parse_arguments(arguments: str, schema: JsonDict | None) -> tuple[JsonDict, str | None]:
    """The model's arguments as an object, or a message the model can correct itself from."""
    try:
        args = json.loads(arguments or "{}")
    except json.JSONDecodeError as exc:
        return (
            {},
            f"Invalid arguments: not valid JSON ({exc}). Call the tool again with a JSON object.",
        )
    if not isinstance(args, dict):
        return {}, "Invalid arguments: they must be a JSON object. Call the tool again."
    return args, invalid_arguments(args, schema)


def invalid_arguments(args: JsonDict, schema: JsonDict | None) -> str | None:
    """What is wrong with `args` under `schema`, or None."""
    validator = _validator(json.dumps(schema, sort_keys=True)) if schema else None
    if validator is None:
        return None
    error = jsonschema.exceptions.best_match(validator.iter_errors(args))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "arguments"
    return (
        f"Invalid arguments at '{where}': {error.message}. "
        f"Call the tool again with arguments matching: {json.dumps(schema, ensure_ascii=False)}"
    )


@functools.lru_cache(maxsize=512)
def _validator(schema_json: str) -> Any:
    """The validator of a schema; None for a broken schema (a tool's own bug: let its
    calls through rather than block them)."""
    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError:
        return None
    return cls(schema)
