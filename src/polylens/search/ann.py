"""Vector search held in memory: exact below a size, a FAISS HNSW graph above it.

LanceDB stays the store of record. This is the read side's accelerator: every LanceDB
query pays milliseconds of fixed planning and I/O cost, and a fused query (two dense
retrievers, BM25, resolution) cannot pay that several times inside a 5 ms budget.

An HNSW graph is expensive to build (minutes at a million rows on two cores), so it is
saved beside the store (``ann/<collection>.faiss`` plus the vector ids in graph order) and
kept in step incrementally: rows the store gained are added to the graph, rows it lost are
masked out of every search, and the graph is rebuilt only when a fifth of it is dead.
"""

from __future__ import annotations

import logging
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

HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
REBUILD_DEAD_SHARE = 0.2


@dataclass(frozen=True)
class AnnSettings:
    min_rows: int = 20_000
    """Below this many vectors, search is exact (a matrix product is cheaper than a graph)."""
    ef_search: int = 96
    """HNSW beam width at query time: higher is more accurate and slower."""


def _faiss() -> Any:
    return import_or_raise("faiss", package="faiss-cpu")


class VectorIndex:
    """Vectors of one collection in a fixed row order; rows may be dead (deleted later)."""

    def __init__(
        self,
        ids: pa.Array,
        *,
        matrix: np.ndarray | None = None,
        graph: Any = None,
        ef_search: int = 96,
    ) -> None:
        self.ids = ids
        self.matrix = matrix
        self.graph = graph
        self.ef_search = ef_search
        self.live = np.ones(len(ids), dtype=bool)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dead_share(self) -> float:
        return 0.0 if len(self.live) == 0 else float(1.0 - self.live.mean())

    def search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Row numbers and cosine similarities of the ``k`` nearest allowed rows, best first."""
        mask = self.live if allowed is None else (self.live & allowed)
        n_allowed = int(mask.sum())
        k = min(k, n_allowed)
        if k <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        if self.graph is None or n_allowed <= 4 * k or n_allowed < len(mask) // 50:
            # Exact: small collections, and filters so selective a graph walk would starve.
            return self._exact(q[0], k, mask)
        faiss = _faiss()
        params = faiss.SearchParametersHNSW()
        params.efSearch = max(self.ef_search, k)
        if not mask.all():
            bits = np.packbits(mask, bitorder="little")
            params.sel = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bits))
        scores, rows = self.graph.search(q, k, params=params)
        keep = rows[0] >= 0
        return rows[0][keep].astype(np.int64), scores[0][keep]

    def _exact(self, q: np.ndarray, k: int, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        candidates = np.flatnonzero(mask)
        if self.matrix is not None:
            block = self.matrix if len(candidates) == len(mask) else self.matrix[candidates]
        else:
            block = self.graph.reconstruct_batch(candidates)
        scores = block @ q
        if len(candidates) == len(mask):
            candidates = np.arange(len(mask))
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        return candidates[top], scores[top].astype(np.float32)


# -- building and keeping a graph in step with the store ---------------------------------


def build_graph(matrix: np.ndarray) -> Any:
    """HNSW over fp16-quantised vectors (half the memory of fp32, same neighbours in practice)."""
    faiss = _faiss()
    graph = faiss.IndexHNSWSQ(
        matrix.shape[1], faiss.ScalarQuantizer.QT_fp16, HNSW_M, faiss.METRIC_INNER_PRODUCT
    )
    graph.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    graph.train(matrix[: min(len(matrix), 1)])  # fp16 needs no training data; API requires a call
    graph.add(np.ascontiguousarray(matrix, dtype=np.float32))
    return graph


def graph_paths(directory: Path, collection: str) -> tuple[Path, Path]:
    return directory / f"{collection}.faiss", directory / f"{collection}.ids.arrow"


def load_graph(directory: Path, collection: str) -> tuple[Any, pa.Array] | None:
    """The saved graph and its ids, or None when missing or unreadable (then it is rebuilt)."""
    graph_file, ids_file = graph_paths(directory, collection)
    if not (graph_file.is_file() and ids_file.is_file()):
        return None
    try:
        faiss = _faiss()
        graph = faiss.read_index(str(graph_file))
        with pa.memory_map(str(ids_file)) as source:
            ids = pa.ipc.open_file(source).read_all().column("id").combine_chunks()
    except (OSError, RuntimeError, pa.ArrowInvalid, KeyError) as exc:
        log.warning("ignoring an unreadable ANN graph for %s: %s", collection, exc)
        return None
    if graph.ntotal != len(ids):
        log.warning("ignoring an ANN graph for %s whose id list does not match", collection)
        return None
    return graph, ids


def save_graph(directory: Path, collection: str, graph: Any, ids: pa.Array) -> None:
    """Write both files atomically (temp file + rename): a crash leaves the old pair or none."""
    faiss = _faiss()
    directory.mkdir(parents=True, exist_ok=True)
    graph_file, ids_file = graph_paths(directory, collection)
    # ids first: a graph whose id list is shorter or longer is refused on load.
    for target, write in (
        (ids_file, lambda path: _write_ids(path, ids)),
        (graph_file, lambda path: faiss.write_index(graph, path)),
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


def sync_graph(
    graph: Any, graph_ids: pa.Array, store_ids: pa.Array, fetch_vectors: Any
) -> tuple[Any, pa.Array, np.ndarray, bool]:
    """Bring a saved graph up to the store's rows.

    Returns (graph, ids in graph order, live mask, changed). ``fetch_vectors(ids)`` returns
    the vectors of the given ids in that order.
    """
    live = pc.is_in(graph_ids, value_set=store_ids).to_numpy(zero_copy_only=False)
    new = pc.filter(store_ids, pc.invert(pc.is_in(store_ids, value_set=graph_ids)))
    changed = len(new) > 0
    if changed:
        vectors = fetch_vectors(new.to_pylist())
        graph.add(np.ascontiguousarray(vectors, dtype=np.float32))
        graph_ids = pa.concat_arrays([graph_ids, new])
        live = np.concatenate([live, np.ones(len(new), dtype=bool)])
    return graph, graph_ids, live, changed


__all__ = [
    "AnnSettings",
    "VectorIndex",
    "build_graph",
    "load_graph",
    "save_graph",
    "sync_graph",
]
