"""The vector stores file_search searches, through the openai SDK: named on assistants and
threads (`tool_resources.file_search.vector_store_ids`, stored and shown back), made
inline (`vector_stores`), built from a thread's file_search attachments; another
workspace's store is refused."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.api.openai.conftest import sdk
from tests.api.openai.file_search_helpers import (
    KYOTO,
    PARIS,
    ROME,
    SEARCH,
    search_then_cite,
    upload,
)
from tests.conftest import make_workspace
from tests.support.fake_model import FakeModel
from tests.support.server import RunningServer

STORES = "tool_resources.file_search.vector_store_ids"


def _store_ids(obj: object) -> list[str]:
    """The object's file_search stores ([] when it shows no file_search resources)."""
    search = obj.tool_resources.file_search  # type: ignore[attr-defined]
    return [] if search is None else list(search.vector_store_ids)


def test_named_stores_are_kept_and_shown(client: openai.OpenAI) -> None:
    paris = upload(client, "paris.txt", PARIS)
    made = client.beta.assistants.create(
        model="m", tools=[SEARCH],
        tool_resources={"file_search": {"vector_stores": [{
            "file_ids": [paris], "metadata": {"topic": "paris"},
            "chunking_strategy": {"type": "static", "static": {
                "max_chunk_size_tokens": 200, "chunk_overlap_tokens": 50}},
        }]}},
    )  # fmt: skip
    (store,) = _store_ids(made)
    assert _store_ids(client.beta.assistants.retrieve(made.id)) == [store]

    # The same store named by id: on another assistant, on a thread, changed and cleared.
    other = client.beta.assistants.create(
        model="m", tool_resources={"file_search": {"vector_store_ids": [store]}}
    )
    assert _store_ids(client.beta.assistants.retrieve(other.id)) == [store]
    thread = client.beta.threads.create(
        tool_resources={"file_search": {"vector_store_ids": [store]}}
    )
    assert _store_ids(client.beta.threads.retrieve(thread.id)) == [store]
    cleared = client.beta.threads.update(
        thread.id, tool_resources={"file_search": {"vector_store_ids": []}}
    )
    assert _store_ids(cleared) == _store_ids(client.beta.threads.retrieve(thread.id)) == []
    updated = client.beta.assistants.update(
        other.id, tool_resources={"file_search": {"vector_store_ids": []}}
    )
    assert _store_ids(updated) == []


def test_attachments_build_the_threads_store(client: openai.OpenAI, fake_model: FakeModel) -> None:
    paris, kyoto = upload(client, "paris.txt", PARIS), upload(client, "kyoto.txt", KYOTO)
    thread = client.beta.threads.create(messages=[{
        "role": "user", "content": "Read this.",
        "attachments": [{"file_id": paris, "tools": [{"type": "file_search"}]}],
    }])  # fmt: skip
    (store,) = _store_ids(thread)
    # A later message's attachment joins the same store.
    client.beta.threads.messages.create(
        thread.id, role="user", content="What is the Golden Pavilion?",
        attachments=[{"file_id": kyoto, "tools": [{"type": "file_search"}]}],
    )  # fmt: skip
    assert _store_ids(client.beta.threads.retrieve(thread.id)) == [store]

    model = search_then_cite(fake_model, "Golden Pavilion", "kyoto.txt")
    assistant = client.beta.assistants.create(model=model, tools=[SEARCH])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed", run.last_error
    steps = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread.id, order="asc")
    (call,) = steps.data[0].step_details.tool_calls  # type: ignore[union-attr]
    names = {r.file_name for r in call.file_search.results}  # type: ignore[union-attr]
    assert names == {"paris.txt", "kyoto.txt"}
    (reply,) = client.beta.threads.messages.list(thread_id=thread.id, run_id=run.id).data
    (citation,) = reply.content[0].text.annotations  # type: ignore[union-attr]
    assert citation.file_citation.file_id == kyoto  # type: ignore[union-attr]


def test_create_thread_and_run_searches_the_new_threads_store(
    client: openai.OpenAI, fake_model: FakeModel
) -> None:
    rome = upload(client, "rome.txt", ROME)
    model = search_then_cite(fake_model, "Colosseum", "rome.txt")
    assistant = client.beta.assistants.create(model=model, tools=[SEARCH])
    run = client.beta.threads.create_and_run_poll(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": "How big is the Colosseum?"}],
                "tool_resources": {"file_search": {"vector_stores": [{"file_ids": [rome]}]}}},
    )  # fmt: skip
    assert run.status == "completed", run.last_error
    (reply,) = client.beta.threads.messages.list(thread_id=run.thread_id, run_id=run.id).data
    (citation,) = reply.content[0].text.annotations  # type: ignore[union-attr]
    assert citation.file_citation.file_id == rome  # type: ignore[union-attr]


