"""`dashscope.Files` (DashScope's non-flattened File API) and file downloads."""

from __future__ import annotations

import hashlib
from pathlib import Path

import dashscope
from dashscope import Assistants, Messages, Threads
from dashscope.assistants import files as assistant_files

from tests.support.sdk import as_json, assert_ok, assert_raw_error, raw_client, upload
from tests.support.server import RunningServer

BINARY = bytes(range(256)) * 4 + b"\x00\xff\r\n\r\nend"


def test_upload_and_get(ds: str, tmp_path: Path) -> None:
    path = tmp_path / "report.bin"
    path.write_bytes(BINARY)
    file_id = upload(path, description="quarterly numbers")
    assert file_id.startswith("file_")

    got = dashscope.Files.get(file_id)
    assert got.status_code == 200, got
    assert isinstance(got.request_id, str) and got.request_id
    info = got.output
    assert info["file_id"] == file_id
    assert info["name"] == "report.bin"
    assert info["description"] == "quarterly numbers"
    assert info["size"] == len(BINARY)
    assert info["md5"] == hashlib.md5(BINARY).hexdigest()
    assert info["purpose"] == "assistants"
    assert isinstance(info["created_at"], int) and info["created_at"] > 10**12
    as_json(got)


def test_content_download_returns_the_exact_bytes(
    server: RunningServer, ds: str, tmp_path: Path
) -> None:
    path = tmp_path / "données ünïcode.bin"
    path.write_bytes(BINARY)
    file_id = upload(path)
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    empty_id = upload(empty)
    with raw_client(server) as client:
        response = client.get(f"/files/{file_id}/content")
        assert response.status_code == 200
        assert response.content == BINARY
        assert "attachment" in response.headers["content-disposition"]
        assert (
            "filename*=UTF-8''donn%C3%A9es%20%C3%BCn%C3%AFcode.bin"
            in (response.headers["content-disposition"])
        )
        assert client.get(f"/files/{empty_id}/content").content == b""
        assert_raw_error(client.get("/files/file_nope/content"), 404, "NotFound", "file_nope")
    # Without a key there is no download.
    with raw_client(server, key="sk-wrong") as stranger:
        assert_raw_error(stranger.get(f"/files/{file_id}/content"), 401, "InvalidApiKey")


def test_list_pages_by_number(ds: str, tmp_path: Path) -> None:
    ids = []
    for i in range(5):
        path = tmp_path / f"f{i}.txt"
        path.write_text(f"file {i}")
        ids.append(upload(path))
    newest_first = ids[::-1]

    default = dashscope.Files.list()
    assert default.status_code == 200, default
    assert default.output["total"] == 5
    assert [f["file_id"] for f in default.output["files"]] == newest_first
    assert [f["name"] for f in default.output["files"]] == [f"f{i}.txt" for i in (4, 3, 2, 1, 0)]

    seen = []
    for page in (1, 2, 3):
        listed = dashscope.Files.list(page=page, page_size=2)
        assert listed.status_code == 200, listed
        assert (listed.output["page_no"], listed.output["page_size"]) == (page, 2)
        assert listed.output["total"] == 5
        seen.append([f["file_id"] for f in listed.output["files"]])
    assert seen == [newest_first[0:2], newest_first[2:4], newest_first[4:]]
    beyond = dashscope.Files.list(page=4, page_size=2)
    assert beyond.output["files"] == [] and beyond.output["total"] == 5

    for bad, field in (({"page": 0}, "page_no"), ({"page_size": 0}, "page_size")):
        refused = dashscope.Files.list(**bad)
        assert refused.status_code == 400, refused
        assert refused.code == "InvalidParameter" and field in refused.message


def test_delete(ds: str, tmp_path: Path, text_file: Path) -> None:
    keep = upload(text_file)
    gone = upload(text_file)
    deleted = dashscope.Files.delete(gone)
    assert deleted.status_code == 200, deleted
    assert deleted.output == {"file_id": gone, "deleted": True}

    missing = dashscope.Files.get(gone)
    assert (missing.status_code, missing.code) == (404, "NotFound")
    assert gone in missing.message
    again = dashscope.Files.delete(gone)
    assert (again.status_code, again.code) == (404, "NotFound")
    listed = dashscope.Files.list()
    assert [f["file_id"] for f in listed.output["files"]] == [keep]
    assert listed.output["total"] == 1


def test_deleting_a_file_detaches_it_from_assistants(ds: str, tmp_path: Path) -> None:
    first, second = tmp_path / "one.txt", tmp_path / "two.txt"
    first.write_text("one")
    second.write_text("two")
    f1, f2 = upload(first), upload(second)
    assistant = Assistants.create(model="qwen-max", file_ids=[f1, f2])
    assert_ok(assistant)
    assert dashscope.Files.delete(f1).status_code == 200
    assert Assistants.retrieve(assistant.id).file_ids == [f2]
    assert [f.id for f in assistant_files.Files.list(assistant.id).data] == [f2]
    # A deleted file cannot be attached or referenced again.
    refused = assistant_files.Files.create(assistant.id, file_id=f1)
    assert (refused.status_code, refused.code) == (400, "InvalidParameter")
    thread = Threads.create()
    message = Messages.create(thread.id, content="see file", file_ids=[f1])
    assert (message.status_code, message.code) == (400, "InvalidParameter")
    assert f1 in message.message


def test_uploads_are_counted_once_each(ds: str, text_file: Path) -> None:
    """The same content uploaded twice is two files with the same checksum."""
    a, b = upload(text_file), upload(text_file)
    assert a != b
    infos = [dashscope.Files.get(i).output for i in (a, b)]
    assert infos[0]["md5"] == infos[1]["md5"] == hashlib.md5(text_file.read_bytes()).hexdigest()
    assert dashscope.Files.list().output["total"] == 2
