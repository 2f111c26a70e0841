"""Accepting connections: every connection waiting, at each turn of the event loop.

The libuv inside uvloop (1.52) accepts one connection per turn of the loop, and under a
streaming load a turn runs thousands of callbacks and takes tens of milliseconds: with
1,000 streams, clients connecting 200 a second waited up to 14 s in the kernel's queue
for their turn (seen with strace: one accept4 per epoll_pwait), while each run, once
accepted, was served in milliseconds. asyncio's own loop accepts up to its backlog per
turn; so does this, with a reader on the listening socket that hands each accepted
socket to the loop (uvicorn's protocol on it, as its own server would make).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable
from typing import Any

import uvicorn

log = logging.getLogger("assistd.server")

# Out of file descriptors (or kernel memory) the listening socket stays readable: accepting
# pauses this long instead of spinning, as asyncio's loop does.
ACCEPT_RETRY_S = 0.5
_SHORT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


class GreedyAcceptor:
    """Accepts every connection waiting on `sock` (up to `backlog` a turn) and serves each
    with a protocol from `protocol_factory`. Offers what uvicorn uses of an
    asyncio.Server: close() and wait_closed()."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        protocol_factory: Callable[[], asyncio.Protocol],
        backlog: int,
    ) -> None:
        self._loop = loop
        self._sock = sock
        self._factory = protocol_factory
        self._backlog = backlog
        self._adopting: set[asyncio.Task[Any]] = set()
        self._retry: asyncio.TimerHandle | None = None
        self._serving = True
        sock.setblocking(False)
        loop.add_reader(sock.fileno(), self.accept_waiting)

    def accept_waiting(self) -> None:
        """Accepts the connections waiting now (the reader's callback)."""
        for _ in range(self._backlog):
            try:
                conn, _address = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue  # the client gave up while it waited
            except OSError as exc:
                self._pause(exc)
                return
            self._adopt(conn)

    def _adopt(self, conn: socket.socket) -> None:
        conn.setblocking(False)
        # Nagle off: an SSE event is a write of its own, and each would wait for the
        # client's delayed ACK of the one before (~40 ms).
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        adopting = self._loop.create_task(self._loop.connect_accepted_socket(self._factory, conn))
        self._adopting.add(adopting)
        adopting.add_done_callback(self._adopted)

    def _adopted(self, task: asyncio.Task[Any]) -> None:
        self._adopting.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.debug("a connection closed before it could be served: %s", exc)

    def _pause(self, exc: OSError) -> None:
        if exc.errno not in _SHORT_OF_RESOURCES:
            log.error("accepting a connection failed: %s", exc)
        else:
            log.warning("cannot accept connections now (%s); trying again shortly", exc.strerror)
        self._loop.remove_reader(self._sock.fileno())
        self._retry = self._loop.call_later(ACCEPT_RETRY_S, self._resume)

    def _resume(self) -> None:
        self._retry = None
        if self._serving:
            self._loop.add_reader(self._sock.fileno(), self.accept_waiting)
            self.accept_waiting()

    def close(self) -> None:
        if not self._serving:
            return
        self._serving = False
        if self._retry is not None:
            self._retry.cancel()
        self._loop.remove_reader(self._sock.fileno())
        self._sock.close()

    async def wait_closed(self) -> None:
        """Connections being set up finish it (uvicorn waits for the connections)."""
        if self._adopting:
            await asyncio.wait(self._adopting)


class AssistdServer(uvicorn.Server):
    """uvicorn's server, accepting its listening sockets' connections greedily."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])  # the lifespan; no listening of uvicorn's own
        if not self.started:
            return
        loop = asyncio.get_running_loop()
        self.servers = [
            GreedyAcceptor(loop, sock, self._protocol, self.config.backlog)  # type: ignore[misc]
            for sock in sockets or []
        ]

    def _protocol(self) -> asyncio.Protocol:
        """What uvicorn's own server makes for a connection."""
        protocol: asyncio.Protocol = self.config.http_protocol_class(  # type: ignore[call-arg]
            config=self.config, server_state=self.server_state, app_state=self.lifespan.state
        )
        return protocol