def test_another_workspaces_store_is_refused(
    client: openai.OpenAI, server: RunningServer, admin: httpx.Client
) -> None:
    made = client.beta.assistants.create(
        model="m", tool_resources={"file_search": {"vector_stores": [{"file_ids": []}]}}
    )
    (store,) = _store_ids(made)
    with sdk(server, make_workspace(admin, "other")[1]) as other:
        for attempt in (
            lambda: other.beta.assistants.create(
                model="m", tool_resources={"file_search": {"vector_store_ids": [store]}}
            ),
            lambda: other.beta.threads.create(
                tool_resources={"file_search": {"vector_store_ids": [store]}}
            ),
        ):
            with pytest.raises(openai.BadRequestError) as refused:
                attempt()
            assert refused.value.body["param"] == STORES  # type: ignore[index]
            assert store in refused.value.message


@pytest.mark.parametrize(
    ("resources", "param"),
    [
        ({"vector_store_ids": ["vs_a", "vs_b"]}, STORES),
        ({"vector_store_ids": "vs_a"}, STORES),
        ({"vector_stores": [{"file_ids": []}, {"file_ids": []}]},
         "tool_resources.file_search.vector_stores"),
        ({"vector_stores": [{"chunking_strategy": {"type": "static", "static": {
            "max_chunk_size_tokens": 50, "chunk_overlap_tokens": 0}}}]},
         "tool_resources.file_search.vector_stores[0].chunking_strategy.static"
         ".max_chunk_size_tokens"),
    ],
)  # fmt: skip
def test_bad_file_search_resources(
    raw: httpx.Client, resources: dict[str, object], param: str
) -> None:
    answer = raw.post(
        "/assistants", json={"model": "m", "tool_resources": {"file_search": resources}}
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == param


def test_update_takes_only_store_ids(raw: httpx.Client) -> None:
    made = raw.post("/assistants", json={"model": "m"}).json()
    body = {"tool_resources": {"file_search": {"vector_stores": [{"file_ids": []}]}}}
    answer = raw.post(f"/assistants/{made['id']}", json=body)
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "tool_resources.file_search.vector_stores"


def test_additional_messages_attach_to_the_threads_store(
    client: openai.OpenAI, fake_model: FakeModel
) -> None:
    rome = upload(client, "rome.txt", ROME)
    model = search_then_cite(fake_model, "Colosseum", "rome.txt")
    assistant = client.beta.assistants.create(model=model, tools=[SEARCH])
    thread = client.beta.threads.create()
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id,
        additional_messages=[{"role": "user", "content": "How big is it?",
                              "attachments": [{"file_id": rome, "tools": [SEARCH]}]}],
    )  # fmt: skip
    assert run.status == "completed", run.last_error
    assert len(_store_ids(client.beta.threads.retrieve(thread.id))) == 1
    (reply,) = client.beta.threads.messages.list(thread_id=thread.id, run_id=run.id).data
    (citation,) = reply.content[0].text.annotations  # type: ignore[union-attr]
    assert citation.file_citation.file_id == rome  # type: ignore[union-attr]


def test_a_store_made_through_the_vector_store_api(
    client: openai.OpenAI, fake_model: FakeModel
) -> None:
    store = client.vector_stores.create(name="cities")
    for name, text in (("paris.txt", PARIS), ("rome.txt", ROME)):
        done = client.vector_stores.files.upload_and_poll(
            vector_store_id=store.id, file=(name, text.encode())
        )
        assert done.status == "completed", done.last_error
    model = search_then_cite(fake_model, "Eiffel Tower height", "paris.txt")
    assistant = client.beta.assistants.create(
        model=model,
        tools=[SEARCH],
        tool_resources={"file_search": {"vector_store_ids": [store.id]}},
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "How tall?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed", run.last_error
    (reply,) = client.beta.threads.messages.list(thread_id=thread.id, run_id=run.id).data
    (citation,) = reply.content[0].text.annotations  # type: ignore[union-attr]
    file_ids = {f.id: f for f in client.vector_stores.files.list(vector_store_id=store.id)}
    assert citation.file_citation.file_id in file_ids  # type: ignore[union-attr]
    assert client.files.retrieve(citation.file_citation.file_id).filename == "paris.txt"  # type: ignore[union-attr]
    # The inline helper's stores are vector stores like any other.
    made = client.beta.assistants.create(
        model="m", tool_resources={"file_search": {"vector_stores": [{"metadata": {"k": "v"}}]}}
    )
    (inline,) = _store_ids(made)
    assert client.vector_stores.retrieve(inline).metadata == {"k": "v"}
