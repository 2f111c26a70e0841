"""The worker process of the compute pool (assistd.tools.offload).

It reads framed requests on stdin, runs each (a module-level function and its arguments)
and writes the framed reply on its own copy of stdout. It runs under an address-space
limit and dies with the server. Kept small: it imports only what the functions need.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import os
import pickle
import resource
import signal
import struct
import sys
from typing import IO, Any

HEADER = struct.Struct("!I")  # the length of the pickled frame that follows
PR_SET_PDEATHSIG = 1


def read_frame(stream: IO[bytes]) -> bytes | None:
    """One frame, or None at the end of the stream."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    size = HEADER.unpack(header)[0]
    body = stream.read(size)
    return body if len(body) == size else None


def frame(payload: bytes) -> bytes:
    return HEADER.pack(len(payload)) + payload


def resolve(module: str, qualname: str) -> Any:
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


def answer(request: bytes) -> bytes:
    """The pickled ("ok", value) or ("error", exception) of one request."""
    try:
        module, qualname, args, kwargs = pickle.loads(request)
        return pickle.dumps(("ok", resolve(module, qualname)(*args, **kwargs)))
    except Exception as exc:
        try:
            return pickle.dumps(("error", exc))
        except Exception:  # an exception that does not pickle: keep its type and text
            return pickle.dumps(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))


def _die_with_parent(parent: int) -> None:
    """Linux: killed when the server dies, even by SIGKILL, mid-computation."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the server died before the line above took effect
        os._exit(0)


def main() -> None:
    parent, memory_bytes = int(sys.argv[1]), int(sys.argv[2])
    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server decides when workers end
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # what a function prints goes to the log, not into the replies
    requests = sys.stdin.buffer
    while (request := read_frame(requests)) is not None:
        replies.write(frame(answer(request)))
        replies.flush()


if __name__ == "__main__":
    main()
