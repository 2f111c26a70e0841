"""Assistants through the real openai SDK: every field of create and modify, lists."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        "strict": False,
    },
}
SCHEMA_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "answer",
        "schema": {"type": "object", "properties": {"n": {"type": "integer"}}},
        "strict": True,
    },
}


def upload(client: openai.OpenAI, path: Path) -> str:
    return client.files.create(file=path, purpose="assistants").id


def test_create_with_every_field(client: openai.OpenAI, text_file: Path) -> None:
    file_id = upload(client, text_file)
    made = client.beta.assistants.create(
        model="m",
        name="Helper",
        description="Helps.",
        instructions="Be brief.",
        tools=[WEATHER, {"type": "code_interpreter"}, {"type": "file_search"}],
        tool_resources={"code_interpreter": {"file_ids": [file_id]}},
        response_format=SCHEMA_FORMAT,  # type: ignore[arg-type]
        temperature=0.5,
        top_p=0.9,
        metadata={"team": "blue"},
    )
    got = client.beta.assistants.retrieve(made.id)
    for seen in (made, got):
        assert seen.model == "m" and seen.name == "Helper" and seen.description == "Helps."
        assert seen.instructions == "Be brief." and seen.metadata == {"team": "blue"}
        assert [t.type for t in seen.tools] == ["function", "code_interpreter", "file_search"]
        assert seen.tools[0].function.name == "get_weather"  # type: ignore[union-attr]
        assert seen.tool_resources is not None
        assert seen.tool_resources.model_dump(exclude_none=True) == {
            "code_interpreter": {"file_ids": [file_id]},
            "file_search": {"vector_store_ids": []},
        }
        assert seen.response_format is not None
        assert seen.response_format.model_dump(by_alias=True, exclude_none=True) == SCHEMA_FORMAT  # type: ignore[union-attr]
        assert seen.temperature == 0.5 and seen.top_p == 0.9


def test_defaults(client: openai.OpenAI) -> None:
    made = client.beta.assistants.create(model="m")
    assert made.name is None and made.description is None and made.instructions is None
    assert made.tools == [] and made.metadata == {} and made.response_format == "auto"
    assert made.tool_resources is not None and made.tool_resources.model_dump() == {
        "code_interpreter": None,
        "file_search": None,
    }


def test_modify_changes_only_what_is_given(client: openai.OpenAI, text_file: Path) -> None:
    file_id = upload(client, text_file)
    made = client.beta.assistants.create(
        model="m",
        name="A",
        tools=[{"type": "code_interpreter"}],
        tool_resources={"code_interpreter": {"file_ids": [file_id]}},
        response_format={"type": "json_object"},
        temperature=0.2,
    )
    renamed = client.beta.assistants.update(made.id, name="B")
    assert renamed.name == "B" and renamed.temperature == 0.2
    assert renamed.tool_resources.code_interpreter.file_ids == [file_id]  # type: ignore[union-attr]
    assert renamed.response_format.type == "json_object"  # type: ignore[union-attr]
    changed = client.beta.assistants.update(
        made.id,
        model="m2",
        instructions="New.",
        tools=[WEATHER],
        tool_resources={"code_interpreter": {"file_ids": []}},
        response_format="auto",
        top_p=0.5,
        metadata={"v": "2"},
    )
    assert changed.model == "m2" and changed.instructions == "New." and changed.top_p == 0.5
    assert [t.type for t in changed.tools] == ["function"] and changed.metadata == {"v": "2"}
    assert changed.tool_resources is not None and changed.tool_resources.code_interpreter is None
    assert changed.response_format == "auto"
    assert client.beta.assistants.retrieve(made.id).model_dump() == changed.model_dump()


def test_delete(client: openai.OpenAI) -> None:
    made = client.beta.assistants.create(model="m")
    gone = client.beta.assistants.delete(made.id)
    assert (gone.id, gone.object, gone.deleted) == (made.id, "assistant.deleted", True)
    with pytest.raises(openai.NotFoundError):
        client.beta.assistants.retrieve(made.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.assistants.delete(made.id)


def test_list_pages_every_way(client: openai.OpenAI) -> None:
    ids = [client.beta.assistants.create(model="m", name=str(i)).id for i in range(5)]
    assert [a.id for a in client.beta.assistants.list(limit=2)] == ids[::-1]  # auto-paged
    first = client.beta.assistants.list(limit=2, order="asc")
    assert [a.id for a in first.data] == ids[:2] and first.has_more is True
    assert (first.first_id, first.last_id) == (ids[0], ids[1])
    after = client.beta.assistants.list(limit=2, order="asc", after=ids[1])
    assert [a.id for a in after.data] == ids[2:4]
    before = client.beta.assistants.list(limit=2, before=ids[1])  # desc: the newer ones
    assert [a.id for a in before.data] == [ids[3], ids[2]] and before.has_more is True
    last = client.beta.assistants.list(order="asc", after=ids[3])
    assert [a.id for a in last.data] == [ids[4]] and last.has_more is False


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"tools": [{"type": "nope"}]}, "tools", "not a tool this server knows"),
        ({"tools": [{"type": "function", "function": {}}]}, "tools", "function.name"),
        ({"temperature": 3}, "temperature", "between"),
        ({"top_p": "high"}, "top_p", "top_p"),
        ({"response_format": {"type": "yaml"}}, "response_format", "json_schema"),
        ({"response_format": "json"}, "response_format", "auto"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {}}},
            "response_format",
            "json_schema.name",
        ),
        ({"metadata": {"k": 1}}, "metadata", "string"),
        (
            {"tool_resources": {"code_interpreter": {"file_ids": ["file_none"]}}},
            "file_ids",
            "file_none",
        ),
        (
            {"tool_resources": {"file_search": {"vector_store_ids": ["vs_1"]}}},
            "tool_resources.file_search.vector_store_ids",
            "vs_1",
        ),
        (
            {"tool_resources": {"file_search": {"vector_stores": [{"file_ids": ["file_none"]}]}}},
            "tool_resources.file_search.vector_stores[0].file_ids",
            "file_none",
        ),
        (
            {"tool_resources": {"file_search": {"vector_stores": [{"chunking_strategy": {}}]}}},
            "tool_resources.file_search.vector_stores[0].chunking_strategy.type",
            "auto",
        ),
        ({"tool_resources": {"code_interpreter": {"file_ids": "f"}}}, "tool_resources", "list"),
        (
            {"tools": [{"type": "file_search", "file_search": {"max_num_results": 51}}]},
            "tools[0].file_search",
            "1 to 50",
        ),
        (
            {"tools": [{"type": "file_search", "file_search": {"ranking_options": []}}]},
            "tools[0].file_search.ranking_options",
            "object",
        ),
        (
            {
                "tools": [
                    {"type": "file_search", "file_search": {"ranking_options": {"ranker": "x"}}}
                ]
            },
            "tools[0].file_search",
            "default_2024_08_21",
        ),
        (
            {
                "tools": [
                    {
                        "type": "file_search",
                        "file_search": {"ranking_options": {"score_threshold": 2}},
                    }
                ]
            },
            "tools[0].file_search",
            "0 to 1",
        ),
    ],
)
def test_bad_bodies_are_400_naming_the_field(
    raw: httpx.Client, body: dict[str, object], param: str, words: str
) -> None:
    answer = raw.post("/assistants", json={"model": "m", **body})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] is not None and error["param"].startswith(param), error
    assert words in error["message"], error


def test_nested_nulls_are_not_given(raw: httpx.Client) -> None:
    body = {
        "model": "m",
        "name": None,
        "tools": None,
        "metadata": None,
        "temperature": None,
        "response_format": None,
        "tool_resources": {"code_interpreter": None, "file_search": None},
    }
    answer = raw.post("/assistants", json=body, headers={"OpenAI-Beta": "assistants=v2"})
    assert answer.status_code == 200, answer.text
    made = answer.json()
    assert made["tool_resources"] == {} and made["response_format"] == "auto"
    update = raw.post(f"/assistants/{made['id']}", json={"tool_resources": None, "model": None})
    assert update.status_code == 200 and update.json()["model"] == "m"


def test_file_search_overrides_are_kept_with_their_defaults(client: openai.OpenAI) -> None:
    made = client.beta.assistants.create(
        model="m",
        tools=[
            {"type": "file_search"},
            {"type": "file_search", "file_search": {"max_num_results": 5}},
            {"type": "file_search", "file_search": {"ranking_options": {"ranker": "auto"}}},
            {"type": "file_search", "file_search": {"max_num_results": None}},
        ],
    )
    assert [t.model_dump(exclude_none=True) for t in made.tools] == [
        {"type": "file_search"},
        {"type": "file_search", "file_search": {"max_num_results": 5}},
        {
            "type": "file_search",
            "file_search": {"ranking_options": {"ranker": "auto", "score_threshold": 0.0}},
        },
        {"type": "file_search", "file_search": {}},
    ]
