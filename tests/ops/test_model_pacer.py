"""The loop's model connections relay in slices (assistd.models.pacer): within the budget
at once, past it in later passes in arrival order, and a closing connection's bytes first."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from assistd.models.pacer import BUDGET_S, MAX_WAITING_BYTES, FeedPacer


class Relay:
    """A connection whose relaying takes `cost_s` of CPU; it notes what it relayed and in
    which pass of the loop."""

    def __init__(self, name: str, log: list[tuple[str, bytes, int]], passes: list[int]) -> None:
        self.name, self.log, self.passes = name, log, passes
        self.cost_s = 0.0
        self.holds: list[bool] = []

    def feed(self, data: bytes) -> None:
        until = time.perf_counter() + self.cost_s
        while time.perf_counter() < until:
            pass
        self.log.append((self.name, data, self.passes[0]))

    def hold(self, held: bool) -> None:
        self.holds.append(held)


async def _passes(stop: asyncio.Event, passes: list[int]) -> None:
    while not stop.is_set():
        passes[0] += 1
        await asyncio.sleep(0)


async def _until(done: Callable[[], bool]) -> None:
    for _ in range(1000):
        if done():
            return
        await asyncio.sleep(0)
    raise AssertionError("not relayed within 1,000 passes")


async def test_within_the_budget_bytes_are_relayed_at_once() -> None:
    log: list[tuple[str, bytes, int]] = []
    a = Relay("a", log, [0])
    pacer = FeedPacer(asyncio.get_running_loop())
    pacer.feed(a, b"1")
    pacer.feed(a, b"2")
    assert [data for _, data, _ in log] == [b"1", b"2"]


async def test_past_the_budget_bytes_wait_for_later_passes_in_order() -> None:
    loop = asyncio.get_running_loop()
    log: list[tuple[str, bytes, int]] = []
    passes = [0]
    stop = asyncio.Event()
    counting = asyncio.create_task(_passes(stop, passes))
    await asyncio.sleep(0)
    pacer = FeedPacer(loop)
    relays = [Relay(name, log, passes) for name in "abcd"]
    for relay in relays:
        relay.cost_s = BUDGET_S / 2
    fed = [(relay, f"{relay.name}{i}".encode()) for i in range(3) for relay in relays]
    loop.call_soon(lambda: [pacer.feed(relay, data) for relay, data in fed])
    await _until(lambda: len(log) == len(fed))
    stop.set()
    await counting
    assert [data for _, data, _ in log] == [data for _, data in fed]  # arrival order
    first_pass = log[0][2]
    assert sum(1 for *_, at in log if at == first_pass) <= 3  # the budget, and the one past it
    assert log[-1][2] - first_pass >= 3  # the rest over later passes


async def test_a_closing_connections_waiting_bytes_come_first() -> None:
    log: list[tuple[str, bytes, int]] = []
    a, b = Relay("a", log, [0]), Relay("b", log, [0])
    a.cost_s = BUDGET_S * 1.1  # spends the pass's budget at once
    pacer = FeedPacer(asyncio.get_running_loop())
    pacer.feed(a, b"a1")
    pacer.feed(b, b"b1")
    pacer.feed(a, b"a2")
    assert [data for _, data, _ in log] == [b"a1"]
    pacer.flush(a)
    assert [data for _, data, _ in log] == [b"a1", b"a2"]
    await _until(lambda: len(log) == 3)
    assert [data for _, data, _ in log] == [b"a1", b"a2", b"b1"]


async def test_too_much_waiting_stops_the_connections_adding_to_it_until_half_is_relayed() -> None:
    log: list[tuple[str, bytes, int]] = []
    first, a, b = Relay("first", log, [0]), Relay("a", log, [0]), Relay("b", log, [0])
    first.cost_s = BUDGET_S * 1.1  # spends the pass's budget: the rest waits
    pacer = FeedPacer(asyncio.get_running_loop())
    pacer.feed(first, b"x")
    block = b"." * (MAX_WAITING_BYTES // 4)
    for _ in range(4):
        pacer.feed(a, block)
    assert a.holds == []  # at the limit, not over it
    pacer.feed(b, block)
    pacer.feed(a, block)
    assert b.holds == [True] and a.holds == [True]  # each once
    await _until(lambda: len(log) == 7)
    assert a.holds == [True, False] and b.holds == [True, False]
    assert [name for name, _, _ in log] == ["first", "a", "a", "a", "a", "b", "a"]


async def test_a_held_connection_that_closes_lets_the_others_read_again() -> None:
    log: list[tuple[str, bytes, int]] = []
    first, a, b = Relay("first", log, [0]), Relay("a", log, [0]), Relay("b", log, [0])
    first.cost_s = BUDGET_S * 1.1
    pacer = FeedPacer(asyncio.get_running_loop())
    pacer.feed(first, b"x")
    pacer.feed(a, b"." * MAX_WAITING_BYTES)
    pacer.feed(b, b"b")
    assert b.holds == [True]
    pacer.flush(a)  # a closed: its bytes relayed, the rest is little
    await _until(lambda: b.holds == [True, False])
