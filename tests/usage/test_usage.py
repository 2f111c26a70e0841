"""Token usage per workspace, key, model and UTC day: a row counted in the transaction
that ends each run, through both SDKs, streamed and not; reported by
`GET /admin/v1/usage` and `assistd usage`."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import httpx
from dashscope import Assistants, Messages, Runs, Threads

from tests.api.openai.conftest import sdk
from tests.cli.test_cli import succeeds
from tests.conftest import make_workspace
from tests.runs.conftest import sdk_at
from tests.runs.helpers import ok
from tests.support.fake_model import FakeModel, Reply
from tests.support.server import RunningServer
from tests.usage.helpers import new_key, usage_rows

COUNTS = ("runs", "prompt_tokens", "completion_tokens", "total_tokens")


def _today() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")


def _dashscope_runs(server: RunningServer, key: str, model: str) -> list[tuple[str, str]]:
    """One run waited for and one streamed: their (thread id, run id)."""
    with sdk_at(server, key):
        assistant = ok(Assistants.create(model=model))
        thread = ok(Threads.create())
        ok(Messages.create(thread.id, content="Hello"))
        run = ok(Runs.create(thread.id, assistant_id=assistant.id))
        assert ok(Runs.wait(run.id, thread_id=thread.id)).status == "completed"
        streamed = ok(Threads.create(messages=[{"role": "user", "content": "Again"}]))
        events = list(Runs.create(streamed.id, assistant_id=assistant.id, stream=True))
        assert events[-1][0] == "thread.run.completed", events[-1]
        return [(thread.id, run.id), (streamed.id, events[-1][1].id)]


def _openai_runs(server: RunningServer, key: str, model: str) -> list[tuple[str, str]]:
    with sdk(server, key) as client:
        assistant = client.beta.assistants.create(model=model)
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hi"}])
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id
        )
        assert run.status == "completed", run
        other = client.beta.threads.create(messages=[{"role": "user", "content": "More"}])
        with client.beta.threads.runs.stream(
            thread_id=other.id, assistant_id=assistant.id
        ) as stream:
            stream.until_done()
            streamed = stream.get_final_run()
        assert streamed.status == "completed", streamed
        return [(thread.id, run.id), (other.id, streamed.id)]


def _summed(server: RunningServer, key: str, runs: list[tuple[str, str]]) -> dict[str, int]:
    """The runs' usage as the API shows it, summed."""
    total = dict.fromkeys(COUNTS, 0)
    with sdk(server, key) as client:
        for thread_id, run_id in runs:
            usage = client.beta.threads.runs.retrieve(run_id, thread_id=thread_id).usage
            assert usage is not None and usage.total_tokens > 0
            total["runs"] += 1
            for name in COUNTS[1:]:
                total[name] += getattr(usage, name)
    return total


def test_runs_of_both_sdks_are_counted_per_key_and_model(
    server: RunningServer, admin: httpx.Client, fake_model: FakeModel
) -> None:
    ws, _ = make_workspace(admin, "usage")
    first_id, first = new_key(admin, ws)
    second_id, second = new_key(admin, ws)
    ds_model = fake_model.new_model(Reply("One two three."), Reply("Four five."))
    oa_model = fake_model.new_model(Reply("Six seven eight nine."), Reply("Ten."))
    ds_runs = _dashscope_runs(server, first, ds_model)
    oa_runs = _openai_runs(server, second, oa_model)

    rows = usage_rows(admin, workspace=ws)
    assert {(r["key_id"], r["model"]) for r in rows} == {
        (first_id, ds_model),
        (second_id, oa_model),
    }
    by_key = {r["key_id"]: r for r in rows}
    for key_id, secret, runs in ((first_id, first, ds_runs), (second_id, second, oa_runs)):
        row = by_key[key_id]
        assert row["workspace_id"] == ws and row["day"] == _today() and row["object"] == "usage"
        assert {n: row[n] for n in COUNTS} == _summed(server, secret, runs)

    whole = usage_rows(admin, workspace=ws, group_by="workspace")
    assert len(whole) == 1 and set(whole[0]) == {"object", "workspace_id", *COUNTS}
    assert whole[0]["runs"] == 4
    assert whole[0]["total_tokens"] == sum(r["total_tokens"] for r in rows)
    assert usage_rows(admin, workspace=ws, key=first_id, group_by="model,day") == [
        {
            "object": "usage",
            "model": ds_model,
            "day": _today(),
            **{n: by_key[first_id][n] for n in COUNTS},
        }
    ]
    assert usage_rows(admin, model=oa_model)[0]["key_id"] == second_id
    assert usage_rows(admin, workspace=ws, since=_today(), until=_today()) == rows
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%Y-%m-%d")
    assert usage_rows(admin, workspace=ws, since=tomorrow) == []
    assert usage_rows(admin, workspace=ws, until="2000-01-01") == []


