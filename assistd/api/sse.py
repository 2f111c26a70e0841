"""Server-sent events: framing, heartbeats, the end of a leg, and resuming a stream.

Frames are `event:<name>` and `data:<one line of JSON>` with no space after the colon
(the dashscope SDK needs `event:done` written exactly so). A comment line goes out
whenever the run is quiet for `heartbeat_s`, so no client waits in silence.

Resumable streams are an assistd extension the vendor SDKs never see. A client that asks
for them (`event_ids=true` in the query or `X-Assistd-Event-Ids: true`) gets an
`id:<seq>` line before each event, `seq` being the run's event sequence number, the same
on every replica since the bus assigns it. Nobody else gets `id:` lines: the openai SDK
breaks on them. A client that lost its stream follows the run again from the last `seq`
it saw (`Last-Event-ID`, or `after=<seq>`) through `resumed_frames`, and gets the rest
of the leg, nothing missed and nothing twice.

Every leg ends: after the run's final event, or, should that event never come (the run
deleted behind this server's back, or a worker killed between committing the run's end
and publishing it), at the first heartbeat that finds the run ended or gone, with the
run as stored; that last frame has no `id:`, being in no log. A stream also ends, with
an `error` frame, when the server shuts down, and when its reader fell so far behind
that the run's events are no longer kept. Frames go out in chunks of at most about
CHUNK_BYTES, so a reader that does not read holds little of the server's memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace

import orjson
from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from assistd.api.body_send import DirectWriter, body_send, direct_writer
from assistd.core import runs as rs
from assistd.core.events import (
    FINAL_EVENTS,
    EventBus,
    EventLogGone,
    FollowedBus,
    RunEvent,
    StreamError,
    run_event_name,
)
from assistd.core.ids import now_ms
from assistd.core.objects import Run
from assistd.errors import Gone, InvalidRequest, echo

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

EVENT_IDS_PARAM = "event_ids"
EVENT_IDS_HEADER = "x-assistd-event-ids"
AFTER_PARAM = "after"
LAST_EVENT_ID = "last-event-id"
_YES, _NO = ("true", "1"), ("false", "0")

# Turns an event into its wire name and JSON object, or None to skip it on this surface.
Renderer = Callable[[RunEvent], tuple[str, object] | None]
# The run as stored now, or None if it no longer exists.
StoredRun = Callable[[], Awaitable[Run | None]]


def frame(name: str, data: object, seq: int | None = None) -> bytes:
    head = f"id:{seq}\n" if seq is not None else ""
    return f"{head}event:{name}\ndata:".encode() + orjson.dumps(data) + b"\n\n"


def spaced_frame(name: str, data: object, seq: int | None = None) -> bytes:
    """`event: <name>` / `data: <json>`, as OpenAI writes them; `id:` only when asked for
    (the openai SDK never resets the last event id, so one would break it)."""
    head = f"id: {seq}\n" if seq is not None else ""
    return f"{head}event: {name}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"


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


class DirectLine:
    """How a stream's frames can be written at once, once its response has started (see
    api.body_send.DirectWriter); None where they cannot."""

    __slots__ = ("writer",)

    def __init__(self) -> None:
        self.writer: DirectWriter | None = None

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()


@dataclass(slots=True, frozen=True)
class StreamSource:
    """What a stream reads, how it renders, and how it looks its run up."""

    bus: EventBus
    run_id: str
    render: Renderer
    stored_run: StoredRun
    gate: StreamGate
    heartbeat_s: float
    event_ids: bool = False  # write `id:<seq>` before each event (asked for, see above)
    framing: Framing = DASHSCOPE
    direct: DirectLine = field(default_factory=DirectLine)


class _Leg:
    """One stream's progress through its run's events. On a bus that hands events over
    as they are published (core.events.FollowedBus), a leg waiting for its next event
    takes each one that does not end it and writes its frame there and then, when the
    response can be written at once (`take`)."""

    def __init__(self, source: StreamSource, after_seq: int) -> None:
        self.src = source
        self.seq = after_seq
        self.pending: list[RunEvent] = []
        self.at = 0  # the next of `pending` to render
        self.last_run: Run | None = None
        self.over = False
        self.took = False  # events taken since the last read began
        bus = source.bus
        self._follows = bus if isinstance(bus, FollowedBus) else None

    async def next_bytes(self) -> bytes:
        if self.src.gate.closing:
            return self._end_with_error(SHUTTING_DOWN)
        if self.at >= len(self.pending):
            try:
                await self._read(self.src.heartbeat_s)
            except EventLogGone:
                return self._end_with_error(FELL_BEHIND)
            if not self.pending:
                if self.took:  # not quiet: its frames went out as they came
                    self.took = False
                    return b""
                return await self._quiet()
        return self._render_some()

    async def _read(self, timeout_s: float) -> None:
        src = self.src
        if self._follows is not None and src.direct.writer is not None:
            self.pending = await self._follows.follow(src.run_id, self, timeout_s, READ_LIMIT)
        else:
            self.pending = await src.bus.read(src.run_id, self.seq, timeout_s, READ_LIMIT)
        self.at = 0

    def take(self, event: RunEvent) -> bool:
        """Writes `event`'s frame at once (see the class), unless it ends the leg or the
        response cannot be written to now: the next read has it then."""
        src, writer = self.src, self.src.direct.writer
        if writer is None or event.seq != self.seq + 1 or event.name in FINAL_EVENTS:
            return False
        if src.gate.closing:
            return False
        rendered = src.render(event)
        if rendered is not None:
            seq = event.seq if src.event_ids else None
            if not writer.write(src.framing.frame(*rendered, seq)):
                return False
        self.seq = event.seq
        if isinstance(event.data, Run):
            self.last_run = event.data
        self.took = True
        return True

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
                seq = event.seq if self.src.event_ids else None
                chunk += self.src.framing.frame(*rendered, seq)
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


_DONES = (DASHSCOPE.done, OPENAI.done)


class SseResponse(StreamingResponse):
    """Ends the body in the same socket write as the leg's last frames, where the plain
    StreamingResponse spends a write of its own on the end of the chunked body.

    The stream is written in the request's own task, and a small task waits for the
    client to go away and then cancels it: the plain StreamingResponse opens an anyio
    task group and writes in a second task, which costs about ten times the CPU a stream
    (some 70 us, on the way to every run's first token) and a loop pass before the first
    byte."""

    direct: DirectLine | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        assert task is not None
        gone: list[BaseException | None] = []  # the client left (or listening failed)

        async def watch() -> None:
            try:
                await self.listen_for_disconnect(receive)
                gone.append(None)
            except Exception as exc:
                gone.append(exc)
            task.cancel()

        watcher = asyncio.ensure_future(watch())
        try:
            await self.stream_frames(send, body_send(scope, send), scope)
        except asyncio.CancelledError:
            if not gone or task.uncancel() > 0:  # cancelled from outside: so be it
                raise
            if gone[0] is not None:
                raise gone[0] from None
        finally:
            watcher.cancel()

    async def stream_response(self, send: Send) -> None:
        await self.stream_frames(send, send)

    async def stream_frames(self, send: Send, middle: Send, scope: Scope | None = None) -> None:
        """The start and the last message through `send`, the frames between through
        `middle`, or, where the server allows and the stream follows its run, written at
        once (see api.body_send)."""
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        direct = self.direct
        if direct is not None and scope is not None:
            direct.writer = direct_writer(scope)
        held = b""  # a leg's last frames: its generator ends right after them
        async for chunk in self.body_iterator:
            assert isinstance(chunk, bytes)
            if direct is not None:
                direct.flush()  # frames written at once go first
            if held:
                await middle({"type": "http.response.body", "body": held, "more_body": True})
            if chunk.endswith(_DONES):  # a done frame ends every leg
                held = chunk
            else:
                held = b""
                await middle({"type": "http.response.body", "body": chunk, "more_body": True})
        if direct is not None:
            direct.flush()
        await send({"type": "http.response.body", "body": held, "more_body": False})


def sse_response(frames: AsyncIterator[bytes], direct: DirectLine | None = None) -> SseResponse:
    """`direct`: the stream's source's, to write its frames at once where it can."""
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    response = SseResponse(frames, media_type="text/event-stream;charset=UTF-8", headers=headers)
    response.direct = direct
    return response


def wants_event_ids(request: Request) -> bool:
    """Whether the client asked for `id:<seq>` lines, by query parameter or header."""
    asked = False
    for name, value in (
        (EVENT_IDS_PARAM, request.query_params.get(EVENT_IDS_PARAM)),
        ("X-Assistd-Event-Ids", request.headers.get(EVENT_IDS_HEADER)),
    ):
        if value is None:
            continue
        flag = value.strip().lower()
        if flag not in _YES + _NO:
            raise InvalidRequest(f"'{name}' must be 'true' or 'false', not '{echo(value)}'.", name)
        asked = asked or flag in _YES
    return asked


def resume_point(request: Request) -> int:
    """The sequence number a reconnecting client saw last: `Last-Event-ID` (which a
    browser's EventSource sends by itself, so it wins), else `after`, else 0."""
    for name, value in (
        ("Last-Event-ID", request.headers.get(LAST_EVENT_ID)),
        (AFTER_PARAM, request.query_params.get(AFTER_PARAM)),
    ):
        if value is None:
            continue
        text = value.strip()
        if not text.isascii() or not text.isdigit() or len(text) > 18:  # int() caps digits
            raise InvalidRequest(
                f"'{name}' must be an event sequence number (0 or more), not '{echo(value)}'.",
                name,
            )
        return int(text)
    return 0


def events_gone(run_id: str) -> Gone:
    return Gone(
        f"The events of run '{echo(run_id)}' are no longer kept, so its stream cannot be "
        "resumed; retrieve the run and its messages instead."
    )


async def resumed_frames(source: StreamSource, after_seq: int) -> AsyncIterator[bytes]:
    """The rest of the leg a client was reading when it saw event `after_seq`, up to and
    including the event that ends that leg. Checked before any byte goes out: a run whose
    events are no longer kept (or kept only from a later event) is `Gone`, and a sequence
    number the run has not reached is an InvalidRequest."""
    bus, run_id = source.bus, source.run_id
    try:
        last = await bus.last_seq(run_id)
        if last == 0:  # every run has events from its creation on: these were dropped
            raise EventLogGone(run_id)
        if after_seq > last:
            raise InvalidRequest(
                f"Run '{echo(run_id)}' has no event {after_seq}; its latest is {last}.", "after"
            )
        if after_seq < last:
            await bus.read(run_id, after_seq, 0.0, 1)  # raises if the next ones were trimmed
        elif await _saw_leg_end(bus, run_id, after_seq):
            return _done_only(
                source.framing
            )  # nothing follows yet; repeating the end would duplicate it
    except EventLogGone:
        raise events_gone(run_id) from None
    return run_frames(source, after_seq)


async def _saw_leg_end(bus: EventBus, run_id: str, seq: int) -> bool:
    """Whether event `seq` (the run's newest) ends a leg."""
    if seq == 0:
        return False
    seen = await bus.read(run_id, seq - 1, 0.0, 1)
    return bool(seen) and seen[0].name in FINAL_EVENTS


async def _done_only(framing: Framing) -> AsyncIterator[bytes]:
    yield framing.done
