"""A fast scripted model for the run benchmarks: OpenAI chat completions over HTTP/1.1
keep-alive, on asyncio (uvloop when installed), in its own process. The answer is chosen
by the model name:

    instant        a one-sentence answer, all at once
    words-N        N words, one delta each, written as fast as the socket takes them
    paced-R-N      N words at R deltas a second

The chunks are exactly those of the test fake (tests/support/fake_model.py: a role chunk,
one chunk a word, a finish chunk, a usage chunk, [DONE]). The test fake itself (HTTP/1.0,
a thread per request, a listen backlog of 5) caps out far below what the benchmark asks
of a model (hundreds of calls a second, 200 paced streams at once), and its pacing
drifts by seconds under that load, which would measure the fake instead of assistd.

    python -m bench.fake_server --port N
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from typing import Any

INSTANT = "A ragdoll cat, sitting on a windowsill, drawn in ink."
HEAD_STREAM = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
    b"Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
)


def words(n: int) -> list[str]:
    parts = [f"w{i % 1000}" for i in range(n)]
    return [p + (" " if i < n - 1 else "") for i, p in enumerate(parts)]


def plan_for(model: str) -> tuple[list[str], float]:
    """The answer's words and the pause before each (0: as fast as possible)."""
    kind, _, rest = model.partition("-")
    if kind == "words":
        return words(int(rest)), 0.0
    if kind == "paced":
        rate, _, n = rest.partition("-")
        return words(int(n)), 1.0 / float(rate)
    text = INSTANT.split(" ")
    return [w + (" " if i < len(text) - 1 else "") for i, w in enumerate(text)], 0.0


def _event(model: str, data: dict[str, Any]) -> bytes:
    raw = b"data: " + json.dumps(data).encode() + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(raw), raw)


def _chunk(model: str, delta: dict[str, Any], finish: str | None) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return _event(
        model,
        {
            "id": "chatcmpl-x",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [choice],
        },
    )


def _tail(model: str, n: int) -> bytes:
    usage = {"prompt_tokens": 10, "completion_tokens": n, "total_tokens": 10 + n}
    done = b"data: [DONE]\n\n"
    return (
        _chunk(model, {}, "stop")
        + _event(
            model,
            {
                "id": "chatcmpl-x",
                "object": "chat.completion.chunk",
                "model": model,
                "choices": [],
                "usage": usage,
            },
        )
        + b"%x\r\n%s\r\n0\r\n\r\n" % (len(done), done)
    )


async def _stream(writer: asyncio.StreamWriter, model: str) -> None:
    parts, pause = plan_for(model)
    writer.write(HEAD_STREAM + _chunk(model, {"role": "assistant", "content": ""}, None))
    if not pause:
        for i, word in enumerate(parts):
            writer.write(_chunk(model, {"content": word}, None))
            if i % 64 == 63:
                await writer.drain()
    else:
        for word in parts:
            await asyncio.sleep(pause)
            writer.write(_chunk(model, {"content": word}, None))
    writer.write(_tail(model, len(parts)))
    await writer.drain()


def _whole(model: str) -> bytes:
    parts, _ = plan_for(model)
    body = json.dumps(
        {
            "id": "chatcmpl-x",
            "object": "chat.completion",
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "".join(parts)},
                }
            ],
            "usage": {
                "prompt_tokens": 10,
                "completion_tokens": len(parts),
                "total_tokens": 10 + len(parts),
            },
        }
    ).encode()
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    return head % len(body) + body


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = json.loads(await reader.readexactly(length)) if length else {}
            model = str(body.get("model"))
            if body.get("stream"):
                await _stream(writer, model)
            else:
                writer.write(_whole(model))
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def _main(port: int) -> None:
    server = await asyncio.start_server(_serve, "127.0.0.1", port, backlog=4096)
    print(f"fake model on port {port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    with contextlib.suppress(KeyboardInterrupt):
        runner(_main(args.port))


if __name__ == "__main__":
    main()
