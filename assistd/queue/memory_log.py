"""One run's event log as the in-process bus keeps it, and what its events cost.

A streamed run publishes an event a token; 1,000 runs of 300 tokens held 300,000 event
objects (an event, its delta, its text and its sequence number: about 200 bytes each)
spread over the interpreter's small-object arenas, which it cannot give back to the
system while anything else lives in them: after such a load the server stayed 60 %
above its idle size. So only a log's newest events stay as published (live readers read
them as before); older ones are packed, each run of consecutive token deltas of one
message part becoming one text and an array of where each delta ends, and are unpacked
again only for a reader that far behind (one reconnecting).

A finished run's log is sealed (`SealedLog`): one bytes object, its events compressed
JSON (the codec the Redis bus uses) behind a header with what the bus asks of it. What
outlives a load must be few pieces for the process to give its memory back: freed memory
goes back to the system only by whole pages (the C allocator's, see process_memory) or
whole arenas (the interpreter's), and each object of a finished log kept for its
retention pinned one wherever it lay (RSS after a 1,000-stream load x1.36 of idle with
logs of six objects each, x1.13 with none).
"""

from __future__ import annotations

import struct
import sys
import zlib
from array import array
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from assistd.core.events import MessageDelta, RunEvent, StepDelta
from assistd.core.objects import Message
from assistd.queue.codec import event_doc, event_from_doc

# What an event costs in memory beyond its text: the event, its payload object, the
# sequence number and the log's slot (about 150 bytes measured for a token delta).
EVENT_OVERHEAD = 200
OBJECT_COST = 1024  # a run, step or message object, beside any text it carries
PACKED_DELTA_COST = 4  # a packed delta: its end in the text (beside the text itself)
PACKED_RUN_COST = 200  # a packed run of deltas: the object, its text's and array's headers
SEALED_COST = 100  # a sealed log's object, beside its bytes
SEAL_LEVEL = 1  # zlib's fastest: a run's JSON shrinks about fivefold

TAIL = 32  # events a log keeps as published; past twice this, the older half is packed


def event_cost(event: RunEvent) -> int:
    """An estimate of the bytes an event holds, counting the text it carries."""
    data = event.data
    if isinstance(data, MessageDelta):
        return EVENT_OVERHEAD + sys.getsizeof(data.text)
    if isinstance(data, Message):
        return OBJECT_COST + sum(sys.getsizeof(text) for text in _texts(data))
    if isinstance(data, StepDelta):
        return EVENT_OVERHEAD + sum(len(str(call)) for call in data.tool_calls)
    return OBJECT_COST


def _texts(message: Message) -> list[str]:
    parts = (part.get("text") for part in message.content if isinstance(part, dict))
    return [t["value"] for t in parts if isinstance(t, dict) and isinstance(t.get("value"), str)]


@dataclass(slots=True)
class _Deltas:
    """Consecutive token deltas of one message part: their texts joined, and where each
    ends in the joined text."""

    first_seq: int
    name: str
    message_id: str
    index: int
    text: str
    ends: array[int]

    @property
    def count(self) -> int:
        return len(self.ends)

    @property
    def cost(self) -> int:
        return PACKED_RUN_COST + sys.getsizeof(self.text) + PACKED_DELTA_COST * self.count

    def continued_by(self, event: RunEvent, pending: int) -> bool:
        """Whether `event` comes next, after `pending` texts not added yet."""
        data = event.data
        return (
            event.seq == self.first_seq + self.count + pending
            and event.name == self.name
            and data.message_id == self.message_id
            and data.index == self.index
        )

    def extend(self, texts: list[str]) -> None:
        end = self.ends[-1] if self.ends else 0
        for text in texts:
            end += len(text)
            self.ends.append(end)
        self.text += "".join(texts)

    def unpack(self, start: int, stop: int) -> list[RunEvent]:
        """The events at positions start..stop-1 of this run, as they were published."""
        ends, text, name, mid, index = self.ends, self.text, self.name, self.message_id, self.index
        begin = ends[start - 1] if start else 0
        out = []
        for position in range(start, stop):
            end = ends[position]
            delta = MessageDelta(mid, text[begin:end], index)
            out.append(RunEvent(self.first_seq + position, name, delta))
            begin = end
        return out

    def drop_front(self, count: int) -> None:
        cut = self.ends[count - 1]
        self.text = self.text[cut:]
        self.ends = array("I", (end - cut for end in self.ends[count:]))
        self.first_seq += count


