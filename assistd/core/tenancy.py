"""Workspaces and API keys: creation, hashing, and who a request acts as.

Keys are 256-bit random secrets, so one SHA-256 is enough to store them safely (no slow
hash needed: there is nothing to brute-force), and it lets a lookup be one indexed query.
An admin key of the `default` workspace acts in every workspace; an admin key of any
other workspace administers that workspace only; plain keys act in their own workspace.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from assistd.core.ids import new_id, now_ms
from assistd.core.objects import ApiKey, Principal, Workspace
from assistd.errors import Forbidden, InvalidRequest, NotFound, Unauthorized, echo
from assistd.store.base import Store

DEFAULT_WORKSPACE = "default"
KEY_PREFIX = "sk-assistd-"
_WORKSPACE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


class Tenancy:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def create_workspace(self, name: str) -> Workspace:
        if not _WORKSPACE_NAME.match(name) or name.startswith("ws_"):
            raise InvalidRequest(
                "A workspace name is 1-64 letters, digits, '_', '.' or '-', "
                "starts with a letter or digit, and does not start with 'ws_'.",
                "name",
            )
        workspace = Workspace(id=new_id("ws"), name=name, created_at=now_ms())
        async with self.store.admin(write=True) as unit:
            await unit.insert_workspace(workspace)
        return workspace

    async def ensure_default_workspace(self) -> Workspace:
        async with self.store.admin() as unit:
            found = await unit.get_workspace(DEFAULT_WORKSPACE)
        return found or await self.create_workspace(DEFAULT_WORKSPACE)

    async def find_workspace(self, id_or_name: str) -> Workspace:
        async with self.store.admin() as unit:
            found = await unit.get_workspace(id_or_name)
        if found is None:
            raise NotFound.of("workspace", id_or_name)
        return found

    async def list_workspaces(self) -> list[Workspace]:
        async with self.store.admin() as unit:
            return await unit.list_workspaces()

    async def create_key(
        self, workspace: str, *, admin: bool, name: str = "", secret: str | None = None
    ) -> tuple[ApiKey, str]:
        """Returns the key and its secret, which is shown this once and never stored."""
        ws = await self.find_workspace(workspace)
        secret = secret or new_secret()
        key = ApiKey(
            id=new_id("key"), workspace_id=ws.id, prefix=secret[:15], admin=admin,
            created_at=now_ms(), name=name,
        )  # fmt: skip
        async with self.store.admin(write=True) as unit:
            await unit.insert_key(key, hash_key(secret))
        return key, secret

    async def has_any_key(self) -> bool:
        async with self.store.admin() as unit:
            return bool(await unit.list_keys())

    async def register_key(self, secret: str) -> None:
        """Registers `secret` as an admin key of `default`, unless it already is a key."""
        async with self.store.admin() as unit:
            known = await unit.find_key(hash_key(secret))
        if known is None:
            await self.create_key(
                DEFAULT_WORKSPACE, admin=True, name="ASSISTD_API_KEY", secret=secret
            )

    async def bootstrap(self, configured_key: str | None) -> str | None:
        """Makes sure the server can be reached: registers the configured key, or on a
        first start with no key at all creates an admin key and returns its secret."""
        await self.ensure_default_workspace()
        if configured_key:
            await self.register_key(configured_key)
            return None
        if await self.has_any_key():
            return None
        _, secret = await self.create_key(DEFAULT_WORKSPACE, admin=True, name="first start")
        return secret

    async def list_keys(self, workspace_id: str | None = None) -> list[ApiKey]:
        async with self.store.admin() as unit:
            return await unit.list_keys(workspace_id)

    async def get_key(self, key_id: str) -> ApiKey:
        async with self.store.admin() as unit:
            key = await unit.get_key(key_id)
        if key is None:
            raise NotFound.of("API key", key_id)
        return key

    async def revoke_key(self, key_id: str) -> ApiKey:
        async with self.store.admin(write=True) as unit:
            key = await unit.get_key(key_id)
            if key is None:
                raise NotFound.of("API key", key_id)
            await unit.revoke_key(key_id, now_ms())
        return key

    async def authenticate(self, secret: str | None, workspace: str | None) -> Principal:
        """Who is calling and in which workspace; 401 for a bad key, 403 for a foreign workspace."""
        if not secret:
            raise Unauthorized("No API key provided. Send 'Authorization: Bearer <key>'.")
        async with self.store.admin() as unit:
            found = await unit.find_key_with_workspace(hash_key(secret))
            if found is None or found[0].revoked_at is not None:
                raise Unauthorized("Invalid API-key provided.")
            key, own = found
            same = not workspace or workspace in (own.id, own.name)
            target = own if same else await unit.get_workspace(workspace or "")
        global_admin = key.admin and own.name == DEFAULT_WORKSPACE
        if target is None or (target.id != key.workspace_id and not global_admin):
            raise Forbidden(f"This API key may not act in workspace '{echo(workspace)}'.")
        return Principal(
            key_id=key.id,
            key_workspace_id=key.workspace_id,
            workspace_id=target.id,
            admin=key.admin,
            global_admin=global_admin,
        )
