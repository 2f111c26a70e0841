"""A plugin's credentials, sealed for storage: the service token and the headers sent to
an MCP server, as one encrypted JSON text. They are unsealed only to build a toolset."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from assistd.secrets import SecretBox


@dataclass(frozen=True, slots=True)
class Credentials:
    token: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def secrets(self) -> list[str]:
        """Every secret value, to keep out of what the model and the user see."""
        return [s for s in (self.token, *self.headers.values()) if s]


def seal(box: SecretBox, credentials: Credentials) -> str | None:
    if not credentials.token and not credentials.headers:
        return None
    return box.encrypt(json.dumps({"token": credentials.token, "headers": credentials.headers}))


def unseal(box: SecretBox, sealed: str | None) -> Credentials:
    """ValueError when the server's secret changed since the credentials were sealed."""
    if not sealed:
        return Credentials()
    opened = json.loads(box.decrypt(sealed))
    return Credentials(token=opened.get("token"), headers=dict(opened.get("headers") or {}))
