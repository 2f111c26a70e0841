"""`assistd audit`: the audit log from the command line, newest first.

Like the other operator commands it reads the data dir or database the settings name
(also while the server runs), with the filters of `GET /admin/v1/audit`; a table, or
with --json one JSON object per line (the API's shape).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:  # imported when the command runs: `assistd --help` stays quick
    from assistd.core.tenancy import Tenancy
    from assistd.settings import Settings

MAX_LIMIT = 10_000


@click.command("audit")
@click.option("--since", help="From this time: ms, ISO 8601, or an age such as 30m, 12h, 7d.")
@click.option("--until", help="Before this time (the same forms).")
@click.option("--workspace", "workspace_name", help="Only this workspace (name or id).")
@click.option("--key", "key_id", help="Only calls made with this API key id (key_...).")
@click.option("--object", "object_id", help="Only calls on or creating this object id.")
@click.option("--method", type=click.Choice(["POST", "PUT", "PATCH", "DELETE"]))
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, MAX_LIMIT))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def audit(ctx: click.Context, /, as_json: bool, **filters: Any) -> None:
    """Show the audit log: who called what on which object, and how it ended."""
    from assistd.cli import _run_with_tenancy, _settings

    settings = _settings(ctx)

    async def read(t: Tenancy) -> list[dict[str, Any]]:
        return await entries(t, settings, **filters)

    rows = _run_with_tenancy(settings, read, existing=True)
    if as_json:
        import orjson

        for row in rows:
            click.echo(orjson.dumps(row).decode())
        return
    _table(rows)


async def entries(
    tenancy: Tenancy, settings: Settings, *, since: str | None, until: str | None,
    workspace_name: str | None, key_id: str | None, object_id: str | None,
    method: str | None, limit: int, **_: Any,
) -> list[dict[str, Any]]:  # fmt: skip
    from assistd.api.admin.audit import entry
    from assistd.core import audit as core
    from assistd.store.audit import AuditQuery
    from assistd.store.sql import SqlStore

    store = tenancy.store
    assert isinstance(store, SqlStore)
    query = AuditQuery(
        since=core.parse_time(since, "--since") if since else None,
        until=core.parse_time(until, "--until") if until else None,
        workspace=await _workspace_id(tenancy, workspace_name), key_id=key_id,
        object_id=object_id, method=method, limit=limit,
    )  # fmt: skip
    rows, _more = await core.query(store, query)
    return [entry(r) for r in rows]


async def _workspace_id(tenancy: Tenancy, name: str | None) -> str | None:
    from assistd.errors import NotFound

    if name is None:
        return None
    try:
        return (await tenancy.find_workspace(name)).id
    except NotFound:
        if name.startswith("ws_"):  # a deleted workspace's records stay
            return name
        raise


def _table(rows: list[dict[str, Any]]) -> None:
    import datetime as dt

    from rich.console import Console
    from rich.table import Table

    table = Table("TIME (UTC)", "METHOD", "ROUTE", "STATUS", "KEY", "WORKSPACE", "OBJECTS")
    for row in rows:
        when = dt.datetime.fromtimestamp(row["created_at"] / 1000, dt.UTC)
        status = str(row["status"]) + (f" {row['error_code']}" if row["error_code"] else "")
        table.add_row(
            f"{when:%Y-%m-%d %H:%M:%S}", row["method"], row["route"] or row["path"], status,
            row["key_id"] or "-", row["workspace_id"] or "-", " ".join(row["object_ids"]),
        )  # fmt: skip
    console = Console(width=None if Console().is_terminal else 240, soft_wrap=False)
    console.print(table)
    click.echo(f"{len(rows)} records")
