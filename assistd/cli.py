"""The `assistd` command: serve, migrate, workspace and key administration.

Every command works against the same data dir or database URL as the server, also while
it runs (SQLite in WAL mode, or PostgreSQL).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from assistd import __version__
from assistd.core.objects import ApiKey, Workspace
from assistd.core.tenancy import Tenancy
from assistd.errors import AssistdError, StartupError
from assistd.logs import LEVELS, setup_logging
from assistd.server_lock import postgres_session
from assistd.settings import Settings, load_settings
from assistd.settings_errors import unknown_environment
from assistd.store.factory import open_store

T = TypeVar("T")

# Environment variables are named in --help the way click writes them. Settings read
# ASSISTD_DATA_DIR, ASSISTD_HOST and ASSISTD_PORT themselves; ASSISTD_CONFIG is read by the
# group's --config only, so that an option given on the command line, before or after the
# command's name, wins over the environment.
_data_dir = click.option(
    "--data-dir", type=click.Path(path_type=Path), default=None,
    help="Where the embedded SQLite database lives (default ./assistd-data).  "
    "[env var: ASSISTD_DATA_DIR]",
)  # fmt: skip
_CONFIG_TYPE = click.Path(path_type=Path, exists=True, dir_okay=False)
_CONFIG_HELP = "A TOML settings file.  [env var: ASSISTD_CONFIG]"
_config = click.option("--config", "config_file", type=_CONFIG_TYPE, help=_CONFIG_HELP)
_group_config = click.option(
    "--config", "config_file", type=_CONFIG_TYPE, envvar="ASSISTD_CONFIG", help=_CONFIG_HELP
)


@contextmanager
def _startup_errors() -> Iterator[None]:
    """A StartupError becomes click's one-line `Error: ...` and a non-zero exit."""
    try:
        yield
    except StartupError as exc:
        raise click.ClickException(exc.message) from None


def _settings(ctx: click.Context) -> Settings:
    """Settings from the group's options, overridden by the same options on the command;
    a warning for each ASSISTD_* variable that no setting reads (a typo, most likely)."""
    group: dict[str, Any] = ctx.obj or {}
    config_file = ctx.params.get("config_file") or group.get("config_file")
    data_dir = ctx.params.get("data_dir") or group.get("data_dir")
    with _startup_errors():
        settings = load_settings(
            config_file, data_dir=data_dir, host=ctx.params.get("host"),
            port=ctx.params.get("port"), log_level=ctx.params.get("log_level"),
        )  # fmt: skip
    named = [r.api_key_env for r in settings.models.values() if r.api_key_env]
    named += [p.auth.token_env for p in settings.plugins.values() if p.auth.token_env]
    for warning in unknown_environment(os.environ, Settings, [*named, "ASSISTD_CONFIG"]):
        click.echo(f"Warning: {warning}", err=True)
    return settings


