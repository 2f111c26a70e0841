"""The `assistd` command: serve, migrate, workspace and key administration.

Every command works against the same data dir or database URL as the server, also while
it runs (SQLite in WAL mode, or PostgreSQL).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from assistd.core.tenancy import Tenancy
from assistd.errors import AssistdError
from assistd.settings import Settings, load_settings
from assistd.store.factory import open_store

T = TypeVar("T")

_data_dir = click.option(
    "--data-dir", type=click.Path(path_type=Path), default=None,
    help="Where the embedded SQLite database lives (default ./assistd-data).",
)  # fmt: skip
_config = click.option(
    "--config", "config_file", type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None, help="A TOML settings file.",
)  # fmt: skip


def _settings(ctx: click.Context) -> Settings:
    """Settings from the group's options, overridden by the same options on the command."""
    group: dict[str, Any] = ctx.obj or {}
    config_file = ctx.params.get("config_file") or group.get("config_file")
    data_dir = ctx.params.get("data_dir") or group.get("data_dir")
    return load_settings(
        config_file, data_dir=data_dir, host=ctx.params.get("host"), port=ctx.params.get("port")
    )


def _options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Every command takes --data-dir and --config, before or after its name."""
    return _data_dir(_config(command))


def _run_with_tenancy(settings: Settings, action: Callable[[Tenancy], Awaitable[T]]) -> T:
    async def go() -> T:
        store = open_store(settings)
        try:
            await store.migrate()
            tenancy = Tenancy(store)
            await tenancy.ensure_default_workspace()
            return await action(tenancy)
        finally:
            await store.close()

    try:
        return asyncio.run(go())
    except AssistdError as exc:
        raise click.ClickException(exc.message) from exc


@click.group()
@_data_dir
@_config
@click.pass_context
def main(ctx: click.Context, data_dir: Path | None, config_file: Path | None) -> None:
    """assistd: a self-hosted Assistant API server."""
    ctx.obj = {"data_dir": data_dir, "config_file": config_file}


@main.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to listen on (default 8000).")
@_options
@click.pass_context
def serve(ctx: click.Context, /, **_: Any) -> None:
    """Start the server (migrations are applied at start)."""
    import uvicorn

    from assistd.api.server_options import uvicorn_options
    from assistd.app import create_app

    settings = _settings(ctx)
    where = "PostgreSQL" if not settings.uses_sqlite else f"SQLite in {settings.data_dir}"
    click.echo(
        f"assistd: storage is {where}; DashScope API at http://{settings.host}:{settings.port}/api/v1"
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        **uvicorn_options(settings),
    )


@main.command()
@_options
@click.pass_context
def migrate(ctx: click.Context, /, **_: Any) -> None:
    """Apply database migrations."""

    async def nothing(_: Tenancy) -> None:
        return None

    _run_with_tenancy(_settings(ctx), nothing)
    click.echo("migrations applied")


@main.group()
def workspace() -> None:
    """Manage workspaces."""


@workspace.command("create")
@click.argument("name")
@_options
@click.pass_context
def workspace_create(ctx: click.Context, /, name: str, **_: Any) -> None:
    """Create a workspace; prints its id."""
    created = _run_with_tenancy(_settings(ctx), lambda t: t.create_workspace(name))
    click.echo(created.id)


@workspace.command("list")
@_options
@click.pass_context
def workspace_list(ctx: click.Context, /, **_: Any) -> None:
    """List workspaces: id and name."""
    for ws in _run_with_tenancy(_settings(ctx), lambda t: t.list_workspaces()):
        click.echo(f"{ws.id}\t{ws.name}")


@main.group()
def key() -> None:
    """Manage API keys."""


@key.command("create")
@click.option("--workspace", "workspace_name", required=True, help="Workspace name or id.")
@click.option("--admin", is_flag=True, help="Make an admin key.")
@click.option("--name", default="", help="A label for the key.")
@_options
@click.pass_context
def key_create(
    ctx: click.Context, /, workspace_name: str, admin: bool, name: str, **_: Any
) -> None:
    """Create an API key; the secret is printed alone on the last line, this once."""
    created, secret = _run_with_tenancy(
        _settings(ctx), lambda t: t.create_key(workspace_name, admin=admin, name=name)
    )
    click.echo(
        f"created {'admin ' if admin else ''}key {created.id} in workspace {created.workspace_id}"
    )
    click.echo(secret)


@key.command("list")
@_options
@click.pass_context
def key_list(ctx: click.Context, /, **_: Any) -> None:
    """List API keys: id, workspace, prefix, role, state."""
    for k in _run_with_tenancy(_settings(ctx), lambda t: t.list_keys()):
        state = "revoked" if k.revoked_at else "active"
        click.echo(
            f"{k.id}\t{k.workspace_id}\t{k.prefix}...\t{'admin' if k.admin else 'user'}\t{state}"
        )


@key.command("revoke")
@click.argument("key_id")
@_options
@click.pass_context
def key_revoke(ctx: click.Context, /, key_id: str, **_: Any) -> None:
    """Revoke an API key; it stops working at once."""
    _run_with_tenancy(_settings(ctx), lambda t: t.revoke_key(key_id))
    click.echo(f"revoked {key_id}")
