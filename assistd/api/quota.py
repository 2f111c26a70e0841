"""The quotas' check on each authenticated request of the DashScope and OpenAI surfaces
(core/quotas.py), and the caller's key kept for the runs the request creates."""

from __future__ import annotations

import re

from fastapi import Request

from assistd.core.objects import Principal
from assistd.core.quotas import Quotas
from assistd.core.usage import CALLER_KEY

# POST /threads/runs and POST /threads/{thread_id}/runs, under either surface's prefix.
_CREATES_RUN = re.compile(r"^/(?:api/)?v1/threads/(?:[^/]+/)?runs/?$")
ADMIN_PATHS = "/admin/"


async def admit(request: Request, who: Principal) -> None:
    """Counts the request against the caller's quotas (once, however many dependencies
    ask who is calling); RateLimited past one. Admin API calls are not limited, so that
    an operator can always change a limit."""
    CALLER_KEY.set(who.key_id)
    state = request.state
    path: str = request.scope["path"]
    if getattr(state, "quota_counted", False) or path.startswith(ADMIN_PATHS):
        return
    state.quota_counted = True
    quotas: Quotas = request.app.state.runtime.quotas
    creates_run = request.method == "POST" and _CREATES_RUN.match(path) is not None
    await quotas.admit(who, creates_run)