def _options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Every command takes --data-dir and --config, before or after its name."""
    return _data_dir(_config(command))


def _run_with_tenancy(
    settings: Settings, action: Callable[[Tenancy], Awaitable[T]], *, existing: bool = False
) -> T:
    """Runs `action` on the settings' database. With `existing`, a database that is not
    there yet is an error, not something to create (a mistyped --data-dir)."""

    async def go() -> T:
        if not settings.uses_sqlite:  # say so plainly when the database is out of reach
            async with postgres_session(settings.resolved_database_url, "cli"):
                pass
        store = open_store(settings)
        try:
            if existing and not await store.has_schema():
                raise click.ClickException(_no_data(settings))
            await store.migrate()
            tenancy = Tenancy(store)
            await tenancy.ensure_default_workspace()
            return await action(tenancy)
        finally:
            await store.close()

    if existing and settings.uses_sqlite and not _sqlite_file(settings).is_file():
        raise click.ClickException(_no_data(settings))
    try:
        return asyncio.run(go())
    except AssistdError as exc:
        raise click.ClickException(exc.message) from exc
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        raise click.ClickException(f"{where}{exc.strerror or exc}") from exc
    except DBAPIError as exc:
        problem = str(exc.orig or exc).splitlines()[0]
        raise click.ClickException(f"the database could not be used: {problem}") from exc


def _sqlite_file(settings: Settings) -> Path:
    return Path(settings.resolved_database_url.split(":///", 1)[1])


def _no_data(settings: Settings) -> str:
    if not settings.uses_sqlite:
        url = make_url(settings.resolved_database_url).render_as_string(hide_password=True)
        return f"there is no assistd data in the database {url}; check database_url"
    if settings.database_url:
        return f"there is no assistd data in {_sqlite_file(settings)}; check database_url"
    return (
        f"there is no assistd data in {settings.data_dir.resolve()}; "
        "check --data-dir (or ASSISTD_DATA_DIR)"
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="assistd", message="%(prog)s %(version)s")
@_data_dir
@_group_config
@click.pass_context
def main(ctx: click.Context, data_dir: Path | None, config_file: Path | None) -> None:
    """assistd: a self-hosted Assistant API server."""
    # Whatever assistd writes (database, logs) is for its owner's eyes only.
    os.umask(0o077)
    ctx.obj = {"data_dir": data_dir, "config_file": config_file}


@main.command()
@click.option(
    "--host",
    default=None,
    help="Address to listen on (default 127.0.0.1).  [env var: ASSISTD_HOST]",
)
@click.option(
    "--port", type=click.IntRange(1, 65535), default=None,
    help="Port to listen on (default 8000).  [env var: ASSISTD_PORT]",
)  # fmt: skip
@click.option(
    "--log-level", type=click.Choice(LEVELS, case_sensitive=False), default=None,
    help="What the log prints: debug, info (default), warning or error.  "
    "[env var: ASSISTD_LOG_LEVEL]",
)  # fmt: skip
@click.option(
    "--no-worker", is_flag=True,
    help="Serve the API only and execute no runs (distributed shape: `assistd worker` "
    "processes execute them).",
)  # fmt: skip
@_options
@click.pass_context
def serve(ctx: click.Context, /, no_worker: bool, **_: Any) -> None:
    """Start the server (migrations are applied at start). Embedded shape (no redis_url):
    one server per data dir or PostgreSQL database, a second one refuses to start.
    Distributed shape (PostgreSQL and redis_url): any number of servers."""
    import uvicorn

    from assistd import startup
    from assistd.api.acceptor import AssistdServer
    from assistd.api.body_send import ServerSend
    from assistd.api.server_options import uvicorn_options
    from assistd.app import create_app
    from assistd.runtime import check_shape

    settings = _settings(ctx)
    setup_logging(settings.log_level, settings.log_format)
    with _startup_errors():
        check_shape(settings)
        if no_worker and not settings.redis_url:
            raise StartupError(_EMBEDDED_ONLY.format(what="serve --no-worker"))
        # Listen first, so a taken port fails before the store is locked or migrated.
        listener = startup.listen(settings.host, settings.port)
        config = uvicorn.Config(
            ServerSend(create_app(settings, workers=not no_worker)),
            log_level=settings.log_level,
            log_config=None,  # uvicorn's loggers print through ours (assistd.logs)
            access_log=False,  # our request lines replace it
            **uvicorn_options(settings),
        )
        startup.serve(settings, AssistdServer(config), listener)


_EMBEDDED_ONLY = (
    "assistd {what} is for the distributed shape, which needs PostgreSQL (database_url) and "
    "redis_url (ASSISTD_REDIS_URL); without redis_url, `assistd serve` executes the runs itself"
)


@main.command()
@click.option(
    "--concurrency", type=click.IntRange(min=1), default=None,
    help="Runs executing at once in this process (default: the run_workers setting).",
)  # fmt: skip
@click.option(
    "--log-level", type=click.Choice(LEVELS, case_sensitive=False), default=None,
    help="What the log prints: debug, info (default), warning or error.  "
    "[env var: ASSISTD_LOG_LEVEL]",
)  # fmt: skip
@_options
@click.pass_context
def worker(ctx: click.Context, /, concurrency: int | None, **_: Any) -> None:
    """Execute runs and ingest files (distributed shape: PostgreSQL and redis_url), next to
    any number of `assistd serve --no-worker` and other workers. SIGTERM or Ctrl-C stops
    it: the runs and files it holds are left as they are and another worker takes them
    over."""
    from assistd.runtime import check_shape
    from assistd.worker_process import run_worker

    settings = _settings(ctx)
    setup_logging(settings.log_level, settings.log_format)
    with _startup_errors():
        if not settings.redis_url:
            raise StartupError(_EMBEDDED_ONLY.format(what="worker"))
        check_shape(settings)
        asyncio.run(run_worker(settings, concurrency))


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
    """List workspaces: id and name, under a header row."""
    found = _run_with_tenancy(_settings(ctx), lambda t: t.list_workspaces(), existing=True)
    click.echo("ID\tNAME")
    for ws in found:
        click.echo(f"{ws.id}\t{ws.name}")


@workspace.command("delete")
@click.argument("name")
@click.option("--force", is_flag=True, help="Also delete everything the workspace holds.")
@_options
@click.pass_context
def workspace_delete(ctx: click.Context, /, name: str, force: bool, **_: Any) -> None:
    """Delete a workspace (by name or id) and its API keys.

    A workspace that still holds assistants, threads or files is deleted only with
    --force, which deletes those too. The workspace `default` is never deleted.
    """
    deleted = _run_with_tenancy(
        _settings(ctx), lambda t: t.delete_workspace(name, force=force), existing=True
    )
    click.echo(f"deleted workspace {deleted.id} ({deleted.name})")


@main.group()
def key() -> None:
    """Manage API keys.

    \b
    Lost the admin key? On the server's data dir (or the database its --config names),
      assistd key create --workspace default --admin --data-dir DIR
    prints a new admin key; then revoke the lost one with `assistd key revoke KEY_ID`.
    """


@key.command("create")
@click.option("--workspace", "workspace_name", required=True, help="Workspace name or id.")
@click.option("--admin", is_flag=True, help="Make an admin key.")
@click.option("--name", default="", help="A label for the key (at most 128 characters).")
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
    """List API keys, under a header row.

    Columns: id, workspace name and id, the first characters of the key, role, state and
    label. Secrets are never stored, so never shown.
    """

    async def keys_and_workspaces(t: Tenancy) -> tuple[list[ApiKey], list[Workspace]]:
        return await t.list_keys(), await t.list_workspaces()

    keys, workspaces = _run_with_tenancy(_settings(ctx), keys_and_workspaces, existing=True)
    names = {ws.id: ws.name for ws in workspaces}
    click.echo("ID\tWORKSPACE\tWORKSPACE_ID\tPREFIX\tROLE\tSTATE\tNAME")
    for k in keys:
        role = "admin" if k.admin else "user"
        state = "revoked" if k.revoked_at else "active"
        workspace = names.get(k.workspace_id, "-")
        click.echo(
            f"{k.id}\t{workspace}\t{k.workspace_id}\t{k.prefix}...\t{role}\t{state}\t{k.name}"
        )


@key.command("revoke")
@click.argument("key_id")
@_options
@click.pass_context
def key_revoke(ctx: click.Context, /, key_id: str, **_: Any) -> None:
    """Revoke an API key; it stops working at once."""
    _run_with_tenancy(_settings(ctx), lambda t: t.revoke_key(key_id), existing=True)
    click.echo(f"revoked {key_id}")


# ---- plugins ---------------------------------------------------------------------------


@main.group()
def plugin() -> None:
    """Manage a workspace's plugins: OpenAPI documents and MCP servers whose operations
    assistants use as tools, named by the plugin id (`{"type": "<id>"}`)."""


_AUTH_TYPES = click.Choice(["none", "service", "user_http"])


@plugin.command("add")
@click.option("--workspace", "workspace_name", required=True, help="Workspace name or id.")
@click.option("--openapi", "openapi_file", type=click.Path(path_type=Path, exists=True,
              dir_okay=False), help="The plugin's OpenAPI 3 document (JSON or YAML).")  # fmt: skip
@click.option("--mcp-url", help="Or: an MCP server's streamable-HTTP endpoint.")
@click.option("--id", "plugin_id", help="The plugin id (default: the document's file name).")
@click.option("--description", help="What the plugin does, as the model is told.")
@click.option("--url", "base_url", help="OpenAPI: the API's base URL, in place of `servers`.")
@click.option("--auth-type", type=_AUTH_TYPES, help="none, service (one stored token) or "
              "user_http (each assistant or run brings its token).")  # fmt: skip
@click.option("--auth-in", type=click.Choice(["header", "query"]), help="Where the token goes.")
@click.option("--auth-name", help="The header (default Authorization) or query parameter.")
@click.option("--auth-scheme", type=click.Choice(["bearer", "basic", "raw"]))
@click.option("--auth-token", help="The service token; '-' reads it from standard input.")
@click.option("--auth-token-env", help="Read the service token from this environment variable.")
@click.option("--header", "headers", multiple=True, metavar="NAME=VALUE",
              help="MCP: a header sent on every call (repeatable).")  # fmt: skip
@click.option("--allowed-tool", "allowed_tools", multiple=True,
              help="MCP: a tool of the server to offer (repeatable; default: all).")  # fmt: skip
@_options
@click.pass_context
def plugin_add(ctx: click.Context, /, workspace_name: str, **given: Any) -> None:
    """Register a plugin from an OpenAPI document (--openapi) or an MCP server (--mcp-url).
    Its token is stored encrypted with the server's secret, and never shown again."""
    from assistd import plugin_cli

    settings = _settings(ctx)
    spec = plugin_cli.spec_from_options(given)

    async def add(t: Tenancy) -> str:
        ws = await t.find_workspace(workspace_name)
        added = await plugin_cli.service(t.store, settings).register(ws.id, spec)
        return f"registered plugin {added.id} ({added.kind}) in workspace {ws.id}"

    click.echo(_run_with_tenancy(settings, add, existing=True))


