"""Workspaces and API keys: creation, hashing, and who a request acts as.

Keys are 256-bit random secrets, so one SHA-256 is enough to store them safely (no slow
hash needed: there is nothing to brute-force), and it lets a lookup be one indexed query.
An admin key of the `default` workspace acts in every workspace; an admin key of any
other workspace administers that workspace only; plain keys act in their own workspace.
The key registered from ASSISTD_API_KEY is the bootstrap key: a new value replaces it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field

from assistd.core.ids import new_id, now_ms
from assistd.core.objects import ApiKey, Principal, Workspace
from assistd.errors import Conflict, Forbidden, InvalidRequest, NotFound, Unauthorized, echo
from assistd.store.base import AdminUnit, Store

DEFAULT_WORKSPACE = "default"
KEY_PREFIX = "sk-assistd-"
BOOTSTRAP_NAME = "ASSISTD_API_KEY"
LABEL_LIMIT = 128
SHOWN_CHARS = 4  # of a key's secret part, in listings
_WORKSPACE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# Control characters, and lone surrogates (undecodable bytes in a command-line argument).
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
LOST_KEY_HINT = (
    "a lost admin key is replaced by running `assistd key create --workspace default --admin` "
    "on the server's data dir or database"
)


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def shown_prefix(secret: str) -> str:
    """What listings show of a key: enough to tell keys apart, too little to matter."""
    head = KEY_PREFIX if secret.startswith(KEY_PREFIX) else ""
    return secret[: len(head) + SHOWN_CHARS]


def check_label(value: str, field_name: str) -> str:
    """A name or reference given by a caller: at most 128 printable characters."""
    if len(value) > LABEL_LIMIT:
        raise InvalidRequest(f"'{field_name}' is longer than {LABEL_LIMIT} characters.", field_name)
    if _UNPRINTABLE.search(value):
        raise InvalidRequest(f"'{field_name}' contains control characters.", field_name)
    return value


@dataclass
class Bootstrap:
    """What start-up did about keys, for the operator's console."""

    first_secret: str | None = None  # an admin key made because there was none
    revoked: list[ApiKey] = field(default_factory=list)  # replaced bootstrap keys
    notice: str = ""

    def announcement(self) -> str:
        """Lines for the console, each starting `assistd: ` except the secret's own."""
        lines = [f"assistd: {self.notice}"] if self.notice else []
        if self.revoked:
            ids = ", ".join(f"{k.id} ({k.prefix}...)" for k in self.revoked)
            lines.append(f"assistd: {BOOTSTRAP_NAME} changed: revoked the previous key {ids}")
        if self.first_secret:
            lines += [
                "assistd: created the first admin API key (shown once; only its hash is kept):",
                self.first_secret,
                f"assistd: {LOST_KEY_HINT}",
            ]
        return "\n".join(lines)


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
        if found is not None:
            return found
        try:
            return await self.create_workspace(DEFAULT_WORKSPACE)
        except Conflict:  # another process starting at the same moment made it
            async with self.store.admin() as unit:
                made = await unit.get_workspace(DEFAULT_WORKSPACE)
            assert made is not None
            return made

    async def find_workspace(self, id_or_name: str) -> Workspace:
        check_label(id_or_name, "workspace")
        async with self.store.admin() as unit:
            found = await unit.get_workspace(id_or_name)
        if found is None:
            raise NotFound.of("workspace", id_or_name)
        return found

    async def list_workspaces(self) -> list[Workspace]:
        async with self.store.admin() as unit:
            return await unit.list_workspaces()

    async def delete_workspace(self, id_or_name: str, *, force: bool = False) -> Workspace:
        """Deletes a workspace and its keys; one that still holds objects only with `force`,
        which deletes them too, in the same transaction. Never `default`."""
        check_label(id_or_name, "workspace")
        async with self.store.admin(write=True) as unit:
            ws = await unit.get_workspace(id_or_name)
            if ws is None:
                raise NotFound.of("workspace", id_or_name)
            if ws.name == DEFAULT_WORKSPACE:
                raise Conflict("The 'default' workspace cannot be deleted.")
            held = {k: n for k, n in (await unit.workspace_contents(ws.id)).items() if n}
            if held and not force:
                raise Conflict(_not_empty(ws, held))
            await unit.delete_workspace(ws.id)
        return ws

    async def create_key(
        self, workspace: str, *, admin: bool, name: str = "", secret: str | None = None
    ) -> tuple[ApiKey, str]:
        """Returns the key and its secret, which is shown this once and never stored."""
        check_label(name, "name")
        ws = await self.find_workspace(workspace)
        secret = secret or new_secret()
        key = _new_key(ws.id, secret, admin=admin, name=name)
        async with self.store.admin(write=True) as unit:
            await unit.insert_key(key, hash_key(secret))
        return key, secret

    async def bootstrap(self, configured_key: str | None) -> Bootstrap:
        """Makes sure the server can be reached: registers the configured key (replacing
        the one an earlier value of the variable registered), or on a first start with no
        key at all creates an admin key and hands back its secret."""
        default = await self.ensure_default_workspace()
        if configured_key:
            try:
                return await self._register(configured_key, default)
            except Conflict:  # another server registered it this moment: now it is known
                return await self._register(configured_key, default)
        async with self.store.admin() as unit:
            keys = await unit.list_keys()
        if not keys:
            _, secret = await self.create_key(DEFAULT_WORKSPACE, admin=True, name="first start")
            return Bootstrap(first_secret=secret)
        return Bootstrap(notice=_unset_notice(keys))

    async def _register(self, secret: str, default: Workspace) -> Bootstrap:
        async with self.store.admin(write=True) as unit:
            key = await unit.find_key(hash_key(secret))
            if key is not None and (
                key.revoked_at or not key.admin or key.workspace_id != default.id
            ):
                return Bootstrap(notice=_unusable_notice(key))
            if key is None:
                key = _new_key(default.id, secret, admin=True, name=BOOTSTRAP_NAME)
                key.bootstrap = True
                await unit.insert_key(key, hash_key(secret))
            elif not key.bootstrap:
                await unit.mark_bootstrap(key.id)
            return Bootstrap(revoked=await _revoke_other_bootstraps(unit, key, default))

    async def list_keys(self, workspace_id: str | None = None) -> list[ApiKey]:
        async with self.store.admin() as unit:
            return await unit.list_keys(workspace_id)

    async def get_key(self, key_id: str) -> ApiKey:
        check_label(key_id, "key_id")
        async with self.store.admin() as unit:
            key = await unit.get_key(key_id)
        if key is None:
            raise NotFound.of("API key", key_id)
        return key

    async def revoke_key(self, key_id: str) -> ApiKey:
        check_label(key_id, "key_id")
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
            key_limits=key.limits,
            workspace_limits=target.limits,
        )