_Packed = RunEvent | _Deltas


class EventLog:
    """A run's events in sequence order, from `trimmed + 1` to `last_seq`; `size` is the
    estimated bytes they hold (see event_cost)."""

    __slots__ = ("_packed", "_starts", "_tail", "_tail_costs", "_tail_first", "size", "trimmed")

    def __init__(self) -> None:
        self._packed: list[_Packed] = []  # the older events, compact
        self._starts: list[int] = []  # each packed item's first sequence number
        self._tail: list[RunEvent] = []  # the newest events, as published
        self._tail_costs: list[int] = []  # their event_cost, not worked out again to pack
        self._tail_first = 1  # the sequence number of _tail[0]
        self.size = 0
        self.trimmed = 0  # events dropped from the front (a log kept to max_events)

    @property
    def last_seq(self) -> int:
        return self._tail_first + len(self._tail) - 1

    def __len__(self) -> int:
        return self.last_seq - self.trimmed

    def append(self, event: RunEvent) -> int:
        """Adds the next event; returns how much `size` changed."""
        before = self.size
        cost = event_cost(event)
        self._tail.append(event)
        self._tail_costs.append(cost)
        self.size += cost
        if len(self._tail) >= 2 * TAIL:
            self._pack(len(self._tail) - TAIL)
        return self.size - before

    def sealed(self, finished_at: float) -> SealedLog:
        """The whole log as one object (the run has ended: no live reader needs its events
        as they were); `finished_at` is kept in it for the bus's retention. This log packs
        what is left of its tail first, and its `size` changes with that."""
        self._pack(len(self._tail))
        docs = [_item_doc(item) for item in self._packed]
        block = zlib.compress(orjson.dumps([self._starts, docs]), SEAL_LEVEL)
        return SealedLog(_HEADER.pack(self.last_seq, self.trimmed, finished_at) + block)

    def reopen(self, sealed: SealedLog) -> None:
        """Takes the events of `sealed` (this log new and empty): a run that goes on."""
        self._starts, docs = sealed.contents()
        self._packed = [_item_from_doc(doc) for doc in docs]
        self._tail_first = sealed.last_seq + 1
        self.trimmed = sealed.trimmed
        self.size = sum(_cost(item) for item in self._packed)

    def events_after(self, seq: int, limit: int) -> list[RunEvent]:
        """Up to `limit` events after sequence number `seq` (seq >= trimmed)."""
        if seq + 1 >= self._tail_first:
            start = seq + 1 - self._tail_first
            return self._tail[start : start + limit]
        out = _read_packed(self._starts, self._packed, seq, limit, _as_is)
        return out + self._tail[: limit - len(out)]

    def trim(self, count: int) -> int:
        """Drops the oldest `count` events; returns how much `size` changed."""
        before = self.size
        self._pack(count - (self._tail_first - 1 - self.trimmed))  # what is not packed yet
        while count > 0:
            item = self._packed[0]
            if isinstance(item, RunEvent) or item.count <= count:
                taken = 1 if isinstance(item, RunEvent) else item.count
                self.size -= _cost(item)
                del self._packed[0], self._starts[0]
            else:
                taken = count
                self.size -= item.cost
                item.drop_front(count)
                self.size += item.cost
                self._starts[0] = item.first_seq
            count -= taken
            self.trimmed += taken
        return self.size - before

    def _pack(self, count: int) -> None:
        if count <= 0:
            return
        packing, self._tail = self._tail[:count], self._tail[count:]
        costs, self._tail_costs = self._tail_costs[:count], self._tail_costs[count:]
        self._tail_first += count
        last = self._packed[-1] if self._packed else None
        texts: list[str] = []
        for event, cost in zip(packing, costs, strict=True):
            if isinstance(event.data, MessageDelta):
                self.size -= cost
                if isinstance(last, _Deltas) and last.continued_by(event, len(texts)):
                    texts.append(event.data.text)
                    continue
                last = self._flush(last, texts)
                last = _Deltas(event.seq, event.name, event.data.message_id, event.data.index,
                               "", array("I"))  # fmt: skip
                self._packed.append(last)
                self._starts.append(event.seq)
                self.size += last.cost
                texts = [event.data.text]
            else:
                last = self._flush(last, texts)
                self._packed.append(event)  # kept as it is, at the same cost
                self._starts.append(event.seq)
        self._flush(last, texts)

    def _flush(self, last: _Packed | None, texts: list[str]) -> _Packed | None:
        """Adds the pending `texts` to the packed deltas `last`."""
        if texts and isinstance(last, _Deltas):
            self.size -= last.cost
            last.extend(texts)
            self.size += last.cost
            texts.clear()
        return last


