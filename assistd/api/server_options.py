"""How uvicorn serves the app: what a slow client may hold, and how shutting down ends.

uvicorn closes a keep-alive connection that stays idle, but its timer stops at the first
byte (a client that sends part of a request head and then nothing holds the connection
forever), and a client that stops reading a response holds it, with everything buffered
for it, as long as it likes. So here a request head must be complete within
`request_header_timeout_s` of the connection opening or of the previous response, a
client that takes nothing of a pending response for `client_stall_timeout_s` is
disconnected, and the kernel's send buffer of a connection is capped. (Request bodies
have their own deadline, see assistd.api.limits.)

A request's task starts once the bytes that carried its head are parsed, with its first
step taken there and then (assistd.api.eager_start): a request that needs no wait of
its own is answered in the loop's pass that read it, and one whose body came with its
head has the body at hand.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import socket
from typing import Any

from uvicorn._types import ASGI3Application
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from assistd.api.eager_start import start_eagerly
from assistd.settings import Settings

KEEP_ALIVE_S = 5  # an idle keep-alive connection is closed after this
SEND_BUFFER_BYTES = 128 * 1024  # the kernel's send buffer per connection (it doubles it)
WRITE_HIGH_WATER = 64 * 1024  # what the transport buffers above the kernel before pausing


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Options for uvicorn.run/Config. On SIGTERM whatever is still open after the
    shutdown deadline is cut off (streams end at once anyway, see assistd.api.draining)."""
    return {
        "http": guarded_protocol(
            settings.request_header_timeout_s, settings.client_stall_timeout_s
        ),
        "timeout_keep_alive": KEEP_ALIVE_S,
        "timeout_graceful_shutdown": math.ceil(settings.shutdown_timeout_s),
    }


def guarded_protocol(head_timeout_s: float, stall_timeout_s: float) -> type[HttpToolsProtocol]:
    """uvicorn's HTTP/1.1 protocol (httptools) with the deadlines above, starting each
    request's task eagerly."""

    class GuardedProtocol(HttpToolsProtocol):
        _head_timer: asyncio.TimerHandle | None = None
        _waiting_after: object = None  # the request cycle before the awaited head
        _stall_timer: asyncio.TimerHandle | None = None
        _parsing = False
        _starting: tuple[RequestResponseCycle, ASGI3Application] | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)  # type: ignore[arg-type]
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
            self.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
            self._arm_head_timer()

        def data_received(self, data: bytes) -> None:
            self._parsing = True
            try:
                super().data_received(data)
            finally:
                self._parsing = False
            if self._starting is not None:
                cycle, app = self._starting
                self._starting = None
                self._start_now(cycle, app)
            if self.cycle is not self._waiting_after:  # a head arrived: a new cycle began
                self._head_timer = _cancel(self._head_timer)

        def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
            if self._parsing and self._starting is None:  # once the bytes are parsed
                self._starting = (cycle, app)
                return
            super()._start_asgi_task(cycle, app)  # a pipelined request, its turn come

        def _start_now(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
            fresh = contextvars.Context() if self.config.reset_contextvars else None
            task = start_eagerly(self.loop, cycle.run_asgi(app), fresh)
            task.add_done_callback(self.tasks.discard)
            self.tasks.add(task)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self.cycle.response_complete and not self.transport.is_closing():
                self._arm_head_timer()  # (a pipelined request under way needs no timer)

        def pause_writing(self) -> None:
            super().pause_writing()
            self._stall_timer = _cancel(self._stall_timer)
            self._stall_timer = self.loop.call_later(stall_timeout_s, self.transport.abort)

        def resume_writing(self) -> None:
            super().resume_writing()
            self._stall_timer = _cancel(self._stall_timer)

        def connection_lost(self, exc: Exception | None) -> None:
            self._head_timer = _cancel(self._head_timer)
            self._stall_timer = _cancel(self._stall_timer)
            super().connection_lost(exc)

        def _arm_head_timer(self) -> None:
            self._head_timer = _cancel(self._head_timer)
            self._waiting_after = self.cycle
            self._head_timer = self.loop.call_later(head_timeout_s, self._head_too_slow)

        def _head_too_slow(self) -> None:
            self._head_timer = None
            if self.cycle is self._waiting_after and not self.transport.is_closing():
                self.transport.close()

    return GuardedProtocol


def _cancel(timer: asyncio.TimerHandle | None) -> asyncio.TimerHandle | None:
    """Cancels the timer; returns None, for the attribute that held it."""
    if timer is not None:
        timer.cancel()
    return None
