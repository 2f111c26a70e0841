"""`assistd usage`: token usage by workspace, key, model and UTC day, read from the
server's data dir or database (as `GET /admin/v1/usage` reports it), as a table or JSON."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:  # imported when run: `assistd --help` stays quick
    from assistd.core.tenancy import Tenancy


def _day(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise click.BadParameter(f"'{value}' is not a day as YYYY-MM-DD") from None


def _groups(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...]:
    from assistd.store.usage import GROUPS

    named = tuple(g.strip() for g in (value or ",".join(GROUPS)).split(",") if g.strip())
    for group in named:
        if group not in GROUPS:
            raise click.BadParameter(f"'{group}' is not one of: {', '.join(GROUPS)}")
    return named


@click.command("usage")
@click.option("--workspace", "workspace_name", help="Only this workspace (name or id).")
@click.option("--key", "key_id", help="Only this API key (its key_ id).")
@click.option("--model", help="Only this model.")
@click.option("--since", callback=_day, help="First day (YYYY-MM-DD, UTC), included.")
@click.option("--until", callback=_day, help="Last day (YYYY-MM-DD, UTC), included.")
@click.option("--group-by", callback=_groups,
              help="Comma-separated: workspace, key, model, day (default all four).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print JSON rows instead of a table.")
@click.pass_context
def usage(
    ctx: click.Context, /, workspace_name: str | None, key_id: str | None, model: str | None,
    since: str | None, until: str | None, group_by: tuple[str, ...], as_json: bool, **_: Any,
) -> None:  # fmt: skip
    """Token usage of ended runs: runs and prompt, completion and total tokens, summed
    per workspace, key, model and UTC day (or what --group-by keeps), newest day first."""
    from assistd.cli import _run_with_tenancy, _settings
    from assistd.store import usage as sql
    from assistd.store.sql import SqlStore

    async def action(t: Tenancy) -> list[dict[str, Any]]:
        ws = (await t.find_workspace(workspace_name)).id if workspace_name else None
        where = sql.UsageFilter(ws, key_id, model, since, until, group_by)
        assert isinstance(t.store, SqlStore)
        return await sql.report(t.store.engine, where)

    rows = _run_with_tenancy(_settings(ctx), action, existing=True)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    _table(rows, group_by)


def _table(rows: list[dict[str, Any]], group_by: tuple[str, ...]) -> None:
    from rich.console import Console
    from rich.table import Table

    from assistd.store.usage import COLUMNS, COUNTS, GROUPS

    groups = [g for g in GROUPS if g in group_by]
    table = Table(title=f"usage: {len(rows)} rows", title_justify="left")
    for group in groups:
        table.add_column(group.upper())
    for count in COUNTS:
        table.add_column(count.upper().replace("_", " "), justify="right")
    for row in rows:
        cells = [str(row.get(COLUMNS[g]) or "-") for g in groups]
        table.add_row(*cells, *(f"{row[c]:,}" for c in COUNTS))
    Console(highlight=False, width=160).print(table)
