"""Server-sent events: framing, heartbeats, and the end of a leg.

Frames are `id:<seq>`, `event:<name>`, `data:<one line of JSON>` with no space after the
colon (the dashscope SDK needs `event:done` written exactly so). A comment line goes out
whenever the run is quiet for `heartbeat_s`, so no client waits in silence.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import orjson
from fastapi.responses import StreamingResponse

from assistd.core.events import FINAL_EVENTS, EventBus, RunEvent

HEARTBEAT = b": keep-alive\n\n"
DONE = b"event:done\ndata:[DONE]\n\n"
# Turns an event into its wire name and JSON object, or None to skip it on this surface.
Renderer = Callable[[RunEvent], tuple[str, object] | None]


def frame(name: str, data: object, seq: int | None = None) -> bytes:
    head = f"id:{seq}\n" if seq is not None else ""
    return f"{head}event:{name}\ndata:".encode() + orjson.dumps(data) + b"\n\n"


async def run_frames(
    bus: EventBus,
    run_id: str,
    after_seq: int,
    render: Renderer,
    heartbeat_s: float,
    prefix: bytes = b"",
) -> AsyncIterator[bytes]:
    """The run's events after `after_seq`, up to and including the one that ends this leg."""
    if prefix:
        yield prefix
    seq = after_seq
    while True:
        events = await bus.read(run_id, seq, heartbeat_s)
        if not events:
            yield HEARTBEAT
            continue
        chunk = bytearray()
        for event in events:
            seq = event.seq
            rendered = render(event)
            if rendered is not None:
                chunk += frame(rendered[0], rendered[1], event.seq)
            if event.name in FINAL_EVENTS:
                yield bytes(chunk + DONE)
                return
        yield bytes(chunk)


def sse_response(frames: AsyncIterator[bytes]) -> StreamingResponse:
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(frames, media_type="text/event-stream;charset=UTF-8", headers=headers)
