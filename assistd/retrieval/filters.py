"""OpenAI's attribute filters: comparisons (eq, ne, gt, gte, lt, lte, in, nin) of one
attribute and compound and/or of filters. Checked once, then applied to file attributes."""

from __future__ import annotations

from typing import Any

from assistd.errors import InvalidRequest

_COMPARE = frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "in", "nin"})
_COMPOUND = frozenset({"and", "or"})


def check(spec: Any, field: str = "filters") -> None:
    """InvalidRequest naming the first part of `spec` that is not a filter."""
    if not isinstance(spec, dict):
        raise InvalidRequest(f"{field} must be an object.", field)
    kind = spec.get("type")
    if kind in _COMPOUND:
        parts = spec.get("filters")
        if not isinstance(parts, list) or not parts:
            raise InvalidRequest(f"{field}.filters must be a non-empty list.", f"{field}.filters")
        for i, part in enumerate(parts):
            check(part, f"{field}.filters[{i}]")
        return
    if kind not in _COMPARE:
        known = ", ".join(sorted(_COMPARE | _COMPOUND))
        raise InvalidRequest(f"{field}.type must be one of {known}.", f"{field}.type")
    if not isinstance(spec.get("key"), str):
        raise InvalidRequest(f"{field}.key must be a string.", f"{field}.key")
    if "value" not in spec:
        raise InvalidRequest(f"{field}.value is required.", f"{field}.value")


def _compare(kind: str, have: Any, want: Any) -> bool:
    if kind in ("in", "nin"):
        found = isinstance(want, list) and have in want
        return found if kind == "in" else not found
    if kind == "eq":
        return bool(have == want)
    if kind == "ne":
        return bool(have != want)
    if have is None or isinstance(have, bool) != isinstance(want, bool):
        return False
    try:
        checks = {"gt": have > want, "gte": have >= want, "lt": have < want, "lte": have <= want}
        return bool(checks[kind])
    except TypeError:  # a number against a string: no match, not an error
        return False


def matches(spec: dict[str, Any], attributes: dict[str, Any]) -> bool:
    kind = spec["type"]
    if kind == "and":
        return all(matches(part, attributes) for part in spec["filters"])
    if kind == "or":
        return any(matches(part, attributes) for part in spec["filters"])
    return _compare(kind, attributes.get(spec["key"]), spec["value"])
