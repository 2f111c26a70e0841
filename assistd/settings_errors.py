"""Settings problems told in one line that names where the bad value came from (the TOML
file and key, the ASSISTD_* variable, the command-line option), and warnings about
ASSISTD_* variables that match no setting."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from assistd.urls import redact_url

ENV_PREFIX = "ASSISTD_"
# Variables the test suite and tools read for themselves; never settings.
RESERVED_PREFIXES = ("ASSISTD_TEST_",)
_SECRET_WORDS = ("key", "secret", "password", "token")
_SHOWN_CHARS = 60


def suggestion(name: str, known: Iterable[str], quote: str = "") -> str:
    """' (did you mean X?)' for the closest known name, or ''."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {quote}{close[0]}{quote}?)" if close else ""


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The settings model a field holds, directly or as the values of a dict."""
    if get_origin(annotation) is dict:
        annotation = get_args(annotation)[1]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _known_keys(model: type[BaseModel], path: Sequence[str]) -> list[str]:
    """The keys allowed next to the last part of `path` (models.<name>.<key>, ...)."""
    parts = iter(path[:-1])
    for part in parts:
        field = model.model_fields.get(part)
        inner = _model_in(field.annotation) if field is not None else None
        if field is None or inner is None:
            return []
        if get_origin(field.annotation) is dict:
            next(parts, None)  # the dict's own key, e.g. the model name
        model = inner
    return list(model.model_fields)


def _shown(path: Sequence[str], value: Any) -> str:
    if any(word in part.lower() for part in path for word in _SECRET_WORDS):
        return ""  # never echo a secret, not even a malformed one
    if isinstance(value, str):
        value = redact_url(value)
        text = value if len(value) <= _SHOWN_CHARS else value[:_SHOWN_CHARS] + "..."
        return f" (got {text!r})"
    if isinstance(value, int | float | bool):
        return f" (got {value!r})"
    return ""


def _problem(model: type[BaseModel], error: ErrorDetails) -> str:
    path = [str(part) for part in error["loc"]]
    dotted = ".".join(path)
    if error["type"] == "extra_forbidden":
        return f"unknown key '{dotted}'" + suggestion(path[-1], _known_keys(model, path), "'")
    message = error["msg"].removeprefix("Value error, ")
    return f"'{dotted}': {message}{_shown(path, error['input'])}"


def explain(exc: ValidationError, model: type[BaseModel], source_of: Callable[[str], str]) -> str:
    """One line for the first problem: '<source>: <problem>', and how many more there are.
    `source_of` names where a top-level key's value came from."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    top = str(first["loc"][0]) if first["loc"] else ""
    line = f"{source_of(top)}: {_problem(model, first)}"
    if len(errors) > 1:
        line += f" (and {len(errors) - 1} more invalid setting{'s' if len(errors) > 2 else ''})"
    return line


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def explain_env_parse(exc: Exception) -> str:
    """pydantic-settings' SettingsError for a variable that is not valid JSON."""
    found = re.search(r'field "(\w+)"', str(exc))
    name = env_name(found.group(1)) if found else "an ASSISTD_* variable"
    cause = exc.__cause__
    return f"{name}: not valid JSON ({cause})" if cause else f"{name}: {exc}"


def unknown_environment(
    environ: Mapping[str, str], model: type[BaseModel], also_known: Iterable[str] = ()
) -> list[str]:
    """A warning for each ASSISTD_* variable that no setting reads. `also_known` are the
    variables the configuration itself names (a model route's api_key_env)."""
    known = {env_name(field) for field in model.model_fields}
    wanted = known | {name.upper() for name in also_known}
    warnings = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper in wanted:
            continue
        if upper.startswith(RESERVED_PREFIXES):
            continue
        warnings.append(
            f"{name} is not an assistd setting and is ignored" + suggestion(upper, known)
        )
    return warnings
