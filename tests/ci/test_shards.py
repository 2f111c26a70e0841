"""scripts/shards.py, which splits the main pass between scripts/test.sh's two lanes: every
test file runs in exactly one shard, and the shards' recorded times are balanced."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _shard(k: int, n: int) -> list[str]:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "shards.py"), str(k), str(n)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.splitlines()


def _all_test_files() -> set[str]:
    tests = ROOT / "tests"
    return {
        p.relative_to(ROOT).as_posix()
        for p in tests.rglob("test_*.py")
        if "__pycache__" not in p.parts
    }


def test_every_test_file_is_in_exactly_one_shard() -> None:
    for n in (1, 2, 3):
        shards = [_shard(k, n) for k in range(1, n + 1)]
        merged = [name for shard in shards for name in shard]
        assert len(merged) == len(set(merged)), shards
        assert set(merged) == _all_test_files()
        assert all(shards), shards


def test_the_recorded_times_are_balanced() -> None:
    times = json.loads((ROOT / "tests" / "durations.json").read_text())
    assert times and all(isinstance(t, float | int) and t >= 0 for t in times.values())
    median = statistics.median(times.values())  # what a file not recorded yet counts as
    totals = [sum(times.get(f, median) for f in _shard(k, 2)) for k in (1, 2)]
    # Longest first onto the lighter shard: they differ by at most the longest file.
    assert abs(totals[0] - totals[1]) <= max(times.values()), totals


def test_a_bad_shard_is_refused() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "shards.py"), "3", "2"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode != 0 and "usage: shards.py K N" in done.stderr
