"""`assistd threads expire`: --dry-run lists what a sweep would delete and deletes
nothing; without it the idle threads go now. Against a running server whose own sweep
is an hour away, so only the command deletes."""

from __future__ import annotations

from dashscope import Threads

from tests.cli.test_cli import fails, succeeds
from tests.runs.conftest import StartServer, sdk_at, workspace_key
from tests.runs.helpers import ok
from tests.ttl.conftest import HOUR_MS, exists, idle_for


def test_dry_run_lists_and_the_real_run_deletes(start_server: StartServer) -> None:
    server = start_server(ASSISTD_THREAD_TTL_S="600", ASSISTD_THREAD_SWEEP_INTERVAL_S="3600")
    ws, key = workspace_key(server)
    other_ws, other_key = workspace_key(server)
    with sdk_at(server, key):
        idle, recent = (str(ok(Threads.create()).id) for _ in range(2))
    with sdk_at(server, other_key):
        elsewhere = str(ok(Threads.create()).id)
    for thread_id in (idle, elsewhere):
        idle_for(server, thread_id, HOUR_MS)

    listed = succeeds("threads", "expire", "--dry-run", env=server.env)
    assert listed[0].split("\t")[:2] == ["WORKSPACE", "THREAD"]
    rows = {tuple(line.split("\t")[:2]) for line in listed[1:-1]}
    assert rows == {(ws, idle), (other_ws, elsewhere)}
    assert listed[-1] == "2 threads would be deleted (dry run)"
    assert exists(server, "threads", idle) and exists(server, "threads", elsewhere)

    only_ws = succeeds("threads", "expire", "--workspace", ws, env=server.env)
    assert [tuple(line.split("\t")[:2]) for line in only_ws[1:-1]] == [(ws, idle)]
    assert only_ws[-1] == "deleted 1 threads and 0 files"
    assert not exists(server, "threads", idle)
    assert exists(server, "threads", recent) and exists(server, "threads", elsewhere)

    rest = succeeds("threads", "expire", env=server.env)
    assert rest[-1] == "deleted 1 threads and 0 files" and not exists(server, "threads", elsewhere)
    assert succeeds("threads", "expire", "--dry-run", env=server.env)[1:] == [
        "0 threads would be deleted (dry run)"
    ]
    assert "no-such-ws" in fails("threads", "expire", "--workspace", "no-such-ws", env=server.env)
