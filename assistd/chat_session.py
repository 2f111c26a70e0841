"""The conversation loop of `assistd chat`: read a line, post it to the thread, stream the
run (answering its function calls from the keyboard), and repeat. It speaks only the
public OpenAI surface through the official `openai` SDK, so the same code talks to a
remote server and to the in-process one a local data dir starts."""

from __future__ import annotations

import contextlib
import importlib
import time
from pathlib import Path, PurePath
from typing import Any, Final

import openai
from openai.types.beta.threads.run_submit_tool_outputs_params import ToolOutput
from rich.console import Console
from rich.markup import escape

from assistd.chat_render import Renderer

# file_search hits' text, in the stream's completed steps (OpenAI's `include[]` value).
RESULT_CONTENT: Final = "step_details.tool_calls[*].file_search.results[*].content"
ENDED = ("completed", "failed", "cancelled", "expired", "incomplete")
CANCEL_WAIT_S = 10.0
HELP = """\
Type a message and press Enter; the reply streams as it comes.
  /new            start a new thread
  /thread         show this thread's id (resume it later with --thread ID)
  /save ID [PATH] save a file the assistant made (an image, a file link) to PATH
  /help           this help
  /exit           leave (so does Ctrl-D)
Ctrl-C while a reply streams cancels the run. When the assistant calls a function tool
you type its output (Ctrl-C there cancels the run)."""


class Cancelled(Exception):
    """The user pressed Ctrl-C while a run was going."""


def find_assistant(client: openai.OpenAI, ref: str) -> Any:
    """The assistant with id `ref`, else the one named `ref`; ValueError if none or if
    several share the name."""
    if ref.startswith("asst_"):
        try:
            return client.beta.assistants.retrieve(ref)
        except openai.NotFoundError:
            pass
    named = [a for a in client.beta.assistants.list(limit=100) if a.name == ref]
    if not named:
        raise ValueError(f"no assistant has the id or name '{ref}'")
    if len(named) > 1:
        ids = ", ".join(a.id for a in named)
        raise ValueError(f"several assistants are named '{ref}' ({ids}); give one's id")
    return named[0]


def find_thread(client: openai.OpenAI, thread_id: str) -> Any:
    try:
        return client.beta.threads.retrieve(thread_id)
    except openai.NotFoundError:
        raise ValueError(f"no thread has the id '{thread_id}'") from None


