"""Late-interaction (ColPali / ColQwen2) page retrieval: exact MaxSim and a two-stage index.

A page is stored as its patch vectors (tens to hundreds of L2-normalised vectors, fp16); a
text query is ``m`` token vectors. The score is MaxSim::

    score(query, page) = sum over query tokens t of max over page vectors v of <t, v>

Exhaustive MaxSim reads every stored vector for every query, which is seconds at a million
pages. :class:`MultiVectorIndex` answers in two stages:

1. **First stage (cheap, approximate).** At ingest each page is summarised by a few *pooled*
   vectors (:func:`pool_segments`: its patches in ``segments`` groups, each group's mean,
   L2-normalised). All pooled vectors live in one FAISS IVF index (fp16 codes) whose ids are
   page rows. A query searches it once per token (``nprobe`` lists, the best ``token_k``
   pooled vectors per token). A page's first-stage score is the MaxSim of the query against
   its pooled vectors, where a token that did not retrieve the page is credited with that
   token's ``token_k``-th score (the best it could have had without being retrieved; XTR's
   "missing similarity imputation").
2. **Exact rerank.** The best ``candidates`` pages by that score are scored with exact MaxSim
   over their full vectors, read from the fp16 :class:`PatchStore` (a memmap, so the corpus
   may exceed RAM). Results are therefore exact scores; the first stage only decides which
   pages get scored.

Deletions and filters are a boolean ``live`` mask (a FAISS ``IDSelectorBitmap`` in the first
stage, so no deleted page takes a candidate slot); deleting never rebuilds anything. ``add``
appends to the store and to the IVF lists (the coarse centroids stay as trained).

The module imports only numpy at import time; FAISS (and scipy for :func:`token_pool`) are
imported inside the functions that need them. If torch is already imported by the process
(it is whenever a ColPali encoder is loaded), it is used for the fp16 -> fp32 conversion of
stored vectors, which numpy does ~7x slower; the values are bit-identical either way.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "MultiVectorIndex",
    "PatchStore",
    "maxsim",
    "pool_segments",
    "pool_pages",
    "token_pool",
]

FORMAT_VERSION = 1
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
    if torch is not None and src.dtype == np.float16 and src.flags.c_contiguous:
        # torch.from_numpy needs a writable array; the memmap is read-only, so go through a
        # buffer view (no copy) that torch accepts.
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
    bounds = np.linspace(0, n, s + 1).round().astype(np.int64)
    labels = np.repeat(np.arange(s), np.diff(bounds))  # contiguous segments (grid rows)
    onehot = np.zeros((n, s), np.float32)
    onehot[np.arange(n), labels] = 1.0
    cents = _normalise(np.einsum("bnd,ns->bsd", block, onehot))
    if method == "rows":
        return cents
    if method != "kmeans":
        raise ValueError(f"unknown pooling method {method!r} (use 'kmeans' or 'rows')")
    # Spherical k-means, started from the contiguous segments: patches move to the segment
    # mean they resemble most, so a region's patches (and the page's blank patches) end up
    # pooled together instead of being averaged with whatever shares their grid row.
    for _ in range(iterations):
        sims = np.einsum("bnd,bsd->bns", block, cents)
        assign = sims.argmax(axis=2)  # (b, n)
        members = np.zeros((b, n, s), np.float32)
        np.put_along_axis(members, assign[:, :, None], 1.0, axis=2)
        sums = np.einsum("bnd,bns->bsd", block, members)
        counts = members.sum(axis=1)  # (b, s)
        new = _normalise(sums)
        empty = counts == 0  # keep the previous centroid of an emptied cluster
        cents = np.where(empty[:, :, None], cents, new)
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


# -- storage -----------------------------------------------------------------------------
class PatchStore:
    """All pages' vectors, back to back in one fp16 file read through ``np.memmap``.

    Page ``i`` is rows ``offsets[i]:offsets[i + 1]`` of the file. Files in ``directory``:
    ``patches.f16`` (raw fp16, ``rows x dim``), ``offsets.i64`` (raw int64, pages + 1) and
    ``patches.json`` (dim). Appending writes the vectors first and the offsets last, so a
    crash mid-append leaves the store as it was (the tail is overwritten next time).
    ``head(n)`` is a read-only view of the first ``n`` pages."""

    VECTORS = "patches.f16"
    OFFSETS = "offsets.i64"
    META = "patches.json"

    def __init__(self, directory: Path, dim: int, offsets: np.ndarray, *, writable: bool) -> None:
        self.directory = Path(directory)
        self.dim = int(dim)
        self._offsets = np.asarray(offsets, dtype=np.int64)
        self.writable = writable
        self._mm: np.memmap | None = None

    # construction
    @classmethod
    def create(cls, directory: Path, dim: int) -> PatchStore:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if (directory / cls.OFFSETS).exists():
            raise FileExistsError(f"{directory} already holds a patch store")
        (directory / cls.VECTORS).write_bytes(b"")
        np.zeros(1, np.int64).tofile(directory / cls.OFFSETS)
        (directory / cls.META).write_text(json.dumps({"dim": int(dim), "dtype": "float16"}))
        return cls(directory, dim, np.zeros(1, np.int64), writable=True)

    @classmethod
    def open(cls, directory: Path, *, writable: bool = True) -> PatchStore:
        directory = Path(directory)
        meta = json.loads((directory / cls.META).read_text())
        offsets = np.fromfile(directory / cls.OFFSETS, dtype=np.int64)
        if len(offsets) == 0 or offsets[0] != 0:
            raise ValueError(f"{directory / cls.OFFSETS} is not a patch-store offsets file")
        return cls(directory, meta["dim"], offsets, writable=writable)

    @classmethod
    def from_pages(cls, directory: Path, pages: Sequence[np.ndarray], dim: int | None = None):
        if dim is None:
            if not len(pages):
                raise ValueError("dim is needed for an empty store")
            dim = int(np.shape(pages[0])[1])
        store = cls.create(directory, dim)
        store.append(pages)
        return store

    def head(self, n: int) -> PatchStore:
        """Read-only view of the first ``n`` pages (shares the file)."""
        n = int(n)
        if not 0 <= n <= len(self):
            raise ValueError(f"head({n}) of a store with {len(self)} pages")
        return PatchStore(self.directory, self.dim, self._offsets[: n + 1], writable=False)

    # reading
    def __len__(self) -> int:
        return len(self._offsets) - 1

    @property
    def offsets(self) -> np.ndarray:
        return self._offsets

    @property
    def n_vectors(self) -> int:
        return int(self._offsets[-1])

    @property
    def vectors(self) -> np.ndarray:
        """All rows, ``(n_vectors, dim)`` fp16, memory-mapped read-only."""
        if self._mm is None or len(self._mm) != self.n_vectors:
            if self.n_vectors == 0:
                return np.zeros((0, self.dim), np.float16)
            self._mm = np.memmap(
                self.directory / self.VECTORS,
                dtype=np.float16,
                mode="r",
                shape=(self.n_vectors, self.dim),
            )
        return self._mm

    def page(self, i: int) -> np.ndarray:
        return self.vectors[self._offsets[i] : self._offsets[i + 1]]

    def lengths(self) -> np.ndarray:
        return np.diff(self._offsets)

    def gather(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The vectors of ``rows`` back to back (fp16, a copy) and their starts (len + 1)."""
        rows = np.asarray(rows, dtype=np.int64)
        lo, hi = self._offsets[rows], self._offsets[rows + 1]
        starts = np.zeros(len(rows) + 1, np.int64)
        np.cumsum(hi - lo, out=starts[1:])
        out = np.empty((int(starts[-1]), self.dim), np.float16)
        mm = self.vectors
        for j in range(len(rows)):
            out[starts[j] : starts[j + 1]] = mm[lo[j] : hi[j]]
        return out, starts

    # writing
    def append(self, pages: Sequence[np.ndarray]) -> np.ndarray:
        """Append pages (each (n_i >= 1, dim)); returns their rows."""
        if len(pages) == 0:
            return np.zeros(0, np.int64)
        arrays = [np.asarray(p) for p in pages]
        for i, a in enumerate(arrays):
            if a.ndim != 2 or a.shape[1] != self.dim:
                raise ValueError(f"page {i}: shape {a.shape}, expected (n, {self.dim})")
            if len(a) == 0:
                raise ValueError(f"page {i} has no vectors")
        lengths = np.fromiter((len(a) for a in arrays), np.int64, len(arrays))
        flat = np.concatenate(arrays, axis=0)
        return self.append_flat(flat, lengths)

    def append_flat(self, vectors: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Append pages given as one ``(sum(lengths), dim)`` block; returns their rows."""
        if not self.writable:
            raise PermissionError("this patch store is a read-only view")
        lengths = np.asarray(lengths, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float16)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"vectors must be (n, {self.dim}), got {vectors.shape}")
        if int(lengths.sum()) != len(vectors) or np.any(lengths <= 0):
            raise ValueError("lengths must be >= 1 and sum to the number of vectors")
        first = len(self)
        with open(self.directory / self.VECTORS, "r+b") as fh:
            fh.seek(self.n_vectors * self.dim * 2)
            fh.write(vectors.tobytes())
            fh.truncate()
            fh.flush()
            os.fsync(fh.fileno())
        new_offsets = self.n_vectors + np.cumsum(lengths)
        with open(self.directory / self.OFFSETS, "r+b") as fh:
            fh.seek(len(self._offsets) * 8)
            fh.write(new_offsets.astype(np.int64).tobytes())
            fh.truncate()
        self._offsets = np.concatenate([self._offsets, new_offsets])
        self._mm = None
        return np.arange(first, len(self), dtype=np.int64)

    def nbytes(self) -> int:
        return self.n_vectors * self.dim * 2 + self._offsets.nbytes

    def copy_to(self, directory: Path) -> PatchStore:
        """Copy the first ``len(self)`` pages into a new store in ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        src = self.directory / self.VECTORS
        with open(src, "rb") as fi, open(directory / self.VECTORS, "wb") as fo:
            remaining = self.n_vectors * self.dim * 2
            while remaining:
                chunk = fi.read(min(remaining, 64 << 20))
                if not chunk:
                    raise OSError(f"{src} is shorter than its offsets say")
                fo.write(chunk)
                remaining -= len(chunk)
        self._offsets.tofile(directory / self.OFFSETS)
        shutil.copyfile(self.directory / self.META, directory / self.META)
        return PatchStore.open(directory)


# -- the index ---------------------------------------------------------------------------
def _default_nlist(n_pooled: int) -> int:
    """~2 * sqrt(N) lists (a power of two), capped so each list gets >= 32 training points."""
    if n_pooled <= 0:
        return 1
    nlist = 2 ** round(math.log2(max(1.0, 2.0 * math.sqrt(n_pooled))))
    return int(max(1, min(nlist, n_pooled // 32, 65_536)))


def _pool_store(store: PatchStore, rows: np.ndarray, segments: int, method: str, batch: int = 2048):
    """Yield (page rows repeated per pooled vector, pooled vectors) for ``rows`` of a store."""
    lengths = store.lengths()
    mm = store.vectors
    i = 0
    rows = np.asarray(rows, dtype=np.int64)
    while i < len(rows):
        # a run of consecutive rows of equal length pools as one (B, n, d) block
        j = min(i + batch, len(rows))
        r = rows[i:j]
        same = (lengths[r] == lengths[r[0]]) & (r - r[0] == np.arange(len(r)))
        if not same.all():
            j = i + int(np.argmin(same))
            r = rows[i:j]
        n = int(lengths[r[0]])
        lo = int(store.offsets[r[0]])
        block = np.asarray(mm[lo : lo + n * len(r)], dtype=np.float32).reshape(len(r), n, -1)
        pooled = pool_pages(block, segments, method=method)
        s = pooled.shape[1]
        yield np.repeat(r, s), pooled.reshape(-1, pooled.shape[2])
        i = j


class MultiVectorIndex:
    """Two-stage MaxSim index over a :class:`PatchStore` (see the module docstring).

    Pages are rows ``0..n-1`` in insertion order; the caller maps rows to item ids."""

    FIRST_STAGE = "first_stage.faiss"
    LIVE = "live.npy"
    META = "index.json"

    def __init__(
        self,
        patches: PatchStore,
        first: Any,
        *,
        segments: int,
        pooling: str,
        nprobe: int,
        token_k: int,
        live: np.ndarray | None = None,
    ) -> None:
        self.patches = patches
        self.first = first  # faiss.IndexIVF or None (empty index)
        self.segments = int(segments)
        self.pooling = pooling
        self.nprobe = int(nprobe)
        self.token_k = int(token_k)
        n = len(patches)
        self._live = np.ones(n, bool) if live is None else np.asarray(live, bool).copy()
        if len(self._live) != n:
            raise ValueError(f"live mask has {len(self._live)} rows, store has {n}")
        self._bitmap: np.ndarray | None = None
        self._buf: np.ndarray | None = None

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        patches: PatchStore,
        *,
        segments: int = 8,
        pooling: str = "kmeans",
        nlist: int | None = None,
        nprobe: int = 16,
        token_k: int = 1024,
        codec: str = "fp16",
        train_size: int = 131_072,
        seed: int = 1234,
    ) -> MultiVectorIndex:
        """Pool every page of ``patches`` into ``segments`` vectors and index them.

        ``nlist``: IVF lists (default ~2*sqrt(pooled vectors), a power of two); trained by
        k-means on ``train_size`` pooled vectors sampled from the whole store. ``codec``: how
        the IVF stores pooled vectors: ``"fp16"`` (default), ``"sq8"`` (half the RAM, a
        little noisier) or ``"flat"`` (float32). ``nprobe`` / ``token_k`` are the search
        defaults (lists probed per query token, pooled vectors kept per query token)."""
        n = len(patches)
        self = cls(
            patches,
            None,
            segments=segments,
            pooling=pooling,
            nprobe=nprobe,
            token_k=token_k,
        )
        if n == 0:
            return self
        rng = np.random.default_rng(seed)
        lengths = patches.lengths()
        n_pooled = int(np.minimum(lengths, segments).sum())
        nlist = _default_nlist(n_pooled) if nlist is None else int(nlist)
        # train on the pooled vectors of a random sample of pages
        per_page = max(1.0, n_pooled / n)
        sample_pages = np.sort(rng.choice(n, min(n, int(train_size / per_page) + 1), False))
        train = np.concatenate(
            [p for _, p in _pool_store(patches, sample_pages, segments, pooling)]
        )
        self.first = self._new_ivf(patches.dim, min(nlist, len(train)), codec)
        self.first.train(train)
        del train
        for ids, pooled in _pool_store(patches, np.arange(n), segments, pooling, batch=8192):
            self.first.add_with_ids(pooled, ids)
        return self

    @staticmethod
    def _new_ivf(dim: int, nlist: int, codec: str) -> Any:
        import faiss

        quantizer = faiss.IndexFlatIP(dim)
        ip = faiss.METRIC_INNER_PRODUCT
        if codec == "flat":
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, ip)
        elif codec in ("fp16", "sq8"):
            qt = faiss.ScalarQuantizer.QT_fp16 if codec == "fp16" else faiss.ScalarQuantizer.QT_8bit
            index = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, qt, ip)
        else:
            raise ValueError(f"unknown codec {codec!r} (fp16, sq8, flat)")
        index.own_fields = True
        quantizer.this.disown()
        index.cp.max_points_per_centroid = 64  # k-means on <= 64 points per list: quick
        index.cp.niter = 12
        return index

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
        """Mark ``rows`` deleted: they are never returned again. No rebuild; their vectors
        stay on disk until the index is rebuilt."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if len(rows) and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"rows out of range 0..{len(self) - 1}")
        self._live[rows] = False
        self._bitmap = None

    def add(self, pages: Sequence[np.ndarray]) -> np.ndarray:
        """Append pages (each (n_i >= 1, dim)); returns their new rows."""
        if len(pages) == 0:
            return np.zeros(0, np.int64)
        rows = self.patches.append(pages)
        self._live = np.concatenate([self._live, np.ones(len(rows), bool)])
        self._bitmap = None
        if self.first is None:
            # first pages of an index built empty: train on what there is
            self._rebuild_first_stage()
            return rows
        for ids, pooled in _pool_store(self.patches, rows, self.segments, self.pooling):
            self.first.add_with_ids(pooled, ids)
        return rows

    def _rebuild_first_stage(self) -> None:
        fresh = MultiVectorIndex.build(
            self.patches,
            segments=self.segments,
            pooling=self.pooling,
            nprobe=self.nprobe,
            token_k=self.token_k,
        )
        self.first = fresh.first

    # -- search ---------------------------------------------------------------------------
    def _selector_bitmap(self, live: np.ndarray) -> np.ndarray:
        if live is self._live:
            if self._bitmap is None:
                self._bitmap = np.packbits(self._live, bitorder="little")
            return self._bitmap
        return np.packbits(live, bitorder="little")

    def first_stage(
        self,
        query: np.ndarray,
        candidates: int,
        *,
        live: np.ndarray | None = None,
        nprobe: int | None = None,
        token_k: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The first stage alone: up to ``candidates`` rows, best first, with their
        approximate scores (MaxSim over pooled vectors, imputed where not retrieved)."""
        import faiss

        q = _as_query(query, self.patches.dim)
        mask = self._live if live is None else live
        if self.first is None or len(q) == 0 or self.first.ntotal == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        nprobe = min(self.nprobe if nprobe is None else int(nprobe), self.first.nlist)
        kk = self.token_k if token_k is None else int(token_k)
        kk = max(1, min(kk, self.first.ntotal))
        params = faiss.SearchParametersIVF()
        params.nprobe = nprobe
        sel = None
        if not mask.all():
            bitmap = self._selector_bitmap(mask)
            sel = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bitmap))
            params.sel = sel
        dist, ids = self.first.search(q, kk, params=params)
        return _aggregate(dist, ids, candidates)

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
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` rows by exact MaxSim (rows, float32 scores; best first).

        ``live``: boolean mask over rows of pages allowed (a filter); deleted pages are
        never returned either way. ``exact=True`` scores every allowed page (exhaustive);
        otherwise the first stage proposes ``candidates`` pages and only those are scored.
        When the allowed pages are few (<= candidates) or the first stage finds fewer than
        ``k`` of them, the search is exhaustive over the allowed pages."""
        q = _as_query(query, self.patches.dim)
        mask = self._live
        if live is not None:
            live = np.asarray(live, bool)
            if live.shape != mask.shape:
                raise ValueError(f"live mask has shape {live.shape}, index has {mask.shape}")
            mask = mask & live
        k = int(k)
        if k <= 0 or len(self) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        n_allowed = int(mask.sum())
        if n_allowed == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        candidates = max(int(candidates), k)
        if not exact and n_allowed > candidates and self.first is not None:
            rows, _ = self.first_stage(q, candidates, live=mask, nprobe=nprobe, token_k=token_k)
            if len(rows) >= k:
                return self._rerank(q, rows, k)
        return self._exact(q, k, mask)

    def _rerank(self, q: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        rows = np.sort(rows)  # read the memmap in file order
        vectors, starts = self.patches.gather(rows)
        if self._buf is None or len(self._buf) < len(vectors):
            self._buf = np.empty((max(len(vectors), _BLOCK_VECTORS), self.patches.dim), np.float32)
        scores = _block_maxsim(q, vectors, starts, self._buf)
        return _top_k(rows, scores, k)

    def _exact(self, q: np.ndarray, k: int, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        allowed = np.flatnonzero(mask)
        offsets = self.patches.offsets
        mm = self.patches.vectors
        if self._buf is None or len(self._buf) < _BLOCK_VECTORS:
            self._buf = np.empty((_BLOCK_VECTORS, self.patches.dim), np.float32)
        best_rows = np.zeros(0, np.int64)
        best_scores = np.zeros(0, np.float32)
        i = 0
        while i < len(allowed):
            # a run of allowed rows whose vectors fit one block (at least one page)
            lo = offsets[allowed[i]]
            j = int(np.searchsorted(offsets[allowed + 1], lo + _BLOCK_VECTORS, side="right"))
            j = max(j, i + 1)
            r = allowed[i:j]
            if r[-1] - r[0] == len(r) - 1:  # consecutive rows: one contiguous slice
                hi = offsets[r[-1] + 1]
                vectors = mm[lo:hi]
                starts = offsets[r[0] : r[-1] + 2] - lo
            else:
                vectors, starts = self.patches.gather(r)
            buf = self._buf if len(vectors) <= len(self._buf) else None
            scores = _block_maxsim(q, vectors, starts, buf)
            best_rows = np.concatenate([best_rows, r])
            best_scores = np.concatenate([best_scores, scores])
            if len(best_rows) > 4 * k + 4096:
                best_rows, best_scores = _top_k(best_rows, best_scores, k)
            i = j
        return _top_k(best_rows, best_scores, k)

    # -- persistence ----------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """Write the index to ``directory``: the patch store (copied unless it already lives
        there), the first stage, the live mask and the settings."""
        import faiss

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if self.patches.directory.resolve() != directory.resolve():
            self.patches = self.patches.copy_to(directory)
        elif self.patches.writable is False:
            raise ValueError("cannot save over a read-only store view in its own directory")
        tmp = directory / (self.FIRST_STAGE + ".tmp")
        if self.first is not None:
            faiss.write_index(self.first, str(tmp))
            tmp.replace(directory / self.FIRST_STAGE)
        elif (directory / self.FIRST_STAGE).exists():
            (directory / self.FIRST_STAGE).unlink()
        np.save(directory / self.LIVE, self._live)
        meta = {
            "format": FORMAT_VERSION,
            "pages": len(self),
            "segments": self.segments,
            "pooling": self.pooling,
            "nprobe": self.nprobe,
            "token_k": self.token_k,
        }
        (directory / self.META).write_text(json.dumps(meta, indent=1))

    @classmethod
    def load(cls, directory: Path) -> MultiVectorIndex:
        import faiss

        directory = Path(directory)
        meta = json.loads((directory / cls.META).read_text())
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"{directory}: index format {meta.get('format')} unsupported")
        patches = PatchStore.open(directory)
        if len(patches) < meta["pages"]:
            raise ValueError(f"{directory}: store has {len(patches)} pages, index {meta['pages']}")
        patches = patches.head(meta["pages"]) if len(patches) > meta["pages"] else patches
        first = None
        if (directory / cls.FIRST_STAGE).exists():
            first = faiss.read_index(str(directory / cls.FIRST_STAGE))
        live = np.load(directory / cls.LIVE)
        return cls(
            patches,
            first,
            segments=meta["segments"],
            pooling=meta["pooling"],
            nprobe=meta["nprobe"],
            token_k=meta["token_k"],
            live=live,
        )

    @property
    def nbytes(self) -> dict[str, int]:
        """Bytes by part: ``patches_disk`` (fp16 file, read through the page cache) and
        ``offsets_ram``, ``first_stage_ram`` (IVF codes + ids + centroids), ``live_ram``."""
        out = {
            "patches_disk": self.patches.n_vectors * self.patches.dim * 2,
            "offsets_ram": int(self.patches.offsets.nbytes),
            "first_stage_ram": 0,
            "live_ram": int(self._live.nbytes),
        }
        if self.first is not None:
            ivf = self.first
            out["first_stage_ram"] = int(ivf.ntotal * (ivf.code_size + 8) + ivf.nlist * ivf.d * 4)
        return out


def _top_k(rows: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    if len(rows) > k:
        part = np.argpartition(-scores, k - 1)[:k]
        rows, scores = rows[part], scores[part]
    order = np.lexsort((rows, -scores))  # score desc, then row asc (deterministic ties)
    return rows[order].astype(np.int64), scores[order].astype(np.float32)


def _aggregate(dist: np.ndarray, ids: np.ndarray, candidates: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-token IVF hits -> approximate page scores (see the module docstring)."""
    m, kk = ids.shape
    valid = ids >= 0
    n_valid = valid.sum(axis=1)
    has = n_valid > 0
    # the token_k-th (last) retrieved score of each token stands in for pages it missed
    last = np.where(has, dist[np.arange(m), np.maximum(n_valid - 1, 0)], 0.0)
    tok = np.broadcast_to(np.arange(m)[:, None], ids.shape)[valid]
    pages = ids[valid]
    sims = dist[valid]
    # results are sorted best first per token, so the first (token, page) hit is the max
    key = tok.astype(np.int64) * (int(pages.max()) + 1 if len(pages) else 1) + pages
    _, first = np.unique(key, return_index=True)
    pages, tok, sims = pages[first], tok[first], sims[first]
    uniq, inverse = np.unique(pages, return_inverse=True)
    approx = np.bincount(inverse, weights=sims - last[tok], minlength=len(uniq))
    approx = approx + float(last.sum())
    rows, scores = _top_k(uniq, approx.astype(np.float32), min(candidates, len(uniq)))
    return rows, scores
