"""`assistd kb`: knowledge bases (vector stores) from the command line.

Like the other admin commands it works on the data dir or database the settings name
(also while the server runs), and ingests in its own process with a progress bar per
file and one overall. The knowledge bases it makes are the server's vector stores: the
OpenAI surface's `file_search` and DashScope's `rag` tool use them by their vs_ id.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:  # the commands import what they use when run: `assistd --help` stays quick
    from assistd.core.objects import VectorStoreFile
    from assistd.core.service import Upload
    from assistd.core.tenancy import Tenancy
    from assistd.kb_ops import Ingested
    from assistd.retrieval.chunking import ChunkingStrategy

SNIPPET_CHARS = 160
_workspace_option = click.option(
    "--workspace", "workspace_name", help="Workspace name or id (default: any that has it)."
)
_files = click.argument("files", nargs=-1, type=click.Path(path_type=Path))


def _run(ctx: click.Context, action: Any) -> Any:
    from assistd.cli import _run_with_tenancy, _settings

    settings = _settings(ctx)
    return _run_with_tenancy(settings, lambda t: action(t, settings), existing=True)


def _read(files: Sequence[Path]) -> list[Upload]:
    from assistd import kb_ops

    try:
        return kb_ops.read_files(files)
    except kb_ops.KbError as exc:
        raise click.ClickException(exc.message) from None


@click.group()
def kb() -> None:
    """Knowledge bases: make one from files, add files, search it, delete it.

    \b
    A knowledge base is a vector store of a workspace; NAME is its name or its vs_ id.
    The commands work on the server's data dir or database (--data-dir, --config), also
    while it runs, and ingest the files in this process.
    """


@kb.command("create")
@click.argument("name")
@_files
@click.option("--workspace", "workspace_name", required=True, help="Workspace name or id.")
@click.option("--embedder", help="The embedding model (default: the default_embedder setting).")
@click.option("--chunk-tokens", type=int, help="Tokens per chunk (100-4096, default 800).")
@click.option("--overlap-tokens", type=int, help="Tokens chunks overlap (default 400).")
@click.pass_context
def create(
    ctx: click.Context, /, name: str, files: tuple[Path, ...], workspace_name: str,
    embedder: str | None, chunk_tokens: int | None, overlap_tokens: int | None, **_: Any,
) -> None:  # fmt: skip
    """Upload FILES into the workspace, make the knowledge base NAME of them, and ingest
    them (a progress bar per file and one overall)."""
    from assistd.core.service import Service
    from assistd.kb_ops import all_stores, ingest_files, knowledge_of, upload

    uploads = _read(files)
    strategy = _strategy(chunk_tokens, overlap_tokens)

    async def action(t: Tenancy, settings: Any) -> tuple[str, Ingested]:
        ws = await t.find_workspace(workspace_name)
        async with knowledge_of(t, settings) as knowledge:
            if any(vs.name == name for vs in await all_stores(knowledge, ws.id)):
                raise click.ClickException(
                    f"workspace {ws.name} already has a knowledge base named '{name}'; "
                    "add files to it with `assistd kb add`"
                )
            ids = await upload(Service(t.store, settings), ws.id, uploads)
            vs = await knowledge.create_store(
                ws.id, name=name, file_ids=ids, strategy=strategy, embedder=embedder
            )
            files = list(zip(ids, (u.filename for u in uploads), strict=True))
            with RichProgress(len(files)) as progress:
                done = await ingest_files(knowledge, ws.id, vs.id, files, progress)
        return f"created knowledge base {name} ({vs.id}) in workspace {ws.name}", done

    _report(*_run(ctx, action))


@kb.command("add")
@click.argument("name")
@_files
@_workspace_option
@click.pass_context
def add(
    ctx: click.Context, /, name: str, files: tuple[Path, ...], workspace_name: str | None,
    **_: Any,
) -> None:  # fmt: skip
    """Upload FILES into the knowledge base's workspace, add them to it and ingest them."""
    from assistd.core.service import Service
    from assistd.kb_ops import find_kb, ingest_files, knowledge_of, upload

    if not files:
        raise click.UsageError("name at least one file to add")
    uploads = _read(files)

    async def action(t: Tenancy, settings: Any) -> tuple[str, Ingested]:
        async with knowledge_of(t, settings) as knowledge:
            ws, vs = await find_kb(t, knowledge, name, workspace_name)
            ids = await upload(Service(t.store, settings), ws.id, uploads)
            for file_id in ids:
                await knowledge.add_file(ws.id, vs.id, file_id)
            files = list(zip(ids, (u.filename for u in uploads), strict=True))
            with RichProgress(len(files)) as progress:
                done = await ingest_files(knowledge, ws.id, vs.id, files, progress)
        return f"added to knowledge base {vs.name or vs.id} ({vs.id})", done

    _report(*_run(ctx, action))


@kb.command("list")
@click.option("--workspace", "workspace_name", required=True, help="Workspace name or id.")
@click.pass_context
def list_(ctx: click.Context, /, workspace_name: str, **_: Any) -> None:
    """List a workspace's knowledge bases under a header row: id, name, files (all,
    completed, failed), bytes indexed and embedding model."""
    from assistd.kb_ops import all_stores, knowledge_of

    async def action(t: Tenancy, settings: Any) -> list[str]:
        ws = await t.find_workspace(workspace_name)
        rows = []
        async with knowledge_of(t, settings) as knowledge:
            for vs in await all_stores(knowledge, ws.id):
                async with t.store.workspace(ws.id) as unit:
                    counts, used = await unit.knowledge.file_counts(vs.id)
                cells = [vs.id, vs.name or "-", sum(counts.values()), counts.get("completed", 0),
                         counts.get("failed", 0), used, vs.embedder]  # fmt: skip
                rows.append("\t".join(str(c) for c in cells))
        return rows

    rows = _run(ctx, action)
    click.echo("ID\tNAME\tFILES\tCOMPLETED\tFAILED\tBYTES\tEMBEDDER")
    for row in rows:
        click.echo(row)


