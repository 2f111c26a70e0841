"""Issue 11's end to end: a PDF and a DOCX uploaded, one knowledge base made of them, and
an assistant on each surface answering from it with a citation that points at the file
the answer came from (the PDF's second page, the DOCX's table), through the real SDKs."""

from __future__ import annotations

import json
from typing import Any

import dashscope
import openai
from dashscope import Assistants, Messages, Runs, Steps, Threads

from tests.api.openai.conftest import sdk
from tests.api.openai.file_search_helpers import search_then_cite
from tests.retrieval.fixtures import docx, pdf
from tests.runs.helpers import ok, wait_for
from tests.runs.test_rag import _ingested, rag_tool
from tests.support.fake_model import FakeModel, Reply
from tests.support.sdk import as_json
from tests.support.server import RunningServer

PDF_PAGES = [
    "Chapter one describes the harbour of Valparaiso and its funiculars.",
    "The lighthouse keeper Ines Ortega kept the lamp lit for forty-one winters.",
]
DOCX_PARAGRAPHS = ["Orchard survey, autumn.", "Quince trees bore fruit in the northern plot."]
DOCX_TABLE = [["tree", "yield"], ["quince", "212 kilograms"]]


def _knowledge_base(client: openai.OpenAI) -> tuple[str, dict[str, str]]:
    files = {
        "keeper.pdf": pdf(PDF_PAGES),
        "orchard.docx": docx(DOCX_PARAGRAPHS, table=DOCX_TABLE),
    }
    ids = {
        name: client.files.create(file=(name, content), purpose="assistants").id
        for name, content in files.items()
    }
    store = client.vector_stores.create(name="library", file_ids=list(ids.values()))
    _ingested(client, store.id, len(files))
    return store.id, ids


def _annotations(message: Any) -> list[dict[str, Any]]:
    return [a.model_dump() for a in message.content[0].text.annotations]


def test_the_openai_assistant_answers_from_the_pdf_and_cites_it(
    ds: str, server: RunningServer, fake_model: FakeModel
) -> None:
    with sdk(server, str(dashscope.api_key)) as client:
        store_id, ids = _knowledge_base(client)
        model = search_then_cite(fake_model, "who kept the lighthouse lamp", cite="keeper.pdf")
        assistant = client.beta.assistants.create(
            model=model, tools=[{"type": "file_search"}],
            tool_resources={"file_search": {"vector_store_ids": [store_id]}},
        )  # fmt: skip
        thread = client.beta.threads.create(
            messages=[{"role": "user", "content": "Who kept the lighthouse lamp lit?"}]
        )
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id
        )
        assert run.status == "completed", run.last_error
        [reply] = client.beta.threads.messages.list(thread_id=thread.id, limit=1).data
        [citation] = _annotations(reply)
        assert citation["type"] == "file_citation"
        assert citation["file_citation"]["file_id"] == ids["keeper.pdf"]
        text = reply.content[0].text.value  # type: ignore[union-attr]
        assert text[citation["start_index"] : citation["end_index"]] == citation["text"]


def test_the_dashscope_assistant_answers_from_the_docx_and_cites_it(
    ds: str, server: RunningServer, fake_model: FakeModel
) -> None:
    with sdk(server, str(dashscope.api_key)) as client:
        store_id, ids = _knowledge_base(client)
    model = fake_model.new_model(Reply("The quince trees gave 212 kilograms [1]."))
    tool = rag_tool(store_id, rerank_top_n=1, multiknowledge_rerank_top_n=1)
    instructions = "Answer from these documents:\n${documents}\nCite them as [n]."
    assistant = ok(Assistants.create(model=model, instructions=instructions, tools=[tool]))
    thread = ok(Threads.create(messages=[{"role": "user", "content": "What did quince yield?"}]))
    run = wait_for(
        thread.id, ok(Runs.create(thread.id, assistant_id=assistant.id)).id, "completed", "failed"
    )
    assert run.status == "completed", as_json(run)

    [request] = fake_model.requests(model)
    system = "\n".join(str(m["content"]) for m in request["messages"] if m["role"] == "system")
    assert "212 kilograms" in system, "the DOCX table's chunk reached the prompt"
    steps = as_json(ok(Steps.list(run.id, thread_id=thread.id, order="asc")))["data"]
    [doc] = json.loads(steps[0]["step_details"]["tool_calls"][0]["rag"]["output"])
    assert doc["doc_id"] == ids["orchard.docx"]

    [reply] = ok(Messages.list(thread.id, order="desc", limit=1)).data
    [citation] = reply.content[0].text.annotations
    assert citation["type"] == "file_citation" and citation["text"] == "[1]"
    assert citation["file_citation"]["file_id"] == ids["orchard.docx"]
