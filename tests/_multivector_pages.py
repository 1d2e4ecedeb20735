"""Synthetic late-interaction pages and brute-force MaxSim, shared by the MaxSim, patch-store
and multi-vector index tests."""

from __future__ import annotations

import numpy as np

DIM = 32


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def clustered_pages(n: int, seed: int = 0, lengths: tuple[int, int] = (4, 40)) -> list:
    """Pages made of a few topical regions plus shared 'blank' vectors."""
    rng = np.random.default_rng(seed)
    concepts = unit(rng.standard_normal((60, DIM)))
    blank = unit(rng.standard_normal(DIM))
    pages = []
    for _ in range(n):
        length = int(rng.integers(*lengths))
        own = rng.choice(60, 3, replace=False)
        src = np.where(rng.random(length)[:, None] < 0.3, blank, concepts[rng.choice(own, length)])
        pages.append(unit(src + 0.4 * rng.standard_normal((length, DIM)) / np.sqrt(DIM)))
    return pages


def query_about(page: np.ndarray, seed: int, m: int = 8) -> np.ndarray:
    rng = np.random.default_rng(seed)
    picks = np.asarray(page, np.float32)[rng.integers(0, len(page), m)]
    return unit(picks + 0.5 * rng.standard_normal(picks.shape) / np.sqrt(DIM))


def brute(query: np.ndarray, pages: list) -> np.ndarray:
    out = []
    for page in pages:
        total = 0.0
        for t in np.asarray(query, np.float64):
            total += max(float(t @ np.asarray(v, np.float64)) for v in page)
        out.append(total)
    return np.array(out)


def exact_top(query: np.ndarray, pages: list, k: int, allowed=None) -> np.ndarray:
    scores = brute(query, [np.asarray(p, np.float16).astype(np.float32) for p in pages])
    if allowed is not None:
        scores[~allowed] = -np.inf
    order = np.lexsort((np.arange(len(scores)), -scores))
    return order[: min(k, int(np.isfinite(scores).sum()))]
