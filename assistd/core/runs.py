"""Run statuses and the only code that changes them.

Every change of a run's status goes through `transition`, which refuses any move the
table does not allow and stamps the matching timestamp. `incomplete` (a token cap of the
run was reached) is OpenAI's; the DashScope surface, whose SDK does not know it, shows
such a run as completed, so its `Runs.wait` always ends (spec section 6.5).
"""

from __future__ import annotations

from enum import StrEnum

from assistd.core.objects import JsonDict, Run
from assistd.errors import Conflict


class RunStatus(StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    REQUIRES_ACTION = "requires_action"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    FAILED = "failed"
    COMPLETED = "completed"
    EXPIRED = "expired"
    INCOMPLETE = "incomplete"


S = RunStatus
TERMINAL = frozenset({S.CANCELLED, S.FAILED, S.COMPLETED, S.EXPIRED, S.INCOMPLETE})
ACTIVE = frozenset({S.QUEUED, S.IN_PROGRESS, S.REQUIRES_ACTION, S.CANCELLING})

ALLOWED: dict[RunStatus, frozenset[RunStatus]] = {
    S.QUEUED: frozenset({S.IN_PROGRESS, S.CANCELLING, S.CANCELLED, S.FAILED, S.EXPIRED}),
    S.IN_PROGRESS: frozenset(
        {S.REQUIRES_ACTION, S.COMPLETED, S.INCOMPLETE, S.FAILED, S.CANCELLING, S.CANCELLED}
        | {S.EXPIRED}
    ),
    # Tool outputs arrived: the run goes back to the queue to continue.
    S.REQUIRES_ACTION: frozenset({S.QUEUED, S.CANCELLING, S.CANCELLED, S.FAILED, S.EXPIRED}),
    S.CANCELLING: frozenset({S.CANCELLED, S.FAILED}),
    S.CANCELLED: frozenset(),
    S.FAILED: frozenset(),
    S.COMPLETED: frozenset(),
    S.EXPIRED: frozenset(),
    S.INCOMPLETE: frozenset(),
}

_STAMPS = {
    S.IN_PROGRESS: "started_at",
    S.CANCELLED: "cancelled_at",
    S.FAILED: "failed_at",
    S.COMPLETED: "completed_at",
}


def can_transition(current: str, target: RunStatus) -> bool:
    return target in ALLOWED[RunStatus(current)]


def transition(run: Run, target: RunStatus, now: int, last_error: JsonDict | None = None) -> Run:
    """Moves `run` to `target` in place, stamping times; raises Conflict if not allowed."""
    if not can_transition(run.status, target):
        raise Conflict(f"Run '{run.id}' is {run.status}; it cannot become {target.value}.")
    run.status = target.value
    stamp = _STAMPS.get(target)
    if stamp is not None and (stamp != "started_at" or run.started_at is None):
        setattr(run, stamp, now)
    if target != S.REQUIRES_ACTION:
        run.required_action = None
    if target in TERMINAL and target != S.EXPIRED:
        run.expires_at = None
    if last_error is not None:
        run.last_error = last_error
    return run


def is_active(status: str) -> bool:
    return RunStatus(status) in ACTIVE


def is_terminal(status: str) -> bool:
    return RunStatus(status) in TERMINAL
