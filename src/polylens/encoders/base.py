"""Encoder interfaces: one abstract batch method per side, helpers built on top.

Query-side and document-side encoding are separate calls because many text embedders
use different prompts for each. Every returned matrix is float32 and L2-normalised, so
cosine similarity is a dot product everywhere downstream.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

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

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed_all(texts, query=False)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed_all(texts, query=True)

    def _embed_all(self, texts: Sequence[str], *, query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [
            self._embed_batch(texts[s], query=query) for s in _batched(len(texts), self.batch_size)
        ]
        return normalise(np.concatenate(parts))
