"""The server's listening socket (assistd.startup.listen, accepted by
assistd.api.acceptor): every connection waiting is accepted at one turn of the loop, not
one a turn as uvloop's own server does; each has Nagle off, so a response's body (or an
SSE event) never waits for the client's delayed ACK of what came before; out of file
descriptors, accepting pauses and then takes up what waited; closed, it accepts no more."""

from __future__ import annotations

import asyncio
import os
import resource
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from assistd.api.acceptor import ACCEPT_RETRY_S, GreedyAcceptor
from assistd.startup import listen


class _Accepted(list[asyncio.BaseTransport]):
    """The connections served so far."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = asyncio.Event()

    def protocol(self) -> asyncio.Protocol:
        accepted = self

        class Counted(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                accepted.append(transport)
                accepted.arrived.set()

        return Counted()

    async def settle(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self) < count:
                self.arrived.clear()
                await self.arrived.wait()


@contextmanager
def _acceptor() -> Iterator[tuple[GreedyAcceptor, int, _Accepted]]:
    made = _Accepted()
    listener = listen("127.0.0.1", 0)
    acceptor = GreedyAcceptor(asyncio.get_running_loop(), listener, made.protocol, backlog=2048)
    try:
        yield acceptor, listener.getsockname()[1], made
    finally:
        acceptor.close()
        for transport in made:
            transport.close()


@contextmanager
def _clients(port: int, count: int) -> Iterator[None]:
    """Connected clients, closed after: the kernel completes each handshake before any
    accept."""
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
    try:
        yield
    finally:
        for client in clients:
            client.close()


async def test_every_waiting_connection_is_accepted_at_one_turn() -> None:
    with _acceptor() as (acceptor, port, made), _clients(port, 50):
        acceptor.accept_waiting()  # one readiness of the listening socket
        await made.settle(50)
        assert len(made) == 50


async def test_accepted_connections_have_nodelay() -> None:
    with _acceptor() as (_, port, made):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        await made.settle(1)
        accepted = made[0].get_extra_info("socket")
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        writer.close()


@contextmanager
def _no_more_descriptors() -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowest_free = os.dup(0)  # a new descriptor takes the lowest free number
    os.close(lowest_free)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_out_of_descriptors_accepting_pauses_then_takes_up_what_waited() -> None:
    with _acceptor() as (acceptor, port, made), _clients(port, 20):
        with _no_more_descriptors():
            acceptor.accept_waiting()  # EMFILE: pauses rather than spinning
            await asyncio.sleep(0.05)
            assert made == []
        await asyncio.sleep(ACCEPT_RETRY_S)
        await made.settle(20)
        assert len(made) == 20


async def test_a_closed_acceptor_accepts_nothing_more() -> None:
    with _acceptor() as (acceptor, port, _):
        acceptor.close()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2)
        await acceptor.wait_closed()
