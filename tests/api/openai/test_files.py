"""OpenAI's Files API through the real openai SDK: multipart upload with a purpose,
list with its own defaults, retrieve, content, delete."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest


def test_upload_retrieve_content_delete(client: openai.OpenAI, tmp_path: Path) -> None:
    path = tmp_path / "report.csv"
    path.write_bytes(b"a,b\n1,2\n")
    made = client.files.create(file=path, purpose="assistants")
    assert made.object == "file" and made.filename == "report.csv" and made.bytes == 8
    assert made.purpose == "assistants" and made.status == "processed"
    assert 1_000_000_000 < made.created_at < 10_000_000_000
    assert client.files.retrieve(made.id).model_dump() == made.model_dump()
    assert client.files.content(made.id).content == b"a,b\n1,2\n"
    gone = client.files.delete(made.id)
    assert (gone.id, gone.object, gone.deleted) == (made.id, "file", True)
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(made.id)
    with pytest.raises(openai.NotFoundError):
        client.files.content(made.id)


def test_upload_from_bytes_with_expires_after(client: openai.OpenAI) -> None:
    made = client.files.create(
        file=("notes.md", b"# hi\n", "text/markdown"),
        purpose="user_data",
        expires_after={"anchor": "created_at", "seconds": 3600},
    )
    assert made.filename == "notes.md" and made.purpose == "user_data"


def test_list_defaults_purpose_and_cursors(client: openai.OpenAI) -> None:
    ids = [
        client.files.create(file=(f"{i}.txt", b"x"), purpose="assistants" if i % 2 else "vision").id
        for i in range(25)
    ]
    page = client.files.list()
    assert [f.id for f in page.data] == ids[::-1] and page.has_more is False  # no 20 cap
    odd = client.files.list(purpose="assistants")
    assert [f.id for f in odd.data] == ids[1::2][::-1]
    asc = client.files.list(order="asc", limit=3, after=ids[2])
    assert [f.id for f in asc.data] == ids[3:6] and asc.has_more is True
    assert [f.id for f in client.files.list(limit=7, order="asc")] == ids  # auto-paged


@pytest.mark.parametrize(
    ("data", "files", "param", "words"),
    [
        ({}, {"file": ("a.txt", b"x")}, "purpose", "required"),
        ({"purpose": "fun"}, {"file": ("a.txt", b"x")}, "purpose", "fun"),
        ({"purpose": "assistants"}, {"other": ("a.txt", b"x")}, "file", "'file'"),
        ({"purpose": "assistants", "file": "not a file"}, None, "file", "filename"),
    ],
)
def test_bad_uploads(
    raw: httpx.Client,
    data: dict[str, str],
    files: dict[str, tuple[str, bytes]] | None,
    param: str,
    words: str,
) -> None:
    if files is None:  # a form without any file part
        answer = raw.post("/files", data=data, files={"x": ("", b"")})
    else:
        answer = raw.post("/files", data=data, files=files)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["param"] == param and words in error["message"], error


def test_upload_must_be_multipart(raw: httpx.Client) -> None:
    answer = raw.post("/files", json={"purpose": "assistants"})
    assert answer.status_code == 415
    assert "multipart/form-data" in answer.json()["error"]["message"]


def test_list_limit_range(raw: httpx.Client) -> None:
    assert raw.get("/files", params={"limit": 10_000}).status_code == 200
    answer = raw.get("/files", params={"limit": 10_001})
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "limit"
