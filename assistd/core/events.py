"""Run events: what happened to a run, in order, with a per-run sequence number.

Both wire surfaces render these; neither re-parses the other's output. Event names are
the ones both vendors use (`thread.run.created`, `thread.message.delta`, ...). State is
committed to the store before its event is published; token deltas exist only here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from assistd.core.objects import JsonDict, Run


@dataclass(slots=True, frozen=True)
class MessageDelta:
    message_id: str
    text: str
    index: int = 0


@dataclass(slots=True, frozen=True)
class ToolCallFragment:
    """A piece of a tool call as it streams: its start (id, name and the first arguments),
    more of its arguments, and, for a call the server runs, its end (its output)."""

    index: int  # the call's place in its step
    id: str
    type: str  # as ToolCall.type
    name: str
    stage: Literal["start", "arguments", "output"]
    arguments: str = ""  # this piece of the arguments
    output: str | None = None  # at the end
    display: str | None = None  # at the end, as ToolCall.display
    image_file_ids: list[str] = field(default_factory=list)  # at the end: images it made
    details: JsonDict | None = None  # at the end, as ToolCall.details


@dataclass(slots=True, frozen=True)
class StepDelta:
    step_id: str
    tool_calls: list[ToolCallFragment] = field(default_factory=list)


@dataclass(slots=True, frozen=True)
class StreamError:
    code: str
    message: str


@dataclass(slots=True, frozen=True)
class RunEvent:
    seq: int
    name: str
    data: Any  # Thread | Run | RunStep | Message | MessageDelta | StepDelta | StreamError


# A stream for one leg of a run ends after one of these (the client then submits tool
# outputs, or the run is over).
FINAL_EVENTS = frozenset(
    {
        "thread.run.requires_action", "thread.run.completed", "thread.run.failed",
        "thread.run.cancelled", "thread.run.expired", "thread.run.incomplete",
    }
)  # fmt: skip


class EventLogGone(Exception):
    """The run's event log is no longer kept (its retention ran out, or it was evicted to
    keep the bus within its memory budget): a reader that far behind cannot go on."""


def run_event_name(run: Run) -> str:
    return f"thread.run.{run.status}"


class EventBus(Protocol):
    async def publish(self, run_id: str, name: str, data: Any) -> RunEvent:
        """Appends an event to the run's log (assigning its sequence number) and wakes readers."""
        ...

    async def publish_many(self, events: Sequence[tuple[str, str, Any]]) -> None:
        """`publish` of each (run_id, name, data) in order; a transport may send them
        together."""
        ...

    def publish_soon(self, run_id: str, name: str, data: Any) -> Awaitable[Any] | None:
        """`publish` without waiting for it: the event is queued at once behind every
        event published (or queued) before it, and the awaitable settles once it is in
        the log (raising what publishing raised). A worker streams token deltas so,
        instead of waiting a transport round trip for each. None: the event is in the log
        already (a bus in this process, which never leaves one queued)."""
        ...

    async def last_seq(self, run_id: str) -> int:
        """The sequence number of the newest event of the run (0 if none)."""
        ...

    async def read(
        self, run_id: str, after_seq: int, timeout_s: float, limit: int = 256
    ) -> list[RunEvent]:
        """The run's events with seq > after_seq, at most `limit` of them; waits up to
        `timeout_s` for one if none is there yet, and returns [] if none came (or if
        `wake_readers` was called). Raises EventLogGone if the run's log is not kept."""
        ...

    def wake_readers(self) -> None:
        """Returns every waiting `read` at once, so streams notice the server stopping."""
        ...

    async def close(self) -> None: ...


class Follower(Protocol):
    """A reader of a run's events that can take an event the moment it is published."""

    seq: int  # the last event it has

    def take(self, event: RunEvent) -> bool:
        """Handles `event` (the next after `seq`) at once, advancing `seq`, and says so;
        False leaves it to the reader's next read."""
        ...


@runtime_checkable
class FollowedBus(Protocol):
    """A bus that hands a waiting reader each new event as it is published (one in this
    process): a stream's token frame is then written in the publisher's step, where
    waking the stream's task cost a task step through its whole chain of awaits."""

    async def follow(
        self, run_id: str, follower: Follower, timeout_s: float, limit: int = 256
    ) -> list[RunEvent]:
        """As `read` after `follower.seq`; while it waits, each new event is offered to
        `follower.take` first, and only one it does not take ends the wait."""
        ...
