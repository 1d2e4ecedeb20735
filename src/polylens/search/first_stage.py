"""The first stage of the MaxSim index: each page's vectors pooled into a few, in a FAISS
inverted-file index, and each query token's hits there aggregated into candidate pages.

Kept apart from :mod:`polylens.search.multivector_index` (which owns the pages, deletes,
filters, the exact rerank and the files): this is how candidates are proposed cheaply.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from polylens.search.maxsim import pool_pages
from polylens.search.patch_store import PatchStore

# Fewer pooled vectors than this to train on: the IVF stores them flat (float32).
_MIN_TRAIN_QUANTISED = 4096


def _default_nlist(n_pooled: int) -> int:
    """~2 * sqrt(N) lists (a power of two), capped so each list gets >= 32 training points."""
    if n_pooled <= 0:
        return 1
    nlist = 2 ** round(math.log2(max(1.0, 2.0 * math.sqrt(n_pooled))))
    return int(max(1, min(nlist, n_pooled // 32, 65_536)))


def default_segments(lengths: np.ndarray) -> int:
    """Pooled vectors per page when not given: ~sqrt(median page length), i.e. one per row
    of a square patch grid (8 for 64 patches, 26 for ~700), between 1 and 32."""
    if len(lengths) == 0:
        return 8
    return int(np.clip(round(math.sqrt(float(np.median(lengths)))), 1, 32))


def _pool_store(
    store: PatchStore,
    rows: np.ndarray,
    segments: int,
    method: str,
    batch_vectors: int = 262_144,
):
    """Yield (rows, pooled (len(rows), segments, d) float32) for ``rows`` of ``store``; a page
    shorter than ``segments`` repeats its last pooled vector (MaxSim ignores duplicates)."""
    lengths = store.lengths()
    offsets = store.offsets
    mm = store.vectors
    rows = np.asarray(rows, dtype=np.int64)
    i = 0
    while i < len(rows):
        n = int(lengths[rows[i]])
        j = min(len(rows), i + max(1, batch_vectors // n))
        same = lengths[rows[i:j]] == n  # pool a run of equal-length pages as one block
        if not same.all():
            j = i + int(np.argmin(same))
        r = rows[i:j]
        if r[-1] - r[0] == len(r) - 1:
            flat = mm[offsets[r[0]] : offsets[r[-1] + 1]]
        else:
            flat, _ = store.gather(r)
        block = np.asarray(flat, dtype=np.float32).reshape(len(r), n, store.dim)
        pooled = pool_pages(block, segments, method=method)
        if pooled.shape[1] < segments:
            pad = np.repeat(pooled[:, -1:], segments - pooled.shape[1], axis=1)
            pooled = np.concatenate([pooled, pad], axis=1)
        yield r, pooled
        i = j


def _new_ivf(dim: int, nlist: int, codec: str) -> Any:
    import faiss

    quantizer = faiss.IndexFlatIP(dim)
    ip = faiss.METRIC_INNER_PRODUCT
    if codec == "pq4":
        m = dim // 4 if dim % 4 == 0 else dim // 2 if dim % 2 == 0 else dim
        index = faiss.IndexIVFPQFastScan(quantizer, dim, nlist, m, 4, ip)
    elif codec == "flat":
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, ip)
    elif codec in ("fp16", "sq8"):
        qt = faiss.ScalarQuantizer.QT_fp16 if codec == "fp16" else faiss.ScalarQuantizer.QT_8bit
        index = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, qt, ip)
    else:
        raise ValueError(f"unknown codec {codec!r} (pq4, fp16, sq8, flat)")
    index.own_fields = True
    quantizer.this.disown()
    index.cp.max_points_per_centroid = 64  # k-means on <= 64 points per list: quick
    index.cp.niter = 12
    return index


def _top_k(rows: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    if len(rows) > k:
        part = np.argpartition(-scores, k - 1)[:k]
        rows, scores = rows[part], scores[part]
    order = np.lexsort((rows, -scores))  # score desc, then row asc (deterministic ties)
    return rows[order].astype(np.int64), scores[order].astype(np.float32)


def _aggregate(dist: np.ndarray, ids: np.ndarray, keep: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-token IVF hits -> the ``keep`` pages with the best imputed MaxSim sums.

    A page's sum is, over query tokens, its best retrieved pooled score for that token, or
    that token's lowest retrieved score when the token did not retrieve it (the most it can
    have had: XTR's imputation)."""
    m = ids.shape[0]
    valid = ids >= 0
    n_valid = valid.sum(axis=1)
    last = np.where(n_valid > 0, dist[np.arange(m), np.maximum(n_valid - 1, 0)], 0.0)
    tok = np.broadcast_to(np.arange(m)[:, None], ids.shape)[valid]
    pages = ids[valid]
    if len(pages) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    sims = dist[valid]
    # each token's hits come best first, so its first hit of a page is the page's max
    key = tok.astype(np.int64) * (int(pages.max()) + 1) + pages
    _, first = np.unique(key, return_index=True)
    pages, tok, sims = pages[first], tok[first], sims[first]
    uniq, inverse = np.unique(pages, return_inverse=True)
    gain = np.bincount(inverse, weights=sims - last[tok], minlength=len(uniq))
    return _top_k(uniq, (gain + float(last.sum())).astype(np.float32), min(keep, len(uniq)))
