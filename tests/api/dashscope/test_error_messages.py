"""Error messages say what is wrong, and quote at most 64 characters of what was sent:
a 20 KB id used to come back whole in a 20 KB 404."""

from __future__ import annotations

import gzip
from typing import Any

import httpx
import pytest
from dashscope import Assistants

from tests.runs.helpers import ok
from tests.support.sdk import assert_raw_error, raw_client
from tests.support.server import RunningServer

LONG = "x" * 20_000
QUOTED = "x" * 64 + "..."


@pytest.fixture
def client(server: RunningServer, ds: str) -> Any:
    with raw_client(server) as c:
        yield c


def _quotes_a_prefix(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text[:300]
    message = response.json()["message"]
    assert QUOTED in message and "x" * 65 not in message, message[:300]
    assert len(response.content) < 1000


def test_long_ids_in_the_url_are_quoted_short(client: httpx.Client) -> None:
    thread = client.post("/threads", content=b"{}").json()["id"]
    for path in (
        f"/assistants/{LONG}",
        f"/assistants/{LONG}/files",
        f"/threads/{LONG}",
        f"/threads/{thread}/messages/{LONG}",
        f"/threads/{thread}/runs/{LONG}",
        f"/files/{LONG}",
    ):
        _quotes_a_prefix(client.get(path), 404)
    for query in (f"after={LONG}", f"before={LONG}", f"order={LONG}", f"limit={LONG}"):
        _quotes_a_prefix(client.get(f"/assistants?{query}"), 400)
    _quotes_a_prefix(client.get(f"/threads/{thread}/messages?after={LONG}"), 400)
    _quotes_a_prefix(client.get(f"/files?page_no={LONG}"), 400)
    _quotes_a_prefix(client.get("/assistants", headers={"X-DashScope-WorkSpace": LONG}), 403)


def test_long_values_in_bodies_are_quoted_short(client: httpx.Client) -> None:
    thread = client.post("/threads", content=b"{}").json()["id"]
    assistant = ok(Assistants.create(model="qwen-max"))
    for path, body, status in (
        (f"/threads/{thread}/runs", {"assistant_id": LONG}, 404),
        ("/threads/runs", {"assistant_id": LONG}, 404),
        ("/assistants", {"model": "m", "tools": [{"type": LONG}]}, 400),
        ("/assistants", {"model": "m", "file_ids": [LONG]}, 400),
        (f"/assistants/{assistant.id}/files", {"file_id": LONG}, 400),
        (f"/threads/{thread}/messages", {"content": "x", "role": LONG}, 400),
        ("/threads", {"metadata": {LONG: "v"}}, 400),
    ):
        _quotes_a_prefix(client.post(path, json=body), status)


@pytest.mark.parametrize(
    "body", [b'{"metadata": {"a": "\xff"}}', b"\xff\xfe{}", b'{"name": "caf\xe9"}']
)
def test_a_body_that_is_not_utf8_is_named_so(client: httpx.Client, body: bytes) -> None:
    response = client.post("/threads", content=body, headers={"Content-Type": "application/json"})
    assert_raw_error(response, 400, "InvalidParameter", "not valid JSON", "must be UTF-8")
    assert "surrogates" not in response.json()["message"]


def test_a_compressed_body_is_415(client: httpx.Client) -> None:
    packed = gzip.compress(b'{"metadata": {"a": "b"}}')
    for encoding in ("gzip", "deflate", "br"):
        response = client.post(
            "/threads",
            content=packed,
            headers={"Content-Encoding": encoding, "Content-Type": "application/json"},
        )
        assert_raw_error(
            response, 415, "UnsupportedMediaType", f"Content-Encoding '{encoding}'", "uncompressed"
        )
    upload = client.post(
        "/files", files={"files": ("a.txt", b"a")}, headers={"Content-Encoding": "gzip"}
    )
    assert_raw_error(upload, 415, "UnsupportedMediaType", "Content-Encoding 'gzip'")
    identity = client.post("/threads", json={}, headers={"Content-Encoding": "identity"})
    assert identity.status_code == 200, identity.text
    assert client.get("/files").json()["data"]["total"] == 0


def test_a_basic_authorization_header_is_named(server: RunningServer, ds: str) -> None:
    with httpx.Client(base_url=server.dashscope_url, timeout=30) as client:
        basic = client.get("/assistants", headers={"Authorization": "Basic c2stYWRtaW4="})
        assert_raw_error(
            basic, 401, "InvalidApiKey", "must be 'Bearer <API key>'", "not 'Basic ...'"
        )
        # A bare key (no scheme): named as the wrong form, and never quoted back.
        bare = client.get("/assistants", headers={"Authorization": "sk-bare-secret-key"})
        assert_raw_error(bare, 401, "InvalidApiKey", "must be 'Bearer <API key>'")
        assert "sk-bare" not in bare.text
        missing = client.get("/assistants")
        assert_raw_error(missing, 401, "InvalidApiKey", "No API key provided")


def test_an_upload_part_without_a_filename_is_named(client: httpx.Client) -> None:
    no_filename = client.post("/files", files={"files": ("", b"abc")})  # httpx drops it
    assert "filename" not in no_filename.request.read().decode()
    assert_raw_error(no_filename, 400, "InvalidParameter", "'files' has no filename")
    boundary = "assistd-test-boundary"
    empty = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename=""\r\n'
        f"Content-Type: text/plain\r\n\r\nabc\r\n--{boundary}--\r\n"
    ).encode()
    response = client.post(
        "/files",
        content=empty,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert_raw_error(response, 400, "InvalidParameter", "empty filename")
    assert client.get("/files").json()["data"]["total"] == 0
