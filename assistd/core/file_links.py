"""Signed, expiring download links of files, for replies read without an API key.

A link names the file, its workspace and an expiry time, signed with HMAC-SHA256 under a
key derived from the server's secret. The download route checks the signature and the
expiry, then serves the file if it still exists.
"""

from __future__ import annotations

import base64
import hmac
import time
from dataclasses import dataclass
from hashlib import sha256
from urllib.parse import quote

from assistd.secrets import derived_key, server_secret
from assistd.settings import Settings

LINK_PATH = "/links/files"  # + /{file_id}?w=&e=&s=


@dataclass(frozen=True, slots=True)
class FileLinks:
    key: bytes
    public_base_url: str
    lifetime_s: int

    def url(self, workspace_id: str, file_id: str, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + self.lifetime_s)
        signature = self._sign(workspace_id, file_id, expires)
        return (
            f"{self.public_base_url}{LINK_PATH}/{quote(file_id, safe='')}"
            f"?w={quote(workspace_id, safe='')}&e={expires}&s={signature}"
        )

    def check(
        self,
        workspace_id: str,
        file_id: str,
        expires: str,
        signature: str,
        now: float | None = None,
    ) -> str | None:
        """Why the link is refused (tampered, expired), or None when it is good."""
        if not expires.isdigit():
            return "the link is malformed"
        expected = self._sign(workspace_id, file_id, int(expires))
        if not hmac.compare_digest(expected, signature):
            return "the link's signature does not match"
        if int(expires) < (time.time() if now is None else now):
            return "the link has expired"
        return None

    def _sign(self, workspace_id: str, file_id: str, expires: int) -> str:
        message = f"{workspace_id}\n{file_id}\n{expires}".encode()
        digest = hmac.new(self.key, message, sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def file_links(settings: Settings) -> FileLinks:
    """The links of a server with these settings: what replies carry and the download
    route checks (the same for every process that shares the secret)."""
    key = derived_key(server_secret(settings), "file-links")
    return FileLinks(key, settings.public_url, settings.file_link_ttl_s)
