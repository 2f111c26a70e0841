"""Content filters: each checks, and may rewrite or block, the user's input before a run
and the reply after it.

A package adds a filter as an entry point of the group below, as a tool is one of
`assistd.tools`: in its pyproject.toml,
[project.entry-points."assistd.content_filters"] my_filter = "pkg.module:factory", where
factory(settings) returns a ContentFilter, or None when not configured. The operator may
also name factories by import path in `content_filter.filters`. A filter that cannot be
loaded stops the server from starting: silently running without it would let through
what it was meant to stop.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Literal, Protocol

from assistd.core.objects import Message, PageRequest, Run
from assistd.errors import StartupError
from assistd.models.base import ModelError
from assistd.settings import Settings
from assistd.store.base import WorkspaceUnit

ENTRY_POINT_GROUP = "assistd.content_filters"
METADATA_KEY = "content_filter"  # on the checked message: "passed", "rewritten", "blocked"
WITHHELD = "This reply was withheld by the content filter."
Stage = Literal["input", "reply"]


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Literal["pass", "rewrite", "block"] = "pass"
    text: str | None = None  # the rewritten text (action "rewrite")


PASS = Verdict()


class ContentFilter(Protocol):
    name: str  # named in a blocked run's last_error

    def check(self, stage: Stage, text: str) -> Verdict | Awaitable[Verdict]: ...


class ContentBlocked(ModelError):
    """Fails the run: `last_error` names the filter, never what it matched."""

    def __init__(self, stage: Stage, filter_name: str) -> None:
        what = "input" if stage == "input" else "reply"
        super().__init__(
            "content_filtered",
            f"The content filter '{filter_name}' blocked the {what} of this run.",
        )


class KeywordFilter:
    """The built-in: blocks text containing any of the configured words."""

    name = "keywords"

    def __init__(self, words: list[str], case_sensitive: bool) -> None:
        flags = 0 if case_sensitive else re.IGNORECASE
        self.pattern = re.compile("|".join(re.escape(w) for w in words), flags)

    def check(self, stage: Stage, text: str) -> Verdict:
        return Verdict("block") if self.pattern.search(text) else PASS


def keywords(settings: Settings) -> KeywordFilter | None:
    """The entry point's factory: no filter unless words are configured."""
    config = settings.content_filter
    words = [w for w in config.blocked_words if w]
    return KeywordFilter(words, config.case_sensitive) if words else None


Factory = Callable[[Settings], ContentFilter | None]


def _import(path: str) -> Factory:
    module, _, attr = path.partition(":")
    if not module or not attr:
        raise StartupError(f"content_filter.filters: '{path}' is not a module:function path")
    try:
        factory: Factory = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise StartupError(f"content_filter.filters: cannot load '{path}': {exc}") from None
    return factory


def _factories(settings: Settings) -> list[tuple[str, Factory]]:
    """The built-in first (it needs no package metadata), then entry points by name,
    then the configured import paths."""
    found: list[tuple[str, Factory]] = [("keywords", keywords)]
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            found.append((ep.name, ep.load()))
        except Exception as exc:
            raise StartupError(f"the content filter '{ep.name}' cannot be loaded: {exc}") from None
    found += [(path, _import(path)) for path in settings.content_filter.filters]
    return found


@dataclass(slots=True)
class Outcome:
    decision: Literal["passed", "rewritten", "blocked"]
    blocked_by: str = ""


class ContentFilters:
    """Every configured filter, applied in order: the built-in, entry points by name,
    then import paths."""

    def __init__(self, settings: Settings) -> None:
        self.filters: list[ContentFilter] = []
        for name, factory in _factories(settings):
            made = factory(settings)
            if made is not None:
                if not getattr(made, "name", ""):
                    made.name = name
                self.filters.append(made)
        self.check_replies = settings.content_filter.check_replies

    @property
    def active(self) -> bool:
        return bool(self.filters)

    async def _apply(self, stage: Stage, message: Message) -> Outcome:
        """Checks each text part; a rewrite replaces it in `message`, and the decision is
        written to its metadata."""
        outcome = Outcome("passed")
        for part in message.content:
            if part.get("type") != "text":
                continue
            text = part["text"]["value"]
            for content_filter in self.filters:
                verdict = content_filter.check(stage, text)
                if inspect.isawaitable(verdict):
                    verdict = await verdict
                if verdict.action == "block":
                    outcome = Outcome("blocked", content_filter.name)
                    break
                if verdict.action == "rewrite" and verdict.text is not None:
                    text, outcome.decision = verdict.text, "rewritten"
            if outcome.decision == "blocked":
                break
            part["text"]["value"] = text
        message.metadata = {**message.metadata, METADATA_KEY: outcome.decision}
        return outcome

    async def check_input(self, unit: WorkspaceUnit, run: Run) -> ContentBlocked | None:
        """The user's input to the run: the thread's newest messages up to the last one
        not the user's. Each is stored with the decision (and any rewrite), which the
        model's context then reads; the error to fail the run with, if one was blocked."""
        page = await unit.messages.page(run.thread_id, PageRequest(limit=20, order="desc"))
        blocked: ContentBlocked | None = None
        for message in page.items:
            if message.role != "user" or message.run_id == run.id:
                break
            outcome = await self._apply("input", message)
            await unit.messages.replace(message)
            if outcome.decision == "blocked":
                blocked = blocked or ContentBlocked("input", outcome.blocked_by)
        return blocked

    async def check_reply(self, message: Message) -> ContentBlocked | None:
        """The finished reply, before it is stored: a blocked one is stored as a notice
        (its text withheld) and fails the run."""
        if not self.check_replies:
            return None
        outcome = await self._apply("reply", message)
        if outcome.decision != "blocked":
            return None
        message.content = [{"type": "text", "text": {"value": WITHHELD, "annotations": []}}]
        return ContentBlocked("reply", outcome.blocked_by)
