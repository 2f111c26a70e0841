"""A file's bytes to chunks: the CPU-bound part of ingestion, run in a worker process.

Module-level and picklable, so assistd.tools.offload's pool can call it."""

from __future__ import annotations

from assistd.retrieval.chunking import Chunk, ChunkingStrategy, chunk_pages
from assistd.retrieval.parsers import parse


def parse_and_chunk(filename: str, content: bytes, max_tokens: int, overlap: int) -> list[Chunk]:
    """Raises ParseFailed when the file has no text that can be searched."""
    return chunk_pages(parse(filename, content), ChunkingStrategy(max_tokens, overlap))
