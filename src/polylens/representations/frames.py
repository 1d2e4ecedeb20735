"""Several pictures standing for one item: a video segment's keyframes.

A representation that reads pixels gets, for a video segment, a :class:`Frames` of its own
prepared inputs instead of one input; :func:`embed_pooled` embeds every frame in one batch
with the pictures of other items and averages each item's frames (then re-normalises), so
a segment's vector is the centre of what it shows, as in frame-pooled CLIP video retrieval
(CLIP4Clip's mean pooling).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Frames:
    inputs: tuple[Any, ...]


def embed_pooled(embed: Callable[[list[Any]], Any], inputs: Sequence[Any]) -> np.ndarray:
    """One unit-length vector per input; a :class:`Frames` input gets its frames' mean."""
    flat: list[Any] = []
    spans: list[tuple[int, int]] = []
    for one in inputs:
        frames = one.inputs if isinstance(one, Frames) else (one,)
        spans.append((len(flat), len(flat) + len(frames)))
        flat.extend(frames)
    vectors = np.asarray(embed(flat), dtype=np.float32)
    if len(flat) == len(inputs):
        return vectors
    pooled = np.stack([vectors[a:b].mean(axis=0) for a, b in spans])
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return pooled / np.maximum(norms, 1e-12)
