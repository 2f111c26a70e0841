"""Model replies relayed in slices, so that the loop reads its sockets between them.

A streamed reply's tokens are relayed in the step of the connection that reads them
(http_stream: parsed, published, written to the client), and a model that batches, as
the servers for many users do, sends a token of every stream at once: a thousand streams'
tokens are one pass of the loop, 30-40 ms, and a request that came meanwhile waited for
all of it. So the loop's model connections share one budget of BUDGET_S a pass: what
arrives once it is spent waits, in arrival order, for the pass's end, and what is still
waiting then goes on after the next read of the sockets. The same work is done, in the
same order; only the loop's reads come between its slices. Should more than
MAX_WAITING_BYTES wait (a loop that cannot keep up), the connections that add to it stop
reading until half of it is relayed, so the kernel's buffers and the model wait, as they
did when every byte was relayed where it was read.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections import deque
from typing import Protocol

BUDGET_S = 0.004  # of relaying a pass, before the loop reads its sockets again
MAX_WAITING_BYTES = 1 << 20


class Fed(Protocol):
    """A connection whose bytes are paced: `feed` relays them."""

    def feed(self, data: bytes) -> None: ...

    def hold(self, held: bool) -> None:
        """Stops reading (True) or reads again (False)."""


class FeedPacer:
    """The loop's budget (see the module) and what waits for it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._spent = 0.0
        self._waiting: deque[tuple[Fed, bytes]] = deque()
        self._waiting_bytes = 0
        self._held: set[Fed] = set()
        self._turn_asked = False

    def feed(self, connection: Fed, data: bytes) -> None:
        """Relays `data` now, or, once the pass's budget is spent (or bytes wait), later."""
        if self._waiting or self._spent >= BUDGET_S:
            self._waiting.append((connection, data))
            self._waiting_bytes += len(data)
            if self._waiting_bytes > MAX_WAITING_BYTES and connection not in self._held:
                self._held.add(connection)
                connection.hold(True)
            self._ask_turn()
            return
        self._relay(connection, data)

    def flush(self, connection: Fed) -> None:
        """Relays now what waits of `connection` (it closed: its bytes come first)."""
        self._held.discard(connection)
        if not any(fed is connection for fed, _ in self._waiting):
            return
        kept: deque[tuple[Fed, bytes]] = deque()
        mine: list[tuple[Fed, bytes]] = []
        for fed, data in self._waiting:
            (mine if fed is connection else kept).append((fed, data))
        self._waiting = kept
        for fed, data in mine:
            self._waiting_bytes -= len(data)
            fed.feed(data)
        self._ask_turn()  # the turn lets the held read again, should this have emptied it

    def _relay(self, connection: Fed, data: bytes) -> None:
        started = time.perf_counter()
        try:
            connection.feed(data)
        finally:
            self._spent += time.perf_counter() - started
            self._ask_turn()

    def _ask_turn(self) -> None:
        if not self._turn_asked:
            self._turn_asked = True
            self._loop.call_soon(self._turn)

    def _turn(self) -> None:
        """After a pass's reads: a new budget, spent first on what waits."""
        self._turn_asked = False
        self._spent = 0.0
        waiting = self._waiting
        while waiting and self._spent < BUDGET_S:
            connection, data = waiting.popleft()
            self._waiting_bytes -= len(data)
            self._relay(connection, data)
        if self._held and self._waiting_bytes <= MAX_WAITING_BYTES // 2:
            held, self._held = self._held, set()
            for connection in held:
                connection.hold(False)


_pacers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, FeedPacer] = (
    weakref.WeakKeyDictionary()
)


def pacer_of(loop: asyncio.AbstractEventLoop) -> FeedPacer:
    """The loop's one pacer, shared by every model connection on it."""
    pacer = _pacers.get(loop)
    if pacer is None:
        pacer = _pacers[loop] = FeedPacer(loop)
    return pacer