@kb.command("search")
@click.argument("name")
@click.argument("query")
@_workspace_option
@click.option("-n", "--max-results", type=click.IntRange(1, 50), default=5, show_default=True)
@click.option("--mode", type=click.Choice(["hybrid", "dense", "keyword"]), default="hybrid",
              show_default=True, help="Dense vectors, keywords, or both fused.")  # fmt: skip
@click.pass_context
def search(
    ctx: click.Context, /, name: str, query: str, workspace_name: str | None, max_results: int,
    mode: str, **_: Any,
) -> None:  # fmt: skip
    """Search the knowledge base: a table of the best chunks with their scores and
    sources (rank, score, file, page, snippet)."""
    from rich.console import Console
    from rich.table import Table

    from assistd.kb_ops import find_kb, knowledge_of

    async def action(t: Tenancy, settings: Any) -> Any:
        async with knowledge_of(t, settings) as knowledge:
            ws, vs = await find_kb(t, knowledge, name, workspace_name)
            return await knowledge.search(ws.id, [vs.id], query, max_results=max_results,
                                          mode=mode)  # fmt: skip

    hits = _run(ctx, action)
    if not hits:
        click.echo("no results")
        return
    table = Table(title=f"{len(hits)} results for “{query}”", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("SCORE", justify="right")
    table.add_column("FILE", overflow="fold")
    table.add_column("PAGE", justify="right")
    table.add_column("SNIPPET")
    for rank, hit in enumerate(hits, 1):
        page = "-" if hit.page is None else str(hit.page)
        table.add_row(str(rank), f"{hit.score:.3f}", hit.filename, page, _snippet(hit.text))
    Console(highlight=False).print(table)


@kb.command("delete")
@click.argument("name")
@_workspace_option
@click.pass_context
def delete(ctx: click.Context, /, name: str, workspace_name: str | None, **_: Any) -> None:
    """Delete the knowledge base with its chunks; the uploaded files stay in the workspace."""
    from assistd.kb_ops import find_kb, knowledge_of

    async def action(t: Tenancy, settings: Any) -> str:
        async with knowledge_of(t, settings) as knowledge:
            ws, vs = await find_kb(t, knowledge, name, workspace_name)
            await knowledge.delete_store(ws.id, vs.id)
        return f"deleted knowledge base {vs.name or vs.id} ({vs.id}) from workspace {ws.name}"

    click.echo(_run(ctx, action))


def _strategy(chunk_tokens: int | None, overlap_tokens: int | None) -> ChunkingStrategy | None:
    from assistd.retrieval.chunking import ChunkingStrategy

    if chunk_tokens is None and overlap_tokens is None:
        return None
    size = chunk_tokens or 800
    overlap = overlap_tokens if overlap_tokens is not None else min(400, size // 2)
    if not 100 <= size <= 4096 or not 0 <= overlap <= size // 2:
        raise click.BadParameter(
            "--chunk-tokens must be 100-4096 and --overlap-tokens at most half of it"
        )
    return ChunkingStrategy.static(size, overlap)


def _snippet(text: str) -> str:
    flat = re.sub(r"\s+", " ", text).strip()
    return flat if len(flat) <= SNIPPET_CHARS else flat[: SNIPPET_CHARS - 1].rstrip() + "…"


def _report(headline: str, done: Ingested) -> None:
    click.echo(f"{headline}: {_count(len(done.files), 'file')}, {_count(done.chunks, 'chunk')}")
    if done.failed:
        why = "; ".join(f"{filename}: {_why(file)}" for filename, file in done.failed)
        raise click.ClickException(f"{len(done.failed)} of {len(done.files)} failed: {why}")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _why(file: VectorStoreFile | None) -> str:
    if file is None:
        return "removed while it was ingested"
    if file.last_error:
        return f"{file.last_error.get('message')} ({file.last_error.get('code')})"
    return file.status


class RichProgress:
    """kb_ops.Progress as a rich display on standard error: a bar per file (its chunks embedded)
    and one for all the files."""

    def __init__(self, files: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as Bars

        self._bars = Bars(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=Console(stderr=True, highlight=False),
        )  # fmt: skip
        self._all = self._bars.add_task("all files", total=files)
        self._file: Any = None  # the task of the file being ingested
        self._name = ""

    def __enter__(self) -> RichProgress:
        self._bars.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._bars.stop()

    def begin(self, filename: str) -> Callable[[int, int], None]:
        task = self._file = self._bars.add_task(f"{filename} (parsing)", total=None)
        self._name = filename

        def embedded(done: int, total: int) -> None:
            self._bars.update(task, description=filename, completed=done, total=total)

        return embedded

    def end(self, file: VectorStoreFile | None) -> None:
        status = file.status if file is not None else "removed"
        if status != "completed":
            self._bars.update(self._file, description=f"{self._name} ({status})", total=1)
        self._bars.advance(self._all)
