"""The load generator of the stream-load figure (`python -m bench.runs --streams N`): many
streamed runs at once, in a process of its own so its work is accounted apart from the
server's and never delays the GET probe.

Each stream is one HTTP/1.1 connection written and read by hand on asyncio (uvloop when
installed): the request goes out as bytes, and the body is only scanned for the marker of
a delta and of the end, never parsed, which keeps the client's CPU a delta to a few
microseconds (httpx spends tens). A delta's time is when the read holding it returned.

    python -m bench.loadgen < plan.json > found.json

The plan (JSON on stdin): host, port, and `requests`, one per stream: the request head and
body to send. `marker` and `end` are the bytes that mark a delta and the stream's end;
`ok` what a successful stream holds; `ramp_s` spreads the starts evenly over that time.
Prints one JSON object: per stream its delta times' gaps beyond `pace_s` (ms), time to the
first delta (ms), errors, and this process's CPU seconds.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import resource
import sys
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Stream:
    start: float = 0.0
    head: float = 0.0  # when the response head arrived
    deltas: list[float] = field(default_factory=list)
    error: str | None = None


def _count(marker: bytes, tail: bytes, chunk: bytes) -> tuple[int, bytes]:
    """Markers in `chunk`, including one split across the previous read's `tail`."""
    data = tail + chunk
    return data.count(marker), data[-(len(marker) - 1) :]


async def one(plan: dict[str, Any], request: bytes, delay: float) -> Stream:
    await asyncio.sleep(delay)
    marker, end, ok = (plan[k].encode() for k in ("marker", "end", "ok"))
    found = Stream(start=time.perf_counter())
    writer = None
    try:
        reader, writer = await asyncio.open_connection(plan["host"], plan["port"])
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        found.head = time.perf_counter()
        if not head.startswith(b"HTTP/1.1 200"):
            found.error = head.split(b"\r\n", 1)[0].decode(errors="replace")
            return found
        tail, end_tail, seen_ok, over = b"", b"", False, False
        while not over:
            chunk = await reader.read(65536)
            if not chunk:
                break
            now = time.perf_counter()
            n, new_tail = _count(marker, tail, chunk)
            found.deltas += [now] * n
            seen_ok = seen_ok or ok in tail + chunk
            over = end in end_tail + chunk
            tail, end_tail = new_tail, (end_tail + chunk)[-len(end) :]
        if not over or not seen_ok:
            found.error = "the stream ended without completing" if over else "connection closed"
    except Exception as exc:  # counted as this stream's error
        found.error = f"{type(exc).__name__}: {exc}"
    finally:
        if writer is not None:
            writer.close()
    return found


def _summary(streams: list[Stream], pace_s: float) -> dict[str, Any]:
    gaps: list[float] = []
    ttft: list[float] = []
    heads: list[float] = []
    for s in streams:
        if s.error is None and s.deltas:
            ttft.append((s.deltas[0] - s.start) * 1000)
            heads.append((s.head - s.start) * 1000)
            gaps += [(b - a - pace_s) * 1000 for a, b in itertools.pairwise(s.deltas)]
    errors = [s.error for s in streams if s.error is not None]
    return {
        "streams": len(streams),
        "errors": len(errors),
        "first_errors": errors[:3],
        "deltas": sum(len(s.deltas) for s in streams),
        "gaps_ms": [round(g, 3) for g in gaps],
        "ttft_ms": [round(t, 3) for t in ttft],
        "head_ms": [round(t, 3) for t in heads],
    }


async def main_async(plan: dict[str, Any]) -> dict[str, Any]:
    requests = [r.encode() for r in plan["requests"]]
    step = plan["ramp_s"] / max(len(requests), 1)
    started = time.perf_counter()
    streams = await asyncio.gather(*(one(plan, r, i * step) for i, r in enumerate(requests)))
    found = _summary(list(streams), plan["pace_s"])
    found["wall_s"] = round(time.perf_counter() - started, 2)
    return found


def main() -> None:
    plan = json.loads(sys.stdin.read())
    try:
        import uvloop

        found = uvloop.run(main_async(plan))
    except ImportError:
        found = asyncio.run(main_async(plan))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    found["client_cpu_s"] = round(usage.ru_utime + usage.ru_stime, 2)
    print(json.dumps(found), flush=True)


if __name__ == "__main__":
    main()
