"""A streamed chat-completions reply, parsed as its bytes arrive, in the connection's step.

Each block of the body is split into server-sent events and each event's JSON into model
chunks (models.base.chunks_of) right where the connection receives it. A text chunk goes
to `take_text` when one is given and nothing is queued before it: the run's token is then
published without waking the task that reads the model (a task step through its chain of
async generators, per token, under a thousand streams). Anything else (the first text,
which opens the reply's message; tool-call pieces; usage; the finish), or text that
`take_text` declines, is queued for that task, and from then on everything behind it is
too, so the order holds.
"""

from __future__ import annotations

from collections import deque

import orjson

from assistd.models.base import ModelChunk, TextDelta, TextTaker, chunks_of


class ReplyFeed:
    def __init__(self, take_text: TextTaker | None = None) -> None:
        self.take_text = take_text
        self.queue: deque[ModelChunk] = deque()
        self.done = False  # `[DONE]` came
        self.failure: BaseException | None = None  # raised to the reader once it has the rest
        self._buffer = b""
        self._data: list[bytes] = []

    def feed(self, block: bytes) -> bool:
        """Parses `block`; whether the reader has something new (chunks, the end, a
        failure) and should be woken."""
        if self.done or self.failure is not None:
            return False
        queued = len(self.queue)
        lines = (self._buffer + block).split(b"\n")
        self._buffer = lines.pop()
        try:
            for line in lines:
                self._line(line.rstrip(b"\r"))
                if self.done:
                    return True
        except Exception as exc:  # a reply that is not JSON, or that reports an error
            self.failure = exc
            return True
        return len(self.queue) != queued

    def finish(self) -> None:
        """The body ended: an event cut off without its closing blank line still counts."""
        if not self.done and self.failure is None and self._data:
            try:
                self._event()
            except Exception as exc:
                self.failure = exc
        self.done = True

    def _line(self, line: bytes) -> None:
        if line.startswith(b"data:"):
            self._data.append(line[6:] if line[5:6] == b" " else line[5:])
        elif not line and self._data:
            self._event()

    def _event(self) -> None:
        payload = b"\n".join(self._data)
        self._data = []
        if payload == b"[DONE]":
            self.done = True
            return
        take, queue = self.take_text, self.queue
        for chunk in chunks_of(orjson.loads(payload)):
            if queue or take is None or type(chunk) is not TextDelta or not take(chunk.text):
                queue.append(chunk)
