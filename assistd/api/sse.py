"""Server-sent events: framing, heartbeats, and the end of a leg.

Frames are `id:<seq>`, `event:<name>`, `data:<one line of JSON>` with no space after the
colon (the dashscope SDK needs `event:done` written exactly so). A comment line goes out
whenever the run is quiet for `heartbeat_s`, so no client waits in silence.

Every leg ends: after the run's final event, or, should that event never come (the run
deleted behind this server's back, say), at the first heartbeat that finds the run ended
or gone, with the run as stored. A stream also ends, with an `error` frame, when the
server shuts down, and when its reader fell so far behind that the run's events are no
longer kept (the DashScope surface has no resume). Frames go out in chunks of at most
about CHUNK_BYTES, so a reader that does not read holds little of the server's memory.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace

import orjson
from fastapi.responses import StreamingResponse

from assistd.core import runs as rs
from assistd.core.events import (
    FINAL_EVENTS,
    EventBus,
    EventLogGone,
    RunEvent,
    StreamError,
    run_event_name,
)
from assistd.core.ids import now_ms
from assistd.core.objects import Run

log = logging.getLogger("assistd.sse")

HEARTBEAT = b": keep-alive\n\n"
DONE = b"event:done\ndata:[DONE]\n\n"
CHUNK_BYTES = 32 * 1024  # what one write may carry; the transport buffers about 64 KiB more
READ_LIMIT = 256  # events taken from the bus at once
GRACE_S = 1.0  # how long a stream that finds its run ended waits for the final event

SHUTTING_DOWN = StreamError(
    "ServerShuttingDown",
    "The server is shutting down, so this stream ends here; retrieve the run to see how it ends.",
)
FELL_BEHIND = StreamError(
    "StreamFellBehind",
    "This stream fell so far behind its run that the run's events are no longer kept; "
    "retrieve the run and its messages instead.",
)
RUN_GONE = StreamError("NotFound", "The run no longer exists; its thread was deleted.")

# Turns an event into its wire name and JSON object, or None to skip it on this surface.
Renderer = Callable[[RunEvent], tuple[str, object] | None]
# The run as stored now, or None if it no longer exists.
StoredRun = Callable[[], Awaitable[Run | None]]


def frame(name: str, data: object, seq: int | None = None) -> bytes:
    head = f"id:{seq}\n" if seq is not None else ""
    return f"{head}event:{name}\ndata:".encode() + orjson.dumps(data) + b"\n\n"


def spaced_frame(name: str, data: object, seq: int | None = None) -> bytes:
    """`event: <name>` / `data: <json>`, as OpenAI writes them. Never an `id:` line: the
    openai SDK never resets the last event id, so one would break it."""
    return f"event: {name}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"


@dataclass(slots=True, frozen=True)
class Framing:
    """How one surface writes its frames and the end of a leg."""

    frame: Callable[[str, object, int | None], bytes]
    done: bytes


DASHSCOPE = Framing(frame, DONE)
OPENAI = Framing(spaced_frame, b"event: done\ndata: [DONE]\n\n")


class StreamGate:
    """Open while the server serves streams; closed once it starts shutting down."""

    def __init__(self) -> None:
        self.closing = False

    def close(self, bus: EventBus) -> None:
        self.closing = True
        bus.wake_readers()


@dataclass(slots=True, frozen=True)
class StreamSource:
    """What a stream reads, how it renders, and how it looks its run up."""

    bus: EventBus
    run_id: str
    render: Renderer
    stored_run: StoredRun
    gate: StreamGate
    heartbeat_s: float
    framing: Framing = DASHSCOPE


class _Leg:
    """One stream's progress through its run's events."""

    def __init__(self, source: StreamSource, after_seq: int) -> None:
        self.src = source
        self.seq = after_seq
        self.pending: list[RunEvent] = []
        self.at = 0  # the next of `pending` to render
        self.last_run: Run | None = None
        self.over = False

    async def next_bytes(self) -> bytes:
        if self.src.gate.closing:
            return self._end_with_error(SHUTTING_DOWN)
        if self.at >= len(self.pending):
            try:
                await self._read(self.src.heartbeat_s)
            except EventLogGone:
                return self._end_with_error(FELL_BEHIND)
            if not self.pending:
                return await self._quiet()
        return self._render_some()

    async def _read(self, timeout_s: float) -> None:
        self.pending = await self.src.bus.read(self.src.run_id, self.seq, timeout_s, READ_LIMIT)
        self.at = 0

    def _render_some(self) -> bytes:
        chunk = bytearray()
        while self.at < len(self.pending) and len(chunk) < CHUNK_BYTES:
            event = self.pending[self.at]
            self.at += 1
            self.seq = event.seq
            if isinstance(event.data, Run):
                self.last_run = event.data
            rendered = self.src.render(event)
            if rendered is not None:
                chunk += self.src.framing.frame(rendered[0], rendered[1], event.seq)
            if event.name in FINAL_EVENTS:
                self.over = True
                return bytes(chunk + self.src.framing.done)
        return bytes(chunk)

    async def _quiet(self) -> bytes:
        """Nothing came for a heartbeat: check the run has not ended without its event."""
        if self.src.gate.closing:
            return self._end_with_error(SHUTTING_DOWN)
        try:
            run = await self.src.stored_run()
        except Exception:
            log.warning("run %s: could not look the run up for its stream", self.src.run_id)
            return HEARTBEAT
        if run is not None and run_event_name(run) not in FINAL_EVENTS:
            return HEARTBEAT
        try:  # the final event may be a moment behind the stored state
            await self._read(GRACE_S)
        except EventLogGone:
            self.pending = []
        if self.pending:
            return self._render_some()
        return self._end_with_run(run)

    def _end_with_run(self, run: Run | None) -> bytes:
        if run is None and self.last_run is not None:
            run = replace(self.last_run)  # gone with its thread: it ended cancelled
            if rs.can_transition(run.status, rs.RunStatus.CANCELLED):
                rs.transition(run, rs.RunStatus.CANCELLED, now_ms())
        if run is None:
            return self._end_with_error(RUN_GONE)
        self.over = True
        return self._last(RunEvent(seq=0, name=run_event_name(run), data=run))

    def _end_with_error(self, error: StreamError) -> bytes:
        self.over = True
        return self._last(RunEvent(seq=0, name="error", data=error))

    def _last(self, event: RunEvent) -> bytes:
        rendered = self.src.render(event)
        framing = self.src.framing
        return (framing.frame(*rendered, None) if rendered is not None else b"") + framing.done


async def run_frames(
    source: StreamSource, after_seq: int, prefix: bytes = b""
) -> AsyncIterator[bytes]:
    """The run's events after `after_seq`, up to and including the one that ends this leg."""
    if prefix:
        yield prefix
    leg = _Leg(source, after_seq)
    while not leg.over:
        data = await leg.next_bytes()
        if data:
            yield data


def sse_response(frames: AsyncIterator[bytes]) -> StreamingResponse:
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(frames, media_type="text/event-stream;charset=UTF-8", headers=headers)
