"""OpenAI's vector stores through the real openai SDK: create, list, modify, delete,
files with attributes and status filters, content pages, search, expiry."""

from __future__ import annotations

import openai
import pytest

from tests.retrieval import fixtures
from tests.support import db
from tests.support.server import RunningServer

SOUPS = (
    "Gazpacho is a cold soup of raw tomatoes, peppers and cucumber from Andalusia. "
    "It is served chilled in summer."
)
ONE_DAY = {"anchor": "last_active_at", "days": 1}
ENGINES = (
    "A turbofan engine moves most of its air around the core through a large fan. "
    "The bypass ratio describes how much."
)


def upload(client: openai.OpenAI, name: str, content: bytes) -> str:
    return client.files.create(file=(name, content), purpose="assistants").id


def ingested(client: openai.OpenAI, vs_id: str, file_id: str, **kwargs: object) -> object:
    """Adds the file and waits (the SDK's own polling) until it is processed."""
    made = client.vector_stores.files.create_and_poll(
        file_id=file_id, vector_store_id=vs_id, poll_interval_ms=50, **kwargs
    )
    return made


def test_create_retrieve_modify_list_delete(client: openai.OpenAI) -> None:
    made = client.vector_stores.create(
        name="handbook", metadata={"team": "docs"},
        expires_after={"anchor": "last_active_at", "days": 7},
    )  # fmt: skip
    assert made.object == "vector_store" and made.id.startswith("vs_")
    assert (made.name, made.metadata, made.status, made.usage_bytes) == (
        "handbook", {"team": "docs"}, "completed", 0,
    )  # fmt: skip
    assert made.file_counts.total == 0 and made.file_counts.in_progress == 0
    assert made.expires_after is not None and made.expires_after.days == 7
    assert made.last_active_at is not None and made.expires_at == made.last_active_at + 7 * 86400
    assert client.vector_stores.retrieve(made.id).model_dump() == made.model_dump()

    changed = client.vector_stores.update(made.id, name="manual", metadata={"team": "ops"})
    assert (changed.name, changed.metadata, changed.expires_at) == (
        "manual", {"team": "ops"}, made.expires_at,
    )  # fmt: skip
    forever = client.vector_stores.update(made.id, expires_after=None)  # type: ignore[arg-type]
    assert forever.expires_after is None and forever.expires_at is None

    others = [client.vector_stores.create(name=f"s{i}").id for i in range(3)]
    listed = client.vector_stores.list(limit=2)
    assert [s.id for s in listed.data] == others[::-1][:2] and listed.has_more
    assert [s.id for s in client.vector_stores.list(order="asc", limit=2)] == [made.id, *others]

    gone = client.vector_stores.delete(made.id)
    assert (gone.id, gone.object, gone.deleted) == (made.id, "vector_store.deleted", True)
    with pytest.raises(openai.NotFoundError) as missing:
        client.vector_stores.retrieve(made.id)
    assert made.id in missing.value.message


def test_store_made_with_files_counts_them(client: openai.OpenAI) -> None:
    ids = [upload(client, "soups.txt", SOUPS.encode()), upload(client, "empty.txt", b"")]
    made = client.vector_stores.create(name="kb", file_ids=ids)
    assert made.file_counts.total == 2
    for file_id in ids:
        client.vector_stores.files.poll(file_id, vector_store_id=made.id, poll_interval_ms=50)
    done = client.vector_stores.retrieve(made.id)
    assert (done.file_counts.completed, done.file_counts.failed, done.status) == (1, 1, "completed")
    assert done.usage_bytes > 0


