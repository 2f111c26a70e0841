"""The run queue contract: a run is a row plus a job."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(slots=True, frozen=True)
class RunJob:
    workspace_id: str
    thread_id: str
    run_id: str


class RunQueue(Protocol):
    async def enqueue(self, job: RunJob) -> None: ...

    async def take(self) -> RunJob:
        """Waits for the next job."""
        ...

    async def close(self) -> None: ...


class CancelSignals(Protocol):
    """Tells the worker executing a run that a client asked to cancel it."""

    def request(self, run_id: str) -> None: ...
    async def wait(self, run_id: str) -> None:
        """Returns once a cancel of the run is requested."""
        ...

    def clear(self, run_id: str) -> None: ...
