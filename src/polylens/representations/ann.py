"""Vector search held in memory: exact below a size, a FAISS inverted-file index above it.

LanceDB stays the store of record. This is the read side's accelerator: every LanceDB
query pays milliseconds of fixed planning and I/O cost, and a fused query (two dense
retrievers, BM25, resolution) cannot pay that several times inside a 5 ms budget.

The index is IVF over fp16 vectors (k-means lists, ``nprobe`` of them scanned per query):
on a million clustered 512-d vectors (``bench/query.py``) it gave recall@10 0.996 at
nprobe 16 and trained and filled in about half a minute, where an HNSW graph (M=32,
efConstruction=80) levelled off at 0.92 and took minutes to build. It is saved beside
the store (``ann/<collection>.faiss`` plus the vector ids in index order) and kept in step
incrementally: rows the store gained are added to their lists, rows it lost are masked out
of every search, and it is rebuilt when a fifth of it is dead or it has outgrown its lists.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from polylens._lazy import import_or_raise

log = logging.getLogger(__name__)

REBUILD_DEAD_SHARE = 0.2
TRAIN_SAMPLE = 100_000


@dataclass(frozen=True)
class AnnSettings:
    min_rows: int = 20_000
    """Below this many vectors, search is exact (a matrix product is cheaper)."""
    nprobe: int = 16
    """Inverted lists scanned per query: higher is more accurate and slower."""


def _faiss() -> Any:
    return import_or_raise("faiss", package="faiss-cpu")


class VectorIndex:
    """Vectors of one collection in a fixed row order; rows may be dead (deleted later)."""

    def __init__(
        self,
        ids: pa.Array,
        *,
        matrix: np.ndarray | None = None,
        ann: Any = None,
        nprobe: int = 16,
    ) -> None:
        self.ids = ids
        self.matrix = matrix
        self.ann = ann
        self.nprobe = nprobe
        self._plans: dict[int, tuple[Any, np.ndarray, int, Any]] = {}
        self.live = np.ones(len(ids), dtype=bool)

    @property
    def live(self) -> np.ndarray:
        return self._live

    @live.setter
    def live(self, value: np.ndarray) -> None:
        self._live = value
        self._plans.clear()

    def __len__(self) -> int:
        return len(self.ids)

    def _plan(self, allowed: np.ndarray | None) -> tuple[np.ndarray, int, Any]:
        """(mask, rows allowed, packed selector bits or None): computed once per filter
        array, since each costs passes over every row (a millisecond at a million)."""
        key = id(allowed)
        cached = self._plans.get(key)
        if cached is not None and cached[0] is allowed:
            return cached[1], cached[2], cached[3]
        mask = self._live if allowed is None else (self._live & allowed)
        n_allowed = int(mask.sum())
        bits = None if n_allowed == len(mask) else np.packbits(mask, bitorder="little")
        if len(self._plans) >= 64:
            self._plans.clear()
        self._plans[key] = (allowed, mask, n_allowed, bits)
        return mask, n_allowed, bits

    @property
    def dead_share(self) -> float:
        return 0.0 if len(self.live) == 0 else float(1.0 - self.live.mean())

    def search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Row numbers and cosine similarities of the ``k`` nearest allowed rows, best first."""
        mask, n_allowed, bits = self._plan(allowed)
        k = min(k, n_allowed)
        if k <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        if self.ann is None or n_allowed <= 4 * k or n_allowed < len(mask) // 50:
            # Exact: small collections, and filters so selective that the probed lists
            # may hold too few matches.
            return self._exact(q[0], k, mask)
        faiss = _faiss()
        params = faiss.SearchParametersIVF()
        params.nprobe = self.nprobe
        if bits is not None:
            params.sel = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bits))
        scores, rows = self.ann.search(q, k, params=params)
        keep = rows[0] >= 0
        return rows[0][keep].astype(np.int64), scores[0][keep]

    def _exact(self, q: np.ndarray, k: int, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        candidates = np.flatnonzero(mask)
        if self.matrix is not None:
            block = self.matrix if len(candidates) == len(mask) else self.matrix[candidates]
        else:
            block = self.ann.reconstruct_batch(candidates)
        scores = block @ q
        if len(candidates) == len(mask):
            candidates = np.arange(len(mask))
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        return candidates[top], scores[top].astype(np.float32)


# -- building an ANN index and keeping it in step with the store --------------------


def lists_for(n: int) -> int:
    """About sqrt(n) lists, with the 39 training points per list k-means wants."""
    return max(1, min(round(math.sqrt(n)), n // 39))


def build_ann(matrix: np.ndarray) -> Any:
    """IVF with about sqrt(n) lists over fp16 vectors (half the memory of fp32, the same
    neighbours in practice), trained on a sample, with a direct map for exact re-reads."""
    faiss = _faiss()
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    n, dim = matrix.shape
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFScalarQuantizer(
        quantizer, dim, lists_for(n), faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
    )
    rng = np.random.default_rng(0)
    sample = matrix if n <= TRAIN_SAMPLE else matrix[rng.choice(n, TRAIN_SAMPLE, replace=False)]
    index.train(sample)
    index.make_direct_map()
    index.add(matrix)
    return index


def outgrown(index: Any) -> bool:
    """Lists sized for a quarter of the rows or fewer: scans get long, rebuild."""
    return index.nlist * 2 < lists_for(index.ntotal)


def ann_paths(directory: Path, collection: str) -> tuple[Path, Path]:
    return directory / f"{collection}.faiss", directory / f"{collection}.ids.arrow"


def load_ann(directory: Path, collection: str) -> tuple[Any, pa.Array] | None:
    """The saved index and its ids, or None when missing or unreadable (then it is rebuilt)."""
    ann_file, ids_file = ann_paths(directory, collection)
    if not (ann_file.is_file() and ids_file.is_file()):
        return None
    try:
        faiss = _faiss()
        ann = faiss.read_index(str(ann_file))
        with pa.memory_map(str(ids_file)) as source:
            ids = pa.ipc.open_file(source).read_all().column("id").combine_chunks()
    except (OSError, RuntimeError, pa.ArrowInvalid, KeyError) as exc:
        log.warning("ignoring an unreadable ANN ann for %s: %s", collection, exc)
        return None
    if ann.ntotal != len(ids):
        log.warning("ignoring an ANN ann for %s whose id list does not match", collection)
        return None
    return ann, ids


def save_ann(directory: Path, collection: str, ann: Any, ids: pa.Array) -> None:
    """Write both files atomically (temp file + rename): a crash leaves the old pair or none."""
    faiss = _faiss()
    directory.mkdir(parents=True, exist_ok=True)
    ann_file, ids_file = ann_paths(directory, collection)
    # ids first: an index whose id list is shorter or longer is refused on load.
    for target, write in (
        (ids_file, lambda path: _write_ids(path, ids)),
        (ann_file, lambda path: faiss.write_index(ann, path)),
    ):
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.")
        os.close(fd)
        try:
            write(tmp)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


def _write_ids(path: str, ids: pa.Array) -> None:
    table = pa.table({"id": ids})
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def sync_ann(
    ann: Any, ann_ids: pa.Array, store_ids: pa.Array, fetch_vectors: Any
) -> tuple[Any, pa.Array, np.ndarray, bool]:
    """Bring a saved ann up to the store's rows.

    Returns (ann, ids in ann order, live mask, changed). ``fetch_vectors(ids)`` returns
    the vectors of the given ids in that order.
    """
    live = pc.is_in(ann_ids, value_set=store_ids).to_numpy(zero_copy_only=False)
    new = pc.filter(store_ids, pc.invert(pc.is_in(store_ids, value_set=ann_ids)))
    changed = len(new) > 0
    if changed:
        vectors = fetch_vectors(new.to_pylist())
        ann.add(np.ascontiguousarray(vectors, dtype=np.float32))
        ann_ids = pa.concat_arrays([ann_ids, new])
        live = np.concatenate([live, np.ones(len(new), dtype=bool)])
    return ann, ann_ids, live, changed


__all__ = [
    "AnnSettings",
    "VectorIndex",
    "build_ann",
    "load_ann",
    "save_ann",
    "sync_ann",
]