def _new_key(workspace_id: str, secret: str, *, admin: bool, name: str) -> ApiKey:
    return ApiKey(
        id=new_id("key"), workspace_id=workspace_id, prefix=shown_prefix(secret), admin=admin,
        created_at=now_ms(), name=name,
    )  # fmt: skip


async def _revoke_other_bootstraps(
    unit: AdminUnit, current: ApiKey, default: Workspace
) -> list[ApiKey]:
    stale = [
        k for k in await unit.list_keys(default.id)
        if k.bootstrap and k.revoked_at is None and k.id != current.id
    ]  # fmt: skip
    for key in stale:
        await unit.revoke_key(key.id, now_ms())
    return stale


def _unusable_notice(key: ApiKey) -> str:
    if key.revoked_at:
        return f"{BOOTSTRAP_NAME} is key {key.id}, which was revoked: set a new key."
    return (
        f"{BOOTSTRAP_NAME} is key {key.id}, which is not an admin key of '{DEFAULT_WORKSPACE}': "
        "it keeps its own role."
    )


def _unset_notice(keys: list[ApiKey]) -> str:
    live = [k.id for k in keys if k.bootstrap and k.revoked_at is None]
    if not live:
        return ""
    return (
        f"{BOOTSTRAP_NAME} is not set; the key registered from it earlier ({', '.join(live)}) "
        f"stays active until `assistd key revoke {live[0]}`."
    )


def _not_empty(ws: Workspace, held: dict[str, int]) -> str:
    what = ", ".join(f"{n} {kind if n > 1 else kind.rstrip('s')}" for kind, n in held.items())
    return (
        f"Workspace '{ws.name}' still holds {what}. Delete them first, or delete the workspace "
        "with force (the API's ?force=true, the CLI's --force) to delete everything in it."
    )
