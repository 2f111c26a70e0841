"""The durability test under pytest (issue 9): 100 runs on PostgreSQL + Redis, two API
replicas and two workers as real processes, a worker killed with SIGKILL at random moments
and started again each time; nothing may be lost or duplicated. Also the same scenario
on one embedded-shape server with no kills, so a failure of the first is the cluster's,
not the harness's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.durability.chaos import Options, run_chaos, unavailable

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def _needs(shape: str) -> None:
    if why := unavailable(shape):
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)


def test_the_scenario_passes_on_one_server(tmp_path: Path) -> None:
    report = run_chaos(Options(threads=10, shape="embedded"), tmp_path)
    print(report.text())
    assert report.counts.ok, report.text() + "\n" + report.logs
    assert report.counts.runs == 20


def test_killed_workers_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    _needs("distributed")
    report = run_chaos(Options(), tmp_path)
    print(report.text())
    assert report.counts.ok, report.text() + "\n" + report.logs
    assert report.counts.runs == 100
    assert report.kills_mid_run >= 3, "workers were hardly killed mid-run: the test proved nothing"
