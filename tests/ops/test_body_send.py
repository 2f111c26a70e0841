"""A stream's middle frames skip the middlewares inside BodySend (assistd.api.body_send),
which see only its start and its last message; the client gets every frame in order."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.types import Message, Receive, Scope, Send

from assistd.api.body_send import BodySend
from assistd.api.sse import sse_response

FRAMES = [b"event:a\ndata:1\n\n", b"event:b\ndata:2\n\n", b"event:done\ndata:[DONE]\n\n"]


class _Watching:
    """A middleware that records every message it is given to send."""

    def __init__(self, app: object, seen: list[Message]) -> None:
        self.app, self.seen = app, seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def watching(message: Message) -> None:
            self.seen.append(message)
            await send(message)

        await self.app(scope, receive, watching)  # type: ignore[operator]


async def _frames() -> AsyncIterator[bytes]:
    for frame in FRAMES:
        yield frame


async def _stream() -> tuple[list[Message], list[Message]]:
    sent: list[Message] = []
    seen: list[Message] = []

    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        await sse_response(_frames())(scope, receive, send)

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    stack = BodySend(_Watching(endpoint, seen))
    await stack({"type": "http", "method": "POST", "path": "/", "headers": []}, receive, send)
    return sent, seen


async def test_the_middle_frames_skip_the_middlewares_inside() -> None:
    sent, seen = await _stream()
    bodies = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert bodies == b"".join(FRAMES)
    assert sent[0]["type"] == "http.response.start" and sent[-1]["more_body"] is False
    assert [m["type"] for m in seen] == ["http.response.start", "http.response.body"]
    assert seen[-1]["more_body"] is False  # the last message goes the whole way
    assert len(sent) > len(seen)
