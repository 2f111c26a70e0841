"""Signed file links and the server secret they derive from."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from assistd.core.file_links import FileLinks
from assistd.secrets import SecretBox, derived_key, server_secret
from assistd.settings import Settings

LINKS = FileLinks(b"k" * 32, "https://assistd.example", 3600)


def _parts(url: str) -> tuple[str, str, str, str]:
    path, query = url.split("?")
    fields = dict(pair.split("=") for pair in query.split("&"))
    return fields["w"], path.rsplit("/", 1)[1], fields["e"], fields["s"]


def test_a_fresh_link_checks_out_until_it_expires() -> None:
    url = LINKS.url("ws_1", "file-abc", now=1000)
    assert url.startswith("https://assistd.example/links/files/file-abc?")
    workspace, file_id, expires, signature = _parts(url)
    assert LINKS.check(workspace, file_id, expires, signature, now=1000) is None
    assert LINKS.check(workspace, file_id, expires, signature, now=4601) == "the link has expired"


@pytest.mark.parametrize("field", range(4))
def test_a_tampered_link_is_refused(field: int) -> None:
    parts = list(_parts(LINKS.url("ws_1", "file-abc", now=1000)))
    parts[field] = parts[field][:-1] + ("0" if parts[field][-1] != "0" else "1")
    assert LINKS.check(*parts, now=1000) in (
        "the link's signature does not match", "the link is malformed",
    )  # fmt: skip


def test_the_secret_is_made_once_and_kept_private(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    first = server_secret(settings)
    assert server_secret(settings) == first and len(first) == 32
    assert stat.S_IMODE((tmp_path / "data" / "secret.key").stat().st_mode) == 0o600
    configured = Settings(data_dir=tmp_path / "data", secret_key="s" * 32)
    assert server_secret(configured) != first
    assert derived_key(first, "a") != derived_key(first, "b")


def test_secret_box_round_trip_and_wrong_secret(tmp_path: Path) -> None:
    box = SecretBox(b"1" * 32)
    token = box.encrypt("ghp_token")
    assert "ghp_token" not in token and box.decrypt(token) == "ghp_token"
    with pytest.raises(ValueError, match="secret_key changed"):
        SecretBox(b"2" * 32).decrypt(token)
