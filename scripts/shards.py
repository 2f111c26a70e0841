"""Splits the test files into shards of about equal running time, for scripts/test.sh.

`shards.py K N` prints the test files of shard K (1-based) of N, one a line. Longest first,
each file goes to the shard with the least time so far, by tests/durations.json (seconds per
file, as measured on the main pass); a file it does not list yet counts as the median file.
The split is deterministic, and every file is in exactly one shard.

`shards.py --record LOG...` rewrites tests/durations.json from the `--durations=0` report
of a whole run: `PYTEST_ADDOPTS=--durations=0 scripts/test.sh >LOG`. Only the main pass's
lines count, not the openai 1.x/2.x passes' (a test.sh lane header starts each pass).
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
DURATIONS = TESTS / "durations.json"


def test_files() -> list[str]:
    """What pytest collects: test_*.py below tests/, as paths from the repository root."""
    found = (p for p in TESTS.rglob("test_*.py") if "__pycache__" not in p.parts)
    return sorted(p.relative_to(ROOT).as_posix() for p in found)


def split(count: int) -> list[list[str]]:
    known: dict[str, float] = json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}
    files = test_files()
    median = statistics.median(known.values()) if known else 1.0
    cost = {f: known.get(f, median) for f in files}
    shards: list[list[str]] = [[] for _ in range(count)]
    totals = [0.0] * count
    for name in sorted(files, key=lambda f: (-cost[f], f)):
        lightest = min(range(count), key=lambda i: (totals[i], i))
        shards[lightest].append(name)
        totals[lightest] += cost[name]
    return [sorted(shard) for shard in shards]


# `12.34s call     tests/api/test_x.py::test_y[sqlite]`, as `--durations` prints them.
TIMING = re.compile(r"^\s*([0-9.]+)s (?:setup|call|teardown)\s+(\S+?\.py)::")


def record(logs: list[str]) -> None:
    seconds: dict[str, float] = defaultdict(float)
    for log in logs:
        main_pass = True
        for line in Path(log).read_text(errors="replace").splitlines():
            if line.startswith("=== lane "):
                main_pass = "the main pass" in line
            elif main_pass and (timing := TIMING.match(line)):
                seconds[timing.group(2)] += float(timing.group(1))
    rounded = {path: round(seconds[path], 1) for path in sorted(seconds)}
    DURATIONS.write_text(json.dumps(rounded, indent=1) + "\n")


def main(args: list[str]) -> None:
    if args and args[0] == "--record":
        record(args[1:])
        return
    numbers = [int(a) for a in args if a.isdigit()]
    if len(args) != 2 or len(numbers) != 2 or not 1 <= numbers[0] <= numbers[1]:
        sys.exit("usage: shards.py K N (shard K of N) | shards.py --record LOG...")
    print("\n".join(split(numbers[1])[numbers[0] - 1]))


if __name__ == "__main__":
    main(sys.argv[1:])
