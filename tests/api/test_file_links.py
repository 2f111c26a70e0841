"""The download route of signed file links: a good link serves the file without an API
key; a tampered, expired or incomplete link is refused with a 4xx that says why, and a
deleted file's link is a 404. Links are signed here with the server's own secret (read
from its data dir, as a second server sharing it would)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import dashscope
import httpx
import pytest

from assistd.core.file_links import FileLinks
from assistd.secrets import derived_key, server_secret
from assistd.settings import Settings
from tests.support.fake_images import PNG
from tests.support.server import RunningServer

REFUSED, AGAIN = "This file link does not work:", "Ask for a new one."


@pytest.fixture
def keyed(server: RunningServer, ds: str) -> Iterator[httpx.Client]:
    """A client of the test's workspace (with its API key)."""
    headers = {"Authorization": f"Bearer {dashscope.api_key}"}
    with httpx.Client(base_url=server.dashscope_url, headers=headers, timeout=30) as client:
        yield client


def links_of(server: RunningServer, lifetime_s: int = 3600) -> FileLinks:
    secret = server_secret(Settings(data_dir=server.data_dir))
    return FileLinks(derived_key(secret, "file-links"), server.base_url, lifetime_s)


def upload(client: httpx.Client, name: str, content: bytes) -> str:
    response = client.post("/files", files={"files": (name, content)})
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["uploaded_files"][0]["file_id"])


def refusal(url: str) -> tuple[int, str]:
    response = httpx.get(url, timeout=30)
    return response.status_code, str(response.json()["message"])


def test_a_link_serves_an_image_inline_without_a_key(
    server: RunningServer, ds: str, keyed: httpx.Client
) -> None:
    file_id = upload(keyed, "cat picture.png", PNG)
    response = httpx.get(links_of(server).url(ds, file_id), timeout=30)  # no Authorization
    assert response.status_code == 200, response.text
    assert response.content == PNG
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-disposition"].startswith('inline; filename="cat picture.png"')
    assert response.headers["x-content-type-options"] == "nosniff"


def test_other_files_are_downloads_never_pages(
    server: RunningServer, ds: str, keyed: httpx.Client
) -> None:
    file_id = upload(keyed, "page.html", b"<script>alert(1)</script>")
    response = httpx.get(links_of(server).url(ds, file_id), timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"].startswith("attachment;")


def test_tampered_and_expired_links_are_refused(
    server: RunningServer, ds: str, keyed: httpx.Client
) -> None:
    links = links_of(server)
    file_id = upload(keyed, "cat.png", PNG)
    other = upload(keyed, "dog.png", PNG)
    url = links.url(ds, file_id)
    signature = parse_qs(urlsplit(url).query)["s"][0]
    forged = url.replace(f"s={signature}", f"s={signature[:-2]}AA")
    assert refusal(forged) == (403, f"{REFUSED} the link's signature does not match. {AGAIN}")
    assert refusal(url.replace(file_id, other))[0] == 403  # another file, same signature
    assert refusal(url.replace(f"w={ds}", "w=default"))[0] == 403  # another workspace
    expires = parse_qs(urlsplit(url).query)["e"][0]
    assert refusal(url.replace(f"e={expires}", f"e={int(expires) + 60}"))[0] == 403  # extended

    expired = links.url(ds, file_id, now=time.time() - 7200)
    assert refusal(expired) == (403, f"{REFUSED} the link has expired. {AGAIN}")


def test_an_incomplete_link_names_what_is_missing(
    server: RunningServer, ds: str, keyed: httpx.Client
) -> None:
    url = links_of(server).url(ds, upload(keyed, "cat.png", PNG))
    without_signature = url.split("&s=")[0]
    assert refusal(without_signature) == (
        400, "The file link lacks its 's' parameter; use it as given.",
    )  # fmt: skip


def test_a_deleted_files_link_is_not_found(
    server: RunningServer, ds: str, keyed: httpx.Client
) -> None:
    file_id = upload(keyed, "cat.png", PNG)
    url = links_of(server).url(ds, file_id)
    assert httpx.get(url, timeout=30).status_code == 200
    assert keyed.delete(f"/files/{file_id}").status_code == 200
    status, message = refusal(url)
    assert status == 404 and file_id in message, message
