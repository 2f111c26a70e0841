"""A latency probe in its own process: plain GETs, one at a time, over one keep-alive
connection, so that the load generator's busy event loop never delays the probe's own
timing. Prints the latencies (ns) and when each GET started (`time.perf_counter_ns`, one clock
for every process of the machine) as JSON.

    python -m bench.probe URL KEY PATH --count N            # N GETs, then stop
    python -m bench.probe URL KEY PATH --until-stdin-closes # until told to stop
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

from bench.harness import RawClient


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("key")
    parser.add_argument("path")
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--interval", type=float, default=0.01, help="pause between GETs (s)")
    parser.add_argument("--until-stdin-closes", action="store_true")
    args = parser.parse_args()
    stop = threading.Event()
    if args.until_stdin_closes:

        def watch() -> None:
            sys.stdin.read()
            stop.set()

        threading.Thread(target=watch, daemon=True).start()
    client = RawClient(args.url, {"Authorization": f"Bearer {args.key}"})
    latencies: list[int] = []
    started: list[int] = []
    errors = 0
    print("ready", file=sys.stderr, flush=True)
    while not stop.is_set() and (not args.count or len(latencies) + errors < args.count):
        start = time.perf_counter_ns()
        try:
            status, _ = client.send("GET", args.path)
        except OSError:
            status = 0
        elapsed = time.perf_counter_ns() - start
        if status == 200:
            latencies.append(elapsed)
            started.append(start)
        else:
            errors += 1
        time.sleep(args.interval)
    client.close()
    print(
        json.dumps({"latencies_ns": latencies, "started_ns": started, "errors": errors}), flush=True
    )


if __name__ == "__main__":
    main()
