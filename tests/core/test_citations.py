"""The one citation resolver, in both marker styles (file_search's and rag's)."""

from __future__ import annotations

from assistd.core import rag
from assistd.core.citations import NUMBERED, TURN_INDEX_NAME, Cited, Source, file_citations, resolve


def test_numbered_markers_cite_the_chunks_they_name_with_a_quote() -> None:
    items = [
        {"index": 1, "doc_id": "file-a", "text": "kettles boil water"},
        {"index": 2, "doc_id": "file-b", "text": "bikes have wheels"},
    ]
    text = "Water boils [1]. Wheels [2], [7] and [x]."
    found = rag.citations(text, items)
    assert [(a["text"], a["file_citation"]) for a in found] == [
        ("[1]", {"file_id": "file-a", "quote": "kettles boil water"}),
        ("[2]", {"file_id": "file-b", "quote": "bikes have wheels"}),
    ]
    assert text[found[1]["start_index"] : found[1]["end_index"]] == "[2]"


def test_turn_index_markers_need_the_file_name_the_model_was_shown() -> None:
    results = [{"file_id": "file-a", "file_name": "a.txt"}]
    text = "Yes【0:0†a.txt】 no【0:0†b.txt】 any【0:0†source】 none【1:0†a.txt】"
    found = file_citations(text, [Cited(0, results)])
    assert [a["text"] for a in found] == ["【0:0†a.txt】", "【0:0†source】"]
    assert all(a["file_citation"] == {"file_id": "file-a"} for a in found)


def test_one_resolver_reads_either_style() -> None:
    sources = {1: Source("file-a", quote="q"), (0, 1): Source("file-b", "b.md")}
    both = "[1] and 【0:1†b.md】"
    assert [a["text"] for a in resolve(both, NUMBERED, sources)] == ["[1]"]
    assert [a["text"] for a in resolve(both, TURN_INDEX_NAME, sources)] == ["【0:1†b.md】"]
