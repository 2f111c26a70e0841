"""How `assistd chat` shows a run as it streams: the reply's text as it arrives, each tool
call when it starts and what it did when its step completes, file links and images as
file ids with the command that saves them.

It reads the `openai` SDK's typed stream events (objects of the public OpenAI surface),
duck-typed through getattr so that a field an older server leaves out shows as nothing.
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.syntax import Syntax

SNIPPET_CHARS = 160  # of a file_search hit's text
OUTPUT_CHARS = 2000  # of a tool's output


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split()) if limit == SNIPPET_CHARS else text
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _arguments(raw: str | None) -> str:
    """A call's JSON arguments on one line (as written when they are not JSON)."""
    try:
        return json.dumps(json.loads(raw or "{}"), ensure_ascii=False)
    except json.JSONDecodeError:
        return raw or ""


class Renderer:
    """Writes one chat's output to a rich console."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._in_text = False  # a reply's text is being written, its line not ended
        self._announced: set[str] = set()  # tool call ids already announced
        self._files: set[str] = set()  # file ids already shown

    # ---- plain lines ---------------------------------------------------------------

    def info(self, text: str) -> None:
        self.end_text()
        self.console.print(f"[dim]{escape(text)}[/dim]", highlight=False)

    def warn(self, text: str) -> None:
        self.end_text()
        self.console.print(f"[bold yellow]{escape(text)}[/bold yellow]", highlight=False)

    def error(self, text: str) -> None:
        self.end_text()
        self.console.print(f"[bold red]error:[/bold red] {escape(text)}", highlight=False)

    # ---- the reply's text ------------------------------------------------------------

    def text(self, piece: str) -> None:
        if not self._in_text:
            self.console.print("[bold cyan]assistant>[/bold cyan] ", end="", highlight=False)
            self._in_text = True
        self.console.out(piece, end="", highlight=False)
        self.console.file.flush()

    def end_text(self) -> None:
        if self._in_text:
            self.console.out("")
            self._in_text = False

    def message_done(self, message: Any) -> None:
        """The finished message's files: file_path links, citations, images."""
        self.end_text()
        for part in getattr(message, "content", None) or []:
            kind = getattr(part, "type", "")
            if kind == "image_file":
                self._file("image", part.image_file.file_id)
            elif kind == "text":
                for note in getattr(part.text, "annotations", None) or []:
                    self._annotation(note)

    def _annotation(self, note: Any) -> None:
        if note.type == "file_path":
            self._file(f"file {note.text}", note.file_path.file_id)
        elif note.type == "file_citation":
            self.info(f"  {note.text} cites file {note.file_citation.file_id}")

    def _file(self, what: str, file_id: str) -> None:
        if file_id in self._files:  # an image a tool made, shown again in the reply
            return
        self._files.add(file_id)
        self.console.print(
            f"  [magenta]{escape(what)}:[/magenta] {file_id}  "
            f"[dim](save it with /save {file_id})[/dim]",
            highlight=False,
        )

    # ---- tool calls ------------------------------------------------------------------

    def step_delta(self, delta: Any) -> None:
        """Announces each tool call the moment it starts."""
        details = getattr(delta.delta, "step_details", None)
        for call in getattr(details, "tool_calls", None) or []:
            call_id = getattr(call, "id", None)
            if not call_id or call_id in self._announced:
                continue
            self._announced.add(call_id)
            name = call.function.name if call.type == "function" else call.type
            self.end_text()
            self.console.print(f"[yellow]⚙ tool call:[/yellow] {escape(str(name))}")

    def step_done(self, step: Any) -> None:
        """What each tool call of a completed step did (function calls were shown when
        they asked for their output)."""
        details = step.step_details
        if details.type != "tool_calls":
            return
        for call in details.tool_calls:
            self._announced.add(call.id)
            shown = getattr(self, f"_show_{call.type}", self._show_other)
            shown(call)

    def _show_function(self, call: Any) -> None:
        return None

    def _show_code_interpreter(self, call: Any) -> None:
        body = call.code_interpreter
        self.end_text()
        self.console.print("[yellow]⚙ code_interpreter ran:[/yellow]")
        self.console.print(Syntax(body.input or "", "python", background_color="default"))
        for out in body.outputs or []:
            if out.type == "logs":
                self.console.print(f"[dim]{escape(_short(out.logs or '', OUTPUT_CHARS))}[/dim]")
            elif out.type == "image":
                self._file("image", out.image.file_id)

    def _show_file_search(self, call: Any) -> None:
        results = getattr(call.file_search, "results", None) or []
        self.end_text()
        self.console.print(f"[yellow]⚙ file_search found {len(results)} passage(s)[/yellow]")
        for hit in results:
            text = " ".join(getattr(c, "text", "") or "" for c in hit.content or [])
            line = f"  {hit.file_name or hit.file_id} ({hit.score:.2f})"
            if text:
                line += f": {_short(text, SNIPPET_CHARS)}"
            self.console.print(escape(line), highlight=False)

    def _show_other(self, call: Any) -> None:
        body = getattr(call, call.type, None)
        if isinstance(body, dict):
            given, output = body.get("input"), body.get("output")
        else:
            given, output = getattr(body, "input", None), getattr(body, "output", None)
        self.end_text()
        self.console.print(f"[yellow]⚙ {escape(call.type)}[/yellow] {escape(str(given or ''))}")
        if output is not None:
            self.console.print(f"[dim]{escape(_short(str(output), OUTPUT_CHARS))}[/dim]")

    def function_call(self, call: Any) -> None:
        self.end_text()
        self.console.print(
            f"[yellow]⚙ function call:[/yellow] [bold]{escape(call.function.name)}[/bold]"
            f"({escape(_arguments(call.function.arguments))})",
            highlight=False,
        )

    # ---- the run's end ---------------------------------------------------------------

    def run_ended(self, run: Any) -> None:
        self.end_text()
        status = run.status
        if status == "failed":
            error = run.last_error
            why = f"{error.code}: {error.message}" if error else "no reason given"
            self.error(f"the run failed ({why})")
        elif status == "incomplete":
            details = run.incomplete_details
            self.warn(f"the reply is incomplete ({details.reason if details else 'no reason'})")
        elif status in ("cancelled", "expired"):
            self.warn(f"the run was {status}")
