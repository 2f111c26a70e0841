"""Tool types this server accepts on assistants but cannot run (no implementation yet).

Each is declared as an entry point pointing here, so it is a known type (an assistant may
name it, as the vendor's guides do) that is never offered to the model; the run's
instructions say it is unavailable, so the answer can tell the user.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from assistd.settings import Settings
    from assistd.tools.base import Tool


def factory(settings: Settings) -> Tool | None:
    return None
