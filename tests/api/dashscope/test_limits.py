"""Body and file size limits (413), on one dedicated SQLite server with small limits:
max_request_bytes=2000, max_file_bytes=1000. A refused request writes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import dashscope
import httpx
import pytest
from dashscope import Assistants, Messages, Threads

from tests.conftest import make_workspace
from tests.support.sdk import assert_error, assert_ok, assert_raw_error, raw_client, upload
from tests.support.server import RunningServer, run_server

REQUEST_LIMIT = 2000
FILE_LIMIT = 1000


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with run_server(
        tmp_path_factory.mktemp("limits"),
        ASSISTD_MAX_REQUEST_BYTES=str(REQUEST_LIMIT),
        ASSISTD_MAX_FILE_BYTES=str(FILE_LIMIT),
    ) as running:
        yield running


@pytest.fixture
def small(small_server: RunningServer) -> Iterator[RunningServer]:
    """The SDK pointed at the small server with the key of a fresh workspace."""
    headers = {"Authorization": f"Bearer {small_server.admin_key}"}
    with httpx.Client(base_url=small_server.base_url, headers=headers, timeout=30) as admin:
        _, key = make_workspace(admin, "limits")
    saved = dashscope.base_http_api_url, dashscope.api_key
    dashscope.base_http_api_url = small_server.dashscope_url
    dashscope.api_key = key
    try:
        yield small_server
    finally:
        dashscope.base_http_api_url, dashscope.api_key = saved


def _file_total() -> int:
    listed = dashscope.Files.list()
    assert listed.status_code == 200, listed
    total: int = listed.output["total"]
    return total


def test_json_body_over_the_limit(small: RunningServer) -> None:
    existing = Assistants.create(model="qwen-max", name="small", instructions="short")
    assert_ok(existing)
    thread = Threads.create(messages=[{"role": "user", "content": "hello"}])
    big = "x" * (REQUEST_LIMIT + 100)

    assert_error(
        Assistants.create(model="qwen-max", instructions=big), 413, "RequestTooLarge", "2000"
    )
    assert_error(Assistants.update(existing.id, instructions=big), 413, "RequestTooLarge")
    assert_error(
        Threads.create(messages=[{"role": "user", "content": big}]), 413, "RequestTooLarge"
    )
    assert_error(Messages.create(thread.id, content=big), 413, "RequestTooLarge")
    valid_but_big = {f"k{i}": "m" * 400 for i in range(6)}  # within the metadata limits
    assert_error(Threads.update(thread.id, metadata=valid_but_big), 413, "RequestTooLarge")

    assert [a.id for a in Assistants.list().data] == [existing.id]
    assert Assistants.retrieve(existing.id).instructions == "short"
    assert len(Messages.list(thread.id).data) == 1
    assert Threads.retrieve(thread.id).metadata == {}


def test_body_under_the_limit_is_fine(small: RunningServer) -> None:
    created = Assistants.create(model="qwen-max", instructions="y" * (REQUEST_LIMIT - 200))
    assert_ok(created)
    assert len(created.instructions) == REQUEST_LIMIT - 200


def test_chunked_body_over_the_limit(small: RunningServer) -> None:
    """Without a Content-Length the limit is enforced while the body streams in."""

    def chunks() -> Iterator[bytes]:
        yield b'{"model": "qwen-max", "instructions": "'
        for _ in range(30):
            yield b"z" * 100
        yield b'"}'

    with raw_client(small) as client:
        response = client.post(
            "/assistants", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert "content-length" not in response.request.headers
        assert_raw_error(response, 413, "RequestTooLarge", "2000")
        small_body = json.dumps({"model": "qwen-max", "name": "chunked"}).encode()
        fine = client.post("/assistants", content=iter([small_body]))
        assert fine.status_code == 200, fine.text
    assert [a.name for a in Assistants.list().data] == ["chunked"]


def test_file_over_the_file_limit(small: RunningServer, tmp_path: Path) -> None:
    exact = tmp_path / "exact.bin"
    exact.write_bytes(b"e" * FILE_LIMIT)
    kept = upload(exact)
    too_big = tmp_path / "big.bin"
    too_big.write_bytes(b"b" * (FILE_LIMIT + 1))
    refused = dashscope.Files.upload(str(too_big), purpose="assistants")
    assert refused.status_code == 413, refused
    assert refused.code == "RequestTooLarge"
    assert "big.bin" in refused.message and "1000" in refused.message
    listed = dashscope.Files.list()
    assert [f["file_id"] for f in listed.output["files"]] == [kept]
    assert listed.output["total"] == 1


def test_multi_file_upload_is_all_or_nothing(small: RunningServer) -> None:
    """The SDK uploads one file a call; raw multipart can carry several."""
    with raw_client(small) as client:
        response = client.post(
            "/files",
            files=[
                ("files", ("ok.txt", b"fine")),
                ("files", ("big.txt", b"b" * (FILE_LIMIT + 1))),
            ],
        )
        assert_raw_error(response, 413, "RequestTooLarge", "big.txt")
        assert _file_total() == 0
        both = client.post(
            "/files",
            files=[("files", ("one.txt", b"1")), ("files", ("two.txt", b"22"))],
            data={"descriptions": ["first", "second"]},
        )
        assert both.status_code == 200, both.text
        uploaded = both.json()["data"]["uploaded_files"]
        assert [u["name"] for u in uploaded] == ["one.txt", "two.txt"]
    infos = [dashscope.Files.get(u["file_id"]).output for u in uploaded]
    assert [(i["size"], i["description"]) for i in infos] == [(1, "first"), (2, "second")]
    assert _file_total() == 2


def test_upload_body_far_over_the_limit(small: RunningServer) -> None:
    """The upload route allows one file plus multipart framing (1 MiB) before reading."""
    with raw_client(small) as client:
        huge = b"h" * (FILE_LIMIT + 1024 * 1024 + 10)
        response = client.post("/files", files={"files": ("huge.bin", huge)})
        assert_raw_error(response, 413, "RequestTooLarge")
    assert _file_total() == 0


def test_upload_purpose_and_description_checked(small: RunningServer) -> None:
    with raw_client(small) as client:
        long_purpose = client.post(
            "/files", files={"files": ("a.txt", b"a")}, data={"purpose": "p" * 65}
        )
        assert_raw_error(long_purpose, 400, "InvalidParameter", "'purpose'")
        long_description = client.post(
            "/files", files={"files": ("a.txt", b"a")}, data={"descriptions": "d" * 513}
        )
        assert_raw_error(long_description, 400, "InvalidParameter", "'descriptions'")
        no_files = client.post("/files", files={"other": ("a.txt", b"a")})
        assert_raw_error(no_files, 400, "InvalidParameter", "'files'")
        not_multipart = client.post("/files", json={"files": "a"})
        assert_raw_error(not_multipart, 415, "UnsupportedMediaType", "multipart")
    assert _file_total() == 0