def _cost(item: _Packed) -> int:
    return event_cost(item) if isinstance(item, RunEvent) else item.cost


def _read_packed(
    starts: list[int], items: list[Any], seq: int, limit: int, opened: Callable[[Any], _Packed]
) -> list[RunEvent]:
    """Up to `limit` events after `seq` from packed `items` (each `opened` when read),
    the first of each at `starts`."""
    out: list[RunEvent] = []
    item = bisect_right(starts, seq + 1) - 1
    while len(out) < limit and item < len(items):
        out += _unpack(opened(items[item]), seq + 1 + len(out), limit - len(out))
        item += 1
    return out


def _as_is(item: _Packed) -> _Packed:
    return item


def _unpack(item: _Packed, seq: int, limit: int) -> list[RunEvent]:
    """Up to `limit` events of a packed item from sequence number `seq` on."""
    if isinstance(item, RunEvent):
        return [item]
    start = seq - item.first_seq
    return item.unpack(start, min(item.count, start + limit))


_HEADER = struct.Struct("<IId")  # last_seq, trimmed, finished_at


class SealedLog(bytes):
    """A finished run's log in one object (see the module's docstring): a header with its
    last sequence number, how many events were trimmed and when the run finished, then
    its packed events as compressed JSON, opened by each read and not kept open."""

    __slots__ = ()

    @property
    def last_seq(self) -> int:
        return int(_HEADER.unpack_from(self)[0])

    @property
    def trimmed(self) -> int:
        return int(_HEADER.unpack_from(self)[1])

    @property
    def finished_at(self) -> float:
        return float(_HEADER.unpack_from(self)[2])

    @property
    def size(self) -> int:
        return SEALED_COST + len(self)

    def contents(self) -> tuple[list[int], list[Any]]:
        """Each packed item's first sequence number, and the items as JSON documents."""
        starts, docs = orjson.loads(zlib.decompress(memoryview(self)[_HEADER.size :]))
        return starts, docs

    def events_after(self, seq: int, limit: int) -> list[RunEvent]:
        """Up to `limit` events after `seq` (seq >= trimmed), rebuilding only those."""
        if seq >= self.last_seq:
            return []
        starts, docs = self.contents()
        return _read_packed(starts, docs, seq, limit, _item_from_doc)


def _item_doc(item: _Packed) -> list[Any]:
    if isinstance(item, RunEvent):
        return [item.seq, event_doc(item.name, item.data)]
    return [item.first_seq, item.name, item.message_id, item.index, item.text, item.ends.tolist()]


def _item_from_doc(doc: list[Any]) -> _Packed:
    if len(doc) == 2:
        return RunEvent(doc[0], *event_from_doc(doc[1]))
    first_seq, name, message_id, index, text, ends = doc
    return _Deltas(first_seq, name, message_id, index, text, array("I", ends))
