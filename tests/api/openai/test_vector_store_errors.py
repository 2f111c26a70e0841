"""Bad input to the vector-store routes: each a 4xx in OpenAI's envelope naming the
field, never a 500; unknown ids are 404s."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

STATIC = "chunking_strategy.static"


def refused(answer: httpx.Response, status: int, param: str | None) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    error: dict[str, Any] = answer.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param, error
    return error


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"chunking_strategy": {"type": "static", "static": {"max_chunk_size_tokens": 99,
                                                             "chunk_overlap_tokens": 0}}},
         f"{STATIC}.max_chunk_size_tokens"),
        ({"chunking_strategy": {"type": "static", "static": {"max_chunk_size_tokens": 4097,
                                                             "chunk_overlap_tokens": 0}}},
         f"{STATIC}.max_chunk_size_tokens"),
        ({"chunking_strategy": {"type": "static", "static": {"max_chunk_size_tokens": 400,
                                                             "chunk_overlap_tokens": 201}}},
         f"{STATIC}.chunk_overlap_tokens"),
        ({"chunking_strategy": {"type": "static"}}, f"{STATIC}"),
        ({"chunking_strategy": {"type": "fancy"}}, "chunking_strategy.type"),
        ({"expires_after": {"anchor": "created_at", "days": 1}}, "expires_after.anchor"),
        ({"expires_after": {"anchor": "last_active_at", "days": 0}}, "expires_after.days"),
        ({"expires_after": {"anchor": "last_active_at", "days": 366}}, "expires_after.days"),
        ({"metadata": {"k": 1}}, "metadata"),
        ({"name": 5}, "name"),
        ({"file_ids": ["file-nope"]}, "file_ids"),
        ({"file_ids": [f"file-{i}" for i in range(501)]}, "file_ids"),
    ],
)  # fmt: skip
def test_bad_store_bodies(raw: httpx.Client, body: dict[str, Any], param: str) -> None:
    refused(raw.post("/vector_stores", json=body), 400, param)


def test_bad_file_and_search_bodies(raw: httpx.Client, client: openai.OpenAI) -> None:
    vs = client.vector_stores.create(name="kb").id
    file_id = client.files.create(file=("a.txt", b"some text"), purpose="assistants").id
    refused(raw.post(f"/vector_stores/{vs}/files", json={}), 400, "file_id")
    refused(raw.post(f"/vector_stores/{vs}/files", json={"file_id": "file-nope"}), 400, "file_ids")
    long_value = {"file_id": file_id, "attributes": {"k": "x" * 513}}
    refused(raw.post(f"/vector_stores/{vs}/files", json=long_value), 400, "attributes.k")
    many = {"file_id": file_id, "attributes": {f"k{i}": i for i in range(17)}}
    refused(raw.post(f"/vector_stores/{vs}/files", json=many), 400, "attributes")
    nested = {"file_id": file_id, "attributes": {"k": {"deep": 1}}}
    refused(raw.post(f"/vector_stores/{vs}/files", json=nested), 400, "attributes")
    assert raw.post(f"/vector_stores/{vs}/files", json={"file_id": file_id}).status_code == 200
    again = raw.post(f"/vector_stores/{vs}/files", json={"file_id": file_id})
    refused(again, 400, None)
    refused(raw.post(f"/vector_stores/{vs}/files/{file_id}", json={}), 400, "attributes")
    refused(raw.get(f"/vector_stores/{vs}/files", params={"filter": "done"}), 400, "filter")

    search = f"/vector_stores/{vs}/search"
    refused(raw.post(search, json={}), 400, "query")
    refused(raw.post(search, json={"query": ""}), 400, "query")
    refused(raw.post(search, json={"query": "x", "max_num_results": 51}), 400, "max_num_results")
    refused(raw.post(search, json={"query": "x", "max_num_results": 0}), 400, "max_num_results")
    threshold = {"query": "x", "ranking_options": {"score_threshold": 1.5}}
    refused(raw.post(search, json=threshold), 400, "ranking_options.score_threshold")
    ranker = {"query": "x", "ranking_options": {"ranker": "best"}}
    refused(raw.post(search, json=ranker), 400, "ranking_options.ranker")
    refused(raw.post(search, json={"query": "x", "filters": {"type": "like"}}), 400, "filters.type")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/vector_stores/vs_nope"),
        ("POST", "/vector_stores/vs_nope"),
        ("DELETE", "/vector_stores/vs_nope"),
        ("POST", "/vector_stores/vs_nope/search"),
        ("GET", "/vector_stores/vs_nope/files"),
        ("POST", "/vector_stores/vs_nope/files"),
        ("GET", "/vector_stores/vs_nope/files/file-x"),
        ("POST", "/vector_stores/vs_nope/files/file-x"),
        ("DELETE", "/vector_stores/vs_nope/files/file-x"),
        ("GET", "/vector_stores/vs_nope/files/file-x/content"),
    ],
)
def test_unknown_ids_are_404(raw: httpx.Client, method: str, path: str) -> None:
    body = {"query": "x", "file_id": "file-x", "attributes": {}} if method == "POST" else None
    error = refused(raw.request(method, path, json=body), 404, None)
    assert "vs_nope" in error["message"]


def test_unknown_file_of_a_store_is_404(raw: httpx.Client, client: openai.OpenAI) -> None:
    vs = client.vector_stores.create(name="kb").id
    for method in ("GET", "POST", "DELETE"):
        body = {"attributes": {}} if method == "POST" else None
        answer = raw.request(method, f"/vector_stores/{vs}/files/file-nope", json=body)
        assert "file-nope" in refused(answer, 404, None)["message"]