@plugin.command("list")
@click.option("--workspace", "workspace_name", required=True, help="Workspace name or id.")
@_options
@click.pass_context
def plugin_list(ctx: click.Context, /, workspace_name: str, **_: Any) -> None:
    """List a workspace's plugins under a header row: id, kind, auth, description.
    Tokens are never shown; the auth column says whether one is stored."""
    from assistd import plugin_cli

    settings = _settings(ctx)

    async def rows(t: Tenancy) -> list[str]:
        ws = await t.find_workspace(workspace_name)
        return await plugin_cli.rows(plugin_cli.service(t.store, settings), ws.id)

    click.echo("ID\tKIND\tAUTH\tDESCRIPTION")
    for row in _run_with_tenancy(settings, rows, existing=True):
        click.echo(row)


@plugin.command("remove")
@click.option("--workspace", "workspace_name", required=True, help="Workspace name or id.")
@click.argument("plugin_id")
@_options
@click.pass_context
def plugin_remove(ctx: click.Context, /, workspace_name: str, plugin_id: str, **_: Any) -> None:
    """Remove a plugin; assistants that name it no longer get its tools."""
    from assistd import plugin_cli

    settings = _settings(ctx)

    async def remove(t: Tenancy) -> str:
        ws = await t.find_workspace(workspace_name)
        await plugin_cli.service(t.store, settings).delete(ws.id, plugin_id)
        return f"removed plugin {plugin_id} from workspace {ws.id}"

    click.echo(_run_with_tenancy(settings, remove, existing=True))