class ChatSession:
    def __init__(
        self, client: openai.OpenAI, assistant: Any, thread_id: str | None, console: Console
    ) -> None:
        self.client = client
        self.assistant = assistant
        self.thread_id = thread_id or ""
        self.console = console
        self.show = Renderer(console)
        self.run_id: str | None = None

    # ---- the loop --------------------------------------------------------------------

    def loop(self) -> None:
        with contextlib.suppress(ImportError):  # line editing and history at the prompt
            importlib.import_module("readline")
        name = self.assistant.name or self.assistant.id
        self.show.info(f"chatting with {name} ({self.assistant.id}); /help for commands")
        if self.thread_id:
            self.show.info(f"on thread {self.thread_id}")
        else:
            self.new_thread()
        while True:
            try:
                line = self.console.input("[bold green]you>[/bold green] ").strip()
            except EOFError:
                self.console.print()
                return
            except KeyboardInterrupt:
                self.console.print()
                self.show.info("(Ctrl-D or /exit leaves)")
                continue
            if line.startswith("/"):
                if not self.command(line):
                    return
            elif line:
                self.say(line)

    def command(self, line: str) -> bool:
        """Runs a slash command; False when it ends the chat."""
        name, *args = line.split()
        if name in ("/exit", "/quit"):
            return False
        if name == "/new":
            self.new_thread()
        elif name == "/thread":
            self.show.info(f"thread {self.thread_id}")
        elif name == "/help":
            self.console.print(escape(HELP), highlight=False)
        elif name == "/save" and 1 <= len(args) <= 2:
            self.save(*args)
        else:
            self.show.warn(f"unknown command {line!r}; /help lists them")
        return True

    def new_thread(self) -> None:
        self.thread_id = self.client.beta.threads.create().id
        self.show.info(f"new thread {self.thread_id} (resume it later with --thread)")

    def save(self, file_id: str, where: str | None = None) -> None:
        try:
            path = Path(where).expanduser() if where else self._own_name(file_id)
            self.client.files.content(file_id).write_to_file(path)
        except openai.APIStatusError as exc:
            self.show.error(f"cannot save {file_id}: {api_message(exc)}")
        except OSError as exc:
            self.show.error(f"cannot save {file_id}: {exc.strerror or exc}")
        else:
            self.show.info(f"saved {file_id} to {path}")

    def _own_name(self, file_id: str) -> Path:
        """The file's name as a plain name in the current folder: the name is the
        uploader's (or a tool's) choice, so none of its folders, `..` or `~` count."""
        name = PurePath(self.client.files.retrieve(file_id).filename.replace("\\", "/")).name
        return Path(name if name not in ("", ".", "..") else file_id)

    # ---- one message and its run -------------------------------------------------------

    def say(self, text: str) -> None:
        self.run_id = None
        try:
            self.client.beta.threads.messages.create(self.thread_id, role="user", content=text)
            manager = self.client.beta.threads.runs.stream(
                thread_id=self.thread_id, assistant_id=self.assistant.id, include=[RESULT_CONTENT]
            )
            while manager is not None:
                manager = self._follow(manager)
        except KeyboardInterrupt:
            self.cancel()
        except Cancelled:
            self.cancel()
        except openai.APIStatusError as exc:
            self.show.error(api_message(exc))
        except openai.APIConnectionError as exc:
            self.show.error(f"the connection to the server failed: {exc}")
        self.show.end_text()

    def _follow(self, manager: Any) -> Any:
        """Streams one leg of the run; the next leg's stream after a function call's
        output is submitted, or None when the run has ended."""
        with manager as stream:
            for event in stream:
                action = self._event(event.event, event.data)
                if action is not None:
                    return self._answer(action)
        return None

    def _event(self, kind: str, data: Any) -> Any:
        """Shows one event; the run when it requires action."""
        if kind == "thread.run.created":
            self.run_id = data.id
        elif kind == "thread.message.delta":
            for part in data.delta.content or []:
                if part.type == "text" and part.text and part.text.value:
                    self.show.text(part.text.value)
        elif kind == "thread.message.completed":
            self.show.message_done(data)
        elif kind == "thread.run.step.delta":
            self.show.step_delta(data)
        elif kind == "thread.run.step.completed":
            self.show.step_done(data)
        elif kind == "thread.run.requires_action":
            return data
        elif kind in ("thread.run.failed", "thread.run.cancelled", "thread.run.expired",
                      "thread.run.incomplete"):  # fmt: skip
            self.show.run_ended(data)
        elif kind == "error":
            self.show.error(str(getattr(data, "message", data)))
        return None

    def _answer(self, run: Any) -> Any:
        """Asks the user for each function call's output and submits them."""
        outputs: list[ToolOutput] = []
        for call in run.required_action.submit_tool_outputs.tool_calls:
            self.show.function_call(call)
            try:
                output = self.console.input(f"[bold yellow]output of {call.function.name}>[/] ")
            except (EOFError, KeyboardInterrupt):
                self.console.print()
                raise Cancelled() from None
            outputs.append({"tool_call_id": call.id, "output": output})
        return self.client.beta.threads.runs.submit_tool_outputs_stream(
            run_id=run.id, thread_id=self.thread_id, tool_outputs=outputs
        )

    def cancel(self) -> None:
        """Cancels the current run on the server and waits (briefly) for it to end, so
        the thread takes the next message."""
        self.show.end_text()
        run_id = self.run_id or self._active_run()
        if run_id is None:
            self.show.warn("interrupted")
            return
        try:
            run = self.client.beta.threads.runs.cancel(run_id, thread_id=self.thread_id)
            deadline = time.monotonic() + CANCEL_WAIT_S
            while run.status not in ENDED and time.monotonic() < deadline:
                time.sleep(0.2)
                run = self.client.beta.threads.runs.retrieve(run_id, thread_id=self.thread_id)
        except openai.APIStatusError as exc:  # it ended meanwhile, say
            self.show.warn(f"interrupted; the run could not be cancelled: {api_message(exc)}")
            return
        self.show.warn(f"interrupted: run {run_id} is {run.status}")

    def _active_run(self) -> str | None:
        """The thread's latest run if it is still going (Ctrl-C came before the stream
        said which run it was)."""
        try:
            latest = self.client.beta.threads.runs.list(self.thread_id, limit=1).data
        except openai.APIError:
            return None
        return latest[0].id if latest and latest[0].status not in ENDED else None


def api_message(exc: openai.APIStatusError) -> str:
    """The server's own words for a refused request, with the HTTP status."""
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return f"{body['message']} (HTTP {exc.status_code})"
    return f"HTTP {exc.status_code}: {exc.message}"
