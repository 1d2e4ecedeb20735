"""Deterministic encoders with no model weights, for tests of logic and offline demos.

The text side hashes words into buckets (a lexical embedding, so similar texts really are
close); the image side summarises colour on a coarse grid. Neither is a toy stand-in for
quality: they exist so pipeline and store logic can be tested in milliseconds.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from polylens.encoders.base import ImageTextEncoder, TextEncoder

if TYPE_CHECKING:
    from PIL import Image

_WORD = re.compile(r"\w+", re.UNICODE)


def _hash_words(text: str, dim: int) -> np.ndarray:
    vec = np.zeros(dim, dtype=np.float32)
    for word in _WORD.findall(text.lower()):
        digest = hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest()
        bucket = int.from_bytes(digest[:4], "little") % dim
        sign = 1.0 if digest[4] & 1 else -1.0
        vec[bucket] += sign
    if not vec.any():
        vec[0] = 1.0
    return vec


class FakeText(TextEncoder):
    def __init__(self, dim: int = 64) -> None:
        self.name = f"fake-text:{dim}"
        self.resolved = self.name
        self.dim = dim

    def _embed_batch(self, texts: Sequence[str], *, query: bool) -> np.ndarray:
        return np.stack([_hash_words(t, self.dim) for t in texts])


class FakeImageText(ImageTextEncoder):
    """Images: a 4x4 colour grid (48 numbers) hashed up to ``dim``; texts: hashed words."""

    def __init__(self, dim: int = 48) -> None:
        self.name = f"fake-clip:{dim}"
        self.resolved = self.name
        self.dim = dim

    def _embed_image_batch(self, images: Sequence[Image.Image]) -> np.ndarray:
        out = np.zeros((len(images), self.dim), dtype=np.float32)
        for i, image in enumerate(images):
            grid = np.asarray(image.convert("RGB").resize((4, 4)), dtype=np.float32).ravel()
            grid = grid / 255.0 - 0.5
            out[i, : min(self.dim, grid.size)] = grid[: self.dim]
        return out

    def _embed_text_batch(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([_hash_words(t, self.dim) for t in texts])


class FakePages:
    """Late interaction without weights: a page is its 4x4 grid of colour cells (one
    vector per cell), a query one hashed vector per word; both L2-normalised."""

    def __init__(self, dim: int = 16) -> None:
        self.name = f"fake-page:{dim}"
        self.resolved = self.name
        self.dim = dim

    def embed_pages(self, images: Sequence[Image.Image]) -> list:
        from polylens.encoders.late import PageVectors

        out = []
        for image in images:
            cells = np.asarray(image.convert("RGB").resize((4, 4)), dtype=np.float32)
            vectors = np.zeros((16, self.dim), dtype=np.float32)
            vectors[:, : min(3, self.dim)] = cells.reshape(16, 3)[:, : self.dim] / 255.0 - 0.5
            vectors[:, -1] += 0.1  # no zero vector for a grey cell
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            out.append(PageVectors(vectors.astype(np.float16), 0, 4, 4))
        return out

    def embed_queries(self, texts: Sequence[str]) -> list[np.ndarray]:
        out = []
        for text in texts:
            words = _WORD.findall(text.lower()) or [text]
            vectors = np.stack([_hash_words(w, self.dim) for w in words])
            out.append(vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
        return out
