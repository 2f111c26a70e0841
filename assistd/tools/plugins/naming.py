"""Function names of plugin operations and MCP tools, within what models accept.

Models take function names of `[A-Za-z0-9_-]{1,64}`. A plugin's function is named
`<plugin_id>__<operation>`, cleaned to that alphabet; a name that is too long is cut and
given a short hash of the whole, so two long names stay apart.
"""

from __future__ import annotations

import hashlib
import re

MAX_NAME = 64
SEPARATOR = "__"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def function_name(plugin_id: str, operation: str | None = None) -> str:
    """The model-facing name of `operation` of `plugin_id` (the plugin's own name when
    it offers a single function)."""
    full = plugin_id if not operation else f"{plugin_id}{SEPARATOR}{operation}"
    clean = _UNSAFE.sub("_", full).strip("_") or "plugin"
    if len(clean) <= MAX_NAME and clean == full:
        return clean
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    if len(clean) <= MAX_NAME:
        return clean
    return f"{clean[: MAX_NAME - 9]}_{digest}"
