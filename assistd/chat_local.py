"""`assistd chat` on a local data dir: the app served in this process, on a loopback port
chosen by the kernel, by uvicorn in a background thread, so that the chat talks to it over
HTTP exactly as it talks to a remote server. It holds the data dir's serving lock (a
server already running there is refused; chat with that one through --url) and executes
the runs itself."""

from __future__ import annotations

import asyncio
import contextlib
import io
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from assistd.errors import StartupError
from assistd.settings import Settings

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


class _ServerThread(threading.Thread):
    def __init__(self, settings: Settings, server: uvicorn.Server, listener: object) -> None:
        super().__init__(name="assistd-chat-server", daemon=True)
        self.settings, self.server, self.listener = settings, server, listener
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            with asyncio.Runner(loop_factory=self.server.config.get_loop_factory()) as runner:
                runner.run(self._serve())
        except BaseException as exc:  # handed to the main thread, which says why
            self.failure = exc

    async def _serve(self) -> None:
        from assistd.server_lock import server_lock

        if self.settings.redis_url:  # the distributed shape: one of many servers
            await self.server.serve(sockets=[self.listener])  # type: ignore[list-item]
            return
        async with server_lock(self.settings):
            await self.server.serve(sockets=[self.listener])  # type: ignore[list-item]


@contextmanager
def local_server(settings: Settings) -> Iterator[str]:
    """Serves the app on 127.0.0.1 for the block; yields its base URL."""
    from assistd import startup
    from assistd.api.body_send import ServerSend
    from assistd.api.server_options import uvicorn_options
    from assistd.app import create_app

    listener = startup.listen("127.0.0.1", 0)
    port = int(listener.getsockname()[1])
    settings = settings.model_copy(update={"host": "127.0.0.1", "port": port})
    config = uvicorn.Config(
        ServerSend(create_app(settings)), log_level="warning", log_config=None, access_log=False,
        **uvicorn_options(settings),
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = _ServerThread(settings, server, listener)
    # Start-up prints the server's key notices on standard output: not part of a chat.
    with contextlib.redirect_stdout(io.StringIO()):
        thread.start()
        _wait_started(thread, server)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(STOP_TIMEOUT_S)
        listener.close()


def _wait_started(thread: _ServerThread, server: uvicorn.Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive():
            failure = thread.failure
            if isinstance(failure, StartupError):
                raise StartupError(f"{failure.message} (or chat through it with --url)")
            why = f": {failure!r}" if failure else " (its log above says why)"
            raise StartupError(f"the in-process server did not start{why}")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise StartupError(f"the in-process server did not start in {START_TIMEOUT_S:g} s")
        time.sleep(0.05)
