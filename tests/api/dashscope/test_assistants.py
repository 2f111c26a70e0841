"""Assistants and assistant files through the real dashscope SDK (2.0.2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dashscope
import httpx
from dashscope import Assistants
from dashscope.assistants import files as assistant_files
from dashscope.assistants.assistant_types import ToolCodeInterpreter, ToolFunction

from tests.support.sdk import as_json, assert_error, assert_ok, upload
from tests.support.server import RunningServer

FUNCTION_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "big_add",
        "description": "Adds two big integers.",
        "parameters": {
            "type": "object",
            "properties": {"left": {"type": "integer"}, "right": {"type": "integer"}},
            "required": ["left", "right"],
        },
    },
}
# Every tool type the server accepts (docs/dashscope.md), in the shapes users send them;
# `rag` (which names a knowledge base of the workspace) is added by the test.
ALL_TOOLS: list[dict[str, Any]] = [
    FUNCTION_TOOL,
    {"type": "code_interpreter"},
    {"type": "quark_search", "description": "Searches the web."},
    {"type": "search"},
    {"type": "text_to_image", "description": "Draws pictures."},
    {"type": "wanx"},
    {"type": "calculator"},
    {"type": "generate_qrcode"},
    {"type": "github_search"},
    {"type": "retrieval"},
    {"type": "file_search"},
]
INSTRUCTIONS = "You are a painter.\nDraw what the user asks for.\n\n- Be kind."


def _make_files(tmp_path: Path, count: int) -> list[str]:
    ids = []
    for i in range(count):
        path = tmp_path / f"doc{i}.txt"
        path.write_text(f"document {i}\n")
        ids.append(upload(path))
    return ids


def _without_request_id(obj: Any) -> dict[str, Any]:
    found: dict[str, Any] = as_json(obj)
    found.pop("request_id")
    return found


def _rag_tool(server: RunningServer) -> dict[str, Any]:
    """A rag tool naming a new knowledge base (a vector store made on /v1, same key)."""
    made = httpx.post(
        f"{server.base_url}/v1/vector_stores", json={"name": "kb"}, timeout=30,
        headers={"Authorization": f"Bearer {dashscope.api_key}"},
    )  # fmt: skip
    assert made.status_code == 200, made.text
    query_word = {"type": "str", "value": "${documents}"}
    parameters = {"type": "object", "properties": {"query_word": query_word}}
    return {"type": "rag", "prompt_ra": {"pipeline_id": [made.json()["id"]], "rerank_top_n": 5,
                                         "multiknowledge_rerank_top_n": 10,
                                         "parameters": parameters}}  # fmt: skip


def test_create_with_every_field_then_retrieve(
    ds: str, server: RunningServer, tmp_path: Path
) -> None:
    file_ids = _make_files(tmp_path, 2)
    tools = [*ALL_TOOLS, _rag_tool(server)]
    created = Assistants.create(
        model="qwen-max",
        name="Painter",
        description="Draws pictures of cats.",
        instructions=INSTRUCTIONS,
        tools=tools,
        file_ids=file_ids,
        metadata={"env": "test", "owner": "User123", "n": "3", "flag": "true"},
        top_p=0.8,
        top_k=50,
        temperature=0.7,
        max_tokens=1024,
    )
    assert_ok(created)
    assert created.id.startswith("asst_")
    assert created.object == "assistant"
    assert isinstance(created.created_at, int) and created.created_at > 10**12  # milliseconds
    assert created.model == "qwen-max"
    assert created.name == "Painter"
    assert created.description == "Draws pictures of cats."
    assert created.instructions == INSTRUCTIONS
    assert created.file_ids == file_ids
    assert created.metadata == {"env": "test", "owner": "User123", "n": "3", "flag": "true"}
    assert (created.top_p, created.top_k, created.temperature, created.max_tokens) == (
        0.8,
        50,
        0.7,
        1024,
    )
    # The SDK turns known tool types into its classes; the rest stay dicts, as sent.
    assert isinstance(created.tools[0], ToolFunction)
    assert created.tools[0].function.name == "big_add"
    assert created.tools[0].function.parameters == FUNCTION_TOOL["function"]["parameters"]
    assert isinstance(created.tools[1], ToolCodeInterpreter)
    assert as_json(created)["tools"] == tools

    retrieved = Assistants.retrieve(created.id)
    assert_ok(retrieved)
    assert retrieved.request_id != created.request_id
    assert _without_request_id(retrieved) == _without_request_id(created)
    assert _without_request_id(Assistants.get(created.id)) == _without_request_id(created)


def test_create_minimal_has_empty_collections(ds: str) -> None:
    created = Assistants.create(model="qwen-plus")
    assert_ok(created)
    body = as_json(created)
    assert body["tools"] == [] and body["file_ids"] == [] and body["metadata"] == {}
    for field in ("name", "description", "instructions", "top_p", "top_k", "temperature"):
        assert body[field] is None, field
    assert body["max_tokens"] is None


def test_list_shows_created_assistants_newest_first(ds: str) -> None:
    ids = [Assistants.create(model="qwen-max", name=f"a{i}").id for i in range(3)]
    listed = Assistants.list()
    assert_ok(listed)
    assert [a.id for a in listed.data] == ids[::-1]
    assert [a.name for a in listed.data] == ["a2", "a1", "a0"]
    assert (listed.first_id, listed.last_id, listed.has_more) == (ids[2], ids[0], False)
    assert listed.object == "list"
    as_json(listed)


def test_update_every_field(ds: str, tmp_path: Path) -> None:
    created = Assistants.create(
        model="qwen-max", name="Old", tools=[{"type": "code_interpreter"}], temperature=0.2
    )
    new_files = _make_files(tmp_path, 1)
    updated = Assistants.update(
        created.id,
        model="qwen-plus",
        name="New",
        description="new description",
        instructions="new instructions",
        tools=[FUNCTION_TOOL],
        file_ids=new_files,
        metadata={"stage": "two"},
        top_p=0.5,
        top_k=5,
        temperature=1.5,
        max_tokens=64,
    )
    assert_ok(updated)
    expected = {
        "id": created.id,
        "object": "assistant",
        "created_at": created.created_at,
        "model": "qwen-plus",
        "name": "New",
        "description": "new description",
        "instructions": "new instructions",
        "tools": [FUNCTION_TOOL],
        "file_ids": new_files,
        "metadata": {"stage": "two"},
        "top_p": 0.5,
        "top_k": 5,
        "temperature": 1.5,
        "max_tokens": 64,
        "status_code": 200,
    }
    assert _without_request_id(updated) == expected
    assert _without_request_id(Assistants.retrieve(created.id)) == expected


def test_rename_keeps_files_metadata_tools_and_sampling(ds: str, tmp_path: Path) -> None:
    """The SDK sends `file_ids: []` and `metadata: null` on every update (spec 13.9)."""
    file_ids = _make_files(tmp_path, 2)
    created = Assistants.create(
        model="qwen-max",
        name="Before",
        instructions="Keep me.",
        tools=[FUNCTION_TOOL],
        file_ids=file_ids,
        metadata={"env": "test"},
        temperature=0.3,
    )
    renamed = Assistants.update(created.id, name="After")
    assert_ok(renamed)
    for result in (renamed, Assistants.retrieve(created.id)):
        assert result.name == "After"
        assert result.file_ids == file_ids
        assert result.metadata == {"env": "test"}
        assert result.instructions == "Keep me."
        assert result.temperature == 0.3
        assert as_json(result)["tools"] == [FUNCTION_TOOL]
        assert result.model == "qwen-max"


def test_empty_metadata_clears_and_empty_tools_clear(ds: str) -> None:
    created = Assistants.create(
        model="qwen-max", tools=[{"type": "search"}], metadata={"a": "1", "b": "2"}
    )
    cleared = Assistants.update(created.id, metadata={})
    assert_ok(cleared)
    assert cleared.metadata == {}
    assert as_json(cleared)["tools"] == [{"type": "search"}]  # tools not sent: unchanged
    no_tools = Assistants.update(created.id, tools=[])
    assert_ok(no_tools)
    assert no_tools.tools == []
    retrieved = Assistants.retrieve(created.id)
    assert retrieved.metadata == {} and retrieved.tools == []


def test_non_empty_file_ids_replace(ds: str, tmp_path: Path) -> None:
    f1, f2, f3 = _make_files(tmp_path, 3)
    created = Assistants.create(model="qwen-max", file_ids=[f1, f2])
    replaced = Assistants.update(created.id, file_ids=[f3])
    assert_ok(replaced)
    assert replaced.file_ids == [f3]
    assert Assistants.retrieve(created.id).file_ids == [f3]
    listed = assistant_files.Files.list(created.id)
    assert [f.id for f in listed.data] == [f3]
    # A replacement that keeps one file: what the update answers is what is stored.
    again = Assistants.update(created.id, file_ids=[f1, f3])
    assert_ok(again)
    stored = Assistants.retrieve(created.id).file_ids
    assert sorted(stored) == sorted([f1, f3])
    assert again.file_ids == stored


def test_delete(ds: str) -> None:
    keep = Assistants.create(model="qwen-max", name="keep")
    gone = Assistants.create(model="qwen-max", name="gone")
    deleted = Assistants.delete(gone.id)
    assert_ok(deleted)
    assert (deleted.id, deleted.deleted, deleted.object) == (gone.id, True, "assistant.deleted")
    as_json(deleted)
    assert_error(Assistants.retrieve(gone.id), 404, "NotFound", gone.id)
    assert [a.id for a in Assistants.list().data] == [keep.id]
    assert_error(Assistants.delete(gone.id), 404, "NotFound", gone.id)
    assert_error(Assistants.update(gone.id, name="x"), 404, "NotFound", gone.id)


def test_assistant_files_create_list_retrieve_get_delete(ds: str, tmp_path: Path) -> None:
    f1, f2 = _make_files(tmp_path, 2)
    assistant = Assistants.create(model="qwen-max", name="with files")
    first = assistant_files.Files.create(assistant.id, file_id=f1)
    assert_ok(first)
    assert (first.id, first.assistant_id, first.object) == (f1, assistant.id, "assistant.file")
    assert isinstance(first.created_at, int) and first.created_at > 10**12
    as_json(first)
    assert_ok(assistant_files.Files.create(assistant.id, file_id=f2))
    # Attaching the same file again changes nothing.
    repeat = assistant_files.Files.create(assistant.id, file_id=f1)
    assert_ok(repeat)
    assert (repeat.id, repeat.created_at) == (f1, first.created_at)

    listed = assistant_files.Files.list(assistant.id)
    assert_ok(listed)
    assert [f.id for f in listed.data] == [f2, f1]  # newest first
    assert all(f.assistant_id == assistant.id for f in listed.data)
    assert (listed.first_id, listed.last_id, listed.has_more) == (f2, f1, False)
    as_json(listed)
    assert Assistants.retrieve(assistant.id).file_ids == [f1, f2]

    retrieved = assistant_files.Files.retrieve(f1, assistant_id=assistant.id)
    assert_ok(retrieved)
    assert (retrieved.id, retrieved.assistant_id, retrieved.created_at) == (
        f1,
        assistant.id,
        first.created_at,
    )
    # `get` takes the SDK's non-flattened path and gives the object, or None on an error.
    got = assistant_files.Files.get(f2, assistant_id=assistant.id)
    assert got is not None
    assert (got.id, got.assistant_id, got.object) == (f2, assistant.id, "assistant.file")

    deleted = assistant_files.Files.delete(f1, assistant_id=assistant.id)
    assert_ok(deleted)
    assert (deleted.id, deleted.deleted) == (f1, True)
    assert [f.id for f in assistant_files.Files.list(assistant.id).data] == [f2]
    assert Assistants.retrieve(assistant.id).file_ids == [f2]
    assert_error(assistant_files.Files.retrieve(f1, assistant_id=assistant.id), 404, "NotFound", f1)
    assert assistant_files.Files.get(f1, assistant_id=assistant.id) is None
    assert_error(assistant_files.Files.delete(f1, assistant_id=assistant.id), 404, "NotFound")


def test_assistant_files_errors(ds: str, tmp_path: Path) -> None:
    (f1,) = _make_files(tmp_path, 1)
    assistant = Assistants.create(model="qwen-max")
    missing = assistant_files.Files.create(assistant.id, file_id="file_does_not_exist")
    assert_error(missing, 400, "InvalidParameter", "file_id", "file_does_not_exist")
    assert assistant_files.Files.list(assistant.id).data == []
    assert_error(
        assistant_files.Files.create("asst_does_not_exist", file_id=f1),
        404,
        "NotFound",
        "asst_does_not_exist",
    )
    assert_error(assistant_files.Files.list("asst_does_not_exist"), 404, "NotFound")


def test_deleting_an_assistant_removes_its_file_links(ds: str, tmp_path: Path) -> None:
    (f1,) = _make_files(tmp_path, 1)
    assistant = Assistants.create(model="qwen-max", file_ids=[f1])
    assert_ok(Assistants.delete(assistant.id))
    assert_error(assistant_files.Files.retrieve(f1, assistant_id=assistant.id), 404, "NotFound")
    # The file itself stays: another assistant can still use it.
    other = Assistants.create(model="qwen-max", file_ids=[f1])
    assert_ok(other)
    assert other.file_ids == [f1]


def test_unknown_tool_type_is_named(ds: str) -> None:
    before = len(Assistants.list().data)
    bad = Assistants.create(
        model="qwen-max", tools=[{"type": "code_interpreter"}, {"type": "teleporter"}]
    )
    assert_error(bad, 400, "InvalidParameter", "teleporter", "tools[1]")
    assert len(Assistants.list().data) == before
    assistant = Assistants.create(model="qwen-max", tools=[{"type": "search"}])
    bad_update = Assistants.update(assistant.id, tools=[{"type": "time_machine"}])
    assert_error(bad_update, 400, "InvalidParameter", "time_machine")
    assert as_json(Assistants.retrieve(assistant.id))["tools"] == [{"type": "search"}]


def test_bad_function_tools(ds: str) -> None:
    no_function = Assistants.create(model="qwen-max", tools=[{"type": "function"}])
    assert_error(no_function, 400, "InvalidParameter", "tools[0].function")
    bad_name = Assistants.create(
        model="qwen-max", tools=[{"type": "function", "function": {"name": "has space"}}]
    )
    assert_error(bad_name, 400, "InvalidParameter", "tools[0].function.name")
    no_type = Assistants.create(model="qwen-max", tools=[{"function": {"name": "f"}}])
    assert_error(no_type, 400, "InvalidParameter", "tools[0]", "type")
    assert Assistants.list().data == []


def test_referencing_a_missing_file(ds: str, tmp_path: Path) -> None:
    (real,) = _make_files(tmp_path, 1)
    bad = Assistants.create(model="qwen-max", file_ids=[real, "file_nope"])
    assert_error(bad, 400, "InvalidParameter", "file_ids", "file_nope")
    assert Assistants.list().data == []
    assistant = Assistants.create(model="qwen-max", file_ids=[real])
    bad_update = Assistants.update(assistant.id, file_ids=["file_nope"])
    assert_error(bad_update, 400, "InvalidParameter", "file_nope")
    assert Assistants.retrieve(assistant.id).file_ids == [real]
