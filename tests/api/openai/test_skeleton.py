"""The OpenAI surface's foundation: routing, envelope, request ids, auth, pagination."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.api.openai.conftest import sdk
from tests.support.server import RunningServer


def test_assistant_round_trip_in_seconds(client: openai.OpenAI) -> None:
    made = client.beta.assistants.create(model="m", name="Helper", metadata={"k": "v"})
    assert made.object == "assistant" and made.id.startswith("asst_")
    assert 1_000_000_000 < made.created_at < 10_000_000_000  # seconds, not milliseconds
    assert made.tool_resources is not None and made.tool_resources.model_dump() is not None
    got = client.beta.assistants.retrieve(made.id)
    assert got.name == "Helper" and got.metadata == {"k": "v"}
    gone = client.beta.assistants.delete(made.id)
    assert gone.deleted is True and gone.object == "assistant.deleted"


def test_not_found_is_the_openai_envelope(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.beta.assistants.retrieve("asst_nope")
    error = caught.value
    assert error.status_code == 404
    assert error.body == {
        "message": "No assistant found with id 'asst_nope'.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    assert error.type == "invalid_request_error" and error.param is None and error.code is None
    assert error.request_id


def test_envelope_has_all_four_keys_and_request_id(raw: httpx.Client) -> None:
    answer = raw.post("/assistants", json={"name": "no model"})
    assert answer.status_code == 400
    assert answer.json() == {
        "error": {
            "message": "'model' is required.",
            "type": "invalid_request_error",
            "param": "model",
            "code": None,
        }
    }
    assert answer.headers["x-request-id"]


def test_unknown_endpoint_on_v1(raw: httpx.Client) -> None:
    answer = raw.get("/nothing-here")
    assert answer.status_code == 404
    assert set(answer.json()["error"]) == {"message", "type", "param", "code"}


def test_dashscope_surface_keeps_its_flat_envelope(server: RunningServer) -> None:
    answer = httpx.get(f"{server.dashscope_url}/assistants/asst_nope", headers={
        "Authorization": f"Bearer {server.admin_key}"})  # fmt: skip
    assert answer.status_code == 404
    body = answer.json()
    assert body["code"] == "NotFound" and "error" not in body and body["request_id"]


def test_bad_key_is_authentication_error(server: RunningServer) -> None:
    with sdk(server, "sk-wrong") as bad, pytest.raises(openai.AuthenticationError) as caught:
        bad.beta.assistants.list()
    assert caught.value.code == "invalid_api_key"


def test_list_newest_first_and_cursors(client: openai.OpenAI) -> None:
    ids = [client.beta.assistants.create(model="m", name=str(i)).id for i in range(5)]
    page = client.beta.assistants.list()
    assert [a.id for a in page.data] == ids[::-1]
    assert page.first_id == ids[-1] and page.last_id == ids[0] and page.has_more is False
    newest = client.beta.assistants.list(limit=1)
    assert [a.id for a in newest.data] == [ids[-1]] and newest.has_more is True
    both = client.beta.assistants.list(order="asc", after=ids[0], before=ids[4])
    assert [a.id for a in both.data] == ids[1:4]
    paged = [a.id for a in client.beta.assistants.list(limit=2, order="asc")]
    assert paged == ids


def test_limit_out_of_range(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.assistants.list(limit=101)
    assert caught.value.param == "limit"


def test_empty_list_has_null_ids(client: openai.OpenAI) -> None:
    page = client.beta.assistants.list()
    assert page.data == [] and page.first_id is None and page.last_id is None
