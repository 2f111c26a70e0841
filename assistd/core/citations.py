"""Search results as a model reads them, and citations of them in its reply.

Each result is given to the model under a marker in OpenAI's style, `【{turn}:{index}†
{filename}】`: `turn` numbers the searches of a run, `index` the results of one search.
The model is told to cite with those markers. A marker in the reply becomes a
`file_citation` annotation only when it matches a result the model was given (same turn,
index and file name): a marker the model made up is left as text, never annotated.

Used by OpenAI's `file_search`; kept apart (no store, no surface) so that another
retrieval tool can format its results and resolve its citations the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from assistd.core.objects import JsonDict, SearchHit

MARKER = re.compile(r"【(\d+):(\d+)†([^】]*)】")
# OpenAI's own markers sometimes named no file, only "source".
ANY_NAME = "source"


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
    given = {(s.turn, i): r for s in searches for i, r in enumerate(s.results)}
    found: list[JsonDict] = []
    for match in MARKER.finditer(text):
        result = given.get((int(match.group(1)), int(match.group(2))))
        if result is None or match.group(3) not in (_name(result), ANY_NAME):
            continue
        found.append(
            {"type": "file_citation", "text": match.group(0), "start_index": match.start(),
             "end_index": match.end(), "file_citation": {"file_id": result["file_id"]}}
        )  # fmt: skip
    return found


def _name(result: JsonDict) -> Any:
    return str(result.get("file_name", "")).replace("】", "")
