"""Search results as a model reads them, and citations of them in its reply.

Each result is given to the model under a marker in OpenAI's style, `【{turn}:{index}†
{filename}】`: `turn` numbers the searches of a run, `index` the results of one search.
The model is told to cite with those markers. A marker in the reply becomes a
`file_citation` annotation only when it matches a result the model was given (same turn,
index and file name): a marker the model made up is left as text, never annotated.

Used by OpenAI's `file_search`; kept apart (no store, no surface). `resolve` is the one
citation resolver: DashScope's `rag` tool (`core/rag.py`) uses it with its own `[n]`
markers (`NUMBERED`), `file_search` with the markers above (`TURN_INDEX_NAME`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from assistd.core.objects import JsonDict, SearchHit

MARKER = re.compile(r"【(\d+):(\d+)†([^】]*)】")
# OpenAI's own markers sometimes named no file, only "source".
ANY_NAME = "source"


@dataclass(slots=True, frozen=True)
class MarkerStyle:
    """How a reply marks a citation: the marker's pattern, the key of the source a match
    names, and the file name it spells (None: the style names no file)."""

    pattern: re.Pattern[str]
    key: Callable[[re.Match[str]], Hashable]
    name: Callable[[re.Match[str]], str] | None = None


@dataclass(slots=True, frozen=True)
class Source:
    """What a marker may cite: the file, its name as the model was shown it (checked
    against a style's spelled name) and the quote to annotate with (None: no quote)."""

    file_id: str
    name: str = ""
    quote: str | None = None


# file_search: 【turn:index†file name】.
TURN_INDEX_NAME = MarkerStyle(
    MARKER, key=lambda m: (int(m.group(1)), int(m.group(2))), name=lambda m: m.group(3)
)
# DashScope's rag: [n], n numbering the chunks from 1.
NUMBERED = MarkerStyle(re.compile(r"\[(\d{1,3})\]"), key=lambda m: int(m.group(1)))


def resolve(text: str, style: MarkerStyle, sources: Mapping[Hashable, Source]) -> list[JsonDict]:
    """A `file_citation` annotation for each marker of `style` in `text` that names one
    of `sources` (and, when the style spells a file name, that source's name or
    "source"); any other marker is left as text, nothing is invented. Offsets are in
    characters of `text`."""
    found: list[JsonDict] = []
    for match in style.pattern.finditer(text):
        source = sources.get(style.key(match))
        if source is None:
            continue
        if style.name is not None and style.name(match) not in (source.name, ANY_NAME):
            continue
        cited: JsonDict = {"file_id": source.file_id}
        if source.quote is not None:
            cited["quote"] = source.quote
        found.append(
            {"type": "file_citation", "text": match.group(0), "start_index": match.start(),
             "end_index": match.end(), "file_citation": cited}
        )  # fmt: skip
    return found


def marker(turn: int, index: int, filename: str) -> str:
    # The closing bracket cannot appear inside a marker: a file name holding one is cut.
    return f"【{turn}:{index}†{filename.replace('】', '')}】"


def result_records(hits: Sequence[SearchHit]) -> list[JsonDict]:
    """The results as a step records them (OpenAI's `file_search.results[]`, whose
    `content` is shown only when asked for)."""
    return [
        {"file_id": h.file_id, "file_name": h.filename, "score": round(h.score, 6),
         "content": [{"type": "text", "text": h.text}]}
        for h in hits
    ]  # fmt: skip


def for_model(turn: int, queries: Sequence[str], results: Sequence[JsonDict]) -> str:
    """What the model reads of a search: each result under its marker, and how to cite."""
    asked = "; ".join(f'"{q}"' for q in queries)
    if not results:
        return f"The file search for {asked} found nothing. Answer without citing files."
    lines = [
        f"The file search for {asked} found {len(results)} result(s). When a sentence of "
        "your answer uses a result, put that result's marker (as written, e.g. "
        f"{marker(turn, 0, str(results[0]['file_name']))}) right after the sentence. "
        "Use only these markers; never make one up.",
    ]
    for index, r in enumerate(results):
        text = "".join(str(part.get("text", "")) for part in r.get("content") or [])
        lines.append(f"\n{marker(turn, index, str(r['file_name']))}\n{text}")
    return "\n".join(lines)


@dataclass(slots=True, frozen=True)
class Cited:
    """A search whose results a reply may cite: its turn and its results in order."""

    turn: int
    results: Sequence[JsonDict]


def file_citations(text: str, searches: Iterable[Cited]) -> list[JsonDict]:
    """A `file_citation` annotation for each marker in `text` that names a result the
    model was given; offsets are in characters of `text`."""
    given: dict[Hashable, Source] = {
        (s.turn, i): Source(str(r["file_id"]), _name(r))
        for s in searches
        for i, r in enumerate(s.results)
    }
    return resolve(text, TURN_INDEX_NAME, given)


def _name(result: JsonDict) -> str:
    return str(result.get("file_name", "")).replace("】", "")
