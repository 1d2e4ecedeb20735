"""Late-interaction (ColPali / ColQwen2) scoring: exact MaxSim and page pooling.

A page is stored as its patch vectors (tens to hundreds of L2-normalised vectors, fp16); a
text query is ``m`` token vectors. The score is MaxSim::

    score(query, page) = sum over query tokens t of max over page vectors v of <t, v>

:func:`maxsim` computes it exactly, in blocks of about ``_BLOCK_VECTORS`` stored vectors.
:func:`pool_segments` / :func:`pool_pages` summarise a page by a few pooled vectors (the
first stage of :class:`polylens.search.multivector_index.MultiVectorIndex`);
:func:`token_pool` shrinks a page's vectors at ingest.

The module imports only numpy at import time; scipy (for :func:`token_pool`) is imported
inside the function that needs it. If torch is already imported by the process (it is
whenever a ColPali encoder is loaded), it is used for the fp16 -> fp32 conversion of
stored vectors, which numpy does ~7x slower; the values are bit-identical either way.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence

import numpy as np

__all__ = [
    "maxsim",
    "pool_segments",
    "pool_pages",
    "token_pool",
]

# How many stored vectors one exact-MaxSim block converts and multiplies at a time
# (x 128-d x 4 bytes = 8 MiB of float32 per block: stays in L2/L3, amortises the matmul).
_BLOCK_VECTORS = 16_384


# -- exact MaxSim ------------------------------------------------------------------------
def _as_query(query: np.ndarray, dim: int | None = None) -> np.ndarray:
    q = np.asarray(query, dtype=np.float32)
    if q.ndim == 1:
        q = q[None, :]
    if q.ndim != 2:
        raise ValueError(f"query must be (tokens, dim), got shape {np.shape(query)}")
    if dim is not None and q.shape[1] != dim:
        raise ValueError(f"query dim {q.shape[1]} != index dim {dim}")
    return np.ascontiguousarray(q)


def _to_float32(src: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out[:] = src`` (fp16 -> fp32), with torch's vectorised cast when torch is loaded."""
    torch = sys.modules.get("torch")
    if torch is not None and src.dtype == np.float16 and src.flags.c_contiguous and src.size:
        # torch.from_numpy refuses read-only arrays (the memmap is one); a buffer view is
        # accepted (torch warns once that it is not writable: it is only read here).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            s = torch.frombuffer(memoryview(src.reshape(-1)).cast("B"), dtype=torch.float16)
        torch.from_numpy(out.reshape(-1)).copy_(s)
    else:
        np.copyto(out, src, casting="unsafe")
    return out


def _block_maxsim(
    q: np.ndarray, vectors: np.ndarray, starts: np.ndarray, buf: np.ndarray | None = None
) -> np.ndarray:
    """MaxSim of ``q`` (m, d) float32 against consecutive pages stored back to back in
    ``vectors`` (page j = rows starts[j]:starts[j+1], starts[-1] == len(vectors)); every page
    must have at least one vector. Returns float32 (len(starts) - 1,)."""
    n_pages = len(starts) - 1
    if n_pages == 0:
        return np.zeros(0, np.float32)
    nv = len(vectors)
    if vectors.dtype != np.float32:
        if buf is None or len(buf) < nv:
            buf = np.empty((nv, vectors.shape[1]), np.float32)
        v = _to_float32(vectors, buf[:nv])
    else:
        v = vectors
    sims = v @ q.T  # (nv, m): BLAS, float32 accumulate
    lengths = np.diff(starts)
    if lengths[0] > 0 and np.all(lengths == lengths[0]):
        best = sims.reshape(n_pages, int(lengths[0]), q.shape[0]).max(axis=1)
    else:
        best = np.maximum.reduceat(sims, starts[:-1], axis=0)
    return best.sum(axis=1, dtype=np.float32)


def maxsim(query: np.ndarray, pages: Sequence[np.ndarray]) -> np.ndarray:
    """Exact MaxSim of ``query`` (m, d) against each page ((n_i, d), any float dtype).

    Returns float32 scores, one per page: sum over query tokens of the best dot product with
    the page's vectors (cosine when both sides are L2-normalised). A page without vectors
    is an error (its MaxSim is undefined)."""
    if len(pages) == 0:
        return np.zeros(0, np.float32)
    q = _as_query(query, int(np.shape(pages[0])[1]))
    lengths = np.fromiter((len(p) for p in pages), dtype=np.int64, count=len(pages))
    if np.any(lengths == 0):
        raise ValueError(f"page {int(np.argmin(lengths))} has no vectors")
    out = np.empty(len(pages), np.float32)
    # Group pages into blocks of about _BLOCK_VECTORS vectors.
    i = 0
    while i < len(pages):
        j, total = i, 0
        while j < len(pages) and (total == 0 or total + lengths[j] <= _BLOCK_VECTORS):
            total += int(lengths[j])
            j += 1
        block = np.concatenate([np.asarray(p) for p in pages[i:j]], axis=0)
        starts = np.concatenate([[0], np.cumsum(lengths[i:j])])
        out[i:j] = _block_maxsim(q, block, starts)
        i = j
    return out