@main.group()
def threads() -> None:
    """Thread housekeeping."""


@threads.command("expire")
@click.option("--dry-run", is_flag=True, help="Only list the threads that would be deleted.")
@click.option("--workspace", "workspace_name", help="Only this workspace (name or id).")
@_options
@click.pass_context
def threads_expire(
    ctx: click.Context, /, dry_run: bool, workspace_name: str | None, **_: Any
) -> None:
    """Delete now the threads idle past their time-to-live (as the worker's sweep does),
    with the files only they used; with --dry-run, list them and delete nothing."""
    from assistd import threads_cli

    settings = _settings(ctx)

    async def expire(t: Tenancy) -> list[str]:
        return await threads_cli.expire(t, settings, workspace_name, dry_run)

    for line in _run_with_tenancy(settings, expire, existing=True):
        click.echo(line)


# ---- commands of their own modules (each imports nothing of this one when loaded) --------

from assistd.audit_cli import audit  # noqa: E402
from assistd.chat_cli import chat  # noqa: E402
from assistd.kb_cli import kb  # noqa: E402
from assistd.usage_cli import usage  # noqa: E402


def _add_with_options(command: click.Command) -> None:
    """Adds a command with the options every command takes (a group's go to each of its
    commands)."""
    targets = command.commands.values() if isinstance(command, click.Group) else [command]
    for target in targets:
        _options(target)
    main.add_command(command)


for _command in (kb, chat, usage, audit):
    _add_with_options(_command)
