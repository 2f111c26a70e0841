"""A run nobody submits tool outputs to expires (here after 2 s), so Runs.wait without a
timeout still ends; outputs that come too late are refused."""

from __future__ import annotations

from dashscope import Assistants, Messages, Runs, Steps, Threads

from tests.runs.conftest import StartServer, sdk_on
from tests.runs.helpers import WEATHER, collect, names, ok, wait_for
from tests.support.fake_model import FakeModel, Reply, ToolCalls
from tests.support.sdk import as_json, assert_error


def test_a_run_waiting_for_outputs_expires(
    start_server: StartServer, fake_model: FakeModel
) -> None:
    server = start_server(ASSISTD_RUN_EXPIRY_S="2", ASSISTD_OPENAI_BASE_URL=fake_model.base_url)
    with sdk_on(server):
        model = fake_model.new_model(
            ToolCalls([("get_weather", {"city": "Oslo"})]),
            ToolCalls([("get_weather", {"city": "Bergen"})]),
            Reply("after expiry"),
        )
        assistant = ok(Assistants.create(model=model, tools=[WEATHER]))
        thread = ok(Threads.create(messages=[{"role": "user", "content": "Weather?"}]))

        run = ok(Runs.create(thread.id, assistant_id=assistant.id))
        waiting = Runs.wait(run.id, thread_id=thread.id)
        assert waiting.status == "requires_action", as_json(waiting)
        assert waiting.expires_at is not None and waiting.expires_at > waiting.created_at

        # Runs.wait returns at once on requires_action, so wait for the change first.
        wait_for(thread.id, run.id, "expired", timeout_s=30)
        expired = Runs.wait(run.id, thread_id=thread.id)  # no timeout: it must end
        assert expired.status == "expired", as_json(expired)
        assert expired.required_action is None
        assert expired.last_error is not None and expired.last_error["message"]
        assert expired.completed_at is None and expired.failed_at is None
        [step] = ok(Steps.list(run.id, thread_id=thread.id)).data
        assert step.status == "expired" and step.expired_at is not None

        late = Runs.submit_tool_outputs(
            run.id, thread_id=thread.id, tool_outputs=[{"output": "rain"}]
        )
        assert_error(late, 409, "Conflict", run.id)
        assert_error(Runs.cancel(run.id, thread_id=thread.id), 409, "Conflict")

        # The thread is free again; a streamed leg that ends in requires_action expires too.
        events = collect(Runs.create(thread.id, assistant_id=assistant.id, stream=True))
        assert names(events)[-1] == "thread.run.requires_action"
        second = events[-1][1]
        assert wait_for(thread.id, second.id, "expired", timeout_s=30).status == "expired"
        streamed_late = collect(
            Runs.submit_tool_outputs(
                second.id, thread_id=thread.id, tool_outputs=[{"output": "rain"}], stream=True
            )
        )
        assert len(streamed_late) == 1 and streamed_late[0][1]["status_code"] == 409
        assert [m.role for m in ok(Messages.list(thread.id)).data] == ["user"]
        assert len(fake_model.requests(model)) == 2
