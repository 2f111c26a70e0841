"""A run's in-memory event log packs its older token deltas (assistd.queue.memory_log):
a reader from any point, with any limit, still gets every event exactly as published,
trimming drops exactly the oldest events, and the packed log holds far less."""

from __future__ import annotations

import random

import pytest

from assistd.core.events import MessageDelta, RunEvent, StepDelta
from assistd.queue.memory_log import TAIL, EventLog, SealedLog, event_cost


def _published(count: int, seed: int) -> list[RunEvent]:
    """Token deltas of two messages and two parts, broken by other events now and then."""
    rng = random.Random(seed)
    events: list[RunEvent] = []
    for seq in range(1, count + 1):
        roll = rng.random()
        if roll < 0.05:
            events.append(RunEvent(seq, "thread.run.step.delta", StepDelta("step_1")))
        elif roll < 0.08:
            events.append(RunEvent(seq, "thread.run.in_progress", None))
        else:
            message = "msg_a" if roll < 0.6 else "msg_b"
            text = rng.choice(["", "a", " word", "é中", "x" * rng.randint(1, 40)])
            delta = MessageDelta(message, text, index=int(roll > 0.9))
            events.append(RunEvent(seq, "thread.message.delta", delta))
    return events


def _logged(events: list[RunEvent]) -> EventLog:
    log = EventLog()
    for event in events:
        log.append(event)
    return log


@pytest.mark.parametrize("count", [1, TAIL, 2 * TAIL, 5 * TAIL + 7])
def test_every_read_returns_the_events_as_published(count: int) -> None:
    events = _published(count, seed=count)
    log = _logged(events)
    assert log.last_seq == count
    for after in range(count + 1):
        for limit in (1, 3, TAIL + 1, 1000):
            assert log.events_after(after, limit) == events[after : after + limit]


def test_a_sealed_log_reads_the_same_and_reopens() -> None:
    events = _published(300, seed=7)
    sealed = _logged(events).sealed(finished_at=12.5)
    assert isinstance(sealed, SealedLog) and type(sealed).__slots__ == ()  # one object
    assert (sealed.last_seq, sealed.trimmed, sealed.finished_at) == (300, 0, 12.5)
    assert sealed.events_after(0, 1000) == events
    assert sealed.events_after(150, 10) == events[150:160]
    assert sealed.events_after(300, 10) == []
    reopened = EventLog()  # a run that goes on
    reopened.reopen(sealed)
    reopened.append(RunEvent(301, "thread.run.queued", None))
    assert reopened.events_after(299, 5) == [events[-1], RunEvent(301, "thread.run.queued", None)]
    assert reopened.events_after(0, 1000) == [*events, RunEvent(301, "thread.run.queued", None)]


def test_a_trimmed_log_keeps_its_place_when_sealed() -> None:
    events = _published(200, seed=3)
    log = _logged(events)
    log.trim(50)
    sealed = log.sealed(finished_at=1.0)
    assert (sealed.last_seq, sealed.trimmed) == (200, 50)
    assert sealed.events_after(50, 1000) == events[50:]
    reopened = EventLog()
    reopened.reopen(sealed)
    assert (reopened.last_seq, reopened.trimmed, len(reopened)) == (200, 50, 150)
    assert reopened.events_after(120, 3) == events[120:123]


@pytest.mark.parametrize("cut", [1, 5, TAIL, TAIL + 3, 200])
def test_trimming_drops_exactly_the_oldest_events(cut: int) -> None:
    events = _published(250, seed=cut)
    log = _logged(events)
    log.trim(cut)
    assert log.trimmed == cut and len(log) == 250 - cut
    assert log.events_after(cut, 1000) == events[cut:]
    assert log.events_after(cut + 10, 5) == events[cut + 10 : cut + 15]
    log.trim(250 - cut)
    assert len(log) == 0 and log.events_after(250, 10) == []


def test_size_follows_what_the_log_holds() -> None:
    deltas = [
        RunEvent(seq, "thread.message.delta", MessageDelta("msg_a", " word"))
        for seq in range(1, 301)
    ]
    log = EventLog()
    changes = sum(log.append(event) for event in deltas)
    assert changes == log.size
    unpacked = sum(event_cost(event) for event in deltas)
    assert log.size < unpacked / 4  # most of it packed: a few bytes a delta
    assert log.sealed(finished_at=0.0).size < unpacked / 20
    changes = log.size  # sealing packed the rest of the tail
    changes += log.trim(300)
    assert changes == log.size == 0
