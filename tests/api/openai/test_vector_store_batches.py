"""File batches through the real openai SDK: `upload_and_poll` and `create_and_poll`,
per-file attributes and chunking, a file failing alone, listing a batch's files, cancel,
and the batch limits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.api.openai.conftest import sdk
from tests.conftest import make_workspace
from tests.retrieval import fixtures
from tests.support.fake_embeddings import FakeEmbeddings
from tests.support.postgres import fresh_database
from tests.support.server import RunningServer, run_server

TIDES = "Tides rise and fall twice a day because the Moon pulls on the oceans."
VOLCANO = "Basalt lava from shield volcanoes flows far before it cools."
GLACIER = "A glacier carves a U-shaped valley as it grinds slowly downhill."


def test_upload_and_poll_pdf_docx_markdown(client: openai.OpenAI) -> None:
    vs = client.vector_stores.create(name="earth")
    batch = client.vector_stores.file_batches.upload_and_poll(
        vs.id,
        files=[
            ("tides.pdf", fixtures.pdf([TIDES])),
            ("volcano.docx", fixtures.docx([VOLCANO])),
            ("glacier.md", f"# Ice\n\n{GLACIER}\n".encode()),
        ],
        poll_interval_ms=50,
    )
    assert batch.object == "vector_store.files_batch" and batch.id.startswith("vsfb_")
    assert (batch.status, batch.vector_store_id) == ("completed", vs.id)
    counts = batch.file_counts
    assert (counts.completed, counts.failed, counts.in_progress, counts.total) == (3, 0, 0, 3)
    assert client.vector_stores.file_batches.retrieve(batch.id, vector_store_id=vs.id) == batch

    listed = client.vector_stores.file_batches.list_files(batch.id, vector_store_id=vs.id)
    assert len(listed.data) == 3 and {f.status for f in listed.data} == {"completed"}
    names = {client.files.retrieve(f.id).filename for f in listed.data}
    assert names == {"tides.pdf", "volcano.docx", "glacier.md"}
    store = client.vector_stores.retrieve(vs.id)
    assert store.file_counts.completed == 3 and store.usage_bytes > 0

    hits = client.vector_stores.search(vs.id, query="why does the sea level change with the moon")
    assert hits.data[0].filename == "tides.pdf"
    hits = client.vector_stores.search(vs.id, query="lava flows")
    assert hits.data[0].filename == "volcano.docx"


def test_single_file_helpers(client: openai.OpenAI) -> None:
    vs = client.vector_stores.create(name="one")
    made = client.vector_stores.files.upload_and_poll(
        vector_store_id=vs.id, file=("glacier.md", GLACIER.encode()), poll_interval_ms=50
    )
    assert made.status == "completed" and made.vector_store_id == vs.id
    other = client.files.create(file=("tides.txt", TIDES.encode()), purpose="assistants")
    polled = client.vector_stores.files.create_and_poll(
        file_id=other.id, vector_store_id=vs.id, poll_interval_ms=50
    )
    assert polled.status == "completed" and polled.id == other.id


def test_per_file_attributes_and_a_failing_file(client: openai.OpenAI, raw: httpx.Client) -> None:
    vs = client.vector_stores.create(name="mixed")
    ids = [
        client.files.create(file=(name, data), purpose="assistants").id
        for name, data in [
            ("tides.txt", TIDES.encode()),
            ("broken.pdf", b"%PDF-1.7 truncated"),
            ("volcano.txt", VOLCANO.encode()),
        ]
    ]
    small = {"type": "static", "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 0}}
    answer = raw.post(
        f"/vector_stores/{vs.id}/file_batches",
        json={
            "files": [
                {"file_id": ids[0], "attributes": {"kind": "sea"}, "chunking_strategy": small},
                {"file_id": ids[1]},
                {"file_id": ids[2], "attributes": {"kind": "rock"}},
            ]
        },
    )
    assert answer.status_code == 200, answer.text
    batch = client.vector_stores.file_batches.poll(
        answer.json()["id"], vector_store_id=vs.id, poll_interval_ms=50
    )
    assert batch.status == "completed"  # a failed file fails alone
    assert (batch.file_counts.completed, batch.file_counts.failed) == (2, 1)
    files = {f.id: f for f in client.vector_stores.files.list(vs.id)}
    assert files[ids[0]].attributes == {"kind": "sea"}
    assert files[ids[0]].chunking_strategy.static.max_chunk_size_tokens == 100  # type: ignore[union-attr]
    assert files[ids[1]].status == "failed" and files[ids[1]].last_error is not None
    assert files[ids[2]].attributes == {"kind": "rock"}
    failed = client.vector_stores.file_batches.list_files(
        batch.id, vector_store_id=vs.id, filter="failed"
    )
    assert [f.id for f in failed.data] == [ids[1]]

    again = raw.post(
        f"/vector_stores/{vs.id}/file_batches",
        json={"file_ids": [ids[0]], "attributes": {"kind": "tide"}},
    )  # 1.x's create_and_poll takes no attributes
    shared = client.vector_stores.file_batches.poll(
        again.json()["id"], vector_store_id=vs.id, poll_interval_ms=50
    )
    assert shared.status == "completed" and shared.file_counts.total == 1  # joined, ingested again
    assert client.vector_stores.files.retrieve(ids[0], vector_store_id=vs.id).attributes == {
        "kind": "tide"
    }


def test_batch_limits_and_unknown_ids(raw: httpx.Client, client: openai.OpenAI) -> None:
    vs = client.vector_stores.create(name="limits").id
    path = f"/vector_stores/{vs}/file_batches"

    def refused(body: dict[str, Any], param: str, status: int = 400) -> None:
        answer = raw.post(path, json=body)
        assert answer.status_code == status, answer.text
        assert answer.json()["error"]["param"] == param

    refused({}, "file_ids")
    refused({"file_ids": []}, "file_ids")
    refused({"file_ids": [f"file-{i}" for i in range(2001)]}, "file_ids")
    refused({"files": [{"file_id": "file-x"}] * 2001}, "files")
    refused({"file_ids": ["file-a"], "files": [{"file_id": "file-a"}]}, "files")
    refused({"file_ids": ["file-nope"]}, "file_ids[0]")
    refused({"files": [{"attributes": {}}]}, "files[0].file_id")
    refused({"files": [{"file_id": "file-nope"}]}, "files[0].file_id")
    refused({"file_ids": ["f"], "attributes": {"k": [1]}}, "attributes")
    refused(
        {"file_ids": ["f"], "chunking_strategy": {"type": "static", "static": {
            "max_chunk_size_tokens": 5000, "chunk_overlap_tokens": 0}}},
        "chunking_strategy.static.max_chunk_size_tokens",
    )  # fmt: skip
    for method, tail in [("GET", ""), ("POST", "/cancel"), ("GET", "/files")]:
        answer = raw.request(method, f"{path}/vsfb_nope{tail}")
        assert answer.status_code == 404 and "vsfb_nope" in answer.json()["error"]["message"]
        answer = raw.request(method, f"/vector_stores/vs_nope/file_batches/vsfb_nope{tail}")
        assert answer.status_code == 404 and "vs_nope" in answer.json()["error"]["message"]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def held_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningServer, FakeEmbeddings]]:
    """A server whose stores embed through an endpoint the test can hold, so a batch is
    still in progress when it is cancelled."""
    endpoint = FakeEmbeddings().start()
    embedders = {"held": {"base_url": endpoint.base_url, "model": "bag", "dimension": 64}}
    env = {"ASSISTD_EMBEDDERS": json.dumps(embedders), "ASSISTD_DEFAULT_EMBEDDER": "held"}
    data_dir = tmp_path_factory.mktemp(f"held-{request.param}")
    try:
        if request.param == "sqlite":
            with run_server(data_dir, **env) as server:
                yield server, endpoint
        else:
            with fresh_database(data_dir / "pg") as url, run_server(data_dir, url, **env) as server:
                yield server, endpoint
    finally:
        endpoint.gate.set()
        endpoint.stop()


def test_cancel_a_batch_in_progress(held_server: tuple[RunningServer, FakeEmbeddings]) -> None:
    server, endpoint = held_server
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as admin:
        _, key = make_workspace(admin, "held")
    with sdk(server, key) as client:
        cancel_while_held(client, endpoint)


def cancel_while_held(client: openai.OpenAI, endpoint: FakeEmbeddings) -> None:
    vs = client.vector_stores.create(name="slow")
    ids = [
        client.files.create(file=(f"{i}.txt", TIDES.encode()), purpose="assistants").id
        for i in range(3)
    ]
    endpoint.gate.clear()
    try:
        batch = client.vector_stores.file_batches.create(vs.id, file_ids=ids)
        assert batch.status == "in_progress" and batch.file_counts.in_progress == 3
        cancelled = client.vector_stores.file_batches.cancel(batch.id, vector_store_id=vs.id)
    finally:
        endpoint.gate.set()
    assert cancelled.status == "cancelled"
    assert (cancelled.file_counts.cancelled, cancelled.file_counts.total) == (3, 3)
    done = client.vector_stores.file_batches.poll(batch.id, vector_store_id=vs.id)
    assert done.status == "cancelled"
    listed = client.vector_stores.file_batches.list_files(batch.id, vector_store_id=vs.id)
    assert {f.status for f in listed.data} == {"cancelled"}
    assert client.vector_stores.search(vs.id, query="tides moon").data == []  # nothing kept
    again = client.vector_stores.file_batches.cancel(batch.id, vector_store_id=vs.id)
    assert again.status == "cancelled"
