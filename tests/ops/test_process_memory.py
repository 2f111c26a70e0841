"""Memory given back after a load (assistd.process_memory, assistd.launch): the server and
the worker restart themselves on the C allocator, an explicit PYTHONMALLOC wins, and a
busy spell followed by quiet intervals settles the process (a full collection, the
store's caches emptied, the C heap trimmed) at each of its quiet marks."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from assistd.launch import command_of, restart_argv
from assistd.process_memory import MemorySettler, Quietness
from assistd.store.sqlite import sqlite_store
from tests.support.server import run_server

PYTHON = "/venv/bin/python"


@pytest.mark.parametrize(
    ("args", "command"),
    [
        (["serve", "--port", "9000"], "serve"),
        (["--data-dir", "d", "worker"], "worker"),
        (["--config", "a.toml", "--data-dir=d", "serve"], "serve"),
        (["--help"], None),
        (["keys", "create"], "keys"),
    ],
)
def test_the_command_is_found_past_the_group_options(args: list[str], command: str) -> None:
    assert command_of(args) == command


def test_only_long_running_commands_restart_and_an_explicit_allocator_wins() -> None:
    orig = ["python", "-X", "dev", "-m", "assistd", "serve", "--port", "1"]
    args = ["serve", "--port", "1"]
    assert restart_argv(PYTHON, orig, args, {}) == [PYTHON, *orig[1:]]
    assert restart_argv(PYTHON, orig, args, {"PYTHONMALLOC": "pymalloc"}) is None
    assert restart_argv(PYTHON, ["assistd", "keys"], ["keys"], {}) is None


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    pairs = (item.decode().partition("=") for item in raw if item)
    return {key: value for key, _, value in pairs}


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
def test_the_server_runs_on_the_c_allocator_unless_told_otherwise(tmp_path: Path) -> None:
    with run_server(tmp_path / "a") as server:  # ready: the restarted process answers
        assert _environ(server.pid)["PYTHONMALLOC"] == "malloc"
    with run_server(tmp_path / "b", PYTHONMALLOC="pymalloc") as server:
        assert _environ(server.pid)["PYTHONMALLOC"] == "pymalloc"


def test_a_spell_settles_at_each_quiet_mark_and_only_after_being_busy() -> None:
    quiet = Quietness(interval_s=1.0, settle_after=(2, 4))
    assert [quiet.settle_now(0.0) for _ in range(5)] == [False] * 5  # never busy
    assert not quiet.settle_now(0.5)  # busy
    marks = [quiet.settle_now(0.01) for _ in range(6)]
    assert marks == [False, True, False, True, False, False]
    assert not quiet.settle_now(0.5)
    assert [quiet.settle_now(0.01), quiet.settle_now(0.1), quiet.settle_now(0.01)] == [False] * 3
    assert quiet.settle_now(0.01)  # a middling interval is not quiet: counted again


async def test_the_settler_settles_after_a_busy_spell(tmp_path: Path) -> None:
    store = sqlite_store(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    await store.migrate()
    async with store.admin(write=True):
        pass  # a kept connection, whose cache the settle empties
    released: list[str] = []

    def release() -> None:
        store.release_memory()
        released.append("store")

    settler = MemorySettler(release, quietness=Quietness(interval_s=0.05, settle_after=(2,)))
    settler.start()
    try:
        await asyncio.sleep(0.06)
        spin_until = time.process_time() + 0.15
        while time.process_time() < spin_until:  # busy: the loop's own CPU
            pass
        for _ in range(100):
            await asyncio.sleep(0.05)
            if settler.settles:
                break
        assert settler.settles == 1 and released == ["store"]
    finally:
        await settler.close()
        await store.close()
