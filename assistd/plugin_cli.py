"""What `assistd plugin ...` does besides parsing its options: the spec a registration
sends to the plugin registry, and the rows `assistd plugin list` prints."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import click

from assistd.core.objects import PageRequest
from assistd.core.plugin_rules import AuthSpec
from assistd.core.plugins import PluginService, PluginSpec
from assistd.secrets import SecretBox, server_secret
from assistd.settings import Settings
from assistd.store.base import Store

_NOT_ID = re.compile(r"[^A-Za-z0-9_]+")


def service(store: Store, settings: Settings) -> PluginService:
    return PluginService(store, settings, SecretBox(server_secret(settings)))


def spec_from_options(given: dict[str, Any]) -> PluginSpec:
    openapi_file: Path | None = given.get("openapi_file")
    mcp_url: str | None = given.get("mcp_url")
    if (openapi_file is None) == (mcp_url is None):
        raise click.ClickException("give either --openapi FILE or --mcp-url URL")
    plugin_id = given.get("plugin_id") or _id_from(openapi_file)
    description = given.get("description")
    if mcp_url is not None:
        _refuse_auth(given)
        return PluginSpec(
            plugin_id=plugin_id, description=description, kind="mcp", url=mcp_url,
            headers=_headers(given.get("headers") or ()),
            allowed_tools=list(given.get("allowed_tools") or ()) or None,
        )  # fmt: skip
    if given.get("headers") or given.get("allowed_tools"):
        raise click.ClickException("--header and --allowed-tool apply to --mcp-url plugins")
    assert openapi_file is not None
    try:
        document = openapi_file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise click.ClickException(f"--openapi: {openapi_file} is not UTF-8 text") from None
    return PluginSpec(
        plugin_id=plugin_id, description=description, kind="openapi", openapi=document,
        url=given.get("base_url"), auth=_auth(given),
    )  # fmt: skip


def _id_from(openapi_file: Path | None) -> str | None:
    if openapi_file is None:
        raise click.ClickException("an MCP plugin needs --id")
    return _NOT_ID.sub("_", openapi_file.stem).strip("_")[:64] or None


def _auth(given: dict[str, Any]) -> AuthSpec | None:
    names = ("auth_type", "auth_in", "auth_name", "auth_scheme", "auth_token", "auth_token_env")
    if not any(given.get(name) for name in names):
        return None
    return AuthSpec(
        type=given.get("auth_type") or ("service" if _token_given(given) else None),
        placement=given.get("auth_in"),
        name=given.get("auth_name"),
        scheme=given.get("auth_scheme"),
        token=_token(given),
    )


def _token_given(given: dict[str, Any]) -> bool:
    return bool(given.get("auth_token") or given.get("auth_token_env"))


def _token(given: dict[str, Any]) -> str | None:
    token: str | None = given.get("auth_token")
    variable: str | None = given.get("auth_token_env")
    if token and variable:
        raise click.ClickException("give --auth-token or --auth-token-env, not both")
    if token == "-":
        return sys.stdin.readline().rstrip("\r\n") or None
    if variable:
        value = os.environ.get(variable)
        if not value:
            raise click.ClickException(f"--auth-token-env: the variable {variable} is not set")
        return value
    return token


def _refuse_auth(given: dict[str, Any]) -> None:
    for name in ("auth_type", "auth_in", "auth_name", "auth_scheme", "auth_token",
                 "auth_token_env", "base_url"):  # fmt: skip
        if given.get(name):
            option = "--url" if name == "base_url" else "--" + name.replace("_", "-")
            raise click.ClickException(
                f"{option} applies to --openapi plugins; an MCP server's credential goes in "
                "--header (e.g. --header 'Authorization=Bearer ...')"
            )


def _headers(pairs: tuple[str, ...]) -> dict[str, str] | None:
    headers: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise click.ClickException(f"--header: '{name}' is not NAME=VALUE")
        headers[name.strip()] = value
    return headers or None


async def rows(plugins: PluginService, workspace_id: str) -> list[str]:
    """Every plugin of the workspace, oldest first: id, kind, auth, description."""
    found: list[str] = []
    after: str | None = None
    while True:
        page = await plugins.list(workspace_id, PageRequest(limit=100, order="asc", after=after))
        for p in page.items:
            auth: str = (
                p.auth.type if p.kind == "openapi" else "headers" if p.header_names else "none"
            )
            if p.has_token:
                auth += " (token stored)"
            found.append(f"{p.id}\t{p.kind}\t{auth}\t{p.description}")
        if not page.has_more or not page.items:
            return found
        after = page.items[-1].id