def test_files_attributes_filters_and_content(client: openai.OpenAI) -> None:
    vs = client.vector_stores.create(name="kb")
    soups = upload(client, "soups.pdf", fixtures.pdf([SOUPS, "Page two: cold borscht."]))
    engines = upload(client, "engines.docx", fixtures.docx([ENGINES]))
    broken = upload(client, "broken.pdf", b"%PDF-1.4 not really")
    first = ingested(client, vs.id, soups, attributes={"topic": "food", "year": 2024})
    assert first.status == "completed" and first.attributes == {"topic": "food", "year": 2024}
    assert first.chunking_strategy.type == "static"
    second = ingested(
        client, vs.id, engines, attributes={"topic": "machines"},
        chunking_strategy={"type": "static", "static": {"max_chunk_size_tokens": 200,
                                                        "chunk_overlap_tokens": 50}},
    )  # fmt: skip
    assert second.status == "completed"
    assert second.chunking_strategy.static.max_chunk_size_tokens == 200  # type: ignore[union-attr]
    bad = ingested(client, vs.id, broken)
    assert bad.status == "failed" and bad.last_error is not None
    assert bad.last_error.code in ("invalid_file", "unsupported_file")

    completed = client.vector_stores.files.list(vs.id, filter="completed")
    assert {f.id for f in completed.data} == {soups, engines}
    assert [f.id for f in client.vector_stores.files.list(vs.id, filter="failed")] == [broken]
    assert [f.id for f in client.vector_stores.files.list(vs.id, order="asc", limit=1)] == [
        soups, engines, broken,
    ]  # fmt: skip

    updated = client.vector_stores.files.update(
        engines, vector_store_id=vs.id, attributes={"topic": "machines", "year": 1990}
    )
    assert updated.attributes == {"topic": "machines", "year": 1990}
    assert client.vector_stores.files.retrieve(engines, vector_store_id=vs.id).attributes == {
        "topic": "machines", "year": 1990,
    }  # fmt: skip

    pages = [p.text for p in client.vector_stores.files.content(soups, vector_store_id=vs.id)]
    assert len(pages) == 2 and "Gazpacho" in pages[0] and "borscht" in pages[1]

    gone = client.vector_stores.files.delete(broken, vector_store_id=vs.id)
    assert (gone.id, gone.object, gone.deleted) == (broken, "vector_store.file.deleted", True)
    assert client.vector_stores.retrieve(vs.id).file_counts.total == 2
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.files.retrieve(broken, vector_store_id=vs.id)


def test_search_with_filters_and_threshold(client: openai.OpenAI) -> None:
    vs = client.vector_stores.create(name="kb")
    soups = upload(client, "soups.md", f"# Soups\n\n{SOUPS}\n".encode())
    engines = upload(client, "engines.txt", ENGINES.encode())
    ingested(client, vs.id, soups, attributes={"topic": "food", "year": 2024})
    ingested(client, vs.id, engines, attributes={"topic": "machines", "year": 1990})

    page = client.vector_stores.search(vs.id, query="cold tomato soup")
    assert page.data[0].file_id == soups and page.data[0].filename == "soups.md"
    assert "Gazpacho" in page.data[0].content[0].text
    assert page.data[0].attributes == {"topic": "food", "year": 2024}
    scores = [hit.score for hit in page.data]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    raw = client.vector_stores.with_raw_response.search(vs.id, query=["fan", "bypass ratio"])
    assert raw.http_response.json()["search_query"] == ["fan", "bypass ratio"]

    machines = client.vector_stores.search(
        vs.id, query="cold tomato soup", filters={"type": "eq", "key": "topic", "value": "machines"}
    )
    assert [hit.file_id for hit in machines.data] == [engines]
    old = client.vector_stores.search(
        vs.id, query="soup", max_num_results=1, rewrite_query=True,
        filters={"type": "and", "filters": [{"type": "lt", "key": "year", "value": 2000}]},
    )  # fmt: skip
    assert [hit.file_id for hit in old.data] == [engines]
    strict = client.vector_stores.search(
        vs.id, query="cold tomato soup", ranking_options={"score_threshold": 0.99}
    )
    assert all(hit.score >= 0.99 for hit in strict.data) and len(strict.data) < len(page.data)


def test_expired_store_reads_expired_and_refuses_search(
    client: openai.OpenAI, server: RunningServer
) -> None:
    vs = client.vector_stores.create(name="old", expires_after=ONE_DAY)
    long_ago = vs.created_at - 3 * 86400
    db.query(
        server, "UPDATE vector_stores SET last_active_at = ?, expires_at = ? WHERE id = ?",
        long_ago, long_ago + 86400, vs.id,
    )  # fmt: skip
    assert client.vector_stores.retrieve(vs.id).status == "expired"
    with pytest.raises(openai.BadRequestError) as refused:
        client.vector_stores.search(vs.id, query="anything")
    assert "expired" in refused.value.message
    fresh = client.vector_stores.create(name="new", expires_after=ONE_DAY)
    client.vector_stores.search(fresh.id, query="anything")
    assert client.vector_stores.retrieve(fresh.id).status == "completed"
