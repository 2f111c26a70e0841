"""Noticing a stop signal the moment it arrives.

uvicorn waits for open responses to finish before it tells the app to shut down, and an
event stream only finishes when its run does. So the app listens for SIGTERM and SIGINT
itself, beside the server's own handlers (which still run, and still stop the server),
and closes its streams at once.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def on_stop_signal(callback: Callable[[], None]) -> Callable[[], None]:
    """Calls `callback` on the running loop when a stop signal arrives, then hands the
    signal on to the handler that was there before. Returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None  # signals reach the main thread only
    loop = asyncio.get_running_loop()
    before: dict[int, Any] = {}

    def handle(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(callback)
        previous = before[signum]
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:
            signal.signal(signum, previous)
            signal.raise_signal(signum)

    for sig in STOP_SIGNALS:
        before[sig] = signal.signal(sig, handle)

    def undo() -> None:
        for sig, previous in before.items():
            if signal.getsignal(sig) is handle:
                signal.signal(sig, previous)

    return undo
