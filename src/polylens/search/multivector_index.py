"""Staged late-interaction page retrieval: a first stage over pooled vectors, exact rerank.

Scores are MaxSim (:func:`polylens.search.maxsim.maxsim`) over a page's patch vectors,
stored in a :class:`~polylens.search.patch_store.PatchStore`.

Exhaustive MaxSim reads every stored vector for every query, which is seconds at a million
pages. :class:`MultiVectorIndex` answers in three stages:

1. **Token retrieval (approximate, cheap).** At ingest each page is summarised by
   ``segments`` *pooled* vectors (:func:`~polylens.search.maxsim.pool_segments`). All
   pooled vectors live in one FAISS IVF index (4-bit PQ fast-scan codes by default) whose
   ids are page rows. Each query token takes its ``token_k`` best pooled vectors from its
   ``nprobe`` nearest lists. A page's stage-1 score is the sum over tokens of its best
   retrieved score, or, for a token that did not retrieve it, that token's lowest retrieved
   score (XTR's imputation). The best ``shortlist`` pages go on.
2. **Pooled MaxSim (exact over the pooled vectors).** The shortlist is scored by MaxSim
   against its pages' pooled vectors (kept in RAM as fp16, ``segments`` x dim x 2 bytes a
   page); the best ``candidates`` go on. Stage 1 alone ranks badly (a generic query token
   -- "the", a padding token -- retrieves a random set of pages and the imputed credits add
   noise), but it is a good *filter*: on the benchmark's synthetic pages the exact top 10
   are almost always in its top 2,000, and stage 2 orders those 2,000 almost as exhaustive
   pooled MaxSim would.
3. **Exact rerank.** The candidates are scored with exact MaxSim over their full vectors,
   read from the fp16 :class:`PatchStore` (a memmap, so the corpus may exceed RAM; the
   candidates' byte ranges are announced with ``posix_fadvise(WILLNEED)`` first, so pages
   not in the page cache are read in parallel rather than one fault at a time). Returned
   scores are therefore exact; stages 1-2 only decide which pages get scored.

Measured choices (``bench/multivector.py``, 64-patch pages): pooled MaxSim over all pages
puts 99.8 % of the exact top 10 within its top 100 with k-means pooling into 8 vectors a page
(99.0 % with 8 row means, 64.5 % with one global mean); an IVF over the pooled vectors with
XTR-style imputation alone reaches only ~93-96 % at 200 candidates (the imputed credits of
generic tokens are noise), hence stage 2.

Deletions and filters are a boolean ``live`` mask (a FAISS ``IDSelectorBitmap`` in the first
stage, so no deleted page takes a candidate slot); deleting never rebuilds anything. ``add``
appends to the store and to the IVF lists (the coarse centroids stay as trained).

The module imports only numpy at import time; FAISS is imported inside the functions that
need it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from polylens.search.first_stage import (
    _MIN_TRAIN_QUANTISED,
    _aggregate,
    _default_nlist,
    _new_ivf,
    _pool_store,
    _top_k,
    default_segments,
)
from polylens.search.maxsim import _BLOCK_VECTORS, _as_query, _block_maxsim, _to_float32
from polylens.search.patch_store import PatchStore

__all__ = [
    "MultiVectorIndex",
    "default_segments",
]


class MultiVectorIndex:
    """Three-stage MaxSim index over a :class:`PatchStore` (see the module docstring).

    Pages are rows ``0..n-1`` in insertion order; the caller maps rows to item ids.
    Searches may run concurrently; ``add``, ``delete`` and ``save`` must not overlap them."""

    POOLED = "pooled.f16"
    FIRST_STAGE = "first_stage.faiss"
    LIVE = "live.npy"
    META = "index.json"

    def __init__(
        self,
        patches: PatchStore,
        pooled: np.ndarray,
        first: Any,
        *,
        pooling: str = "kmeans",
        codec: str = "pq4",
        nprobe: int = 32,
        token_k: int = 1024,
        shortlist: int = 2000,
        live: np.ndarray | None = None,
    ) -> None:
        n = len(patches)
        if pooled.ndim != 3 or len(pooled) != n:
            raise ValueError(f"pooled must be (pages={n}, segments, dim), got {pooled.shape}")
        self.patches = patches
        self._pooled = pooled  # (capacity >= n, segments, dim) fp16; rows >= n unused
        self.first = first  # faiss IVF index over the pooled vectors (ids = rows), or None
        self.pooling = pooling
        self.codec = codec
        self.nprobe = int(nprobe)
        self.token_k = int(token_k)
        self.shortlist = int(shortlist)
        self._live = np.ones(n, bool) if live is None else np.asarray(live, bool).copy()
        if len(self._live) != n:
            raise ValueError(f"live mask has {len(self._live)} rows, store has {n}")
        self._bitmap: np.ndarray | None = None
        self._local = threading.local()  # per-thread float32 scratch (searches may overlap)

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        patches: PatchStore,
        *,
        segments: int | None = None,
        pooling: str = "kmeans",
        nlist: int | None = None,
        codec: str = "pq4",
        nprobe: int = 32,
        token_k: int = 1024,
        shortlist: int = 2000,
        train_pages: int | None = None,
        seed: int = 1234,
    ) -> MultiVectorIndex:
        """Pool every page of ``patches`` into ``segments`` vectors and index them.

        ``segments``: pooled vectors per page (default :func:`default_segments`).
        ``nlist``: IVF lists (default ~2*sqrt(pooled vectors), a power of two), trained by
        k-means on the pooled vectors of ``train_pages`` random pages (default: enough for
        64 points per list). ``codec``: how the IVF stores pooled vectors: ``"pq4"`` (4-bit
        PQ, FAISS fast-scan: 16 bytes a vector at 128-d; the default: stage 2 recomputes the
        scores from fp16 anyway), ``"sq8"``, ``"fp16"`` or ``"flat"``. ``nprobe``,
        ``token_k``, ``shortlist``: search defaults (see :meth:`search`)."""
        n = len(patches)
        lengths = patches.lengths()
        segments = default_segments(lengths) if segments is None else int(segments)
        settings = dict(pooling=pooling, codec=codec, nprobe=nprobe, token_k=token_k)
        settings["shortlist"] = shortlist
        pooled = np.empty((n, segments, patches.dim), np.float16)
        for rows, block in _pool_store(patches, np.arange(n), segments, pooling):
            pooled[rows] = block
        self = cls(patches, pooled, None, **settings)
        if n:
            self.first = self._train_first_stage(nlist, train_pages, seed)
            self._add_to_first_stage(np.arange(n))
        return self

    @property
    def segments(self) -> int:
        return int(self._pooled.shape[1])

    @property
    def pooled(self) -> np.ndarray:
        """The pooled vectors, ``(pages, segments, dim)`` fp16 (read-only view)."""
        v = self._pooled[: len(self)]
        v.flags.writeable = False
        return v

    def _unique_pooled(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of ``rows``' pooled vectors without the padding duplicates."""
        lengths = np.minimum(self.patches.lengths()[rows], self.segments)
        keep = np.arange(self.segments)[None, :] < lengths[:, None]
        vecs = self._pooled[rows][keep].astype(np.float32)
        ids = np.broadcast_to(rows[:, None], keep.shape)[keep]
        return ids, vecs

    def _train_first_stage(self, nlist: int | None, train_pages: int | None, seed: int) -> Any:
        n = len(self)
        n_pooled = int(np.minimum(self.patches.lengths(), self.segments).sum())
        nlist = _default_nlist(n_pooled) if nlist is None else max(1, int(nlist))
        if train_pages is None:
            train_pages = int(64 * nlist / max(1.0, n_pooled / n)) + 1
        rng = np.random.default_rng(seed)
        sample = np.sort(rng.choice(n, min(n, train_pages), replace=False))
        _, train = self._unique_pooled(sample)
        # PQ and SQ need a few thousand points to train; a small index scans flat lists
        codec = self.codec if len(train) >= _MIN_TRAIN_QUANTISED else "flat"
        # FAISS's k-means wants 39 points a list, and says so on stderr when it gets fewer
        index = _new_ivf(self.patches.dim, max(1, min(nlist, len(train) // 39)), codec)
        index.train(train)
        return index

    def rebuild_first_stage(self, nlist: int | None = None, seed: int = 1234) -> None:
        """Retrain the IVF on the current pages and refill it from the pooled vectors (no
        re-pooling). Worth doing once the index has grown several-fold since it was trained
        (an index built empty trains on its first pages)."""
        if len(self) == 0:
            self.first = None
            return
        self.first = self._train_first_stage(nlist, None, seed)
        self._add_to_first_stage(np.arange(len(self)))

    def _add_to_first_stage(self, rows: np.ndarray, batch: int = 65_536) -> None:
        for i in range(0, len(rows), batch):
            ids, vecs = self._unique_pooled(rows[i : i + batch])
            self.first.add_with_ids(vecs, ids.astype(np.int64))

    # -- bookkeeping ----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._live)

    @property
    def live(self) -> np.ndarray:
        """Read-only view of the live mask (False: deleted)."""
        v = self._live.view()
        v.flags.writeable = False
        return v

    @property
    def n_live(self) -> int:
        return int(self._live.sum())

    def delete(self, rows: np.ndarray) -> None:
        """Mark ``rows`` deleted: they are never returned again. Nothing is rebuilt; their
        vectors stay on disk (and in the IVF lists, skipped) until the index is rebuilt."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if len(rows) and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"rows out of range 0..{len(self) - 1}")
        self._live[rows] = False
        self._bitmap = None

    def add(self, pages: Sequence[np.ndarray]) -> np.ndarray:
        """Append pages (each (n_i >= 1, dim)); returns their new rows. The IVF centroids
        stay as trained (an index built empty trains them on its first pages)."""
        if len(pages) == 0:
            return np.zeros(0, np.int64)
        rows = self.patches.append(pages)
        n = len(self.patches)
        if len(self._pooled) < n:  # grow the pooled array geometrically (amortised O(1))
            grown = np.empty((max(n, 2 * len(self._pooled)), *self._pooled.shape[1:]), np.float16)
            grown[: len(self._live)] = self._pooled[: len(self._live)]
            self._pooled = grown
        for r, block in _pool_store(self.patches, rows, self.segments, self.pooling):
            self._pooled[r] = block
        self._live = np.concatenate([self._live, np.ones(len(rows), bool)])
        self._bitmap = None
        if self.first is None:
            self.first = self._train_first_stage(None, None, 1234)
            self._add_to_first_stage(np.arange(n))
        else:
            self._add_to_first_stage(rows)
        return rows

    # -- search ---------------------------------------------------------------------------
    def _selector(self, mask: np.ndarray) -> tuple[Any, np.ndarray | None]:
        import faiss

        if mask.all():
            return None, None
        if mask is self._live:
            if self._bitmap is None:
                self._bitmap = np.packbits(self._live, bitorder="little")
            bitmap = self._bitmap
        else:
            bitmap = np.packbits(mask, bitorder="little")
        return faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap)), bitmap

    def first_stage(
        self,
        query: np.ndarray,
        candidates: int,
        *,
        live: np.ndarray | None = None,
        nprobe: int | None = None,
        token_k: int | None = None,
        shortlist: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Stages 1 and 2: up to ``candidates`` rows, best first, with their MaxSim against
        the pooled vectors. ``live`` defaults to the index's live mask."""
        import faiss

        q = _as_query(query, self.patches.dim)
        mask = self._live if live is None else live
        empty = np.zeros(0, np.int64), np.zeros(0, np.float32)
        if self.first is None or len(q) == 0 or self.first.ntotal == 0:
            return empty
        # stage 1: each query token's best pooled vectors in its nprobe nearest lists
        params = faiss.SearchParametersIVF()
        if nprobe is None:
            # a filter thins every list: probe more of them (x4 at 10 %, x8 at <= 3 %)
            share = float(mask.mean()) if len(mask) else 1.0
            nprobe = self.nprobe * int(np.clip(round(max(share, 1e-9) ** -0.6), 1, 8))
        params.nprobe = min(int(nprobe), self.first.nlist)
        sel, _bitmap = self._selector(mask)  # _bitmap must outlive the search
        if sel is not None:
            params.sel = sel
        kk = max(1, min(self.token_k if token_k is None else int(token_k), self.first.ntotal))
        dist, ids = self.first.search(q, kk, params=params)
        short = self.shortlist if shortlist is None else int(shortlist)
        rows, _ = _aggregate(dist, ids, max(short, candidates))
        if len(rows) == 0:
            return empty
        # stage 2: exact MaxSim against the shortlist's pooled vectors
        rows = np.sort(rows)
        pooled = self._pooled[rows]  # (r, s, d) fp16
        s = pooled.shape[1]
        flat = self._float_buffer(len(rows) * s)
        _to_float32(pooled.reshape(-1, pooled.shape[2]), flat)
        sims = flat @ q.T  # (r * s, m)
        scores = sims.reshape(len(rows), s, -1).max(axis=1).sum(axis=1, dtype=np.float32)
        return _top_k(rows, scores, min(candidates, len(rows)))

    def search(
        self,
        query: np.ndarray,
        k: int,
        *,
        candidates: int = 200,
        live: np.ndarray | None = None,
        exact: bool = False,
        nprobe: int | None = None,
        token_k: int | None = None,
        shortlist: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` rows by exact MaxSim (rows, float32 scores; best first).

        ``live``: boolean mask over rows of the pages allowed (a filter); deleted pages are
        never returned either way. ``exact=True`` scores every allowed page (exhaustive).
        Otherwise: stage 1 asks the IVF for each query token's ``token_k`` best pooled
        vectors (``nprobe`` lists per token; by default more lists when ``live`` allows a
        small share of the pages, up to 8x at 3 % or less) and keeps the ``shortlist`` pages with the best
        imputed sums; stage 2 scores those against their pooled vectors and keeps
        ``candidates``; stage 3 scores those exactly against their stored vectors. When the
        allowed pages are no more than ``candidates``, or the first stages find fewer than
        ``k`` of them (a very narrow filter), the search is exhaustive over the allowed
        pages."""
        q = _as_query(query, self.patches.dim)
        mask = self._live
        if live is not None:
            live = np.asarray(live, bool)
            if live.shape != mask.shape:
                raise ValueError(f"live mask has shape {live.shape}, index has {mask.shape}")
            mask = mask & live
        k = int(k)
        empty = np.zeros(0, np.int64), np.zeros(0, np.float32)
        if k <= 0 or len(self) == 0:
            return empty
        n_allowed = int(mask.sum())
        if n_allowed == 0:
            return empty
        candidates = max(int(candidates), k)
        if not exact and n_allowed > candidates and self.first is not None:
            rows, _ = self.first_stage(
                q, candidates, live=mask, nprobe=nprobe, token_k=token_k, shortlist=shortlist
            )
            if len(rows) >= min(k, n_allowed):
                return self._rerank(q, rows, k)
        return self._exact(q, k, mask)

    def _float_buffer(self, rows: int) -> np.ndarray:
        buf = getattr(self._local, "buf", None)
        if buf is None or len(buf) < rows:
            buf = np.empty((max(rows, _BLOCK_VECTORS), self.patches.dim), np.float32)
            self._local.buf = buf
        return buf[:rows]

    def _rerank(self, q: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        rows = np.sort(rows)  # read the memmap in file order
        self.patches.prefetch(rows)  # pages not in the page cache are read in parallel
        vectors, starts = self.patches.gather(rows)
        scores = _block_maxsim(q, vectors, starts, self._float_buffer(len(vectors)))
        return _top_k(rows, scores, k)

    def _exact(self, q: np.ndarray, k: int, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        allowed = np.flatnonzero(mask)
        offsets = self.patches.offsets
        mm = self.patches.vectors
        ends = offsets[allowed + 1]
        keep_rows: list[np.ndarray] = []
        keep_scores: list[np.ndarray] = []
        kept = 0
        i = 0
        while i < len(allowed):
            # the allowed rows whose vectors fit one block (at least one page)
            lo = offsets[allowed[i]]
            j = max(i + 1, int(np.searchsorted(ends, lo + _BLOCK_VECTORS, side="right")))
            r = allowed[i:j]
            if r[-1] - r[0] == len(r) - 1:  # consecutive rows: one contiguous slice
                vectors = mm[lo : offsets[r[-1] + 1]]
                starts = offsets[r[0] : r[-1] + 2] - lo
            else:
                vectors, starts = self.patches.gather(r)
            scores = _block_maxsim(q, vectors, starts, self._float_buffer(len(vectors)))
            keep_rows.append(r)
            keep_scores.append(scores)
            kept += len(r)
            if kept > 4 * k + 65_536:  # keep memory flat over a million pages
                top = _top_k(np.concatenate(keep_rows), np.concatenate(keep_scores), k)
                keep_rows, keep_scores, kept = [top[0]], [top[1]], len(top[0])
            i = j
        return _top_k(np.concatenate(keep_rows), np.concatenate(keep_scores), k)

    # -- persistence (search/multivector_files.py) -------------------------------------
    def save(self, directory: Path, *, copy_patches: bool = True) -> None:
        """Write the index to ``directory`` (see :func:`multivector_files.save_index`)."""
        from polylens.search.multivector_files import save_index

        save_index(self, Path(directory), copy_patches=copy_patches)

    @classmethod
    def load(cls, directory: Path, *, writable: bool = True) -> MultiVectorIndex:
        """Open an index written by :meth:`save` (see :func:`multivector_files.load_index`)."""
        from polylens.search.multivector_files import load_index

        return load_index(cls, Path(directory), writable=writable)

    @property
    def nbytes(self) -> dict[str, int]:
        """Bytes by part: ``patches_disk`` (the fp16 vectors, read through the page cache);
        in RAM: ``pooled_ram`` (fp16), ``first_stage_ram`` (IVF codes + ids + centroids),
        ``offsets_ram``, ``live_ram``."""
        out = {
            "patches_disk": self.patches.n_vectors * self.patches.dim * 2,
            "pooled_ram": int(self._pooled.nbytes),
            "first_stage_ram": 0,
            "offsets_ram": int(self.patches.offsets.nbytes),
            "live_ram": int(self._live.nbytes),
        }
        if self.first is not None:
            ivf = self.first
            out["first_stage_ram"] = int(ivf.ntotal * (ivf.code_size + 8) + ivf.nlist * ivf.d * 4)
        return out
