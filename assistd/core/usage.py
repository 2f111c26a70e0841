"""Token usage per workspace, API key, model and UTC day.

A run's usage is final when the run ends: the journal's transaction that moves it to an
end status also counts it (`record`), so the daily rows never miss a run nor count one
twice (of two movers of a run, one moves it). The key that created a run is the caller
of the request that created it (`CALLER_KEY`, set when a request is authenticated).
"""

from __future__ import annotations

import datetime as dt
from contextvars import ContextVar

from assistd.core.objects import Run
from assistd.store.base import WorkspaceUnit

# The API key of the request being served (None outside requests: workers, the CLI).
CALLER_KEY: ContextVar[str | None] = ContextVar("assistd_caller_key", default=None)


def utc_day(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d")


def _tokens(run: Run) -> tuple[int, int, int]:
    usage = run.usage or {}
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    return prompt, completion, int(usage.get("total_tokens") or prompt + completion)


async def record(unit: WorkspaceUnit, run: Run, ended_ms: int) -> None:
    """Counts an ended run into its day's usage row (in the caller's transaction)."""
    await unit.usage.add(run.key_id or "", run.model, utc_day(ended_ms), _tokens(run))