# -- pooling ---------------------------------------------------------------------------
def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def pool_pages(
    pages: np.ndarray, segments: int, *, method: str = "kmeans", iterations: int = 4
) -> np.ndarray:
    """:func:`pool_segments` for a batch of equal-length pages ``(B, n, d)`` at once,
    returning ``(B, min(segments, n), d)`` float32."""
    block = np.asarray(pages, dtype=np.float32)
    if block.ndim != 3:
        raise ValueError(f"pages must be (batch, vectors, dim), got {block.shape}")
    b, n, d = block.shape
    s = max(1, min(int(segments), n))
    if n == 0:
        raise ValueError("pages have no vectors")
    bounds = np.linspace(0, n, s + 1).round().astype(np.int64)  # contiguous (grid rows)
    cents = _normalise(np.add.reduceat(block, bounds[:-1], axis=1))
    if method == "rows":
        return cents
    if method != "kmeans":
        raise ValueError(f"unknown pooling method {method!r} (use 'kmeans' or 'rows')")
    # Spherical k-means, started from the contiguous segments: patches move to the segment
    # mean they resemble most, so a region's patches (and the page's blank patches) end up
    # pooled together instead of being averaged with whatever shares their grid row.
    clusters = np.arange(s)
    for _ in range(iterations):
        sims = block @ cents.transpose(0, 2, 1)  # (b, n, s)
        members = (sims.argmax(axis=2)[:, :, None] == clusters).astype(np.float32)
        sums = members.transpose(0, 2, 1) @ block  # (b, s, d)
        counts = members.sum(axis=1)  # (b, s)
        cents = np.where((counts == 0)[:, :, None], cents, _normalise(sums))
        # an emptied cluster restarts at the patch its page's centroids serve worst
        bad_page, bad_cluster = np.nonzero(counts == 0)
        if len(bad_page):
            worst = sims.max(axis=2)[bad_page].argmin(axis=1)
            cents[bad_page, bad_cluster] = block[bad_page, worst]
    return cents.astype(np.float32, copy=False)


def pool_segments(
    vectors: np.ndarray, segments: int, *, method: str = "kmeans", iterations: int = 4
) -> np.ndarray:
    """First-stage vectors of one page: ``min(segments, n)`` L2-normalised vectors.

    ``method="rows"``: the page's vectors (row-major patch grid) cut into ``segments``
    contiguous runs of equal length -- grid rows or bands of rows -- each averaged and
    normalised (Qdrant's recipe).

    ``method="kmeans"`` (default): the same segments refined by a few rounds of spherical
    k-means within the page. Averaging a whole row mixes a figure with the text beside it
    and with the margins, which dilutes the best match a query token can find; letting
    each patch join the segment mean it is closest to keeps a region's patches together
    (and puts the blank patches, shared by every page, in their own pooled vectors). On
    the synthetic pages of ``bench/multivector.py`` this gave the best first-stage recall
    per pooled vector (see that benchmark's pooling comparison); it costs a few small
    matmuls per page at ingest, nothing at query time.
    """
    v = np.asarray(vectors, dtype=np.float32)
    if v.ndim != 2 or len(v) == 0:
        raise ValueError(f"a page must be (n >= 1, dim), got shape {v.shape}")
    return pool_pages(v[None], segments, method=method, iterations=iterations)[0]


def token_pool(vectors: np.ndarray, factor: int) -> np.ndarray:
    """Ingest-time token pooling: cluster a page's ``n`` vectors hierarchically (Ward) into
    ``max(1, n // factor)`` clusters; each cluster's mean, L2-normalised, replaces its members.

    Published for ColPali (Clavié et al., 2024): factor 2 keeps retrieval quality, factor 3
    keeps ~97.8 %, while storing 1/2 or 1/3 of the vectors. ``factor == 1`` returns the
    vectors unchanged (as float32). Clusters come out ordered by their first member, so the
    result keeps the page's reading order. Needs scipy."""
    v = np.asarray(vectors, dtype=np.float32)
    if v.ndim != 2:
        raise ValueError(f"vectors must be (n, dim), got shape {v.shape}")
    factor = int(factor)
    if factor < 1:
        raise ValueError("factor must be >= 1")
    n = len(v)
    target = max(1, n // factor)
    if factor == 1 or n <= 1 or target >= n:
        return v.copy()
    try:
        from scipy.cluster.hierarchy import fcluster, linkage
    except ImportError as exc:  # pragma: no cover - scipy is in the test environment
        raise ImportError(
            "token_pool needs scipy for hierarchical clustering: pip install scipy"
        ) from exc
    tree = linkage(v.astype(np.float64), method="ward")
    labels = fcluster(tree, t=target, criterion="maxclust")
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(first)  # cluster j of the output = j-th cluster in reading order
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    cluster_of = rank[inverse]
    sums = np.zeros((len(order), v.shape[1]), np.float64)
    np.add.at(sums, cluster_of, v)
    return _normalise(sums).astype(np.float32)
