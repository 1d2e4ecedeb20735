"""Encoder interfaces: one abstract batch method per side, helpers built on top.

Query-side and document-side encoding are separate calls because many text embedders
use different prompts for each. Every returned matrix is float32 and L2-normalised, so
cosine similarity is a dot product everywhere downstream.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from polylens.encoders.windows import char_windows

if TYPE_CHECKING:
    from PIL import Image


def normalise(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return matrix / norms


def _batched(n: int, batch_size: int) -> list[slice]:
    return [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


class QueryCache:
    """The last few hundred query embeddings: people re-run, page and refine the same
    queries, and a cache hit costs microseconds where a forward pass costs milliseconds."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._entries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def embed(
        self, texts: Sequence[str], compute: Callable[[Sequence[str]], np.ndarray], dim: int
    ) -> np.ndarray:
        out = np.zeros((len(texts), dim), dtype=np.float32)
        missing: list[int] = []
        with self._lock:
            for i, text in enumerate(texts):
                cached = self._entries.get(text)
                if cached is None:
                    missing.append(i)
                else:
                    self._entries.move_to_end(text)
                    out[i] = cached
        if missing:
            computed = compute([texts[i] for i in missing])
            with self._lock:
                for i, vector in zip(missing, computed, strict=True):
                    out[i] = vector
                    self._entries[texts[i]] = vector.copy()
                    self._entries.move_to_end(texts[i])
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
        return out


def _query_cache(encoder: object) -> QueryCache:
    cache = encoder.__dict__.get("_query_cache")
    if cache is None:
        cache = encoder.__dict__.setdefault("_query_cache", QueryCache())
    return cache


class ImageTextEncoder(ABC):
    """A CLIP-family model: images and texts in one embedding space."""

    name: str
    resolved: str
    dim: int
    batch_size: int = 32

    @abstractmethod
    def _embed_image_batch(self, images: Sequence[Image.Image]) -> np.ndarray: ...

    @abstractmethod
    def _embed_text_batch(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [self._embed_image_batch(images[s]) for s in _batched(len(images), self.batch_size)]
        return normalise(np.concatenate(parts))

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Text-tower embeddings of queries, comparable with image embeddings."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _query_cache(self).embed(texts, self._embed_queries_uncached, self.dim)

    def _embed_queries_uncached(self, texts: Sequence[str]) -> np.ndarray:
        parts = [self._embed_text_batch(texts[s]) for s in _batched(len(texts), self.batch_size)]
        return normalise(np.concatenate(parts))


class TextEncoder(ABC):
    """A text embedder for passages, page text and OCR text."""

    name: str
    resolved: str
    dim: int
    batch_size: int = 32

    @abstractmethod
    def _embed_batch(self, texts: Sequence[str], *, query: bool) -> np.ndarray: ...

    def windows(self, text: str, max_chars: int) -> list[str]:
        """The pieces of ``text`` to embed, each short enough for the model to read whole
        (by characters here; models that know their tokens cut by tokens)."""
        return char_windows(text, max_chars)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed_all(texts, query=False)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _query_cache(self).embed(
            texts, lambda todo: self._embed_all(todo, query=True), self.dim
        )

    def _embed_all(self, texts: Sequence[str], *, query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [
            self._embed_batch(texts[s], query=query) for s in _batched(len(texts), self.batch_size)
        ]
        return normalise(np.concatenate(parts))
