"""Text to chunks: paragraphs, then sentences, packed up to a token budget with overlap.

Sizes are counted in the embedding model's own word pieces (the tokenizer bundled with the
MiniLM weights), so a chunk's size means the same thing as OpenAI's `max_chunk_size_tokens`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from assistd.errors import InvalidRequest
from assistd.retrieval.minilm import tokenizer
from assistd.retrieval.parsers import Page

DEFAULT_MAX_TOKENS = 800
DEFAULT_OVERLAP_TOKENS = 400
MIN_MAX_TOKENS, MAX_MAX_TOKENS = 100, 4096

_PARAGRAPHS = re.compile(r"\n[ \t]*\n+")
# A sentence ends at . ! ? (then space) or at a CJK full stop, question or exclamation mark.
_SENTENCES = re.compile(r"(?<=[.!?\u2026])\s+(?=\S)|(?<=[\u3002\uff01\uff1f\uff1b])")


@dataclass(frozen=True, slots=True)
class ChunkingStrategy:
    """OpenAI's `static` strategy (`auto` is the defaults: 800 tokens, 400 overlap)."""

    max_tokens: int = DEFAULT_MAX_TOKENS
    overlap_tokens: int = DEFAULT_OVERLAP_TOKENS

    @classmethod
    def static(cls, max_chunk_size_tokens: int, chunk_overlap_tokens: int) -> ChunkingStrategy:
        if not MIN_MAX_TOKENS <= max_chunk_size_tokens <= MAX_MAX_TOKENS:
            raise InvalidRequest(
                f"chunking_strategy.static.max_chunk_size_tokens must be between "
                f"{MIN_MAX_TOKENS} and {MAX_MAX_TOKENS}; got {max_chunk_size_tokens}.",
                "chunking_strategy.static.max_chunk_size_tokens",
            )
        if not 0 <= chunk_overlap_tokens <= max_chunk_size_tokens // 2:
            raise InvalidRequest(
                "chunking_strategy.static.chunk_overlap_tokens must be between 0 and half of "
                f"max_chunk_size_tokens ({max_chunk_size_tokens // 2}); "
                f"got {chunk_overlap_tokens}.",
                "chunking_strategy.static.chunk_overlap_tokens",
            )
        return cls(max_chunk_size_tokens, chunk_overlap_tokens)


@dataclass(frozen=True, slots=True)
class Chunk:
    position: int  # 0-based order within its file
    text: str
    tokens: int
    page: int | None  # page (or slide, or sheet) where the chunk starts


@dataclass(frozen=True, slots=True)
class _Unit:
    text: str
    tokens: int
    page: int | None
    separator: str  # what joins it to the unit before: a paragraph break or a space


def _sentences(text: str) -> list[tuple[str, str]]:
    """(separator, sentence) pairs: a paragraph's first sentence follows a paragraph break."""
    out: list[tuple[str, str]] = []
    for paragraph in _PARAGRAPHS.split(text):
        sentences = [s.strip() for s in _SENTENCES.split(paragraph.strip())]
        out.extend(("\n\n" if not i else " ", s) for i, s in enumerate(s for s in sentences if s))
    return out


def _units(pages: Sequence[Page], limit: int) -> list[_Unit]:
    """Sentences with their token counts; a sentence longer than `limit` becomes windows."""
    pieces = [(page.number, sep, text) for page in pages for sep, text in _sentences(page.text)]
    encodings = tokenizer().encode_batch([text for _, _, text in pieces], add_special_tokens=False)
    units: list[_Unit] = []
    for (number, sep, text), enc in zip(pieces, encodings, strict=True):
        if len(enc.ids) <= limit:
            units.append(_Unit(text, len(enc.ids), number, sep))
            continue
        for i in range(0, len(enc.ids), limit):
            window = enc.offsets[i : i + limit]
            piece = text[window[0][0] : window[-1][1]]
            units.append(_Unit(piece, len(window), number, sep if i == 0 else " "))
    return units


def _join(units: Sequence[_Unit]) -> str:
    return units[0].text + "".join(u.separator + u.text for u in units[1:])


def chunk_pages(
    pages: Sequence[Page], strategy: ChunkingStrategy = ChunkingStrategy()
) -> list[Chunk]:
    """Packs whole sentences up to max_tokens, preferring to end at a paragraph; the next
    chunk starts with the last sentences of this one that fit in overlap_tokens (never all
    of them, so it moves on)."""
    units = _units(pages, strategy.max_tokens)
    chunks: list[Chunk] = []
    start = done = 0  # `done`: units already in a chunk; each chunk must add some
    while start < len(units):
        greedy = _greedy_end(units, start, strategy.max_tokens)
        end = _paragraph_end(units, start, greedy, floor=done + 1)
        part = units[start:end]
        chunks.append(Chunk(len(chunks), _join(part), sum(u.tokens for u in part), part[0].page))
        if end == len(units):
            break
        done = end
        start = _overlap_start(units, start, end, strategy.overlap_tokens)
    return chunks


def _greedy_end(units: Sequence[_Unit], start: int, budget: int) -> int:
    end, size = start, 0
    while end < len(units) and (end == start or size + units[end].tokens <= budget):
        size += units[end].tokens
        end += 1
    return end


def _paragraph_end(units: Sequence[_Unit], start: int, end: int, floor: int) -> int:
    """Ends the chunk at the last paragraph break inside it, when that keeps at least half of
    it: a chunk that stops mid-paragraph reads worse than a slightly shorter one."""
    if end == len(units) or units[end].separator != " ":
        return end
    full = sum(u.tokens for u in units[start:end])
    size = full
    for cut in range(end - 1, max(start, floor - 1), -1):
        size -= units[cut].tokens
        if size * 2 < full:
            break
        if units[cut].separator != " ":
            return cut
    return end


def _overlap_start(units: Sequence[_Unit], start: int, end: int, overlap: int) -> int:
    back, size = end, 0
    while back - 1 > start and size + units[back - 1].tokens <= overlap:
        back -= 1
        size += units[back].tokens
    return back
