"""`assistd chat`: an interactive terminal chat with an assistant.

With --url it talks to that server; without, it serves the local data dir (or the
database --config names) in this process on a loopback port and talks to that. Either
way it speaks the public OpenAI surface (/v1) through the `openai` SDK's streaming
helpers: one code path (chat_session.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:  # imported when the command runs: `assistd --help` stays quick
    import openai

    from assistd.core.tenancy import Tenancy
    from assistd.settings import Settings

SESSION_KEY_NAME = "assistd chat (session)"


@click.command()
@click.argument("assistant")
@click.option("--thread", "thread_id", help="Go on with this thread (default: a new one).")
@click.option(
    "--url", help="A running server's base URL (e.g. http://host:8000). Without it the chat "
    "serves the local data dir in this process.",
)  # fmt: skip
@click.option(
    "--key", envvar="ASSISTD_API_KEY", help="The API key. Local data dir: default the "
    "configured api_key, else a key made for this session and revoked after it.  "
    "[env var: ASSISTD_API_KEY]",
)  # fmt: skip
@click.option(
    "--workspace", "workspace_name", help="The workspace (name or id) to act in: sent as "
    "OpenAI-Project, or with a local data dir the workspace of the session's key.",
)  # fmt: skip
@click.pass_context
def chat(
    ctx: click.Context, /, assistant: str, thread_id: str | None, url: str | None,
    key: str | None, workspace_name: str | None, **_: Any,
) -> None:  # fmt: skip
    """Chat with ASSISTANT (its id or name) in the terminal; replies stream as they come,
    with tool calls, code and its output, search hits and files shown as they happen.
    /help lists the commands; Ctrl-C cancels a reply, Ctrl-D leaves."""
    from assistd.cli import _startup_errors

    with _startup_errors(), _connection(ctx, url, key, workspace_name) as client:
        session = _open(client, assistant, thread_id)
        session.loop()


@contextmanager
def _connection(
    ctx: click.Context, url: str | None, key: str | None, workspace_name: str | None
) -> Iterator[openai.OpenAI]:
    if url:
        if not key:
            raise click.ClickException("give the server's API key with --key or ASSISTD_API_KEY")
        yield _client(url, key, workspace_name)
        return
    from assistd.chat_local import local_server
    from assistd.cli import _settings

    settings = _settings(ctx)
    with _session_key(settings, key, workspace_name) as local_key, local_server(settings) as base:
        # the session's key belongs to the workspace; a given one may act in another
        project = workspace_name if local_key == (key or settings.api_key) else None
        yield _client(base, local_key, project)


@contextmanager
def _session_key(settings: Settings, key: str | None, workspace_name: str | None) -> Iterator[str]:
    """The given or configured key; else a plain key of the workspace made for this
    session (the data dir must already hold assistd data) and revoked after it."""
    from assistd.cli import _run_with_tenancy

    async def nothing(_: Tenancy) -> None:
        return None

    given = key or settings.api_key
    if given:
        _run_with_tenancy(settings, nothing, existing=True)  # a mistyped --data-dir is an error
        yield given
        return
    workspace = workspace_name or "default"
    made, secret = _run_with_tenancy(
        settings,
        lambda t: t.create_key(workspace, admin=False, name=SESSION_KEY_NAME),
        existing=True,
    )
    try:
        yield secret
    finally:
        _run_with_tenancy(settings, lambda t: t.revoke_key(made.id))


def _client(url: str, key: str, workspace_name: str | None) -> openai.OpenAI:
    import openai

    base = url.rstrip("/")
    if not base.endswith("/v1"):
        base += "/v1"
    return openai.OpenAI(base_url=base, api_key=key, project=workspace_name)


def _open(client: openai.OpenAI, assistant: str, thread_id: str | None) -> Any:
    """The session, once the assistant and the thread are found: a refused key, a server
    out of reach or a wrong name is click's one-line error."""
    import openai
    from rich.console import Console

    from assistd.chat_session import ChatSession, api_message, find_assistant, find_thread

    try:
        found = find_assistant(client, assistant)
        if thread_id:
            find_thread(client, thread_id)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    except openai.AuthenticationError as exc:
        refused = f"the server refused the API key: {api_message(exc)}"
        raise click.ClickException(refused) from None
    except openai.APIStatusError as exc:
        raise click.ClickException(api_message(exc)) from None
    except openai.APIConnectionError as exc:
        why = exc.__cause__ or exc
        where = str(client.base_url).rstrip("/")
        raise click.ClickException(f"cannot reach the server at {where}: {why}") from None
    return ChatSession(client, found, thread_id, Console(highlight=False, soft_wrap=True))
