"""The server's secret, and what is derived from it: link signatures and the key that
encrypts stored credentials (plugin tokens).

The secret is `secret_key` from the settings, or else 32 random bytes written once to
`secret.key` in the data dir (0600). Servers that share one database must share it too,
so a scaled-out deployment sets `ASSISTD_SECRET_KEY`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from assistd.settings import Settings

SECRET_FILE = "secret.key"


def server_secret(settings: Settings) -> bytes:
    if settings.secret_key:
        return hashlib.sha256(settings.secret_key.encode()).digest()
    return _secret_file(settings.data_dir / SECRET_FILE)


def _secret_file(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        path.chmod(0o600)  # one left readable (copied in, an older version) is tightened
        return bytes.fromhex(path.read_text().strip())
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32))
    return bytes.fromhex(path.read_text().strip())


def derived_key(secret: bytes, purpose: str) -> bytes:
    """A key for one purpose, so that no two uses share a key."""
    return hmac.new(secret, f"assistd/{purpose}".encode(), hashlib.sha256).digest()


class SecretBox:
    """Encrypts credentials for storage; they are decrypted only to make a call."""

    def __init__(self, secret: bytes) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(derived_key(secret, "secret-box")))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        """The plaintext; ValueError when the token was made with another secret."""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise ValueError(
                "a stored secret cannot be decrypted: the server's secret_key changed"
            ) from None