def test_a_failed_run_counts_as_a_run(
    server: RunningServer, admin: httpx.Client, fake_model: FakeModel
) -> None:
    from tests.support.fake_model import Fail

    ws, key = make_workspace(admin, "usage")
    model = fake_model.new_model(Fail(400, "no"))
    with sdk(server, key) as client:
        assistant = client.beta.assistants.create(model=model)
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hi"}])
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id
        )
    assert run.status == "failed", run
    rows = usage_rows(admin, workspace=ws)
    assert [(r["model"], r["runs"], r["total_tokens"]) for r in rows] == [(model, 1, 0)]


def test_bad_report_parameters_are_named(admin: httpx.Client) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-01"}, "until"),
        ({"group_by": "workspace,colour"}, "group_by"),
    ]
    for params, field in cases:
        answer = admin.get("/admin/v1/usage", params=params)
        assert answer.status_code == 400, answer.text
        assert answer.json()["code"] == "InvalidParameter" and field in answer.json()["message"]
    missing = admin.get("/admin/v1/usage", params={"workspace": "no-such-workspace"})
    assert missing.status_code == 404, missing.text


def test_a_workspace_admin_sees_only_its_workspace(
    server: RunningServer, admin: httpx.Client, fake_model: FakeModel
) -> None:
    ws, key = make_workspace(admin, "usage")
    other_ws, other_key = make_workspace(admin, "usage")
    ws_admin = admin.post("/admin/v1/keys", json={"workspace": ws, "admin": True}).json()["key"]
    for secret in (key, other_key):
        with sdk(server, secret) as client:
            assistant = client.beta.assistants.create(model=fake_model.new_model(Reply("ok")))
            thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hi"}])
            client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    headers = {"Authorization": f"Bearer {ws_admin}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as own:
        rows = usage_rows(own)
        assert rows and {r["workspace_id"] for r in rows} == {ws}
        assert own.get("/admin/v1/usage", params={"workspace": other_ws}).status_code == 404
    plain = httpx.get(
        f"{server.base_url}/admin/v1/usage", headers={"Authorization": f"Bearer {key}"}
    )
    assert plain.status_code == 403, plain.text


def test_the_cli_reports_what_the_api_does(
    server: RunningServer, admin: httpx.Client, fake_model: FakeModel
) -> None:
    ws, key = make_workspace(admin, "usage")
    model = fake_model.new_model(Reply("Counted by the command."))
    _openai_runs(server, key, model)
    api = usage_rows(admin, workspace=ws)
    printed = json.loads("\n".join(succeeds("usage", "--workspace", ws, "--json", env=server.env)))
    assert printed == [{k: v for k, v in r.items() if k != "object"} for r in api]
    grouped = succeeds("usage", "--workspace", ws, "--group-by", "model", "--json", env=server.env)
    assert json.loads("\n".join(grouped)) == [{"model": model, **{n: api[0][n] for n in COUNTS}}]
    table = "\n".join(succeeds("usage", "--workspace", ws, env=server.env))
    assert model in table and f"{api[0]['total_tokens']:,}" in table and "TOTAL TOKENS" in table
    assert "no-such" in _fails("usage", "--workspace", "no-such", env=server.env)
    assert "YYYY-MM-DD" in _fails("usage", "--since", "today", env=server.env)


def _fails(*args: str, env: dict[str, str]) -> str:
    from tests.cli.test_cli import assistd

    done = assistd(*args, env=env)
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    return done.stderr
