"""One server per store. A second `assistd serve` on the data dir (or PostgreSQL database)
of a running server refuses to start, naming the PID that holds it, and a second one on a
taken port refuses before it touches any state; neither disturbs the first server's run,
which completes with its message."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from dashscope import Assistants, Messages, Runs, Threads
from sqlalchemy.engine import make_url

from tests.ops.conftest import clean_env, serve_refused, server_output
from tests.runs.conftest import sdk_at, workspace_key
from tests.runs.helpers import ok, wait_done, wait_for
from tests.support.fake_model import FakeModel, Gate
from tests.support.sdk import as_json
from tests.support.server import RunningServer, free_port, run_server

PG_PASSWORD = "pg-secret-not-shown"


def _with_password(url: str) -> str:
    """The URL with a password in it (trust authentication ignores it), to show that
    messages and the banner mask it."""
    if not url:
        return url
    return make_url(url).set(password=PG_PASSWORD).render_as_string(hide_password=False)


def _second_on_the_same_store(first: RunningServer, tmp_path: Path) -> str:
    """Another data dir when the store is PostgreSQL, so that the database's lock is what
    refuses; the same data dir for SQLite."""
    data_dir = tmp_path / "second" if first.database_url else first.data_dir
    env = {**first.env, "ASSISTD_DATA_DIR": str(data_dir)}
    return serve_refused(env, "--port", str(free_port()))


def _second_on_the_same_port(first: RunningServer, tmp_path: Path) -> None:
    other = tmp_path / "never-created"
    port = first.base_url.rsplit(":", 1)[1]
    message = serve_refused(clean_env(ASSISTD_DATA_DIR=str(other)), "--port", port)
    assert f"127.0.0.1:{port}" in message and "address already in use" in message, message
    assert not other.exists()  # refused before touching any state


def test_a_second_server_refuses_and_the_first_servers_run_completes(
    database: str, tmp_path: Path, fake_model: FakeModel
) -> None:
    gate = Gate("the first server's reply")
    model = fake_model.new_model(gate)
    url = _with_password(database)
    with run_server(tmp_path / "data", url, ASSISTD_OPENAI_BASE_URL=fake_model.base_url) as first:
        _, key = workspace_key(first)
        with sdk_at(first, key):
            thread = ok(Threads.create(messages=[{"role": "user", "content": "take your time"}]))
            assistant = ok(Assistants.create(model=model))
            run = ok(Runs.create(thread.id, assistant_id=assistant.id))
            wait_for(thread.id, run.id, "in_progress")

            message = _second_on_the_same_store(first, tmp_path)
            assert f"PID {first.pid}" in message, message
            if url:
                assert "PostgreSQL database" in message and PG_PASSWORD not in message, message
                banner = server_output(first)
                masked = url.replace(PG_PASSWORD, "***")
                assert f"  storage: PostgreSQL at {masked}\n" in banner, banner
                assert PG_PASSWORD not in banner
            else:
                assert f"data dir {first.data_dir.resolve()}" in message, message
            _second_on_the_same_port(first, tmp_path)

            # The refused servers recovered nothing: the run is still the first server's.
            still = ok(Runs.retrieve(run.id, thread_id=thread.id))
            assert still.status == "in_progress", as_json(still)
            gate.open()
            done = wait_done(thread.id, run.id)
            assert done.status == "completed", as_json(done)
            reply = ok(Messages.list(thread.id)).data[0]
            assert reply.role == "assistant" and reply.status == "completed", as_json(reply)
            assert reply.content[0].text.value == "the first server's reply"


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_the_lock_goes_with_the_server(
    database: str, tmp_path: Path, fake_model: FakeModel
) -> None:
    """A server killed with SIGKILL leaves its lock file behind, with its PID: the next
    server starts anyway, because the lock itself went with the process."""
    env = {"ASSISTD_OPENAI_BASE_URL": fake_model.base_url}
    with run_server(tmp_path / "data", database, **env) as first:
        lock = first.data_dir / "assistd.db.lock"
        assert lock.read_text().strip() == str(first.pid)
        assert oct(lock.stat().st_mode & 0o777) == oct(0o600)
        os.kill(first.pid, signal.SIGKILL)
    with run_server(tmp_path / "data", database, **env) as second:
        assert lock.read_text().strip() == str(second.pid)
