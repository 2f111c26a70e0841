"""Start a request's task with its first step taken at once, as Python 3.12's eager tasks do.

A task made with `create_task` takes its first step on the loop's next pass, after
everything else that pass found ready. Under load a pass is long (the model sends a token
of many streams at once and the loop relays them all before it reads its sockets again),
so a request waited a whole extra pass before any of its code ran. Most requests need no
wait of their own (SQLite runs on the loop's thread): started eagerly, a GET is answered
in the callback that read it. The task is still made first and is current during that
step (`asyncio.current_task()` works, as anyio's cancel scopes need); its own first step,
on the next pass, hands over what the eager one ended with.
"""

from __future__ import annotations

import asyncio
import contextvars
from asyncio.tasks import _enter_task, _leave_task
from collections.abc import Coroutine, Generator
from typing import Any

_NEW, _YIELDED, _RETURNED, _RAISED, _RUNNING = range(5)


class _Started(Coroutine[Any, Any, Any]):
    """The coroutine a task runs when its first step was taken before the task's (`begin`):
    the task's first `send` gets what that step yielded, returned or raised; every call
    after it goes to the coroutine."""

    __slots__ = ("_coro", "_outcome", "_state")

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self._coro = coro
        self._state = _NEW
        self._outcome: Any = None

    def begin(self) -> None:
        try:
            self._outcome, self._state = self._coro.send(None), _YIELDED
        except StopIteration as done:
            self._outcome, self._state = done.value, _RETURNED
        except BaseException as exc:  # the task raises it, as it would have
            self._outcome, self._state = exc, _RAISED

    def send(self, value: Any) -> Any:
        state, outcome = self._state, self._outcome
        if state in (_NEW, _RUNNING):
            self._state = _RUNNING
            return self._coro.send(value)
        self._state, self._outcome = _RUNNING, None
        if state == _YIELDED:
            return outcome
        if state == _RETURNED:
            raise StopIteration(outcome)
        raise outcome

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        state = self._state
        self._state, self._outcome = _RUNNING, None
        if state in (_RETURNED, _RAISED):  # it had ended: what is thrown comes back out
            raise typ if val is None else val
        return (
            self._coro.throw(typ) if val is None and tb is None else self._coro.throw(typ, val, tb)
        )

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Generator[Any, None, Any]:  # pragma: no cover - tasks call send
        raise TypeError("an eagerly started coroutine is run by its task only")


def start_eagerly(
    loop: asyncio.AbstractEventLoop,
    coro: Coroutine[Any, Any, Any],
    context: contextvars.Context | None = None,
) -> asyncio.Task[Any]:
    """A task running `coro`, whose first step has been taken by the time this returns,
    in the task's context and as the current task. Where a task is running already (the
    caller is one), the first step waits for the loop, as with `create_task`."""
    started = _Started(coro)
    context = contextvars.copy_context() if context is None else context
    task = loop.create_task(started, context=context)
    if asyncio.current_task(loop) is not None:
        return task
    _enter_task(loop, task)
    try:
        context.run(started.begin)
    finally:
        _leave_task(loop, task)
    return task
