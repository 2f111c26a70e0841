"""The distributed shape's settings that cannot work are refused at start, in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.ops.conftest import clean_env, serve_refused

REDIS = "redis://127.0.0.1:9/0"  # never reached: the refusal comes first


def _refused(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "assistd", *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode != 0 and "Traceback" not in output, output
    return done.stderr.strip().splitlines()[-1]


def test_redis_url_on_sqlite_is_refused(tmp_path: Path) -> None:
    env = clean_env(ASSISTD_DATA_DIR=str(tmp_path / "data"), ASSISTD_REDIS_URL=REDIS)
    for message in (serve_refused(env), _refused(env, "worker")):
        assert message.startswith("Error: redis_url"), message
        assert "needs PostgreSQL" in message and "database_url" in message, message


def test_worker_and_no_worker_are_refused_in_the_embedded_shape(tmp_path: Path) -> None:
    env = clean_env(ASSISTD_DATA_DIR=str(tmp_path / "data"))
    worker = _refused(env, "worker")
    assert worker.startswith("Error: assistd worker is for the distributed shape"), worker
    assert "PostgreSQL" in worker and "redis_url" in worker, worker
    api_only = serve_refused(env, "--no-worker")
    assert "assistd serve --no-worker is for the distributed shape" in api_only, api_only
    assert not (tmp_path / "data" / "assistd.db").exists()
